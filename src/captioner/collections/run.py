"""A collection run: find the images, caption the new ones (in process or on Ray), translate, write
metadata, and append each batch's rows to the results file, in that order, so a row in the file means
everything for that image is done. Run the same command again and it carries on where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from captioner.collections.local import CollectionSettings, Produced, caption_collection
from captioner.collections.metadata import MetadataWriter
from captioner.collections.results import ResultRow, open_results, read_rows
from captioner.collections.walk import find_images
from captioner.errors import DataError

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class CollectionJob:
    """What to caption, with which model, and where the results go."""

    roots: tuple[str, ...]  # folders (walked recursively) and image files
    out: str  # results file: .jsonl, .csv or .parquet
    translate: tuple[str, ...] = ()  # language codes to translate each caption into
    metadata: str | None = None  # None (off), "sidecar" or "embed"
    dry_run: bool = False  # caption and show what would be written, but write nothing
    engine: str = "local"  # "local" (this process) or "ray"
    address: str | None = None  # Ray cluster address ("auto", "ray://host:10001"); None starts a local Ray
    ray_actors: int = 1  # model copies (Ray actors) working at once
    model: str = ""  # the model as load_captioner names it (bundle path or alias), for Ray actors to load
    models_dir: str | None = None  # where a bundle name is looked up
    settings: CollectionSettings = CollectionSettings()
    score: str | None = None  # "clip": rate each caption with CLIPScore (the clip_score column); None: no score
    min_score: float | None = None  # captions scoring below this are marked for review and get no metadata

    def __post_init__(self) -> None:
        from captioner.evaluation.clipscore import CLIP_WEIGHT, check_score

        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.ray_actors < 1:
            raise ValueError("the number of Ray actors must be at least 1")
        check_score(self.score)
        if self.min_score is not None:
            if self.score is None:
                raise ValueError("--min-score needs a score to compare with: add --score clip")
            if not 0 <= self.min_score <= CLIP_WEIGHT:
                raise ValueError(f"--min-score is a CLIPScore, between 0 and {CLIP_WEIGHT}, not {self.min_score}")

    def needs_review(self, row: ResultRow) -> bool:
        """A caption scored below ``min_score`` (or that could not be scored) waits for a person."""
        if self.min_score is None or not row.caption:
            return False
        return row.clip_score is None or row.clip_score < self.min_score


@dataclass
class Summary:
    """What a run did."""

    found: int = 0  # image files found
    captioned: int = 0  # new captions written
    skipped: int = 0  # already in the results file (or copies of an image captioned in this run)
    failed: list[ResultRow] = field(default_factory=list)  # unreadable files, with the reason
    review: list[ResultRow] = field(default_factory=list)  # captions below --min-score: no metadata written

    def to_dict(self) -> dict:
        return {"found": self.found, "captioned": self.captioned, "skipped": self.skipped,
                "failed": [{"path": row.path, "error": row.error} for row in self.failed],
                "review": [{"path": row.path, "caption": row.caption, "clip_score": row.clip_score}
                           for row in self.review]}


class Translations:
    """Adds the requested translations to rows through a translation backend."""

    def __init__(self, languages: tuple[str, ...], translator=None):
        self.languages = languages
        self.translator = translator
        if languages and translator is None:
            from captioner.translation import TranslationSettings, create_translator

            self.translator = create_translator(TranslationSettings.from_env())
            if self.translator is None:
                raise DataError("--translate needs a translation backend: set KEY and ENDPOINT for the Azure "
                                "Translator, or install MarianMT models (CAPTIONER_TRANSLATION_MODELS)")
        if languages:
            offered = self.translator.languages()
            missing = [code for code in languages if code not in offered]
            if missing:
                raise DataError(f"the {self.translator.name} translator cannot translate into {', '.join(missing)}; "
                                f"it offers {', '.join(offered) or 'none'}")

    def add(self, rows: list[ResultRow]) -> None:
        for row in rows:
            if row.caption:
                row.translations = {code: self.translator.translate(row.caption, code) for code in self.languages}


def run_collection(job: CollectionJob, captioner, decoding, *, translator=None,
                   on_start: Callable[[int], None] | None = None,
                   on_step: Callable[[Produced], None] | None = None,
                   say: Callable[[str], None] = lambda text: None) -> Summary:
    """Caption the collection ``job`` describes with ``captioner``; progress goes to ``on_step``."""
    from captioner.evaluation.clipscore import require_score_model

    require_score_model(job.score)  # a missing CLIP model stops the run before the first image
    translations = Translations(tuple(job.translate), translator)
    writer = MetadataWriter(job.metadata, tuple(job.translate)) if job.metadata else None
    if writer is not None:
        writer.check()
        say(("Dry run: would be " if job.dry_run else "") + writer.plan())
    paths = list(find_images(job.roots))
    summary = Summary(found=len(paths))
    if on_start:
        on_start(len(paths))
    results = None if job.dry_run else open_results(job.out)
    try:
        done = results.done if results is not None else {row.key for row in read_rows(job.out)}
        for step in _steps(job, paths, captioner, decoding, done):
            for row in step.rows:
                row.review = job.needs_review(row)
            translations.add(step.rows)
            if writer is not None:
                for row in step.rows:
                    if row.publishable:
                        say(f"would write {writer.describe(row)}") if job.dry_run else writer.write(row)
                    elif row.review:
                        say(f"for review, nothing written: {row.path} (CLIPScore {_shown(row.clip_score)})")
            if results is not None:
                results.append(step.rows)
            else:
                done.update(row.key for row in step.rows)
            summary.skipped += step.skipped
            summary.captioned += sum(1 for row in step.rows if row.caption)
            summary.failed.extend(row for row in step.rows if row.error)
            summary.review.extend(row for row in step.rows if row.review)
            if on_step:
                on_step(step)
    finally:
        if results is not None:
            results.close()
    return summary


def _shown(score: float | None) -> str:
    return "-" if score is None else f"{score:.3f}"


def _steps(job: CollectionJob, paths: list[Path], captioner, decoding, done: set) -> Iterator[Produced]:
    if job.engine == "ray":
        from captioner.collections.ray_engine import caption_on_ray

        return caption_on_ray(paths, captioner, decoding, done, job)
    return caption_collection(paths, captioner, decoding, done, job.settings, job.score)

