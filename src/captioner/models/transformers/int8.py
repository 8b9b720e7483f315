"""int8 weights for the decoder's linear layers and language-model head, built at load time from the model's
own float weights (nothing new is downloaded or written).

At batch 1 a decoder step multiplies a few rows (the beams) by every weight matrix of the decoder, so its
time is the time to read those weights: 4 bytes a value in float32, 2 in bfloat16, 1 in int8. Each output
channel (row of the weight) is stored as int8 values and one scale, ``scale = max |w| / 127``, so
``w ~ scale * q``; the product runs in PyTorch's own CPU kernel for int8 weights
(``torch._weight_int8pack_mm``: activations in bfloat16, weights int8, one scale per output channel), which
never widens the weights back in memory. The product always takes bfloat16 activations, whatever the rest of
the model computes in: measured on a 2-core AVX2 CPU without native bfloat16 (``bench_bandwidth.py``, one
3072x768 layer, 4 rows), the kernel with bfloat16 activations took 0.47 ms against 1.08 ms for the float32
layer, while its float32-activation path took 24 ms. The image encoder is untouched: it runs once per
image over hundreds of positions, where arithmetic, not reading weights, is the cost.

:func:`quantize_decoder` swaps the modules in place: every ``nn.Linear`` (and GPT-2's transposed
``Conv1D``) under the decoder, and the language-model head, become :class:`Int8Linear` with the same call
signature, so the cached decoder steps (and ``generate``) use them unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

QUANTIZED_LEVELS = 127  # symmetric int8: -127..127, so +w and -w round alike


def quantize_weight(weight: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """A float weight (out, in) -> (int8 values (out, in), float32 scales (out,)), one scale per output channel."""
    import torch

    weight = weight.detach().float()
    scales = weight.abs().amax(dim=1).clamp(min=1e-12) / QUANTIZED_LEVELS  # (out,)
    values = torch.round(weight / scales[:, None]).clamp(-QUANTIZED_LEVELS, QUANTIZED_LEVELS).to(torch.int8)
    return values.contiguous(), scales


def _module_class():
    import torch

    class Int8Linear(torch.nn.Module):
        """``y = x W^T + b`` with W stored as per-output-channel int8, through ``torch._weight_int8pack_mm``."""

        def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype):
            super().__init__()
            values, scales = quantize_weight(weight)
            self.in_features, self.out_features = weight.shape[1], weight.shape[0]
            self.register_buffer("weight_int8", values)  # (out, in)
            self.register_buffer("scales", scales.to(torch.bfloat16))  # (out,): the kernel's fast path
            self.register_buffer("bias", None if bias is None else bias.detach().to(dtype))  # (out,), the model's dtype

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shape = x.shape
            flat = x.reshape(-1, shape[-1]).to(torch.bfloat16)  # (rows, in)
            out = torch._weight_int8pack_mm(flat, self.weight_int8, self.scales).to(x.dtype)  # (rows, out)
            if self.bias is not None:
                out = out + self.bias
            return out.view(*shape[:-1], self.out_features)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, int8 per output channel"

    return Int8Linear


_INT8_LINEAR = None


def int8_linear_class():
    """The :class:`Int8Linear` module class (built on first use, so importing this module needs no torch)."""
    global _INT8_LINEAR
    if _INT8_LINEAR is None:
        _INT8_LINEAR = _module_class()
    return _INT8_LINEAR


def int8_linear(module, dtype):
    """An Int8Linear doing what ``module`` (an ``nn.Linear`` or a transformers ``Conv1D``) does, or None."""
    import torch

    if isinstance(module, torch.nn.Linear):
        return int8_linear_class()(module.weight, module.bias, dtype)
    if type(module).__name__ == "Conv1D":  # GPT-2's: weight (in, out), y = x W + b
        return int8_linear_class()(module.weight.t(), module.bias, dtype)
    return None


DECODERS = {  # architecture class -> (attribute paths of its text decoder modules, of its head held beside them)
    "VisionEncoderDecoderModel": (("decoder",), ()),  # GPT-2 blocks, lm_head inside
    "BlipForConditionalGeneration": (("text_decoder",), ()),  # BERT layers, prediction head inside
    "Florence2ForConditionalGeneration": (("model.language_model.decoder",), ("lm_head",)),
    "GitForCausalLM": (("git.encoder",), ("output",)),  # GIT's text layers read image tokens too
}


def _resolve(model, path: str):
    for attribute in path.split("."):
        model = getattr(model, attribute)
    return model


def quantize_decoder(model, dtype) -> int:
    """Every linear layer of the decoder, and its head, replaced in place by an int8 one computing in ``dtype``;
    returns how many were replaced. An embedding tied to the head keeps its float weights; the head gets its
    own int8 copy."""
    replaced = 0
    decoders, heads = DECODERS.get(type(model).__name__, ((), ()))
    if not decoders:
        raise ValueError(f"int8 weights are not available for {type(model).__name__}")
    for path in decoders:
        for parent in list(_resolve(model, path).modules()):
            for name, child in list(parent.named_children()):
                quantized = int8_linear(child, dtype)
                if quantized is not None:
                    setattr(parent, name, quantized)
                    replaced += 1
    for path in heads:
        owner_path, _, attribute = path.rpartition(".")
        owner = _resolve(model, owner_path) if owner_path else model
        setattr(owner, attribute, int8_linear(getattr(owner, attribute), dtype))
        replaced += 1
    return replaced
