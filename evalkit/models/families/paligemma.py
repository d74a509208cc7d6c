"""PaliGemma and PaliGemma 2 (google/paligemma-3b-mix-224/448, google/paligemma2-3b-mix-448, ...):
a SigLIP-So400m image encoder, a linear projection and a Gemma (PaliGemma 2: Gemma 2) decoder.

Facts (Beyer et al., "PaliGemma: A versatile 3B VLM for transfer", arXiv:2407.07726; big_vision's
PaliGemma transfer configs; transformers' PaliGemmaProcessor and PaliGemma model):
- No chat template: the input is a prefix and a suffix, "<image>"x(image tokens) + "<bos>" +
  prefix + "\\n", then the answer (the suffix) and "<eos>". The processor writes the image
  tokens, "<bos>" and the "\\n" itself from "<image>" + prefix, so the prompt given to it is the
  image placeholder(s) then the prefix; the answer starts right after the "\\n".
- Prefix-LM attention: image and prefix tokens attend to each other in both directions, the
  suffix causally. `token_type_ids` (0 on the prefix, 1 on the suffix) say which is which; it
  is a per-token input, left-padded with the text, and a log-likelihood choice is suffix (1).
- A fixed number of image tokens per image: (resolution / 14)^2, 256 / 1024 / 4096 at
  224 / 448 / 896 px.
- One image per prompt: the released checkpoints are trained and transferred on single images
  (multi-image transfers such as NLVR2 are separate fine-tunes), so a request with more images
  is a per-sample error, never a silently dropped image. The image is placed first (the
  processor's prefix layout); an inline image reference in the question is removed.
- Task prefixes: question answering is asked as "answer en {question}" (big_vision's VQAv2
  transfer, configs/proj/paligemma/transfers/vqav2.py: strfmt("answer en {question_text}"); its
  OK-VQA, TallyQA and ST-VQA transfers alike; the DocVQA-only transfer used the bare question),
  which is also the mix checkpoints' VQA prompt, so the instruct style uses it for every task;
  the answers are short by training, so the tasks' short-answer post-prompt is dropped. The base
  prompt style sends the task text as is.
- The processor also returns training `labels` (suffix token ids): dropped, the model is only run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import SampleError
from ...task import SHORT_ANSWER_PROMPT
from ...types import IMAGE_PLACEHOLDER, Request
from .base import Family


@dataclass(frozen=True)
class PaliGemmaFamily(Family):
    # The task prefix of the instruct prompt style (big_vision's VQA transfers).
    task_prefix: str = "answer en "

    def render_prompt(self, processor, request: Request, prompt_style: str, model_label: str) -> str:
        n = len(request.images)
        if n == 0:
            raise SampleError(f"the {self.name} family needs one image per prompt; this sample has none")
        if self.max_images is not None and n > self.max_images:
            raise SampleError(f"{n} images in one prompt, but the {self.name} family takes at most {self.max_images} "
                              f"(its checkpoints are trained on single images); this sample cannot be asked of it")
        n_ph = request.text.count(IMAGE_PLACEHOLDER)
        if n_ph and n_ph != n:
            raise SampleError(f"prompt has {n_ph} image placeholders but {n} images")
        text = request.text.replace(IMAGE_PLACEHOLDER, "")
        if prompt_style == "instruct":
            text = self.task_prefix + self.apply_post_prompt(text).strip()
        return IMAGE_PLACEHOLDER * n + text

    def continuation_context(self, prompt: str) -> str:
        return prompt + "\n"  # the processor ends the prefix with it; the answer follows

    def model_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in inputs.items() if k != "labels"}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "task_prefix": self.task_prefix}

    def convention_key(self) -> str:
        return f"{super().convention_key()}|prefix={self.task_prefix!r}"


FAMILY = PaliGemmaFamily(
    name="paligemma",
    model_types=("paligemma",),
    stop_tokens=("<eos>",),
    image_token="<image>",
    max_images=1,
    post_prompts={SHORT_ANSWER_PROMPT: ""},
    sources=("arXiv:2407.07726 (PaliGemma): prefix-LM input, image tokens per resolution",
             "big_vision configs/proj/paligemma/transfers/vqav2.py: prefix 'answer en {question_text}'",
             "google/paligemma-3b-mix-224 processor and generation_config (eos <eos>)"),
    token_inputs={"token_type_ids": 1},
    choice_separator="",
)
