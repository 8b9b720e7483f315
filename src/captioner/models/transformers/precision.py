"""Which number format a transformers captioner computes in: float32, bfloat16 where the hardware has it, or
int8 decoder weights.

bfloat16 halves the bytes every decoder step reads and runs on the CPU's bf16 units (AVX512-BF16, AMX),
but only pays off where those exist: elsewhere it is emulated and slower than float32. So ``auto`` picks
bfloat16 only on a CPU whose flags say it has native bf16 (or a CUDA device that supports it), float32
everywhere else. ``int8`` keeps the decoder's linear layers and language-model head as per-output-channel
int8 (:mod:`captioner.models.transformers.int8`), the rest in bfloat16 where native, else float32. ``auto``
chooses int8 on the CPU only for an architecture whose measured agreement with float32 (the share of beam
captions that are identical, :data:`INT8_AGREEMENT`) is at least :data:`INT8_AUTO_SHARE`; its decoder step
is then about three times faster than in float32 on a CPU without native bfloat16 (docs/benchmarks.md).
On the ONNX runtime, int8 means ONNX Runtime's int8 graphs instead
(:mod:`captioner.models.transformers.onnx_int8`), with agreement figures of their own
(:data:`ONNX_INT8_AGREEMENT`). ``CAPTIONER_PRECISION`` (``auto``, ``float32``, ``bfloat16`` or ``int8``), or
``--precision``, overrides the choice. Weights load in float32 either way; a bfloat16 or int8 model is a converted copy in memory, built at
load time.
"""

from __future__ import annotations

import functools
from pathlib import Path

PRECISIONS = ("auto", "float32", "bfloat16", "int8")
PRECISION_ENV = "CAPTIONER_PRECISION"
DEFAULT_PRECISION = "auto"  # see the README: bf16 captions agree with float32 ones on a trained model

# Share of held-out beam captions identical to float32's with int8 decoder weights, on a small model of each
# architecture fine-tuned here (benchmarks/precision_agreement.py, 165 held-out images; the run's figures are
# in benchmarks/precision_agreement.json). Florence-2 is not fine-tuned by the project: no figure, no int8.
INT8_AGREEMENT = {"vit-gpt2": 0.9455, "blip": 0.9697, "git": 0.9152}
INT8_AUTO_SHARE = 0.95  # the least agreement at which auto may choose int8
# The same share for int8 through ONNX Runtime (its dynamic quantisation: int8 weights and activations in the
# products, onnx_int8.py), measured in the same run on the same models; ``--runtime onnx`` with auto precision
# chooses int8 where it is at least INT8_AUTO_SHARE.
ONNX_INT8_AGREEMENT = {"vit-gpt2": 0.9394, "blip": 0.9152, "git": 0.9333}


@functools.lru_cache(maxsize=1)
def cpu_bf16_units() -> str | None:
    """The CPU's bf16 arithmetic (Linux: its /proc/cpuinfo flags): "amx" (AMX tiles, Intel Xeon since Sapphire
    Rapids), "avx512_bf16" (AVX512-BF16 vector instructions only, such as AMD EPYC since Zen 4), or None."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return "amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else None
    return None


def cpu_has_native_bfloat16() -> bool:
    """True when the CPU does bf16 arithmetic natively (AMX or AVX512-BF16)."""
    return cpu_bf16_units() is not None


def device_has_native_bfloat16(device) -> bool:
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bfloat16()


def resolve_precision(requested: str | None, device, architecture: str | None = None) -> str:
    """``float32``, ``bfloat16`` or ``int8``: ``requested``, else ``CAPTIONER_PRECISION``, else auto-detection
    for ``architecture`` (a short name such as ``"blip"``) on ``device``."""
    from captioner import environment

    choice = (requested or environment.current().precision or DEFAULT_PRECISION).strip().lower()
    if choice not in PRECISIONS:
        raise ValueError(f"unknown precision {choice!r} ({PRECISION_ENV}); choose one of {', '.join(PRECISIONS)}")
    if choice == "auto":
        if torch_device_type(device) == "cpu" and INT8_AGREEMENT.get(architecture, 0) >= INT8_AUTO_SHARE:
            return "int8"
        return "bfloat16" if device_has_native_bfloat16(device) else "float32"
    if choice == "int8" and torch_device_type(device) != "cpu":
        raise ValueError(f"int8 weights ({PRECISION_ENV}=int8) run on the CPU only; choose bfloat16 on {device}")
    return choice


def torch_device_type(device) -> str:
    import torch

    return torch.device(device).type


def compute_dtype(precision: str, device="cpu"):
    """The dtype a model of ``precision`` computes in: with int8 weights, the rest of the model computes in
    bfloat16 where native, else float32 (the int8 products themselves always take bfloat16 activations)."""
    import torch

    if precision == "int8":
        return torch.bfloat16 if device_has_native_bfloat16(device) else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[precision]


def apply_precision(model, precision: str, device="cpu"):
    """The model converted in place to ``precision``'s dtype (a no-op for float32 weights in float32); for
    ``int8``, its decoder's linear layers and head then quantized from those weights."""
    dtype = compute_dtype(precision, device)
    if model.dtype != dtype:
        model.to(dtype)
    if precision == "int8":
        from captioner.models.transformers.int8 import quantize_decoder

        quantize_decoder(model, dtype)
    return model
