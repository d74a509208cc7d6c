"""Idefics3 and SmolVLM (HuggingFaceM4/Idefics3-8B-Llama3, HuggingFaceTB/SmolVLM-Instruct and
SmolVLM2): Idefics2's successors, one family because their processors and prompts agree.

Facts (Laurençon et al. 2024, "Building and better understanding vision-language models:
insights and future directions", arXiv:2408.12637; the checkpoints' chat_template.json and
processor configs): the Idefics2 chat format ("User:<image>...<end_of_utterance>\\nAssistant:")
behind a BOS token; `<end_of_utterance>` ends the assistant turn; each image (each crop when
splitting) becomes `<fake_token_around_image>` + a position tag (`<row_i_col_j>` per crop,
`<global-img>` for the whole image) + `image_seq_len` `<image>` tokens (169 for Idefics3-8B,
64 or 81 for SmolVLM), so the count per image varies with its aspect ratio when splitting is on;
pixel crops are padded with zero images, which the model drops, so Idefics2's collation holds;
trained on interleaved multi-image data, so any number of images per prompt. Both were scored
with lmms-eval's task prompts (the short-answer post-prompts the tasks here already use), so no
post-prompt override. The checkpoints are evaluated with image splitting on: pass
`--split-images` to reproduce their numbers.
"""
from .base import Family

FAMILY = Family(
    name="idefics3",
    model_types=("idefics3", "smolvlm"),
    stop_tokens=("<end_of_utterance>",),
    sources=("arXiv:2408.12637 (Idefics3)", "HuggingFaceM4/Idefics3-8B-Llama3 chat_template.json",
             "HuggingFaceTB/SmolVLM-Instruct chat_template.json"),
)
