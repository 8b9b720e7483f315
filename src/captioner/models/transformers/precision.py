"""Which number format a transformers captioner computes in: float32, or bfloat16 where the hardware has it.

bfloat16 halves the bytes every decoder step reads and runs on the CPU's bf16 units (AVX512-BF16, AMX),
but only pays off where those exist: elsewhere it is emulated and slower than float32. So ``auto`` picks
bfloat16 only on a CPU whose flags say it has native bf16 (or a CUDA device that supports it), float32
everywhere else. ``CAPTIONER_PRECISION`` (``auto``, ``float32`` or ``bfloat16``) overrides the choice.
Weights load in float32 either way; a bfloat16 model is a converted copy in memory.
"""

from __future__ import annotations

import functools
from pathlib import Path

PRECISIONS = ("auto", "float32", "bfloat16")
PRECISION_ENV = "CAPTIONER_PRECISION"
DEFAULT_PRECISION = "auto"  # see the README: bf16 captions agree with float32 ones on a trained model
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with bf16 arithmetic


@functools.lru_cache(maxsize=1)
def cpu_has_native_bfloat16() -> bool:
    """True when the CPU does bf16 arithmetic natively (Linux: its /proc/cpuinfo flags)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return any(flag in flags for flag in NATIVE_BF16_FLAGS)
    return False


def device_has_native_bfloat16(device) -> bool:
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bfloat16()


def resolve_precision(requested: str | None, device) -> str:
    """``float32`` or ``bfloat16``: ``requested``, else ``CAPTIONER_PRECISION``, else auto-detection."""
    from captioner import environment

    choice = (requested or environment.current().precision or DEFAULT_PRECISION).strip().lower()
    if choice not in PRECISIONS:
        raise ValueError(f"unknown precision {choice!r} ({PRECISION_ENV}); choose one of {', '.join(PRECISIONS)}")
    if choice == "auto":
        return "bfloat16" if device_has_native_bfloat16(device) else "float32"
    return choice


def apply_precision(model, precision: str):
    """The model converted in place to ``precision``'s dtype (a no-op for float32 weights in float32)."""
    import torch

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[precision]
    if model.dtype != dtype:
        model.to(dtype)
    return model
