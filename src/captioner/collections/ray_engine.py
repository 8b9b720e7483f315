"""The Ray engine: the same collection run on Ray Data, across the machines of a Ray cluster.

    read_binary_files(paths) -> map_batches(content sha256; drop images already in the results)
        -> map_batches(CaptionActor, an actor pool: one model per actor, a GPU each when the cluster has them)
        -> rows streamed back to this process, which appends them to the results file like the local engine.

So the results file, its exact resume and the translation and metadata steps are the same for both engines.
On a cluster every node needs captioner installed (``pip install 'captioner[ray]'`` with the model kind's
extra), and the paths and the model bundle must be readable on every node (a shared file system).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterator

from captioner import environment
from captioner.collections.local import Produced, decode_photo
from captioner.collections.results import ResultRow, recorded_decoding, result_key
from captioner.errors import CaptionerError, ImageError

ROW_COLUMNS = ("path", "sha256", "width", "height", "caption", "score", "alternatives", "error", "keywords",
               "clip_score")
STOPPED = "stopped"  # a column beside the rows: why the model could not caption at all ("" when it could)
LOCAL_EXTRA_CPUS = 1  # a local Ray gets a logical CPU beyond the actors, so the reading tasks never wait for one


class CaptionActor:
    """One Ray actor: loads the model once, then captions one batch of image bytes per call."""

    def __init__(self, model: str, models_dir: str | None, decoding: dict, max_side: int, max_pixels: int,
                 score: str | None = None, score_model: str | None = None, wording: dict | None = None):
        from captioner.models.base import Decoding
        from captioner.models.registry import load_captioner
        from captioner.collections.wording import WordingOptions, worded

        # the captioner the command made: the model, with the tags, template and language it was asked for
        self.captioner = worded(load_captioner(model, models_dir), WordingOptions(**(wording or {})))
        self.decoding = Decoding(**decoding)
        self.max_side, self.max_pixels = max_side, max_pixels
        self.score = score  # "clip": each actor also holds a CLIP and rates its captions
        self.score_model = score_model  # that CLIP, as the driver resolved it (the same on every node)

    def __call__(self, batch: dict) -> dict:
        from captioner.evaluation.clipscore import score_captions

        rows, images, decoded = [], [], []
        for path, digest, data in zip(batch["path"], batch["sha256"], batch["bytes"]):
            row = {"path": str(path), "sha256": str(digest), "width": None, "height": None, "caption": None,
                   "score": None, "alternatives": "[]", "error": None, "keywords": "[]",
                   "clip_score": None}
            rows.append(row)
            try:
                image, (row["width"], row["height"]) = decode_photo(bytes(data), str(path), max_pixels=self.max_pixels,
                                                                    max_side=self.max_side)
            except ImageError as error:
                row["error"] = str(error)
                continue
            images.append(image)
            decoded.append(row)
        stopped = ""
        try:
            captions = self.captioner.caption(images, self.decoding) if images else []
        except CaptionerError as error:  # the model cannot caption at all (a remote model's endpoint is down):
            captions, stopped = [], str(error)  # the run stops with this message, not with Ray's wrapped one
        if captions:
            ratings = score_captions(self.score, images, [caption.text for caption in captions], self.score_model)
            for row, caption, rating in zip(decoded, captions, ratings):
                row["caption"], row["score"], row["clip_score"] = caption.text, caption.score, rating
                row["alternatives"] = json.dumps([{"text": a.text, "log_prob": float(a.log_prob)}
                                                  for a in caption.alternatives])
                row["keywords"] = json.dumps(list(caption.keywords))
        return {**{name: [row[name] for row in rows] for name in ROW_COLUMNS}, STOPPED: [stopped] * len(rows)}


def identify(batch: dict, finished: frozenset) -> dict:
    """The batch with each file's content sha256, less the files whose results already exist."""
    digests = [hashlib.sha256(bytes(data)).hexdigest() for data in batch["bytes"]]
    keep = [index for index, digest in enumerate(digests) if digest not in finished]
    return {"path": [batch["path"][i] for i in keep], "sha256": [digests[i] for i in keep],
            "bytes": [bytes(batch["bytes"][i]) for i in keep]}


def caption_on_ray(paths: list[Path], captioner, decoding, done: set, job) -> Iterator[Produced]:
    """Caption ``paths`` on Ray (a local instance, or the cluster at ``job.address``); one Produced per
    batch of rows that comes back."""
    ray = _ray()
    started_here = _connect(ray, job)
    try:
        yield from _run(ray, paths, captioner, decoding, done, job)
    finally:
        if started_here:
            ray.shutdown()


def _run(ray, paths: list[Path], captioner, decoding, done: set, job) -> Iterator[Produced]:
    from captioner.evaluation.clipscore import score_model_name

    model, decoding_dict = captioner.name, recorded_decoding(captioner, decoding)
    settings_key = result_key("", model, decoding_dict)[1]
    finished = frozenset(identity for identity, key in done if key == settings_key)
    if not paths:
        return
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the command shows its own
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    dataset = (ray.data.read_binary_files([str(path) for path in paths], include_paths=True)
               .map_batches(identify, batch_size=job.settings.batch_size, fn_kwargs={"finished": finished})
               .map_batches(CaptionActor, batch_size=job.settings.batch_size,
                            compute=ray.data.ActorPoolStrategy(size=job.ray_actors),
                            num_gpus=gpus, num_cpus=0 if gpus else 1,
                            fn_constructor_kwargs={"model": job.model or model, "models_dir": job.models_dir,
                                                   "decoding": decoding.to_dict(), "max_side": job.settings.max_side,
                                                   "max_pixels": job.settings.max_pixels, "score": job.score,
                                                   "score_model": score_model_name() if job.score else None,
                                                   "wording": job.wording}))
    emitted, claimed = 0, set()
    for batch in dataset.iter_batches(batch_size=job.settings.batch_size, batch_format="numpy"):
        stopped = next((str(text) for text in batch[STOPPED] if text), "")
        if stopped:
            raise CaptionerError(stopped)
        step = Produced()
        for values in zip(*(batch[name] for name in ROW_COLUMNS)):
            path, digest, width, height, caption, score, alternatives, error, keywords, rating = values
            emitted += 1
            if digest in claimed:  # a second copy of the same picture: one row per content
                step.skipped += 1
                continue
            claimed.add(digest)
            caption, error = _text(caption), _text(error)
            step.rows.append(ResultRow(str(path), str(digest), _int(width), _int(height), model, decoding_dict,
                                       caption=caption, score=_number(score),
                                       alternatives=json.loads(_text(alternatives) or "[]"), error=error,
                                       keywords=json.loads(_text(keywords) or "[]"), clip_score=_number(rating)))
        yield step
    yield Produced(skipped=len(paths) - emitted)


def _text(value) -> str | None:
    """A text cell as it came back through Arrow: None (or NaN, for a column that was all empty) is None."""
    return value if isinstance(value, str) and value else (str(value) if isinstance(value, bytes) else None)


def _number(value) -> float | None:
    """A float cell as it came back through Arrow: None, or NaN for a missing value, is None."""
    try:
        number = None if value is None else float(value)
    except (TypeError, ValueError):
        return None
    return None if number is None or number != number else number


def _int(value) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise CaptionerError("--engine ray needs Ray Data: pip install 'captioner[ray]'") from None
    return ray


def _connect(ray, job) -> bool:
    """Join the cluster at ``job.address``, or start a local Ray; True when this call started it."""
    if ray.is_initialized():
        return False
    options = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    if environment.chosen():  # command-line options (--precision) reach the workers' model loading too
        options["runtime_env"] = {"env_vars": environment.chosen()}
    if job.address:
        try:
            ray.init(address=job.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise CaptionerError(f"cannot join the Ray cluster at {job.address} ({error}); "
                                 "check --address and that the cluster is running") from None
    else:
        ray.init(num_cpus=max(os.cpu_count() or 1, job.ray_actors + LOCAL_EXTRA_CPUS), **options)
    return True
