"""The physical limit of a decode step, measured: this machine's memory read bandwidth, and for each cached
architecture and precision, the bytes of weights one decoder step reads, its time, and the bandwidth it
achieves against that floor.

At batch 1 with a beam of 3 or 4, a step multiplies 3-4 rows by every weight matrix of the decoder once, so
the least time a step can take is (bytes of those weights) / (read bandwidth). The bandwidth is measured in
the same run by summing a 512 MiB tensor (far larger than any cache) with torch's threads; the bytes are
those of every module the step actually calls (forward hooks on one step: linear layers, layer norms, the
language-model head; embeddings count one row per token). Each figure's *ours* is the achieved GB/s, its
*baseline* the measured read bandwidth: the ratio is the share of the floor reached (1 = at the limit).
Models: full size, random weights (ViT-GPT2, BLIP-base, GIT-base, Florence-2-base), one image encoded once in float32
(only the step is measured), the model's beam, the cache holding 8 positions; the step is timed as the
median of several calls.
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import figure, run_alone  # noqa: E402

READ_BYTES = 512 * 2**20


def read_bandwidth(repeats: int = 5) -> float:
    """GB/s of reading memory: the best of ``repeats`` sums of a 512 MiB float32 tensor."""
    import torch

    data = torch.ones(READ_BYTES // 4)
    data.sum()
    best = min(timed(lambda: data.sum()) for _ in range(repeats))
    return READ_BYTES / best / 1e9


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def models() -> dict:
    """name -> (model, pixels, prompt ids or None, beams)."""
    import torch
    from bench_image_to_text import blip_base, florence_2_base, git_base
    from bench_vit_gpt2 import full_size_parts

    torch.manual_seed(0)
    chosen = {}
    vit = full_size_parts()[0]
    chosen["vit-gpt2"] = (vit, torch.randn(1, 3, 224, 224), None, 4)
    blip, _ = blip_base()
    chosen["blip-base"] = (blip.eval(), torch.randn(1, 3, 384, 384), None, 3)
    git, _ = git_base()
    chosen["git-base"] = (git.eval(), torch.randn(1, 3, 224, 224), None, 4)
    florence, processor = florence_2_base()
    from PIL import Image

    inputs = processor(images=[Image.new("RGB", (64, 64))], text=["<CAPTION>"], return_tensors="pt")
    chosen["florence-2-base"] = (florence.eval(), inputs["pixel_values"], inputs["input_ids"], 3)
    return chosen


def encoded(model, pixels, ids):
    """The float32 model's per-image state (the encoders run once, in float32: only the step is measured)."""
    import torch

    from captioner.models.transformers.cached_decoder import cached_decoder_for

    decoder = cached_decoder_for(model, 2, 2)
    with torch.inference_mode():
        return decoder.encode(pixels, ids, None) if decoder.prompted else decoder.encode(pixels)


def in_dtype(state, dtype):
    """The state's context tensors in ``dtype`` (the precision's activations)."""
    from dataclasses import replace

    import torch

    def convert(item):
        if isinstance(item, torch.Tensor):
            return item.to(dtype)
        if isinstance(item, tuple):
            return tuple(convert(part) for part in item)
        return item

    return replace(state, context=convert(state.context))


def step_bytes_and_time(model, state, beams: int, repeats: int) -> tuple[int, float]:
    import numpy as np
    import torch

    from captioner.models.transformers.cached_decoder import TORCH_STATE, cached_decoder_for

    decoder = cached_decoder_for(model, 2, 2)
    with torch.inference_mode():
        state = TORCH_STATE.repeat(in_dtype(state, model.dtype), beams)
        tokens = np.full(state.rows, 5, dtype=np.int64)
        for _ in range(8):  # a cache of 8 positions, as in the middle of a caption
            _, state = decoder.step(tokens, state)
        touched: dict[int, int] = {}

        def count(module, args, output):
            for tensor in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False)):
                if isinstance(module, torch.nn.Embedding):
                    size = len(args[0].reshape(-1)) * tensor.shape[1] * tensor.element_size()  # rows read
                else:
                    size = tensor.numel() * tensor.element_size()
                touched[tensor.data_ptr()] = size

        hooks = [m.register_forward_hook(count) for m in model.modules()]
        decoder.step(tokens, state)
        for hook in hooks:
            hook.remove()
        size = sum(touched.values())
        times = [timed(lambda: decoder.step(tokens, state)) for _ in range(repeats)]
    return size, statistics.median(times)


def kernel_rows(repeats: int = 20) -> list[dict]:
    """One GPT-2-sized layer (3072 x 768, 4 rows as a beam of 4): the bfloat16 product and PyTorch's int8 kernel
    against the float32 product, to tell the kernels' speed from the memory's."""
    import torch

    weight = torch.randn(3072, 768)
    scales = weight.abs().amax(dim=1) / 127
    values = torch.round(weight / scales[:, None]).to(torch.int8)
    rows = torch.randn(4, 768)
    sides = {
        "float32": lambda: torch.nn.functional.linear(rows, weight),
        "bfloat16": (lambda w=weight.bfloat16(), x=rows.bfloat16(): torch.nn.functional.linear(x, w)),
        "int8, float32 activations": lambda: torch._weight_int8pack_mm(rows, values, scales),
        "int8, bfloat16 activations": (lambda x=rows.bfloat16(), s=scales.bfloat16():
                                       torch._weight_int8pack_mm(x, values, s)),
    }
    times = {}
    for name, call in sides.items():
        call()
        times[name] = statistics.median(timed(call) for _ in range(repeats))
    return [figure(f"one 3072x768 layer, 4 rows: {name} vs float32 (CPU)", times[name] * 1e3, times["float32"] * 1e3,
                   "ms", False, f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
            for name in sides if name != "float32"]


def run(quick: bool) -> list[dict]:
    import torch

    from captioner.models.transformers.precision import apply_precision, cpu_has_native_bfloat16

    threads = torch.get_num_threads()
    bandwidth = read_bandwidth()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for name, (model, pixels, ids, beams) in models().items():
        state = encoded(model, pixels, ids)
        for precision in ("float32", "bfloat16", "int8"):
            converted = apply_precision(copy.deepcopy(model), precision, "cpu")
            size, seconds = step_bytes_and_time(converted, state, beams, 5 if quick else 15)
            achieved = size / seconds / 1e9
            rows.append(figure(
                f"{name} decode step, {precision}: achieved weight GB/s vs read bandwidth", achieved, bandwidth,
                "GB/s", True,
                f"{size / 1e6:.0f} MB of weights per step, {seconds * 1e3:.1f} ms a step (floor "
                f"{size / bandwidth / 1e6:.1f} ms, {seconds / (size / bandwidth / 1e9):.1f}x it); beam {beams}, "
                f"one image, {threads} threads, native bf16 {'yes' if cpu_has_native_bfloat16() else 'no'}, "
                f"load average {load:.1f}"))
            del converted
    return rows + kernel_rows()


if __name__ == "__main__":
    run_alone(run)
