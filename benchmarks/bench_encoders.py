"""Image encoders on the CPU at batch 1: bfloat16 and ``torch.compile`` against float32 eager, compile time
included, for the encoder that dominates a Florence-2 caption (DaViT at 768 px) and ViT-GPT2's ViT-base.

- baseline: the encoder in float32, eager (what ``generate`` and our captioners run).
- bfloat16: the same encoder converted to bfloat16 (native on CPUs with AVX-512 BF16 or AMX, emulated else).
- compiled: ``torch.compile`` (Inductor) of the float32 encoder; the first call's compile time is reported
  and divided over the images it would take to pay off. Inductor keeps its compiled graphs on disk
  (``TORCHINDUCTOR_CACHE_DIR``, here under .cache/inductor), so a second process start compiles faster; that
  warm start is measured too, in a fresh process.
``BENCH_QUICK=1`` measures ViT-base only (compiling DaViT takes minutes on two cores).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import ROOT, figure, run_alone  # noqa: E402

CACHE = ROOT / ".cache" / "inductor"


def encoders(quick: bool) -> dict:
    """name -> (encoder module builder, pixel shape)."""
    from bench_image_to_text import florence_2_base
    from bench_vit_gpt2 import full_size_parts

    def vit():
        return full_size_parts()[0].encoder

    def davit():
        model = florence_2_base()[0]
        return model.model.vision_tower

    chosen = {"vit-base 224 px": (vit, (1, 3, 224, 224))}
    if not quick:
        chosen["florence-2 davit 768 px"] = (davit, (1, 3, 768, 768))
    return chosen


def call_encoder(module, name: str, pixels):
    """ViT takes ``pixel_values=``; DaViT (Florence-2's vision tower) takes the pixels as its first argument."""
    return module(pixel_values=pixels) if name.startswith("vit-") else module(pixels)


def timed(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def compile_seconds_in_fresh_process(name: str) -> float:
    """The first compiled call's time in a new process, Inductor's on-disk cache already filled."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_encoders as b; "
            f"print(b.first_compiled_call({name!r}))")
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(CACHE))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
    return float(out.stdout.strip().splitlines()[-1])


def first_compiled_call(name: str) -> float:
    import torch

    build, shape = encoders(False)[name]
    module = build().eval()
    pixels = torch.randn(*shape)
    compiled = torch.compile(module)
    with torch.inference_mode():
        started = time.perf_counter()
        call_encoder(compiled, name, pixels)
        return time.perf_counter() - started


def run(quick: bool) -> list[dict]:
    import torch

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(CACHE))
    rows = []
    repeats = 3 if quick else 5
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for name, (build, shape) in encoders(quick).items():
        torch.manual_seed(0)
        module = build().eval()
        pixels = torch.randn(*shape)  # (1, 3, size, size)

        def call(m, x):
            return call_encoder(m, name, x)

        with torch.inference_mode():
            call(module, pixels)
            eager = timed(lambda: call(module, pixels), repeats)
            half = torch.nn.Module.to(__import__("copy").deepcopy(module), torch.bfloat16)
            call(half, pixels.bfloat16())
            bf16 = timed(lambda: call(half, pixels.bfloat16()), repeats)
            compiled = torch.compile(module)
            started = time.perf_counter()
            call(compiled, pixels)
            compile_s = time.perf_counter() - started
            fast = timed(lambda: call(compiled, pixels), repeats)
        warm_s = compile_seconds_in_fresh_process(name)
        saved = eager - fast
        pays_after = compile_s / saved if saved > 0 else float("inf")
        note = (f"batch 1, {torch.get_num_threads()} threads, load average {load:.1f}; CPU capability "
                f"{torch.backends.cpu.get_cpu_capability()}")
        rows.append(figure(f"{name} encoder, bfloat16 vs float32 (CPU)", bf16, eager, "s", False, note))
        rows.append(figure(f"{name} encoder, torch.compile vs eager float32 (CPU)", fast, eager, "s", False,
                           f"{note}; first call (compiling) {compile_s:.0f} s, {warm_s:.0f} s in a new process with "
                           f"Inductor's disk cache; pays off after "
                           + (f"{pays_after:.0f} images" if pays_after != float("inf") else "never")))
    return rows


if __name__ == "__main__":
    run_alone(run)
