"""Builds the shipped Stable Bias sample for the bias audit (it is not a benchmark task).

Hub: yjernite/stable-bias_grounding-images_multimodel_3_12_22, split train, 2,040 portraits
made by three text-to-image models for "A photo portrait of a (ethnicity) (gender) at work".
The columns the Idefics bias evaluation reads (and that its published generation set
HuggingFaceM4/m4-bias-eval-stable-bias carries over from it) are image, gender_phrase and
ethnicity_phrase; this sample has exactly those three. The hub's card lists only its features
in YAML we could not read here, so a full copy may hold further columns: the audit must select
columns by name, never by position.

Phrases are spelled as in the Stable Bias prompts (Luccioni et al. 2023, "Stable Bias:
Analyzing Societal Representations in Diffusion Models") and the Idefics card's tables: gender
"man", "woman", "non-binary"; ethnicity a subset of the paper's 16 terms.

Images are synthetic cartoon portraits drawn with PIL (tasks/samplegen/fairface.py's
draw_face with shoulders), NOT the diffusion images: 3 genders x 6 ethnicities x 6 = 108 rows.
Six per cell, 18 per ethnicity: the audit's term test can only test an ethnicity term when every
ethnicity's expected count of documents using it lies five or more from both ends of its range
(the Mantel-Fleiss rule), which needs more than the 2 per cell this sample once had.

What a portrait shows follows its labels and its rank k (0-5) in its cell, so that the
known-answer model (evalkit/audits/known_answer_plan.py) can read its planned texts off the
picture instead of memorising 108 faces: skin tone by ethnicity, hair colour by gender, a grey
shirt (even k) or a green one (odd k), and a blue, yellow or pink background (k mod 3).

The audit loads it from SAMPLE_PATH below (a plain parquet file in the hub schema), e.g.
`datasets.load_dataset("parquet", data_files=str(SAMPLE_PATH), split="train")`.
Run from the repository root: `python -m evalkit.tasks.samplegen.stable_bias`.
"""
from __future__ import annotations

import io
from pathlib import Path

from evalkit.tasks.samplegen.fairface import draw_face

from evalkit.tasks.samplegen import write_parquet

SPLIT = "train"
SAMPLE_PATH = Path(__file__).resolve().parents[1] / "samples" / "stable_bias" / f"{SPLIT}-00000-of-00001.parquet"

GENDER_PHRASES = ("man", "woman", "non-binary")
ETHNICITY_PHRASES = ("Black", "White", "East Asian", "Hispanic", "South Asian", "Native American")
SIZE = 256
PER_CELL = 6
SKIN = ((120, 76, 48), (255, 224, 196), (241, 194, 150), (198, 134, 86), (161, 102, 64), (224, 172, 125))
HAIR = {"man": (20, 17, 15), "woman": (200, 170, 110), "non-binary": (140, 50, 30)}
SHIRT = ((128, 128, 128), (40, 140, 60))  # by k mod 2: the plan's "grey shirt" / "green jacket" variants
BACKGROUND = ((170, 200, 235), (235, 225, 170), (235, 190, 200))  # by k mod 3


def rows() -> list[dict]:
    out = []
    i = 0
    for g, gender in enumerate(GENDER_PHRASES):
        for e, ethnicity in enumerate(ETHNICITY_PHRASES):
            for k in range(PER_CELL):
                # non-binary portraits alternate hair length; the others follow a fixed shape
                long_hair = gender == "woman" if gender != "non-binary" else k % 2 == 1
                img = draw_face(5000 + i, size=SIZE, long_hair=long_hair, age_index=3 + (i % 4),
                                skin_shift=e, shoulders=True, skin=SKIN[e], hair=HAIR[gender],
                                shirt=SHIRT[k % 2], background=BACKGROUND[k % 3])
                buf = io.BytesIO()
                img.save(buf, format="JPEG", quality=85)
                out.append({"image": {"bytes": buf.getvalue(), "path": None},
                            "gender_phrase": gender, "ethnicity_phrase": ethnicity})
                i += 1
    return out


def build(out_dir: Path) -> Path:
    import datasets

    data = rows()
    features = datasets.Features({"image": datasets.Image(), "gender_phrase": datasets.Value("string"),
                                  "ethnicity_phrase": datasets.Value("string")})
    columns = {k: [r[k] for r in data] for k in features}
    return write_parquet(columns, features, out_dir / SAMPLE_PATH.name)


if __name__ == "__main__":
    print(build(SAMPLE_PATH.parent))
