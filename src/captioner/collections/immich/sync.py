"""Captioning an Immich library in place: the photo library's rules, through Immich's API.

For each image asset (of one album, or all), page by page:
1. its current description is read, and decided on with the one rule for text already there
   (:func:`captioner.collections.existing_text.decide`): a person's description is kept (``skip``),
   replaced or appended to, as asked; captioner's own (it is still exactly what the local state says
   captioner wrote) is replaced when the model, style or settings changed and left when they did not;
2. only the assets that need a caption are captioned: their preview thumbnails are fetched, decoded through
   the one safe loader, and captioned in one batch per chunk;
3. the description is written (``PUT /api/assets/{id}``) and the state records it; tags (the caption's
   keywords, or its nouns) are created or reused by name and put on the asset. A person's tags are never
   removed.
A dry run reads and captions but writes nothing, and says per asset what it would do. The state is saved
after each asset, so a stopped run resumes: what was written is "unchanged" the next time, without captioning.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice

from captioner.collections.existing_text import decide
from captioner.collections.immich.client import PAGE_SIZE, ImmichClient
from captioner.collections.immich.state import ImmichState
from captioner.collections.keywords import caption_nouns
from captioner.collections.metadata import APPENDED
from captioner.collections.provenance import Provenance
from captioner.errors import ImageError
from captioner.progress import progress_bar

log = logging.getLogger(__name__)

FIELDS = ("description", "tags")  # what --write may name
CHUNK = 16  # assets captioned together


@dataclass(frozen=True)
class SyncSettings:
    fields: tuple[str, ...] = ("description",)  # which of FIELDS to write
    existing: str = "skip"  # one of captioner.collections.metadata.EXISTING, for a person's description
    dry_run: bool = False  # read and caption, write nothing
    concurrency: int = 4  # requests to Immich at the same time
    album: str | None = None  # only this album's assets
    page_size: int = PAGE_SIZE  # assets per search page

    def __post_init__(self) -> None:
        from captioner.collections.metadata import EXISTING

        unknown = [name for name in self.fields if name not in FIELDS]
        if unknown or not self.fields:
            raise ValueError(f"--write takes one or more of {', '.join(FIELDS)}, not {','.join(unknown) or 'nothing'}")
        if self.existing not in EXISTING:
            raise ValueError(f"--existing must be one of {', '.join(EXISTING)}, not {self.existing!r}")
        if self.concurrency < 1:
            raise ValueError("--concurrency must be at least 1")


@dataclass
class AssetPlan:
    """What happens to one asset."""

    id: str
    current: str  # its description now
    record: dict  # captioner's record of the description it wrote, from the state ({} if none)
    tags_source: dict  # the settings captioner's tags on it were made with, from the state ({} if none)
    description: tuple[str, str | None] | None = None  # (action, value to write or None)
    words: tuple[str, ...] = ()  # tags to add
    tags_action: str | None = None  # "+N" or "unchanged"
    caption: str = ""
    error: str = ""


@dataclass
class SyncReport:
    counts: Counter = field(default_factory=Counter)  # "description new", "tags added", "failed", ...
    lines: list[str] = field(default_factory=list)  # a dry run's plan, one line per asset
    failures: list[str] = field(default_factory=list)  # one line per asset that could not be captioned

    def summary(self) -> str:
        return ", ".join(f"{count} {name}" for name, count in sorted(self.counts.items())) or "no image assets"


def sync_library(client: ImmichClient, state: ImmichState, captioner, decoding, settings: SyncSettings,
                 show_progress: bool = True) -> SyncReport:
    """Caption every image asset the settings select and write what they ask for; what was done, counted."""
    provenance = Provenance.of(captioner.name, decoding.to_dict(), decoding.style or "caption")
    report = SyncReport()
    assets = client.images(settings.album, settings.page_size)
    with ThreadPoolExecutor(settings.concurrency) as pool, \
            progress_bar(desc="Immich", unit="asset", enabled=show_progress) as bar:
        while chunk := list(islice(assets, CHUNK)):
            plans = list(pool.map(lambda asset: _read(client, state, asset["id"]), chunk))
            wanted = [plan for plan in plans if _needs_caption(plan, provenance, settings)]
            _caption(client, pool, captioner, decoding, wanted)
            for plan in plans:
                _decide(plan, state, provenance, settings)
            _each(pool, lambda plan: _write(client, state, plan, provenance, settings), plans)
            for plan in plans:
                _count(report, plan, settings)
            bar.update(len(plans))
    return report


def _each(pool: ThreadPoolExecutor, work, items: list) -> None:
    """``work(item)`` for every item, at the pool's concurrency; the first failure cancels what has not started
    (the state holds what was done, so the next run resumes there) and is raised."""
    futures = [pool.submit(work, item) for item in items]
    try:
        for future in futures:
            future.result()
    finally:
        for future in futures:
            future.cancel()


def _read(client: ImmichClient, state: ImmichState, asset_id: str) -> AssetPlan:
    return AssetPlan(asset_id, client.description(asset_id), state.description(asset_id), state.tags_source(asset_id))


def _needs_caption(plan: AssetPlan, provenance: Provenance, settings: SyncSettings) -> bool:
    """Whether a caption could change anything: a description to write, or tags not yet added this way.
    Decides the description of an asset that needs none (unchanged, or a person's kept)."""
    needed = False
    if "description" in settings.fields:
        action, _, _ = _rule(plan, provenance, settings, "")
        if action == "unchanged" or action.startswith("kept"):
            plan.description = (action, None)
        else:
            needed = True
    if "tags" in settings.fields:
        if provenance.same_source(plan.tags_source):
            plan.tags_action = "unchanged"
        else:
            needed = True
    return needed


def _rule(plan: AssetPlan, provenance: Provenance, settings: SyncSettings, text: str):
    current = [plan.current] if plan.current.strip() else []
    decision = decide(current, plan.record.get("Text"), provenance.same_source(plan.record), text,
                      settings.existing, APPENDED)
    return decision.action, decision.value, decision.wholly_ours


def _caption(client: ImmichClient, pool: ThreadPoolExecutor, captioner, decoding, plans: list[AssetPlan]) -> None:
    """Fetch and caption the thumbnails of ``plans`` (an unreadable one is that asset's error, not the run's)."""
    from captioner.data.images import image_from_bytes

    def load(plan: AssetPlan):
        try:
            return image_from_bytes(client.thumbnail(plan.id), name=f"the thumbnail of asset {plan.id}")
        except ImageError as error:
            plan.error = str(error)
            return None

    images = list(pool.map(load, plans))
    ready = [(plan, image) for plan, image in zip(plans, images) if image is not None]
    if not ready:
        return
    captions = captioner.caption([image for _, image in ready], decoding=decoding)
    for (plan, _), caption in zip(ready, captions):
        plan.caption = caption.text
        plan.words = tuple(caption.keywords) or caption_nouns(caption.text)


def _decide(plan: AssetPlan, state: ImmichState, provenance: Provenance, settings: SyncSettings) -> None:
    """With the caption made: the description to write, and the tags not yet on the asset."""
    if not plan.caption:
        return
    if "description" in settings.fields and plan.description is None:
        action, value, _ = _rule(plan, provenance, settings, plan.caption)
        plan.description = (action, value)
    if "tags" in settings.fields and plan.tags_action is None:
        added = {tag.lower() for tag in state.tags(plan.id)}
        plan.words = tuple(word for word in plan.words if word.lower() not in added)
        plan.tags_action = f"+{len(plan.words)}" if plan.words else "unchanged"


def _write(client: ImmichClient, state: ImmichState, plan: AssetPlan, provenance: Provenance,
           settings: SyncSettings) -> None:
    if plan.error or settings.dry_run or not plan.caption:
        return
    if plan.description and plan.description[1] is not None:
        client.set_description(plan.id, plan.description[1])
        state.remember(plan.id, description=provenance.record(plan.caption))
    if "tags" in settings.fields and not provenance.same_source(plan.tags_source):
        if plan.words:
            ids = client.tag_ids(list(plan.words))
            client.tag_assets(sorted(set(ids.values())), [plan.id])
        state.remember(plan.id, tags=list(plan.words), tags_source=provenance.record(""))


def _count(report: SyncReport, plan: AssetPlan, settings: SyncSettings) -> None:
    if plan.error:
        report.counts["failed"] += 1
        report.lines.append(f"asset {plan.id}: {plan.error}")
        report.failures.append(report.lines[-1])
        log.warning("asset %s: %s", plan.id, plan.error)
        return
    parts = []
    if plan.description:
        action, value = plan.description
        report.counts["description " + action.split(":")[0]] += 1
        parts.append(f"description {action}" + (f" {value!r}" if value is not None else ""))
    if plan.tags_action:
        report.counts["tags added" if plan.words else "tags unchanged"] += 1
        parts.append(f"tags {plan.tags_action}" + (f" ({', '.join(plan.words)})" if plan.words else ""))
    report.lines.append(f"asset {plan.id}: " + "; ".join(parts))
