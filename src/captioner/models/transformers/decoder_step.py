"""The pieces every cached decoder step is built from: the state carried between steps, the growing
self-attention cache, attention of a beam against its image's keys and values (beams folded into the
query axis) or against its own cache, and the log-probabilities handed to the search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DecoderState:
    """What the decoder carries between steps; only ``keys`` and ``values`` grow and move with the beams."""

    context: tuple  # per-image tensors computed once (cross-attention keys and values), one row per image
    beams: int  # rows per image; rows are image-major
    keys: tuple  # per layer, self-attention keys so far (rows, heads, steps, head_dim); None before the first step
    values: tuple  # per layer, self-attention values so far (rows, heads, steps, head_dim); None likewise
    images: int  # images in the batch
    steps: int = 0  # steps taken so far
    prefix: tuple = ()  # tokens fed after the start token at the first step (a caption prefix), then forgotten

    @property
    def rows(self) -> int:
        return self.images * self.beams


def start_state(context: tuple, images: int, layers: int) -> DecoderState:
    """One beam per image, nothing generated yet."""
    return DecoderState(context=context, beams=1, keys=(None,) * layers, values=(None,) * layers, images=images)


def grow_cache(state_keys, state_values, layer: int, key: "torch.Tensor", value: "torch.Tensor"):
    """This step's key and value (rows, heads, 1, head_dim) appended to a layer's cache."""
    import torch

    old_key, old_value = state_keys[layer], state_values[layer]
    if old_key is None:
        return key, value
    return torch.cat((old_key, key), dim=2), torch.cat((old_value, value), dim=2)  # (rows, heads, steps, head_dim)


def attend_per_image(query: "torch.Tensor", keys: "torch.Tensor", values: "torch.Tensor", beams: int,
                     scale: float, mask: "torch.Tensor | None" = None) -> "torch.Tensor":
    """Every beam's query against its own image's keys and values, beams folded into the query axis.

    query (rows, heads, head_dim); keys, values (images, heads, positions, head_dim); mask None or
    additive (images, 1, 1, positions) -> (rows, heads * head_dim).
    """
    import torch.nn.functional as F

    rows, heads, head_dim = query.shape
    grouped = query.view(rows // beams, beams, heads, head_dim).transpose(1, 2)  # (images, heads, beams, head_dim)
    out = F.scaled_dot_product_attention(grouped, keys, values, attn_mask=mask, scale=scale)  # (images, heads, beams, hd)
    return out.transpose(1, 2).reshape(rows, heads * head_dim)  # (rows, heads * head_dim)


def attend_own_cache(query: "torch.Tensor", keys: "torch.Tensor", values: "torch.Tensor",
                     scale: float) -> "torch.Tensor":
    """Each row's query (rows, heads, 1, head_dim) against its own cache (rows, heads, steps, head_dim)."""
    import torch.nn.functional as F

    out = F.scaled_dot_product_attention(query, keys, values, scale=scale)  # (rows, heads, 1, head_dim)
    rows, heads, _, head_dim = out.shape
    return out.transpose(1, 2).reshape(rows, heads * head_dim)  # (rows, heads * head_dim)


def log_probs_of(logits: "torch.Tensor") -> np.ndarray:
    """float32 log-softmax of logits (rows, vocab), as numpy (the search's currency)."""
    import torch

    return torch.log_softmax(logits.float(), dim=-1).cpu().numpy()  # (rows, vocab)


def prefixed_step(logits, tokens: np.ndarray, state: DecoderState, device,
                  offset: int = 0) -> tuple[np.ndarray, DecoderState]:
    """One step of a decoder whose tensor-only core is ``logits(ids, positions, keys, values, context, beams)``:
    the chosen tokens (with the caption prefix on the first step), at the positions after those already cached
    (and after ``offset`` more: a VLM's prompt), against the flat ``context``; answers log-probabilities and the
    next state."""
    import torch

    fed = np.asarray(tokens, dtype=np.int64)[:, None]  # (rows, 1)
    if state.steps == 0 and state.prefix:  # the start token and the caption prefix, at once
        fed = np.concatenate([fed, np.tile(np.asarray(state.prefix, dtype=np.int64), (len(fed), 1))], axis=1)
    cached = 0 if state.keys[0] is None else state.keys[0].shape[2]  # positions already in the own cache
    ids = torch.from_numpy(fed).to(device)  # (rows, width)
    positions = torch.arange(offset + cached, offset + cached + fed.shape[1], device=ids.device)  # (width,)
    context = tuple(tensor for pair in state.context for tensor in pair)
    scores, keys, values = logits(ids, positions, state.keys, state.values, context, state.beams)
    next_state = DecoderState(state.context, state.beams, keys, values, state.images, state.steps + 1)
    return log_probs_of(scores), next_state
