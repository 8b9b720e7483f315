"""The one place that holds ONNX Runtime sessions: taggers' published graphs and the exported encoders and
decoder steps of the transformers captioners all open theirs here.

A session is costly to make (the graph is read, optimised and its weights laid out for the kernels) and cheap
to share: ``InferenceSession.run`` may be called from several threads at once. So :func:`session` keeps one
per graph file, keyed by the file's resolved path, size and modification time (a graph rewritten in place
gets a fresh session) and by the providers asked for. Every session runs with the same thread settings as
the PyTorch side (:func:`cpu_threads`): every core this process may use, unless the user chose a count
through ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS``.

``onnxruntime`` is imported lazily, so a front end that never runs a graph never loads it; where it is not
installed, :func:`import_onnxruntime` raises one clear :class:`~captioner.errors.ModelError` that says how
to install it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from captioner import environment
from captioner.errors import ModelError

INSTALL_HINT = "install it with: pip install onnxruntime"
CPU_PROVIDER = "CPUExecutionProvider"

_sessions: dict[tuple, object] = {}
_lock = threading.Lock()


def onnxruntime_available() -> bool:
    """True when ``onnxruntime`` can be imported here."""
    try:
        import_onnxruntime()
    except ModelError:
        return False
    return True


def import_onnxruntime():
    """The ``onnxruntime`` module, or a :class:`ModelError` saying how to install it."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ModelError(f"ONNX Runtime is not installed ({error}); {INSTALL_HINT}") from None
    return onnxruntime


def cpu_threads() -> int:
    """Threads for one session's operators: the user's ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` when set, else
    every core this process may run on (as :func:`~captioner.models.transformers.image_to_text.
    configure_torch_threads` gives PyTorch)."""
    chosen = environment.current().thread_count
    if chosen > 0:
        return chosen
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def session_options():
    """The ``SessionOptions`` every session here is made with: all graph optimisations, :func:`cpu_threads`
    threads inside an operator, one between operators (a caption step is a chain, not a fan-out), and threads
    that do not spin while they wait."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = cpu_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings about unused initialisers are noise here
    # Its threads sleep between calls instead of spinning: a caption's search runs PyTorch and numpy work between
    # two steps, and on a small machine spinning threads took the cores from it (ViT-GPT2 on two cores: 0.57 s
    # a caption against 0.70 to 1.0 s with spinning; a step alone costs about 1 ms more).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def session(path: str | os.PathLike, providers: tuple[str, ...] = (CPU_PROVIDER,)):
    """The shared ``InferenceSession`` of the graph at ``path`` (made on first use); a missing or unreadable
    graph is one :class:`ModelError` naming the file."""
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError as error:
        raise ModelError(f"no ONNX graph at {path} ({error.strerror or error})") from None
    key = (str(path), stat.st_size, stat.st_mtime_ns, tuple(providers))
    with _lock:
        held = _sessions.get(key)
        if held is not None:
            return held
        ort = import_onnxruntime()
        try:
            made = ort.InferenceSession(str(path), sess_options=session_options(), providers=list(providers))
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/... types
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelError(f"{path} is not an ONNX graph ONNX Runtime can run: {first_line}") from None
        for stale in [k for k in _sessions if k[0] == key[0]]:  # the same file, rewritten: drop the old one
            del _sessions[stale]
        _sessions[key] = made
        return made


def forget(path: str | os.PathLike | None = None) -> None:
    """Drop the held session of ``path`` (every held session when None), e.g. before deleting its file."""
    with _lock:
        if path is None:
            _sessions.clear()
            return
        resolved = str(Path(path).resolve())
        for key in [k for k in _sessions if k[0] == resolved]:
            del _sessions[key]
