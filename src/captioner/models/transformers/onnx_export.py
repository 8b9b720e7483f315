"""A transformers captioner's image encoder and cached decoder step as ONNX graphs: exported from the loaded
model, checked against PyTorch, and cached.

Two graphs per model (a VLM's step alone: its prompt is encoded by the model's own forward), traced from the
same code the PyTorch path runs
(:class:`~captioner.models.transformers.cached_decoder.CachedDecoder`'s ``encode`` and its family's tensor-only
``logits``), so there is one description of the arithmetic:

- ``encoder.onnx``: pixels (images, 3, H, W) -> the per-image context, flat (``context.0``, ``context.1``, ...);
- ``step.onnx``: one token per row (``ids``, (rows,)), its position (``positions``, (1,)), every layer's
  self-attention cache (``past_key.L``/``past_value.L``, (rows, heads, steps, head_dim)) and the context ->
  float32 log-probabilities (rows, vocab) and the grown caches (``key.L``/``value.L``). The rows' beams per
  image are the rows over the context's images, so the context is never copied per beam.

The step graph serves every step after the first; the first (start token and caption prefix, fed at once
under a causal mask) stays in PyTorch, which the ONNX path shares the weights with.

Graphs are exported with the TorchScript-based ``torch.onnx.export`` (``dynamo=False``): it traces these
step graphs, with their empty-at-no-point caches and dynamic row counts, in well under a second for a tiny
model, where the dynamo exporter takes several. They live under the cache folder, in a folder named by a key
of the model's config, its revision, a fingerprint of its weights, and the exporter's, opset's and ONNX
Runtime's versions; a folder is staged and renamed into place whole, so a half-written export is never read.
Each new export is run once on a probe input beside PyTorch, and refused (a :class:`ExportRefused`, nothing
cached) when any output's largest difference exceeds :data:`TOLERANCE` of that output's largest magnitude.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from captioner import environment
from captioner.errors import ModelError
from captioner.files import staged_folder, write_json_atomic

EXPORTER = "torchscript"  # torch.onnx.export(dynamo=False)
OPSET = 17
GRAPH_FORMAT = 2  # bump when the graphs' inputs or outputs change
TOLERANCE = 1e-4  # largest difference allowed, relative to the largest magnitude of each output
PROBE_IMAGES, PROBE_BEAMS = 2, 2  # the probe: two images, two beams each, one step after the first
MANIFEST = "manifest.json"


class ExportRefused(ModelError):
    """An exported graph that does not compute what PyTorch computes (or could not be exported at all)."""


@dataclass(frozen=True)
class ExportedGraphs:
    folder: Path
    layers: int  # self-attention caches in the step graph
    contexts: int  # context tensors between the graphs
    has_encoder: bool = True  # False for a VLM: its prompt is encoded by the model's own forward in PyTorch

    @property
    def encoder(self) -> Path:
        return self.folder / "encoder.onnx"

    @property
    def step(self) -> Path:
        return self.folder / "step.onnx"


def exportable(decoder) -> bool:
    """Whether this cached decoder's family has a tensor-only step (``logits``) to trace."""
    return hasattr(decoder, "logits")


def graphs_for(decoder, architecture: str, probe: dict | None = None) -> ExportedGraphs:
    """The checked graphs of ``decoder``'s model: from the cache, else exported, checked and cached now.
    ``probe`` is the model's inputs for two images (``pixel_values``, and ``input_ids`` for a model whose
    encoder reads the prompt, Florence-2); without it, random pixels of the vision config's size."""
    import torch

    if not exportable(decoder):
        raise ExportRefused(f"{architecture}: its cached decoder has no exportable step")
    if decoder.model.dtype != torch.float32:
        raise ExportRefused(f"{architecture}: graphs are exported in float32, the model is {decoder.model.dtype}")
    folder = environment.current().cache_base / "onnx" / f"{architecture}-{cache_key(decoder.model)}"
    manifest = folder / MANIFEST
    if manifest.is_file():
        facts = json.loads(manifest.read_text(encoding="utf-8"))
        return ExportedGraphs(folder, facts["layers"], facts["contexts"], facts.get("encoder", True))
    with staged_folder(folder) as staging:
        probe = probe or {"pixel_values": probe_pixels(decoder.model)}
        graphs = export(decoder, staging, probe)
        check(decoder, graphs, probe)
        write_json_atomic(staging / MANIFEST, {"layers": graphs.layers, "contexts": graphs.contexts,
                                               "encoder": graphs.has_encoder, "architecture": architecture,
                                               **versions()})
    from captioner.models import onnx_sessions

    onnx_sessions.forget(staging / "encoder.onnx")
    onnx_sessions.forget(staging / "step.onnx")
    return ExportedGraphs(folder, graphs.layers, graphs.contexts, graphs.has_encoder)


def versions() -> dict:
    import onnx
    import torch

    from captioner.models.onnx_sessions import import_onnxruntime

    return {"exporter": EXPORTER, "opset": OPSET, "format": GRAPH_FORMAT, "torch": torch.__version__,
            "onnx": onnx.__version__, "onnxruntime": import_onnxruntime().__version__}


def cache_key(model) -> str:
    """16 hex digits naming a model's graphs: config, revision, weights fingerprint and the versions."""
    config = model.config
    facts = {"config": config.to_json_string(use_diff=False), "revision": getattr(config, "_commit_hash", None),
             "name": getattr(config, "_name_or_path", ""), "weights": weights_fingerprint(model), **versions()}
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def weights_fingerprint(model) -> str:
    """A hash of every tensor's name, shape and a strided sample of its values (cheap, yet two random
    initialisations of one config differ)."""
    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            flat = tensor.detach().reshape(-1)
            sample = flat[::max(1, flat.numel() // 4096)].float().cpu().numpy()
            digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            digest.update(sample.tobytes())
    return digest.hexdigest()


def probe_pixels(model):
    """Random pixels (PROBE_IMAGES, channels, size, size) of the size the model's vision config names."""
    import torch

    config = model.config
    vision = getattr(config, "vision_config", None) or getattr(config, "encoder", None) or config
    size = getattr(vision, "image_size", 224)
    size = size if isinstance(size, int) else size[0]
    channels = getattr(vision, "num_channels", 3)
    return torch.randn(PROBE_IMAGES, channels, size, size, generator=torch.Generator().manual_seed(0))


def flat_context(state) -> tuple:
    """The context tensors of a state, flat and contiguous (a Florence-2 layer's absent mask left out)."""
    return tuple(tensor.contiguous() for entry in state.context for tensor in entry if tensor is not None)


def encoder_inputs(decoder, probe: dict) -> tuple:
    """The encoder graph's inputs: pixels, and the prompt's ids where the encoder reads them."""
    if getattr(decoder, "encodes_prompt", False):
        if probe.get("input_ids") is None:
            raise ExportRefused("this model's encoder reads the prompt: its export needs the processor's input ids")
        return probe["pixel_values"], probe["input_ids"]
    return (probe["pixel_values"],)


class EncoderGraph:
    """``decoder.encode`` as a module: pixels (and the prompt's ids) -> the context tensors, flat."""

    def __new__(cls, decoder):
        import torch

        class Encoder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = decoder.model

            def forward(self, pixels, input_ids=None):
                state = decoder.encode(pixels, input_ids) if input_ids is not None else decoder.encode(pixels)
                return flat_context(state)

        return Encoder().eval()  # in training mode, the exporter would leave the model training afterwards


class StepGraph:
    """``decoder.logits`` as a module: ids, positions, caches, context -> log-probabilities and the caches."""

    def __new__(cls, decoder, layers: int):
        import torch

        class Step(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = decoder.model

            def forward(self, ids, positions, *tensors):
                keys, values, context = tensors[:layers], tensors[layers:2 * layers], tensors[2 * layers:]
                beams = ids.shape[0] // context[0].shape[0]
                if getattr(decoder, "feeds_width", False):
                    ids = ids[:, None]  # (rows, 1): these families take (rows, width) tokens
                logits, keys, values = decoder.logits(ids, positions, keys, values, context, beams)
                return (torch.log_softmax(logits.float(), dim=-1), *keys, *values)

        return Step().eval()


def encodes_in_torch(decoder) -> bool:
    """Whether ``decoder``'s encoding stays in PyTorch (a VLM's prompt: the model's own forward), so only its step
    is exported."""
    return getattr(decoder, "encodes_in_torch", False)


def probe_state(decoder, probe: dict):
    """The PyTorch state after the first step, PROBE_BEAMS beams per image, and the tokens of the next step."""
    from captioner.models.transformers.cached_decoder import TORCH_STATE

    encoded = decoder.encode_prompt(probe) if encodes_in_torch(decoder) else decoder.encode(*encoder_inputs(decoder,
                                                                                                            probe))
    state = TORCH_STATE.repeat(encoded, PROBE_BEAMS)
    tokens = np.full(state.rows, decoder.start_id, dtype=np.int64)
    log_probs, state = decoder.step(tokens, state)  # (rows, vocab)
    return state, (np.arange(state.rows, dtype=np.int64) * 7 + 3) % log_probs.shape[1]  # (rows,) varied next tokens


def step_inputs(decoder, state, tokens):
    """The step graph's inputs, as torch tensors in order: ids, positions, keys, values, context."""
    import torch

    positions = torch.tensor([next_position(decoder, state)])  # one token per row
    return (torch.from_numpy(tokens), positions, *(k.contiguous() for k in state.keys),
            *(v.contiguous() for v in state.values), *flat_context(state))


def next_position(decoder, state) -> int:
    """The position of the next token: the rows' cached tokens, after the prompt's where the step counts them
    (a VLM's ``position_offset``)."""
    offset = getattr(decoder, "position_offset", None)
    return (0 if state.keys[0] is None else state.keys[0].shape[2]) + (offset(state) if offset else 0)


def export(decoder, folder: Path, probe: dict) -> ExportedGraphs:
    """Both graphs of ``decoder`` into ``folder`` (probe-shaped example inputs, dynamic rows and steps)."""
    import torch

    layers = len(decoder.layers if hasattr(decoder, "layers") else decoder.blocks)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes it takes as constant (channels, size)
            state, tokens = probe_state(decoder, probe)
            contexts = 2 * layers
            context_names = [f"context.{i}" for i in range(contexts)]
            if not encodes_in_torch(decoder):
                inputs = encoder_inputs(decoder, probe)
                torch.onnx.export(EncoderGraph(decoder), inputs, str(folder / "encoder.onnx"), dynamo=False,
                                  opset_version=OPSET, input_names=["pixels", "input_ids"][:len(inputs)],
                                  output_names=context_names,
                                  dynamic_axes={"pixels": {0: "images"}, "input_ids": {0: "images", 1: "tokens"},
                                                **{n: {0: "images", 2: "positions"} for n in context_names}})
            past = [f"past_key.{i}" for i in range(layers)] + [f"past_value.{i}" for i in range(layers)]
            grown = [f"key.{i}" for i in range(layers)] + [f"value.{i}" for i in range(layers)]
            torch.onnx.export(StepGraph(decoder, layers), step_inputs(decoder, state, tokens), str(folder / "step.onnx"),
                              dynamo=False, opset_version=OPSET, input_names=["ids", "positions", *past, *context_names],
                              output_names=["log_probs", *grown],
                              dynamic_axes={"ids": {0: "rows"}, "log_probs": {0: "rows"},
                                            **{n: {0: "rows", 2: "steps"} for n in past},
                                            **{n: {0: "rows", 2: "grown"} for n in grown},
                                            **{n: {0: "images", 2: "positions"} for n in context_names}})
    except Exception as error:  # the exporter raises many types; the model then runs in PyTorch
        raise ExportRefused(f"the ONNX export failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}") from None
    return ExportedGraphs(folder, layers, contexts, not encodes_in_torch(decoder))


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    """Largest absolute difference over the reference's largest magnitude."""
    scale = max(float(np.abs(reference).max(initial=0.0)), 1e-30)
    return float(np.abs(ours.astype(np.float64) - reference.astype(np.float64)).max(initial=0.0)) / scale


def check(decoder, graphs: ExportedGraphs, probe: dict) -> float:
    """The largest relative error of both graphs against PyTorch on the probe; ExportRefused above TOLERANCE."""
    import torch

    from captioner.models import onnx_sessions

    probe = {**probe, "pixel_values": probe["pixel_values"] * 0.5}  # not the example the graphs were traced on
    worst = 0.0
    expected, got = (), []
    with torch.no_grad():
        if graphs.has_encoder:
            inputs = encoder_inputs(decoder, probe)
            encoder = onnx_sessions.session(graphs.encoder)
            expected = EncoderGraph(decoder)(*inputs)
            got = encoder.run(None, {i.name: t.numpy() for i, t in zip(encoder.get_inputs(), inputs)})
        state, tokens = probe_state(decoder, probe)
        inputs = step_inputs(decoder, state, tokens)
        expected += tuple(StepGraph(decoder, graphs.layers)(*inputs))
        step = onnx_sessions.session(graphs.step)
        got += step.run(None, {i.name: t.numpy() for i, t in zip(step.get_inputs(), inputs)})
    for index, (ours, reference) in enumerate(zip(got, expected, strict=True)):
        error = relative_error(ours, reference.numpy())
        if not error <= TOLERANCE:
            raise ExportRefused(f"the exported graph differs from PyTorch (output {index}: relative error "
                                f"{error:.2e} > {TOLERANCE:g}); not used")
        worst = max(worst, error)
    return worst
