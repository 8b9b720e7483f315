"""ONNX Runtime for the transformers captioners: captions against stock float32 ``generate``, each decoder step
against its bandwidth floor, each encoder against the machine's float32 peak, all measured in one run.

Models: full size with random weights built from configs (ViT-GPT2 as nlpconnect's, BLIP-base, GIT-base,
Florence-2-base), each with its default beam (4, 3, 4, 3) and 20 words (BENCH_QUICK=1: ViT-GPT2 only, 8 words, fewer images).
- Captions, batch 1 and batch 8. baseline: transformers' ``generate`` in float32 through the captioner's
  generate path (the same word limit, so the captions are comparable), one call per batch. ours:
  ``ImageToTextCaptioner.caption`` with ``runtime="onnx"`` (float32): the one search over the exported
  encoder and step. Its captions are checked to equal the baseline's (the note says how many do). On a CPU
  with native bf16 (AVX512-BF16 or AMX, detected at run time) the same rows are given for PyTorch bfloat16
  beside them, and PyTorch float32's cached step too: which is fastest decides ``auto``.
- Decoder step: the ONNX step at beam width with 8 cached positions; ours is the GB/s it achieves reading the
  weights one step touches (bench_bandwidth's count), baseline the read bandwidth measured in this run: the
  ratio is the share of the floor reached (1 = at the limit).
- Encoder: the ONNX encoder's GFLOP/s at batch 1 (FLOPs counted by torch's FlopCounterMode on the PyTorch
  encoder) against this run's float32 peak (the faster of a 4096 x 4096 matrix product in PyTorch and in ONNX
  Runtime): the share of peak.
- int8 through ONNX Runtime (``--precision int8``: the float32 graphs dynamically quantised): its captions beside
  the others' (the note says how many equal ``generate``'s); its encoder at batch 1 against the float32 ONNX
  encoder, with the cosine between their outputs on the run's images; its decoder step against the float32 ONNX
  step; and the agreement figure, the share of its beam captions identical to ONNX float32's (random weights
  here: the trained models' figure is ``precision_agreement.py``'s).
- SmolVLM-256M (full run only): greedy, 20 words, its cached step in ONNX Runtime and in PyTorch against
  ``generate``, and the ONNX step against its bandwidth floor; its prompt's forward runs in PyTorch everywhere.
Graph export happens once per model before timing; its time is reported in the note of the step row.
Florence-2 (full mode) captions with its <CAPTION> task; its encoder row counts DaViT and the BART encoder.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import figure, run_alone  # noqa: E402

PEAK_SIZE = 4096


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def matmul_peak_gflops(repeats: int = 3) -> tuple[float, str]:
    """The machine's measured float32 peak: the best GFLOP/s of a PEAK_SIZE square matrix product, in PyTorch
    and in ONNX Runtime (whose kernels beat PyTorch's on some CPUs), and which of the two reached it."""
    import numpy as np
    import onnx
    import torch
    from onnx import TensorProto, helper

    from captioner.models.onnx_sessions import import_onnxruntime, session_options

    flops = 2 * PEAK_SIZE ** 3
    a, b = torch.randn(PEAK_SIZE, PEAK_SIZE), torch.randn(PEAK_SIZE, PEAK_SIZE)
    a @ b
    best = {"PyTorch": flops / min(timed(lambda: a @ b)[0] for _ in range(repeats)) / 1e9}
    square = [PEAK_SIZE, PEAK_SIZE]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "peak",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, square) for n in ("a", "b")],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, square)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.checker.check_model(model)
    session = import_onnxruntime().InferenceSession(model.SerializeToString(), sess_options=session_options(),
                                                    providers=["CPUExecutionProvider"])
    feed = {"a": a.numpy(), "b": np.ascontiguousarray(b.numpy())}
    session.run(None, feed)
    best["ONNX Runtime"] = flops / min(timed(lambda: session.run(None, feed))[0] for _ in range(repeats)) / 1e9
    winner = max(best, key=best.get)
    return best[winner], winner


def full_size_models(quick: bool):
    """(name, (model, image processor, tokenizer, processor or None, beams)), one model at a time: the next is
    built only once the previous one's captioners are gone (four full-size models at once, each with its
    bfloat16 copy and graphs, came near this machine's memory)."""
    from bench_vit_gpt2 import full_size_parts

    model, image_processor, tokenizer = full_size_parts()
    yield "vit-gpt2", (model, image_processor, tokenizer, None, 4)
    if quick:
        return
    from bench_image_to_text import blip_base, florence_2_base, git_base

    for name, build, beams in (("blip-base", blip_base, 3), ("git-base", git_base, 4),
                               ("florence-2-base", florence_2_base, 3)):
        model, processor = build()
        yield name, (model.eval(), processor.image_processor, processor.tokenizer, processor, beams)


def captioner(model, image_processor, tokenizer, processor, runtime: str, precision: str):
    import copy

    from captioner.models.bundle import BundleInfo
    from captioner.models.transformers.image_to_text import ImageToTextCaptioner, ModelParts

    from captioner.models.transformers.onnx_step import torch_precision

    changed = torch_precision(runtime, precision) != "float32"  # converted in place: on a copy
    parts = ModelParts(copy.deepcopy(model) if changed else model, image_processor, tokenizer, processor)
    return ImageToTextCaptioner(parts, BundleInfo(kind="image-to-text", name=f"{runtime}-{precision}"),
                                batch_size=8, device="cpu", precision=precision, runtime=runtime)


def generate_path(made):
    """``(images, decoding) -> captions`` through stock ``generate`` in ``made``'s parts (a VLM's with the
    caption style's instruction, as its caption method asks)."""
    from captioner.models.transformers import vlm
    from captioner.models.transformers.image_to_text import caption_batch

    if made.vision_settings is None:
        return lambda chunk, decoding: caption_batch(made.parts, chunk, decoding, decoding.prompt, made.device, None)
    instruction = vlm.instruction_for(made.parts.architecture, "caption", "")
    return lambda chunk, decoding: vlm.caption_batch(made.parts, chunk, decoding, instruction, made.device, None)


def caption_rows(name: str, sides: dict, images, decoding, quick: bool) -> list[dict]:
    """Seconds per image at batch 1 and batch 8, every side against generate, sides taking turns."""
    generate = generate_path(sides["onnx float32"])
    rows = []
    for batch in ((1,) if quick else (1, 8)):
        chunks = [images[i:i + batch] for i in range(0, len(images), batch)][:2 if batch == 1 else 1]
        times: dict[str, list[float]] = {side: [] for side in ["generate", *sides]}
        texts: dict[str, list[str]] = {side: [] for side in times}
        for chunk in chunks:
            seconds, captions = timed(lambda: generate(chunk, decoding))
            times["generate"].append(seconds / len(chunk))
            texts["generate"] += [c.text for c in captions]
            for side, made in sides.items():
                seconds, captions = timed(lambda: made.caption(chunk, decoding))
                times[side].append(seconds / len(chunk))
                texts[side] += [c.text for c in captions]
        baseline = statistics.median(times["generate"])
        for side in sides:
            same = sum(a == b for a, b in zip(texts[side], texts["generate"]))
            rows.append(figure(f"{name} batch {batch}, {side} vs float32 generate", statistics.median(times[side]),
                               baseline, "s/image", higher_is_better=False,
                               note=f"{search_of(decoding)}, {decoding.max_length} words; {same}/"
                                    f"{len(texts[side])} captions equal generate's"))
    return rows


def search_of(decoding) -> str:
    return f"beam {decoding.beam_size}" if decoding.method == "beam" else decoding.method


def step_seconds(made, beams: int, repeats: int) -> float:
    """The median seconds of one cached step of ``made`` at ``beams`` rows with 8 cached positions."""
    import numpy as np
    import torch

    from captioner.models.transformers.cached_decoder import TORCH_STATE

    decoder = made.cached_decoder
    with torch.inference_mode():
        state = TORCH_STATE.repeat(decoder.encode(*one_image(made)), beams)
        tokens = np.full(state.rows, 5, dtype=np.int64)
        for _ in range(8):
            _, state = decoder.step(tokens, state)
        return statistics.median(timed(lambda: decoder.step(tokens, state))[0] for _ in range(repeats))


def step_row(name: str, made, beams: int, bandwidth: float, export_seconds: float, repeats: int) -> dict:
    """The ONNX step's achieved GB/s against the measured read bandwidth (bytes counted on the PyTorch step)."""
    import torch
    from bench_bandwidth import step_bytes_and_time

    decoder = made.cached_decoder
    inputs = one_image(made)
    seconds = step_seconds(made, beams, repeats)
    with torch.inference_mode():
        size, torch_seconds = step_bytes_and_time(made.model, decoder.torch_decoder.encode(*inputs), beams, repeats)
    return figure(f"{name} decoder step (ONNX Runtime float32), GB/s vs the read bandwidth", size / seconds / 1e9,
                  bandwidth, "GB/s", higher_is_better=True,
                  note=f"{size / 1e6:.0f} MB of weights, {seconds * 1e3:.1f} ms (PyTorch float32: "
                       f"{torch_seconds * 1e3:.1f} ms), floor {size / bandwidth / 1e6:.1f} ms; beam {beams}, 8 cached "
                       f"positions; export and check took {export_seconds:.0f} s")


def one_image(made) -> tuple:
    """The encoder's inputs for one image: pixels, and the task prompt's ids for Florence-2."""
    from captioner.models.transformers.model_inputs import probe_inputs

    probe = probe_inputs(made.parts)
    if getattr(made.cached_decoder.torch_decoder, "encodes_prompt", False):
        return probe["pixel_values"][:1], probe["input_ids"][:1]
    return (probe["pixel_values"][:1],)


def encoder_row(name: str, made, peak: float, peak_by: str, repeats: int) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    inputs = one_image(made)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        made.cached_decoder.torch_decoder.encode(*inputs)
    flops = counter.get_total_flops()
    seconds, _ = encoder_seconds_and_outputs(made, inputs, repeats)
    return figure(f"{name} encoder (ONNX Runtime float32), GFLOP/s vs float32 matmul peak", flops / seconds / 1e9,
                  peak, "GFLOP/s", higher_is_better=True,
                  note=f"{flops / 1e9:.1f} GFLOP per image, {seconds * 1e3:.0f} ms at batch 1; peak: the best "
                       f"{PEAK_SIZE}-square float32 product of PyTorch and ONNX Runtime ({peak_by}'s)")


def encoder_seconds_and_outputs(made, inputs, repeats: int) -> tuple[float, list]:
    """The best seconds of ``made``'s ONNX encoder on ``inputs`` over ``repeats`` runs after a first (0: not
    timed), and the first run's outputs."""
    session = made.cached_decoder.encoder
    feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
    outputs = session.run(None, feed)
    return min((timed(lambda: session.run(None, feed))[0] for _ in range(repeats)), default=0.0), outputs


def int8_rows(name: str, onnx, int8, beams: int, images, decoding, repeats: int) -> list[dict]:
    """ONNX int8 against ONNX float32: the encoder at batch 1 (and the cosine of its outputs on ``images``), the
    decoder step, and the share of identical beam captions."""
    import numpy as np

    from captioner.models.transformers.model_inputs import model_inputs

    inputs = one_image(onnx)
    (exact, _), (quick, _) = (encoder_seconds_and_outputs(made, inputs, repeats) for made in (onnx, int8))
    batch = model_inputs(onnx.parts, images, decoding.prompt, "cpu")
    all_inputs = (batch["pixel_values"], batch["input_ids"]) if len(inputs) == 2 else (batch["pixel_values"],)
    flat = [np.concatenate([t.ravel() for t in encoder_seconds_and_outputs(made, all_inputs, 0)[1]]).astype(np.float64)
            for made in (onnx, int8)]
    cosine = float(flat[0] @ flat[1] / (np.linalg.norm(flat[0]) * np.linalg.norm(flat[1])))
    ours, theirs = int8.caption(images, decoding), onnx.caption(images, decoding)
    same = sum(a.text == b.text for a, b in zip(ours, theirs))
    step_exact, step_int8 = step_seconds(onnx, beams, repeats), step_seconds(int8, beams, repeats)
    return [
        figure(f"{name} encoder, ONNX Runtime int8 vs float32", quick, exact, "s/image", higher_is_better=False,
               note=f"batch 1; cosine to float32's output {cosine:.5f} over {len(images)} images"),
        figure(f"{name} decoder step, ONNX Runtime int8 vs float32", step_int8 * 1e3, step_exact * 1e3, "ms",
               higher_is_better=False, note=f"beam {beams}, 8 cached positions"),
        figure(f"{name} ONNX Runtime int8: beam captions identical to ONNX float32's", same / len(images), 1.0,
               "share", higher_is_better=True,
               note=f"{same}/{len(images)}, beam {decoding.beam_size}, {decoding.max_length} words; random weights"),
    ]


def run(quick: bool) -> list[dict]:
    import torch
    from bench_bandwidth import read_bandwidth
    from bench_vit_gpt2 import bench_threads, photos

    from captioner.models import onnx_sessions
    from captioner.models.base import Decoding
    from captioner.models.transformers.precision import cpu_has_native_bfloat16

    bench_threads()
    bf16 = cpu_has_native_bfloat16()
    bandwidth, (peak, peak_by) = read_bandwidth(), matmul_peak_gflops()
    images = photos(2 if quick else 8)
    repeats = 3 if quick else 10
    rows = []
    for name, (model, image_processor, tokenizer, processor, beams) in full_size_models(quick):
        decoding = Decoding.beam(beams, max_length=8 if quick else 20, alternatives=0)
        export_seconds, onnx = timed(lambda: captioner(model, image_processor, tokenizer, processor, "onnx",
                                                       "float32"))
        if onnx.runtime != "onnx":
            raise RuntimeError(f"{name} did not export (see the warning above)")
        option = onnx.parts.architecture.prompt  # Florence-2's task (<CAPTION>); the others: no prefix
        decoding = decoding.with_changes(prompt=option.default if option and option.default else "")
        int8 = captioner(model, image_processor, tokenizer, processor, "onnx", "int8")
        if int8.runtime != "onnx":
            raise RuntimeError(f"{name} did not quantise for ONNX Runtime (see the warning above)")
        sides = {"onnx float32": onnx, "onnx int8": int8}
        if bf16:  # the CPU has bf16 units: PyTorch bfloat16 and PyTorch float32's cached step beside ONNX
            sides["torch bfloat16"] = captioner(model, image_processor, tokenizer, processor, "torch", "bfloat16")
            sides["torch float32"] = captioner(model, image_processor, tokenizer, processor, "torch", "float32")
        with torch.inference_mode():
            for made in sides.values():  # first-call allocations
                made.caption(images[:1], Decoding.beam(beams, max_length=2, alternatives=0))
        rows += caption_rows(name, sides, images, decoding, quick)
        rows.append(step_row(name, onnx, beams, bandwidth, export_seconds, repeats))
        rows.append(encoder_row(name, onnx, peak, peak_by, repeats))
        rows += int8_rows(name, onnx, int8, beams, images, decoding, repeats)
        print(f"{name}: {rows[-len(sides) * (1 if quick else 2) - 5:]}", file=sys.stderr, flush=True)  # progress
        del sides, onnx, int8, model
        onnx_sessions.forget()  # this model's ONNX Runtime sessions go with it
        gc.collect()
    return rows + ([] if quick else vlm_rows(images, bandwidth, bf16, repeats))


def vlm_rows(images, bandwidth: float, bf16: bool, repeats: int) -> list[dict]:
    """SmolVLM-256M at full size with random weights (bench_vlm's), greedy, 20 words, tiling off: captions
    through the cached step in ONNX Runtime (and in PyTorch) against generate, and the ONNX step against its
    bandwidth floor. Its prompt's forward (SigLIP, the projector, the prompt through the text stack) runs in
    PyTorch on every side, so it has no encoder row."""
    import torch
    from bench_vlm import smolvlm

    from captioner.models.base import Decoding

    name = "smolvlm-256m"
    torch.manual_seed(0)
    model, processor = smolvlm(name)
    parts = (model, processor.image_processor, processor.tokenizer, processor)
    export_seconds, onnx = timed(lambda: captioner(*parts, "onnx", "float32"))
    if onnx.runtime != "onnx":
        raise RuntimeError(f"{name} did not export (see the warning above)")
    sides = {"onnx float32": onnx, "torch float32": captioner(*parts, "torch", "float32")}
    if bf16:
        sides["torch bfloat16"] = captioner(*parts, "torch", "bfloat16")
    decoding = Decoding(method="greedy", max_length=20, alternatives=0)
    with torch.inference_mode():
        for made in sides.values():  # first-call allocations
            made.caption(images[:1], Decoding(method="greedy", max_length=2, alternatives=0))
    rows = caption_rows(name, sides, images, decoding, False)
    rows.append(vlm_step_row(name, onnx, bandwidth, export_seconds, repeats))
    print(f"{name}: {rows}", file=sys.stderr, flush=True)
    return rows


def vlm_step_row(name: str, made, bandwidth: float, export_seconds: float, repeats: int) -> dict:
    """The ONNX step of one row, 8 tokens after the prompt, in GB/s of the weights it reads (the text stack, its
    final norm and the language-model head) against the measured read bandwidth."""
    import numpy as np
    import torch

    from captioner.models.transformers.model_inputs import probe_inputs

    decoder = made.cached_decoder
    one = {key: value[:1] for key, value in probe_inputs(made.parts).items()}
    text = decoder.torch_decoder.text
    weights = [*text.layers.parameters(), *text.norm.parameters(), made.model.lm_head.weight]
    size = sum(p.numel() * p.element_size() for p in weights)
    seconds = {}
    with torch.inference_mode():
        for side, stepper in (("onnx", decoder), ("torch", decoder.torch_decoder)):
            state = decoder.encode_prompt(one)
            tokens = np.full(state.rows, decoder.start_id, dtype=np.int64)
            for _ in range(8):
                _, state = stepper.step(tokens, state)
            seconds[side] = statistics.median(timed(lambda: stepper.step(tokens, state))[0] for _ in range(repeats))
    return figure(f"{name} decoder step (ONNX Runtime float32), GB/s vs the read bandwidth",
                  size / seconds["onnx"] / 1e9, bandwidth, "GB/s", higher_is_better=True,
                  note=f"{size / 1e6:.0f} MB of weights, {seconds['onnx'] * 1e3:.1f} ms (PyTorch float32: "
                       f"{seconds['torch'] * 1e3:.1f} ms), floor {size / bandwidth / 1e6:.1f} ms; one row, 8 tokens "
                       f"after a {one['input_ids'].shape[1]}-token prompt; export and check took "
                       f"{export_seconds:.0f} s")


if __name__ == "__main__":
    os.environ.setdefault("BENCH_QUICK", "")
    run_alone(run)
