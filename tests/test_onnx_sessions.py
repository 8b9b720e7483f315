"""The one holder of ONNX Runtime sessions: one session per graph file, a fresh one when the file changes,
the project's thread settings, and one clear error for a missing or damaged graph."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from captioner import environment  # noqa: E402
from captioner.errors import ModelError  # noqa: E402
from captioner.models import onnx_sessions  # noqa: E402


def write_scale_graph(path, factor: float) -> None:
    """A one-node graph y = x * factor, written as an exporter would (opset 17, IR version 8)."""
    scale = helper.make_tensor("factor", TensorProto.FLOAT, [], [factor])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "factor"], ["y"])], "scale",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], initializer=[scale])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def run(session, values):
    return session.run(None, {"x": np.asarray(values, dtype=np.float32)})[0]


def test_one_session_per_graph_and_a_fresh_one_when_the_file_changes(tmp_path):
    path = tmp_path / "scale.onnx"
    write_scale_graph(path, 2.0)
    first = onnx_sessions.session(path)
    assert onnx_sessions.session(tmp_path / "." / "scale.onnx") is first
    np.testing.assert_allclose(run(first, [[1, 2, 3]]), [[2, 4, 6]])

    write_scale_graph(path, 3.0)
    import os
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a rewrite within one clock tick
    second = onnx_sessions.session(path)
    assert second is not first
    np.testing.assert_allclose(run(second, [[1, 2, 3]]), [[3, 6, 9]])
    onnx_sessions.forget(path)
    assert onnx_sessions.session(path) is not second


def test_sessions_use_the_chosen_thread_count(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert environment.current().thread_count == 1
    assert onnx_sessions.session_options().intra_op_num_threads == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    assert onnx_sessions.cpu_threads() >= 1


def test_a_missing_or_damaged_graph_is_one_clear_error(tmp_path):
    with pytest.raises(ModelError, match="no ONNX graph"):
        onnx_sessions.session(tmp_path / "absent.onnx")
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelError, match="not an ONNX graph") as raised:
        onnx_sessions.session(damaged)
    assert "\n" not in str(raised.value)
