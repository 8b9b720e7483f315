"""int8 graphs for ONNX Runtime: the checked float32 encoder and decoder step, quantised by ONNX Runtime's own
dynamic quantisation, and cached beside them.

Why dynamic quantisation: it needs no calibration images. Every weight matrix of a product (``MatMul`` and
``Gemm`` with a constant weight: the encoder's attention and MLP layers, every decoder layer and the language-
model head of the step graph) is stored as int8, one scale per output channel; at run time each product's
input is quantised to uint8 with a scale of its own (``DynamicQuantizeLinear``) and multiplied in integers
(``MatMulInteger``). So the step graph reads a quarter of float32's weight bytes, and the encoder's products
run on the CPU's integer units. Attention between activations, normalisation, softmax and the embeddings stay
float32, and so does a convolution (ONNX Runtime's ``ConvInteger`` is slower than its float one on a CPU).

Weights use 7 of their 8 bits (``reduce_range``): on a CPU without VNNI (AVX2 only, the machine class these
captioners are checked on) the uint8 x int8 product adds pairs in 16 bits, which can saturate with full-range
weights; one bit less cannot. The graphs are the same on every CPU, so one agreement figure holds for all.

int8 graphs are not exact, so they are not checked against PyTorch to 1e-4 as the float32 ones are (those
are, before they are quantised). How close they come is the agreement figure: the share of captions
identical to float32's, measured on trained models (``benchmarks/precision_agreement.py``) and given, with the
encoder's cosine to float32, by ``benchmarks/bench_onnx_runtime.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from captioner.files import staged_folder, write_json_atomic

# What quantize_dynamic is asked for; part of the int8 graphs' key, so a change makes new graphs.
QUANTISATION = {"weight_type": "QInt8", "per_channel": True, "reduce_range": True,
                "op_types": ["MatMul", "Gemm"]}


def int8_folder(float_folder: Path) -> Path:
    """Where the int8 graphs of the float32 graphs in ``float_folder`` live: beside it, under their own key."""
    from captioner.models.onnx_sessions import import_onnxruntime

    facts = {**QUANTISATION, "onnxruntime": import_onnxruntime().__version__}
    key = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:8]
    return float_folder.with_name(f"{float_folder.name}-int8-{key}")


def int8_graphs(graphs):
    """The int8 form of the checked float32 ``graphs`` (an ExportedGraphs): from the cache, else quantised
    now and cached whole (the folder is staged and renamed into place)."""
    from captioner.models.transformers.onnx_export import MANIFEST, ExportedGraphs, ExportRefused

    folder = int8_folder(graphs.folder)
    if (folder / MANIFEST).is_file():
        return ExportedGraphs(folder, graphs.layers, graphs.contexts, graphs.has_encoder)
    facts = json.loads((graphs.folder / MANIFEST).read_text(encoding="utf-8"))
    names = ("encoder.onnx", "step.onnx") if graphs.has_encoder else ("step.onnx",)
    with staged_folder(folder) as staging:
        for name in names:
            try:
                quantise(graphs.folder / name, staging / name)
            except Exception as error:  # the quantiser raises many types; the model then runs in float32
                raise ExportRefused(f"ONNX Runtime's int8 quantisation of {name} failed: {type(error).__name__}: "
                                    f"{str(error).splitlines()[0][:200] if str(error) else ''}") from None
        write_json_atomic(staging / MANIFEST, {**facts, "precision": "int8", "quantisation": QUANTISATION,
                                               "from": graphs.folder.name})
    from captioner.models import onnx_sessions

    for name in names:
        onnx_sessions.forget(staging / name)
    return ExportedGraphs(folder, graphs.layers, graphs.contexts, graphs.has_encoder)


def quantise(source: Path, target: Path) -> None:
    """``source``'s products with int8 weights (per output channel, 7 bits) into ``target``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger()  # the quantiser warns on the root logger that it prefers pre-processed graphs
    level = quiet.level
    quiet.setLevel(max(level, logging.ERROR))
    try:
        quantize_dynamic(source, target, op_types_to_quantize=QUANTISATION["op_types"],
                         per_channel=QUANTISATION["per_channel"], reduce_range=QUANTISATION["reduce_range"],
                         weight_type=getattr(QuantType, QUANTISATION["weight_type"]))
    finally:
        quiet.setLevel(level)
