"""A collection run: find the images, caption the new ones (in process or on Ray), translate, write
metadata, and append each batch's rows to the results file, in that order, so a row in the file means
everything for that image is done. Run the same command again and it carries on where it stopped.

Metadata fields (``write``) each come from a caption style: the description from ``caption``, alt text from
``alt-text``, the detailed description from ``detailed``, keywords from ``keywords``. Each style the model
writes is captioned as a row of its own (its decoding names the style); where the model writes no
``keywords`` style the keywords are the caption's nouns (:mod:`.keywords`), and where it writes no
``alt-text`` style the alt text is the caption, cut to the alt-text length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from captioner.collections.caption_files import CaptionFileSettings, CaptionFileTargets, conflict_message
from captioner.collections.keywords import caption_nouns
from captioner.collections.local import CollectionSettings, Produced, caption_collection
from captioner.collections.metadata import MetadataWriter, PhotoTexts, Text
from captioner.collections.provenance import Provenance
from captioner.collections.results import ResultRow, open_results, read_rows, recorded_decoding
from captioner.collections.walk import find_images
from captioner.errors import DataError
from captioner.models.base import ALT_TEXT_CHARACTERS, DEFAULT_STYLE, DecodingRequest, styles_of

FIELD_STYLES = {"description": "caption", "keywords": "keywords", "alt-text": "alt-text", "detailed": "detailed"}

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class CollectionJob:
    """What to caption, with which model, and where the results go."""

    roots: tuple[str, ...]  # folders (walked recursively) and image files
    out: str  # results file: .jsonl, .csv or .parquet
    translate: tuple[str, ...] = ()  # language codes to translate each caption into
    metadata: str | None = None  # None (off), "sidecar" or "embed"
    write: tuple[str, ...] = ("description",)  # metadata fields: description, keywords, alt-text, detailed
    existing: str = "skip"  # text captioner did not write: "skip" (left alone), "replace" or "append"
    sidecar_name: str = "full"  # "full" (IMG_0001.CR2.xmp) or "base" (IMG_0001.xmp)
    dry_run: bool = False  # caption and show what would be written, but write nothing
    engine: str = "local"  # "local" (this process) or "ray"
    address: str | None = None  # Ray cluster address ("auto", "ray://host:10001"); None starts a local Ray
    ray_actors: int = 1  # model copies (Ray actors) working at once
    model: str = ""  # the model as load_captioner names it (bundle path or alias), for Ray actors to load
    models_dir: str | None = None  # where a bundle name is looked up
    settings: CollectionSettings = CollectionSettings()
    score: str | None = None  # "clip": rate each caption with CLIPScore (the clip_score column); None: no score
    min_score: float | None = None  # captions scoring below this are marked for review and get no metadata
    captions: str | None = None  # None (off) or "txt": a caption file beside each image (training sets)
    caption_files: CaptionFileSettings = CaptionFileSettings()  # what goes into each caption file
    manifest: str | None = None  # None, "hf", "musubi" or "kohya": one manifest of the set's caption files
    wording: dict | None = None  # WordingOptions.to_dict() the captioner was made with, for Ray actors to remake it

    def __post_init__(self) -> None:
        from captioner.evaluation.clipscore import CLIP_WEIGHT, check_score

        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.manifest and not self.captions:
            raise ValueError("--manifest lists the caption files: add --captions txt")
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
    written: int = 0  # photos (or sidecars) whose metadata was written
    kept: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (photo, fields left as they were)
    caption_files: int = 0  # caption files written
    conflicts: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (caption file, its images)
    manifests: list[str] = field(default_factory=list)  # manifest files written
    review: list[ResultRow] = field(default_factory=list)  # captions below --min-score: no metadata written

    def to_dict(self) -> dict:
        return {"found": self.found, "captioned": self.captioned, "skipped": self.skipped,
                "failed": [{"path": row.path, "error": row.error} for row in self.failed],
                "metadata_written": self.written, "caption_files_written": self.caption_files,
                "conflicts": [{"caption_file": path, "images": list(images)} for path, images in self.conflicts],
                "manifests": list(self.manifests),
                "kept": [{"path": path, "fields": list(fields)} for path, fields in self.kept],
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
            if row.caption and row.decoding.get("style", DEFAULT_STYLE) == DEFAULT_STYLE:
                row.translations = {code: self.translator.translate(row.caption, code) for code in self.languages}


def run_collection(job: CollectionJob, captioner, decoding, *, translator=None,
                   on_start: Callable[[int], None] | None = None,
                   on_step: Callable[[Produced], None] | None = None,
                   say: Callable[[str], None] = lambda text: None) -> Summary:
    """Caption the collection ``job`` describes with ``captioner``; progress goes to ``on_step``."""
    from captioner.evaluation.clipscore import require_score_model

    require_score_model(job.score)  # a missing CLIP model stops the run before the first image
    translations = Translations(tuple(job.translate), translator)
    writer, extra = None, ()
    if job.metadata:
        writer = MetadataWriter(job.metadata, tuple(job.translate), tuple(job.write), job.existing, job.sidecar_name)
        writer.check()
        extra = style_decodings(captioner, decoding, job.write)
        if extra and job.engine != "local":
            raise ValueError("writing several caption styles (--write with alt-text, detailed or a model's "
                             "keywords) runs on the local engine: leave out --engine ray")
        say(("Dry run: would be " if job.dry_run else "") + writer.plan())
    files = None
    if job.captions:
        files = CaptionFileTargets(job.roots, job.caption_files)
        say(("Dry run: would be " if job.dry_run else "") + job.caption_files.describe())
    paths = list(find_images(job.roots))
    summary = Summary(found=len(paths))
    if files is not None:
        for target, images in files.find_conflicts(paths).items():
            summary.conflicts.append((str(target), tuple(map(str, images))))
            say(conflict_message(target, images))
    if on_start:
        on_start(len(paths))
    results = None if job.dry_run else open_results(job.out)
    try:
        earlier = results.rows if results is not None else read_rows(job.out)
        done = results.done if results is not None else {row.key for row in earlier}
        fresh_rows: list[ResultRow] = []  # this run's rows of the main style (for copies' caption files)
        recorded = recorded_decoding(captioner, decoding)
        for step in _steps(job, paths, captioner, decoding, done, extra):
            for row in step.rows:
                row.review = job.needs_review(row)
            translations.add(step.rows)
            if writer is not None:
                _write_metadata(writer, job, step.rows, summary, say)
            if files is not None:
                main_rows = [row for row in step.rows if row.decoding == recorded]
                _write_caption_files(files, job, main_rows, summary, say)
                fresh_rows.extend(main_rows)
            fresh = [row for row in step.rows if row.key not in done]  # a style captioned before is kept once
            if results is not None:
                results.append(fresh)
            else:
                done.update(row.key for row in fresh)
            main = [row for row in fresh if row.decoding == recorded]
            summary.skipped += step.skipped
            summary.captioned += sum(1 for row in main if row.caption)
            summary.failed.extend(row for row in main if row.error)
            summary.review.extend(row for row in fresh if row.review)
            if on_step:
                on_step(step)
        if files is not None:  # copies, and images captioned by an earlier run (their files follow today's settings)
            _write_other_caption_files(files, job, paths, [*earlier, *fresh_rows], captioner.name, recorded,
                                       summary, say)
        if files is not None and job.manifest:
            from captioner.collections.manifests import write_manifests

            if job.dry_run:
                say(f"would write the {job.manifest} manifest")
            else:
                summary.manifests = [str(path) for path in
                                     write_manifests(job.manifest, job.roots, job.caption_files.extension)]
    finally:
        if results is not None:
            results.close()
    return summary


def _write_caption_files(files: CaptionFileTargets, job: CollectionJob, rows: list[ResultRow], summary: Summary,
                         say: Callable[[str], None]) -> None:
    """Plan and (unless a dry run) write the caption file of each captioned image of ``rows``; stem conflicts and
    captions marked for review get none."""
    plans = []
    for row in rows:
        if not row.caption or files.blocked(Path(row.path)):
            continue
        if row.review:
            say(f"for review, no caption file written: {row.path} (CLIPScore {_shown(row.clip_score)})")
            continue
        plan = files.plan(row)
        if plan.decision.value is None and plan.decision.action != "unchanged":
            summary.kept.append((str(plan.target), ("caption file",)))
        if job.dry_run:
            say(f"{'would write' if plan.decision.value is not None else 'would leave'} {plan.describe()}")
        plans.append(plan)
    if not job.dry_run:
        summary.caption_files += files.write(plans)


def _write_other_caption_files(files: CaptionFileTargets, job: CollectionJob, paths: list[Path],
                               rows: list[ResultRow], model: str, wanted: dict, summary: Summary,
                               say: Callable[[str], None]) -> None:
    """The caption files of the images this run did not caption: copies of an image captioned in it, and images
    an earlier run captioned (brought up to date with a new trigger word, prefix, number of lines, ...), from
    their rows, matched by content."""
    import hashlib

    from captioner.collections.results import result_key

    by_key = {row.key: row for row in rows if row.caption and row.model == model and row.decoding == wanted}
    if not by_key:
        return
    rows = []
    for path in paths:
        if files.blocked(path) or files.planned(path):
            continue
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue
        row = by_key.get(result_key(digest, model, wanted))
        if row is not None:
            rows.append(ResultRow(**{**row.to_dict(), "path": str(path)}))
    _write_caption_files(files, job, rows, summary, say)


def _shown(score: float | None) -> str:
    return "-" if score is None else f"{score:.3f}"


def _score(row: ResultRow) -> float:
    return -1.0 if row.clip_score is None else row.clip_score


def style_decodings(captioner, decoding, fields) -> tuple:
    """The decodings, beside ``decoding``, that the metadata ``fields`` need: one per caption style that a
    field comes from and the model writes. A detailed description from a model without that style is refused."""
    offered = styles_of(captioner)
    if "detailed" in fields and "detailed" not in offered:
        raise ValueError(f"the model {captioner.name!r} cannot write detailed descriptions (it writes: "
                         f"{', '.join(offered)}); leave detailed out of --write or choose a model that writes it")
    wanted = dict.fromkeys(FIELD_STYLES[name] for name in fields if FIELD_STYLES[name] in offered)
    if DEFAULT_STYLE in offered:  # the description, and the nouns of keywords and alt text, need it
        wanted.setdefault(DEFAULT_STYLE, None)
    return tuple(DecodingRequest(style=style).for_default(decoding) for style in wanted if style != decoding.style)


def photo_texts(rows: list[ResultRow], fields) -> PhotoTexts:
    """The texts to write for one photo, from its rows (one per caption style)."""
    by_style = {row.decoding.get("style", DEFAULT_STYLE): row for row in rows if row.caption}
    caption = by_style.get(DEFAULT_STYLE)

    def source(row: ResultRow, style: str | None = None) -> Provenance:
        return Provenance.of(row.model, row.decoding, style or row.decoding.get("style", DEFAULT_STYLE))

    texts = []
    for name in fields:
        own = by_style.get(FIELD_STYLES[name])
        if name == "description" and caption:
            texts.append(Text(name, caption.caption, source(caption), translations=dict(caption.translations)))
        elif name == "keywords" and own:
            words = tuple(getattr(own, "keywords", ()) or (word.strip() for word in own.caption.split(",")))
            texts.append(Text(name, ", ".join(words), source(own), words=words))
        elif name == "keywords" and caption:
            words = caption_nouns(caption.caption)
            texts.append(Text(name, ", ".join(words), source(caption, "caption-nouns"), words=words))
        elif name == "alt-text" and (own or caption):
            texts.append(Text(name, _shortened((own or caption).caption), source(own or caption)))
        elif name == "detailed" and own:
            texts.append(Text(name, own.caption, source(own)))
    return PhotoTexts(Path(rows[0].path), tuple(texts))


def _shortened(text: str, limit: int = ALT_TEXT_CHARACTERS) -> str:
    """``text`` cut to at most ``limit`` characters, at a word boundary where there is one."""
    if len(text) <= limit:
        return text
    cut = text[:limit + 1].rsplit(" ", 1)[0]
    return (cut if cut and len(cut) <= limit else text[:limit]).rstrip(" ,;:-")


def _write_metadata(writer: MetadataWriter, job: CollectionJob, rows: list[ResultRow], summary: Summary,
                    say: Callable[[str], None]) -> None:
    """Plan and (unless a dry run) write each captioned photo's texts. A photo with a row marked for review
    (a caption below --min-score, which a person should look at first) gets no metadata at all."""
    by_photo: dict[str, list[ResultRow]] = {}
    for row in rows:
        if row.caption:
            by_photo.setdefault(row.path, []).append(row)
    for photo, photo_rows in by_photo.items():
        low = [row for row in photo_rows if row.review]
        if low:
            say(f"for review, nothing written: {photo} (CLIPScore {_shown(min(_score(row) for row in low))})")
            continue
        plan = writer.plan_photo(photo_texts(photo_rows, job.write))
        if plan.kept:
            summary.kept.append((str(plan.photo), tuple(plan.kept)))
        if job.dry_run:
            say(f"would write {plan.describe()}")
        elif writer.write(plan) is not None:
            summary.written += 1


def _steps(job: CollectionJob, paths: list[Path], captioner, decoding, done: set, extra=()) -> Iterator[Produced]:
    if job.engine == "ray":
        from captioner.collections.ray_engine import caption_on_ray

        return caption_on_ray(paths, captioner, decoding, done, job)
    return caption_collection(paths, captioner, decoding, done, job.settings, extra, job.score)

