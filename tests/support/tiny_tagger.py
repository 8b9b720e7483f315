"""A tiny WD tagger in the published format, built with onnx.helper: ``model.onnx`` (input ``(batch, size, size, 3)``,
BGR 0-255, output ``(batch, tags)`` probabilities) and ``selected_tags.csv`` in the real columns.

The network averages each channel, scales it to 0-1 and maps the three means linearly to one sigmoid per tag,
so each tag's probability is known from the image's colours: a red picture is ``red_theme`` only when its
channels arrive in BGR order at 0-255, and a tall red picture looks whiter only when padded on white.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# (name, category, weights on the blue, green and red means (0-1), bias)
TAGS = (
    ("general", 9, (0, 0, 0), 2.0),
    ("sensitive", 9, (0, 0, 0), -2.0),
    ("questionable", 9, (0, 0, 0), -3.0),
    ("explicit", 9, (0, 0, 0), -4.0),
    ("red_theme", 0, (-4, -4, 8), 0.0),
    ("blue_theme", 0, (8, -4, -4), 0.0),
    ("white_background", 0, (3, 3, 3), -6.0),
    ("^_^", 0, (0, 0, 0), 0.0),  # always 0.5: a kaomoji keeps its underscore
    ("long_hair", 0, (0, 0, 0), -0.4),  # always 0.401: above the default 0.35, below 0.45
    ("hatsune_miku", 4, (0, 0, 0), 1.0),  # always 0.731: below the default character threshold 0.85
)
SIZE = 32


def sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


def expected(bgr_means) -> dict[str, float]:
    """Each tag's probability for an image whose padded square has these channel means (0-1, BGR)."""
    return {name: sigmoid(float(np.dot(weights, bgr_means)) + bias) for name, _, weights, bias in TAGS}


def build_tagger(folder: Path, *, channels_last: bool = True, tags=TAGS, graph_tags: int | None = None,
                 size: int = SIZE) -> Path:
    """Write the tagger into ``folder``: ``graph_tags`` outputs (default one per tag) so a mismatch can be made."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    width = len(tags) if graph_tags is None else graph_tags
    weights = np.zeros((3, width), np.float32)
    bias = np.zeros(width, np.float32)
    for index, (_, _, w, b) in enumerate(tags[:width]):
        weights[:, index], bias[index] = w, b
    shape = ["batch", size, size, 3] if channels_last else ["batch", 3, size, size]
    nodes = [
        helper.make_node("ReduceMean", ["input_1"], ["means"], axes=[1, 2] if channels_last else [2, 3],
                         keepdims=0),  # (batch, 3)
        helper.make_node("Mul", ["means", "scale"], ["scaled"]),  # (batch, 3) in 0-1
        helper.make_node("MatMul", ["scaled", "weights"], ["logits_raw"]),  # (batch, tags)
        helper.make_node("Add", ["logits_raw", "bias"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["predictions_sigmoid"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_wd_tagger",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, ["batch", width])],
        [numpy_helper.from_array(np.array([1 / 255], np.float32), "scale"),
         numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, folder / "model.onnx")
    rows = ["tag_id,name,category,count"] + [f"{1000 + i},{name},{category},{100 - i}"
                                              for i, (name, category, _, _) in enumerate(tags)]
    (folder / "selected_tags.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder
