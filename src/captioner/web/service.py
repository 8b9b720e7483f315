"""The caption service behind the pages and the API: which models load, and captioning through them.

Models load once per process (per server worker) when the app is created. Which ones:
1. every bundle in the models folder (or only those named in ``CAPTIONER_MODELS``);
2. the pretrained models named in ``CAPTIONER_PRETRAINED`` from the local cache or the hub; when it is
   not set, ViT-GPT2 and Florence-2-base-ft, and only if no bundle was trained on a real data set;
3. if still nothing loaded (offline, no bundles), the small shapes demo model, trained on the spot into
   the models folder, so the app always works and says plainly how to add real models.
Each loaded model gets a :class:`~captioner.web.batching.MicroBatcher`, and its latency on this machine
is measured once at start (one image, its default decoding) for the models page
(:mod:`captioner.web.loaded_model`).
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from captioner import environment
from captioner.errors import CaptionerError, ModelError, RemoteError
from captioner.models.base import Captioner, Decoding, DecodingRequest
from captioner.models.bundle import bundle_size
from captioner.web.batching import BatchedCaption, MicroBatcher, Overloaded, RequestTimeout
from captioner.web.composed import Unfollowable, Wording, caption_composed
from captioner.web.loaded_model import DEMO_DATASET, LoadedModel, measure_latency, warm_up
from captioner.web.settings import WebSettings

log = logging.getLogger(__name__)

class UnknownModel(CaptionerError):
    """The request named a model that is not loaded."""


class NotReady(CaptionerError):
    """Models are still loading, or none could be loaded."""


class BadOption(CaptionerError):
    """A request asked for a decoding option the model does not take (a prompt it refuses)."""


class ScoreUnavailable(CaptionerError):
    """A request asked for a caption score whose model is not on this server (the CLIP of CLIPScore)."""


@dataclass
class CaptionService:
    settings: WebSettings
    models: dict[str, LoadedModel] = field(default_factory=dict)
    loading: bool = True  # until load() has finished
    notes: list[str] = field(default_factory=list)  # what the pages should tell the user about loading
    problems: list[dict] = field(default_factory=list)  # bundles that failed to load: {"name", "message"}
    translator: object = None  # the configured Translator, for captions asked for in a language; None: none

    # -- loading ----------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """"loading" until loading has finished, then "ready" (some model loaded) or "failed" (none)."""
        if self.loading:
            return "loading"
        return "ready" if self.models else "failed"

    def start(self) -> None:
        """Load the models now, or in a background thread when the settings say so."""
        if self.settings.load_in_background:
            threading.Thread(target=self.load, name="model-loader", daemon=True).start()
        else:
            self.load()

    def load(self) -> None:
        self.loading = True
        try:
            self._load_bundles()
            real = any(m.info.dataset != DEMO_DATASET for m in self.models.values())
            if self.settings.try_pretrained and (self.settings.pretrained.strip() or not real):
                for name in self.settings.pretrained_names:
                    self._load_pretrained(name)
            if not self.models and self.settings.build_demo:
                self._load_demo()
        except Exception as error:  # a bug must not keep the server from answering /healthz
            log.exception("loading models failed")
            self.problems.append({"name": "(loading)", "message": f"{type(error).__name__}: {error}"})
        if self.is_demo_only:
            self.notes.append(
                "Only the small shapes demo model is loaded: it describes coloured shapes, not photos. "
                "To caption photos, train a model with 'captioner train lstm', or copy a model bundle into "
                f"{self.settings.models_dir} and restart; with internet access the pretrained models load by "
                "themselves (CAPTIONER_PRETRAINED).")
        if not self.models:
            self.notes.append("No model could be loaded. Add a model bundle to the models folder "
                              f"({self.settings.models_dir}) and restart.")
        self.loading = False
        log.info("models ready: %s", ", ".join(self.models) or "none")

    def add_model(self, captioner: Captioner, source: str = "bundle", path: Path | None = None,
                  started: float | None = None) -> LoadedModel:
        """Serve ``captioner`` (already loaded) behind its own micro-batching queue."""
        started = time.perf_counter() if started is None else started
        batcher = MicroBatcher(captioner, self.settings.batch_size, self.settings.batch_wait_ms,
                               self.settings.queue_size)
        size = bundle_size(path) if path else None
        loaded = LoadedModel(captioner, batcher, source, path, size, time.perf_counter() - started)
        self.models[captioner.name] = loaded
        return loaded

    def _load_bundles(self) -> None:
        from captioner.models.registry import list_models, load_captioner

        bundles = list_models(self.settings.models_dir)
        wanted = self.settings.model_names
        if wanted:
            missing = sorted(set(wanted) - {info.name for _, info in bundles})
            for name in missing:
                self.problems.append({"name": name, "message": f"no bundle named {name!r} in {self.settings.models_dir}"})
            bundles = [(path, info) for path, info in bundles if info.name in wanted]
        for path, info in bundles:
            started = time.perf_counter()
            try:
                captioner = load_captioner(path)
            except Exception as error:  # one broken bundle must not take the others down
                log.warning("could not load model bundle %s: %s", path, error)
                self.problems.append({"name": info.name, "message": str(error) or type(error).__name__})
                continue
            warm_up(captioner, self.settings.batch_size)
            loaded = self.add_model(captioner, "demo" if info.dataset == DEMO_DATASET else "bundle", path, started)
            loaded.latency_ms = measure_latency(captioner)

    def _load_pretrained(self, name: str) -> None:
        from captioner.models.registry import load_captioner

        started = time.perf_counter()
        try:
            captioner = load_captioner(name)
        except (CaptionerError, ImportError, OSError) as error:
            log.warning("pretrained model %s not loaded: %s", name, error)
            self.problems.append({"name": name, "message": str(error) or type(error).__name__})
            return
        if captioner.name in self.models:  # a bundle of that name is already served
            return
        warm_up(captioner, self.settings.batch_size)
        self.add_model(captioner, "pretrained", None, started).latency_ms = measure_latency(captioner)

    def _load_demo(self) -> None:
        from captioner.models.registry import load_captioner
        from captioner.training.demo import build_demo_model

        started = time.perf_counter()
        folder = writable_folder(Path(self.settings.models_dir))
        bundle = build_demo_model(folder)  # returns the bundle at once when an earlier start built it
        captioner = load_captioner(bundle)
        warm_up(captioner, self.settings.batch_size)
        self.add_model(captioner, "demo", Path(bundle), started).latency_ms = measure_latency(captioner)

    @property
    def headline(self) -> str:
        """The one line every page shows above its content while something needs saying (the models page
        says the rest: ``notes`` and ``problems``); empty when all is well."""
        if self.loading:
            return "The models are loading; captioning starts in a moment. Reload the page to check."
        if not self.models:
            return "No model could be loaded."
        if self.is_demo_only:
            return "Only the small shapes demo model is loaded: it describes coloured shapes, not photos."
        if self.problems:
            return f"{len(self.problems)} model{'s' if len(self.problems) > 1 else ''} could not be loaded."
        return ""

    # -- captioning -------------------------------------------------------------------------------------
    @property
    def is_demo_only(self) -> bool:
        return bool(self.models) and all(m.info.dataset == DEMO_DATASET for m in self.models.values())

    @property
    def default_model(self) -> str | None:
        if self.settings.default_model in self.models:
            return self.settings.default_model
        real = [name for name, m in self.models.items() if m.info.dataset != DEMO_DATASET]
        return (real or list(self.models) or [None])[0]

    def model(self, name: str | None) -> LoadedModel:
        self.require_ready()
        name = name or self.default_model
        if name not in self.models:
            raise UnknownModel(f"no model named {name!r} is loaded; loaded models: {', '.join(self.models)}")
        return self.models[name]

    def require_ready(self) -> None:
        if self.loading:
            raise NotReady("the models are still loading; try again in a moment")
        if not self.models:
            raise NotReady("no model is loaded: add a model bundle to the models folder and restart")

    def caption(self, image, model: str | None, decoding: DecodingRequest, timeout: float | None = None,
                attention: bool = False, wording: Wording | None = None) -> dict:
        """One model's caption of ``image``; written as ``wording`` asks (tags, a template, a language) when given."""
        loaded = self.model(model)
        started = time.perf_counter()
        chosen = model_decoding(loaded.captioner, decoding, loaded=self.captioners())
        timeout = timeout or self.settings.request_timeout_s
        if wording is not None and wording.asked:
            try:
                result, extra = caption_composed(self, loaded, image, chosen, wording, timeout)
            except Unfollowable as error:  # the request's fault, said before any image was captioned
                raise BadOption(str(error)) from None
            return {**caption_payload(loaded, chosen, result, started, attention), **extra}
        result = loaded.batcher.caption(image, chosen, timeout)
        return caption_payload(loaded, chosen, result, started, attention)

    def caption_all(self, work: list[tuple[object, DecodingRequest]], model: str | None,
                    timeout: float | None = None, wording: Wording | None = None) -> list[dict]:
        """Several captions from one model (images, or one image with several seeds), all queued at once so
        they share micro-batches; the answers in order. The first failure is raised, after the others end.
        With a ``wording``, each is written as it asks, one after the other."""
        if wording is not None and wording.asked:
            return [self.caption(image, model, decoding, timeout, wording=wording) for image, decoding in work]
        loaded = self.model(model)
        started = time.perf_counter()
        deadline = started + (timeout or self.settings.request_timeout_s)
        chosen = [model_decoding(loaded.captioner, decoding) for _, decoding in work]
        jobs = [loaded.batcher.submit(image, decoding) for (image, _), decoding in zip(work, chosen)]
        results, failure = [], None
        for job, decoding in zip(jobs, chosen):
            try:
                result = loaded.batcher.wait(job, max(deadline - time.perf_counter(), 0.001))
                results.append(caption_payload(loaded, decoding, result, started))
            except Exception as error:  # noqa: BLE001 - raised below, once every job has ended
                failure = failure or error
        if failure is not None:
            raise failure
        return results

    def captioners(self) -> list[Captioner]:
        """Every loaded captioner (a refused style's message names those that can write it)."""
        return [loaded.captioner for loaded in self.models.values()]

    def compare(self, image, decoding: DecodingRequest, timeout: float | None = None,
                attention: bool = False) -> list[dict]:
        """Every loaded model's caption of one image; all models work on it at the same time."""
        self.require_ready()
        started = time.perf_counter()
        deadline = started + (timeout or self.settings.request_timeout_s)
        waiting = []
        for loaded in self.models.values():
            chosen = model_decoding(loaded.captioner, decoding, strict=False)
            try:
                waiting.append((loaded, chosen, loaded.batcher.submit(image, chosen), None))
            except Overloaded as error:
                waiting.append((loaded, chosen, None, error))
        results = []
        for loaded, chosen, job, error in waiting:
            if job is not None:
                try:
                    result = loaded.batcher.wait(job, max(deadline - time.perf_counter(), 0.001))
                    results.append(caption_payload(loaded, chosen, result, started, attention))
                    continue
                except Exception as failure:  # timeout or a model failure
                    error = failure
            results.append({"model": loaded.name, "kind": loaded.captioner.kind, "dataset": loaded.info.dataset,
                            "error": error_summary(error)})
        return results

    def require_score(self, score: str | None) -> None:
        """Before any captioning: the model behind ``score`` is here, else ScoreUnavailable saying how to get it."""
        from captioner.evaluation.clipscore import require_score_model

        try:
            require_score_model(score)
        except ModelError as error:
            raise ScoreUnavailable(str(error)) from None

    def add_scores(self, image, score: str | None, results: list[dict]) -> None:
        """Give each captioned result of ``image`` its ``clip_score`` (``score="clip"``); failed results keep none."""
        from captioner.evaluation.clipscore import score_captions

        captioned = [result for result in results if result.get("caption")]
        if score is None or not captioned:
            return
        try:
            ratings = score_captions(score, [image] * len(captioned), [result["caption"] for result in captioned])
        except ModelError as error:
            raise ScoreUnavailable(str(error)) from None
        for result, rating in zip(captioned, ratings):
            result["clip_score"] = rating

    def find(self, kind: str, datasets: tuple[str, ...] = ()) -> LoadedModel | None:
        """The loaded model of ``kind`` trained on the first of ``datasets`` present, else any of that kind."""
        of_kind = [m for m in self.models.values() if kind in (m.captioner.kind, m.architecture)]
        for dataset in datasets:
            for loaded in of_kind:
                if loaded.info.dataset.lower() == dataset:
                    return loaded
        return of_kind[0] if of_kind else None

    def readiness(self) -> dict:
        return {"status": self.state, "default_model": self.default_model, "notes": self.notes,
                "problems": self.problems,
                "models": {name: {"kind": m.captioner.kind, "dataset": m.info.dataset, **m.batcher.snapshot()}
                           for name, m in self.models.items()}}

    def close(self) -> None:
        for loaded in self.models.values():
            loaded.batcher.close()


def model_decoding(captioner: Captioner, request: DecodingRequest, strict: bool = True,
                   loaded: Sequence[Captioner] = ()) -> Decoding:
    """The model's default decoding changed as the request says. A prompt the model refuses, or a style it
    cannot write, is BadOption (``strict``; the message names the ``loaded`` models that can write the style),
    or left out (comparing models: a prompt or style only concerns those that take it)."""
    from dataclasses import replace

    from captioner.models.base import check_prompt
    from captioner.models.styles import check_style

    try:
        prompt = check_prompt(captioner, request.prompt or "")
    except ValueError as error:
        if strict:
            raise BadOption(str(error)) from None
        prompt = check_prompt(captioner, "")
    try:
        check_style(captioner, request.style, loaded)
    except ValueError as error:
        if strict:
            raise BadOption(str(error)) from None
        request = replace(request, style=None)  # the model's own style
    return replace(request, prompt=None).for_default(captioner.default_decoding).with_changes(prompt=prompt)


def caption_payload(loaded: LoadedModel, decoding: Decoding, result: BatchedCaption, started: float,
                    attention: bool = False) -> dict:
    """The API's answer for one model; with ``attention``, the per-word maps of models that attend (else null)."""
    caption = result.caption
    extra = {"attention": caption.attention.to_dict() if caption.attention else None} if attention else {}
    return {
        "caption": caption.text,
        "score": caption.score,
        "alternatives": [{"text": a.text, "log_prob": a.log_prob} for a in caption.alternatives],
        "keywords": list(caption.keywords),  # the "keywords" style's list; empty for the others
        "keyword_scores": [round(p, 4) for p in caption.keyword_scores],  # a tagger's probability of each keyword
        "rating": ({"label": caption.rating[0], "probability": round(caption.rating[1], 4)}
                   if caption.rating else None),  # a tagger's content rating, apart from the keywords
        "model": loaded.name,
        "kind": loaded.captioner.kind,
        "dataset": loaded.info.dataset,
        "decoding": decoding.to_dict(),
        "timings": {"queue_ms": result.queue_ms, "model_ms": result.model_ms,
                    "total_ms": round((time.perf_counter() - started) * 1000, 2), "batch_size": result.batch_size},
        **extra,
    }


def error_summary(error: Exception) -> dict:
    if isinstance(error, Overloaded):
        return {"code": "overloaded", "message": str(error)}
    if isinstance(error, RequestTimeout):
        return {"code": "timeout", "message": str(error)}
    if isinstance(error, RemoteError):
        return {"code": "remote_unavailable" if error.unavailable else "remote_failed", "message": str(error)}
    log.error("model failed: %s", error)
    return {"code": "internal", "message": "the model failed on this image"}


def writable_folder(folder: Path) -> Path:
    """``folder`` if we may write there, else a cache folder (a read-only models volume still works)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        return folder
    except OSError:
        cache = environment.current().cache_base / "models"
        cache.mkdir(parents=True, exist_ok=True)
        log.warning("models folder %s is not writable: building the demo model in %s", folder, cache)
        return cache


__all__ = ["BadOption", "CaptionService", "DecodingRequest", "LoadedModel", "ModelError", "NotReady", "Overloaded",
           "RequestTimeout", "ScoreUnavailable", "UnknownModel"]
