"""A cached decoder whose image encoder and decoder steps run through ONNX Runtime, and the choice of runtime.

:class:`OnnxImageDecoder` is a :class:`~captioner.models.transformers.cached_decoder.CachedDecoder` like the
PyTorch ones, so the one search in :mod:`captioner.models.decoding` drives it (greedy, beam and sampling)
with the same state hooks: its context is torch tensors sharing memory with the encoder graph's numpy outputs,
and its self-attention caches are the step graph's numpy outputs, reordered in numpy, so no torch work runs
between two steps. The encoder and every step run the exported graphs
(:mod:`captioner.models.transformers.onnx_export`) through the sessions of :mod:`captioner.models.onnx_sessions`,
the first step from caches with no positions; only a first step that feeds a caption prefix with the start
token (several tokens at once) runs in PyTorch. A VLM has no encoder graph: its prompt is encoded in PyTorch.

Runtime choice (``--runtime``, ``CAPTIONER_RUNTIME``): ``torch``, ``onnx`` or ``auto``. On ``onnx`` the graphs
compute in float32, or in int8 (``--precision int8``: :mod:`captioner.models.transformers.onnx_int8`, ONNX
Runtime's dynamic quantisation of the checked float32 graphs, cached beside them); ``--precision auto`` then
resolves to int8 only for an architecture whose ONNX int8 captions were measured to agree with float32 ones
often enough (:data:`~captioner.models.transformers.precision.ONNX_INT8_AGREEMENT`, the rule of PyTorch's int8),
else to float32. With ONNX int8 the PyTorch model, which runs a caption prefix's first step, stays float32.
``auto`` chooses ONNX Runtime wherever the model computes in float32 on the CPU: there it was measured faster
than PyTorch float32 (benchmarks/bench_onnx_runtime.py; the precision guide's "Runtime" section). Where auto
precision would pick bfloat16 (a CPU with AVX512-BF16 or AMX), ONNX Runtime float32 is chosen instead only for
the architectures :data:`ONNX_OVER_BFLOAT16` measured faster than PyTorch bfloat16 on that CPU's class (AMX:
ViT-GPT2; AVX512-BF16 without AMX: none); the others stay in bfloat16, and int8 under ``auto`` stays in
PyTorch. Without ``onnxruntime``, or for a model whose export fails or is refused by its check, the PyTorch
path runs (int8 then in PyTorch's own int8 kernel) and one warning line says why.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and the decoder state load with the first model, not with the command line's --help
    import numpy as np

    from captioner.models.transformers.decoder_step import DecoderState

RUNTIMES = ("auto", "torch", "onnx")
RUNTIME_ENV = "CAPTIONER_RUNTIME"
DEFAULT_RUNTIME = "auto"

# Seconds per caption (ONNX Runtime float32, PyTorch bfloat16) at batch 1, each model's default beam, 20 words,
# measured by benchmarks/bench_onnx_runtime.py on 2-core machines of each CPU class with native bf16
# (precision.cpu_bf16_units): ONNX float32 runs instead of bfloat16 where its figure is the smaller.
# "amx": an Intel Xeon with AMX, in a run shared with other work (indicative; a short run gave 1.40 against
# 1.84), ViT-GPT2 only. "avx512_bf16": an AMD EPYC with AVX-512 and AVX512-BF16 (no AMX), quiet, 2026-12-08
# (SmolVLM-256M greedy: its default).
ONNX_OVER_BFLOAT16 = {
    "amx": {"vit-gpt2": (1.15, 2.65)},
    "avx512_bf16": {"vit-gpt2": (0.57, 0.55), "blip": (0.75, 0.66), "git": (0.38, 0.31), "florence-2": (1.79, 1.37),
                    "smolvlm": (3.02, 2.72)},
}

log = logging.getLogger(__name__)


def requested_runtime(requested: str | None = None) -> str:
    """``requested``, else ``CAPTIONER_RUNTIME``, else auto; a ValueError for any other word."""
    from captioner import environment

    choice = (requested or environment.current().runtime or DEFAULT_RUNTIME).strip().lower()
    if choice not in RUNTIMES:
        raise ValueError(f"unknown runtime {choice!r} ({RUNTIME_ENV}); choose one of {', '.join(RUNTIMES)}")
    return choice


def precision_for_runtime(runtime: str, precision: str | None, architecture: str | None = None,
                          device="cpu") -> str | None:
    """The precision to resolve. With ONNX asked for and the precision left to auto: int8 where ONNX int8 was
    measured to agree with float32 (the share auto needs), else float32; with both left to auto, float32 where
    ONNX float32 was measured faster than the bfloat16 auto would pick; a ValueError when ONNX is asked for
    together with bfloat16."""
    from captioner import environment
    from captioner.models.onnx_sessions import onnxruntime_available
    from captioner.models.transformers.precision import resolve_precision

    asked = (precision or environment.current().precision or "auto").strip().lower()
    if runtime == "auto" and asked == "auto" and str(device) == "cpu" and onnx_faster_than_bfloat16(architecture):
        if resolve_precision("auto", device, architecture) == "bfloat16" and onnxruntime_available():
            return "float32"
    if runtime != "onnx":
        return precision
    if asked == "auto":
        from captioner.models.transformers.precision import INT8_AUTO_SHARE, ONNX_INT8_AGREEMENT

        on_cpu = str(device) == "cpu"
        return "int8" if on_cpu and ONNX_INT8_AGREEMENT.get(architecture, 0) >= INT8_AUTO_SHARE else "float32"
    if asked not in ("float32", "int8"):
        raise ValueError(f"the ONNX runtime computes in float32 or int8; choose --precision float32, int8 or "
                         f"auto, or --runtime torch for {asked}")
    return precision


def onnx_faster_than_bfloat16(architecture: str | None) -> bool:
    """Whether ONNX Runtime float32 was measured faster than PyTorch bfloat16 for ``architecture`` on this CPU's
    class of bf16 units (:data:`ONNX_OVER_BFLOAT16`); False where it was not measured."""
    from captioner.models.transformers.precision import cpu_bf16_units

    measured = ONNX_OVER_BFLOAT16.get(cpu_bf16_units() or "", {}).get(architecture)
    return measured is not None and measured[0] < measured[1]


def torch_precision(runtime: str, precision: str) -> str:
    """The precision the PyTorch model is held in: float32 under ONNX int8 (the graphs are exported from the
    float32 model, and its first steps run in float32), else ``precision`` itself."""
    return "float32" if runtime == "onnx" and precision == "int8" else precision


def onnx_decoder(decoder, runtime: str, precision: str, device, architecture: str, probe=None):
    """(the decoder to search, "onnx" or "torch"): ``decoder`` through ONNX Runtime where ``runtime`` and the
    model allow, else ``decoder`` itself, with one warning line when ONNX was asked for but cannot run.
    ``probe`` makes the model's inputs for two images, to export and check graphs with (None: random pixels)."""
    from captioner.errors import ModelError
    from captioner.models.onnx_sessions import onnxruntime_available
    from captioner.models.transformers.onnx_export import exportable, graphs_for

    if runtime == "torch" or decoder is None:
        if runtime == "onnx" and decoder is None:
            log.warning("%s runs in PyTorch, not ONNX Runtime: %s", architecture, no_cached_step(architecture))
        return decoder, "torch"
    if runtime == "auto" and (precision != "float32" or str(device) != "cpu"):
        return decoder, "torch"  # bfloat16 and int8 stay in PyTorch, and so does a GPU
    why = None
    if str(device) != "cpu":
        why = f"ONNX graphs run on the CPU here, the model is on {device}"
    elif not onnxruntime_available():
        why = "onnxruntime is not installed (pip install onnxruntime)"
    elif not exportable(decoder):
        why = f"{architecture} has no exportable decoder step yet"
    if why is None:
        try:
            graphs = graphs_for(decoder, architecture, probe() if probe is not None else None)
            if precision == "int8":
                from captioner.models.transformers.onnx_int8 import int8_graphs

                graphs = int8_graphs(graphs)
            return OnnxImageDecoder(decoder, graphs), "onnx"
        except (ModelError, OSError) as error:
            why = str(error)
    log.warning("%s runs in PyTorch, not ONNX Runtime: %s", architecture, why)
    return decoder, "torch"


def no_cached_step(architecture: str) -> str:
    """Why a model without a cached decoder step stays in PyTorch."""
    from captioner.models.transformers.vlm import PROCESSORS

    if architecture in PROCESSORS:  # a vision-language model whose language model the cached step does not fit
        return ("its language model decodes through generate: the cached step of vlm_decoder.py fits Llama and "
                "Qwen2 language models with rotary positions along one axis, and this one is not such a model")
    return f"this {architecture} model decodes through generate (no cached decoder step to export)"


class OnnxImageDecoder:
    """``decoder``'s encoder and steps through ONNX Runtime sessions of its exported graphs."""

    runtime = "onnx"  # what runs the steps (the PyTorch decoders have no such attribute: "torch")

    def __init__(self, decoder, graphs):
        from captioner.models import onnx_sessions

        self.torch_decoder = decoder
        self.graphs = graphs
        self.end_id = decoder.end_id
        self.model = decoder.model
        self.prompted = decoder.prompted
        if hasattr(decoder, "prefix"):
            self.prefix = decoder.prefix
        if hasattr(decoder, "encode_prompt"):  # a VLM: the model's own forward encodes the prompt
            self.encode_prompt = decoder.encode_prompt
        self.encoder = onnx_sessions.session(graphs.encoder) if graphs.has_encoder else None
        self.step_session = onnx_sessions.session(graphs.step)
        self.step_inputs = [i.name for i in self.step_session.get_inputs()]

    @property
    def start_id(self) -> int:
        return self.torch_decoder.start_id  # a VLM's is its prompt's last token, known once it is encoded

    def encode(self, pixels, input_ids=None, attention_mask=None) -> DecoderState:
        import torch

        from captioner.models.transformers.decoder_step import start_state

        feeds = {"pixels": as_array(pixels)}
        if getattr(self.torch_decoder, "encodes_prompt", False):
            if attention_mask is not None and not bool(attention_mask.all()):  # padded prompts: a masked context
                return self.torch_decoder.encode(pixels, input_ids, attention_mask)  # (its steps run in PyTorch)
            feeds["input_ids"] = as_array(input_ids)
        flat = [torch.from_numpy(a) for a in self.encoder.run(None, feeds)]
        context = tuple(zip(flat[0::2], flat[1::2]))  # per layer (keys, values), (images, heads, positions, hd)
        if getattr(self.torch_decoder, "encodes_prompt", False):
            context = tuple((keys, values, None) for keys, values in context)  # Florence-2's: no mask
        state = start_state(context, len(pixels), self.graphs.layers)
        prefix = self.prefix(input_ids) if self.prompted and hasattr(self, "prefix") else ()
        return replace(state, prefix=prefix)

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState]:
        import numpy as np

        from captioner.models.transformers.decoder_step import DecoderState
        from captioner.models.transformers.onnx_export import next_position

        masked = any(len(entry) > 2 and entry[2] is not None for entry in state.context)
        if masked or (state.keys[0] is None and state.prefix):  # a masked context, or a first step that feeds a
            return self.torch_decoder.step(tokens, state)  # caption prefix with the start token, at once
        rows = len(tokens)
        keys = state.keys if state.keys[0] is not None else (self.empty_cache(rows),) * self.graphs.layers
        values = state.values if state.values[0] is not None else keys
        position = next_position(self.torch_decoder, state)  # no cache yet: the first position
        tensors = [np.asarray(tokens, dtype=np.int64), np.array([position], dtype=np.int64)]
        tensors += [as_array(k) for k in keys] + [as_array(v) for v in values]
        tensors += [as_array(t) for entry in state.context for t in entry[:2]]
        outputs = self.step_session.run(None, dict(zip(self.step_inputs, tensors)))
        layers = self.graphs.layers
        keys = tuple(outputs[1:1 + layers])  # numpy (rows, heads, steps + 1, hd), reordered in numpy
        values = tuple(outputs[1 + layers:1 + 2 * layers])
        return outputs[0], DecoderState(state.context, state.beams, keys, values, state.images, state.steps + 1)

    def empty_cache(self, rows: int) -> np.ndarray:
        """A self-attention cache with no positions yet, (rows, heads, 0, head_dim), for the first step."""
        import numpy as np

        _, heads, _, head_dim = self.step_session.get_inputs()[2].shape  # past_key.0: (rows, heads, steps, hd)
        return np.zeros((rows, heads, 0, head_dim), dtype=np.float32)


def as_array(tensor) -> np.ndarray:
    """A C-contiguous numpy view of a CPU tensor or array (a copy only when it is not contiguous)."""
    import numpy as np

    return np.ascontiguousarray(tensor if isinstance(tensor, np.ndarray) else tensor.detach().numpy())
