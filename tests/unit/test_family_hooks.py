"""Family hooks added for Qwen2-VL and PaliGemma, on plain tensors: per-token inputs are
left-padded with the text, flat patch lists are concatenated, the defaults change nothing."""
from __future__ import annotations

import torch

from evalkit.models.families import GENERIC, Family


def test_per_token_inputs_are_left_padded_and_flat_patch_lists_concatenated():
    fam = Family(name="x", model_types=(), token_inputs={"mm_token_type_ids": 0})
    a = {"input_ids": torch.tensor([[5, 6, 7]]), "attention_mask": torch.ones(1, 3, dtype=torch.long),
         "mm_token_type_ids": torch.tensor([[0, 1, 0]]), "pixel_values": torch.ones(4, 6),
         "image_grid_thw": torch.tensor([[1, 2, 2]])}
    b = {"input_ids": torch.tensor([[8]]), "attention_mask": torch.ones(1, 1, dtype=torch.long),
         "mm_token_type_ids": torch.tensor([[1]]), "pixel_values": torch.full((2, 6), 2.0),
         "image_grid_thw": torch.tensor([[1, 1, 2]])}
    out = fam.collate([a, b], pad_id=9)
    assert out["input_ids"].tolist() == [[5, 6, 7], [9, 9, 8]]
    assert out["mm_token_type_ids"].tolist() == [[0, 1, 0], [0, 0, 1]]  # aligned with its token
    assert out["pixel_values"].shape == (6, 6) and out["pixel_values"][4:].min() == 2.0
    assert out["image_grid_thw"].tolist() == [[1, 2, 2], [1, 1, 2]]
    # Without the declaration the same tensor is padded like pixels, on the right: misaligned.
    assert GENERIC.collate([a, b], pad_id=9)["mm_token_type_ids"].tolist() == [[0, 1, 0], [1, 0, 0]]


def test_defaults_leave_prompt_choices_and_inputs_as_they_are():
    assert (GENERIC.choice_separator, GENERIC.continuation_context("Assistant:")) == (" ", "Assistant:")
    inputs = {"input_ids": torch.tensor([[1]]), "labels": torch.tensor([[1]])}
    assert GENERIC.model_inputs(inputs) is inputs
    assert (GENERIC.token_inputs, GENERIC.longest_edge_unsupported) == ({}, "")
