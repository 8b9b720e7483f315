"""Saving, finding, deleting and exporting history entries.

Entries belong to the API key that saved them (``owner_key_id``; None when access control is off). Reading
methods take ``visible_to``: a key id shows only that key's entries, None shows every entry (an admin key,
or a server without keys); :func:`visible` is that rule, for every table with an owner. Saving checks the
owner's :class:`HistoryQuota` in the same transaction.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator

from sqlalchemy import ColumnElement, Engine, delete, func, or_, select, true
from sqlalchemy.orm import Session, defer, sessionmaker

from captioner.errors import CaptionerError
from captioner.history.models import MAX_FILE_NAME, MAX_MODEL_NAME, HistoryEntry

MAX_CAPTION = 2000  # longest caption or translation accepted, in characters
MAX_ALTERNATIVES = 20  # most alternatives stored with an entry
MAX_PER_PAGE = 100  # largest page a listing returns
JPEG_MAGIC = b"\xff\xd8\xff"
LANGUAGE_CODE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
CSV_FIELDS = ("id", "created_at", "model", "caption", "alternatives", "decoding", "translations",
              "width", "height", "file_name")


class QuotaExceeded(CaptionerError):
    """Saving would take an owner past its quota of entries or bytes."""


@dataclass(frozen=True)
class HistoryQuota:
    """How much history one owner (API key) may keep."""

    max_entries: int = 0  # saved entries; 0: no cap
    max_bytes: int = 0  # thumbnail bytes; 0: no cap


@dataclass(frozen=True)
class HistoryPage:
    """One page of a listing, newest first."""

    entries: list[HistoryEntry]
    total: int  # entries matching the search, on all pages
    page: int  # 1-based
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


def sanitize_file_name(name: str | None) -> str | None:
    """The last path part of an uploaded file's name, printable and at most 255 characters, or None."""
    if not name:
        return None
    name = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in "CZ" or ch == " ").strip(" .")
    return name[:MAX_FILE_NAME] or None


def _check_text(value, what: str, limit: int = MAX_CAPTION) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be non-empty text")
    if len(value) > limit:
        raise ValueError(f"{what} is too long ({len(value)} characters; at most {limit})")
    return value.strip()


def _check_alternatives(alternatives) -> list[dict]:
    if not isinstance(alternatives, (list, tuple)):
        raise ValueError('alternatives must be a list of {"text": ..., "log_prob": ...}')
    checked = []
    for item in list(alternatives)[:MAX_ALTERNATIVES]:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise ValueError('each alternative must be {"text": "...", "log_prob": number}')
        log_prob = item.get("log_prob")
        if log_prob is not None and (isinstance(log_prob, bool) or not isinstance(log_prob, (int, float))
                                     or not math.isfinite(log_prob)):
            raise ValueError("an alternative's log_prob must be a finite number")
        checked.append({"text": _check_text(item["text"], "an alternative's text"), "log_prob": log_prob})
    return checked


def _check_translations(translations) -> dict[str, str]:
    if not isinstance(translations, dict):
        raise ValueError('translations must be an object like {"de": "..."}')
    checked = {}
    for code, text in translations.items():
        if not isinstance(code, str) or not LANGUAGE_CODE.match(code):
            raise ValueError(f"{code!r} is not a language code (like 'de' or 'zh-Hans')")
        checked[code] = _check_text(text, f"the {code} translation")
    return checked


def _check_decoding(decoding) -> dict:
    if not isinstance(decoding, dict):
        raise ValueError("decoding must be an object (the decoding settings used), or left out")
    if len(json.dumps(decoding)) > 2000:
        raise ValueError("decoding is too large")
    return decoding


class HistoryStore:
    """The history over one database (see :mod:`captioner.history.db` for the engine)."""

    def __init__(self, session_factory: sessionmaker[Session], engine: Engine | None = None):
        self._sessions = session_factory
        self.session_factory = session_factory  # for the other tables of the same database (API keys)
        self.engine = engine or session_factory.kw.get("bind")  # kept for disposal and health checks

    def close(self) -> None:
        """Release the database connections (the store must not be used afterwards)."""
        if self.engine is not None:
            self.engine.dispose()

    def add(self, *, model: str, caption: str, thumbnail: bytes, width: int, height: int,
            alternatives: Iterable[dict] = (), decoding: dict | None = None,
            translations: dict | None = None, file_name: str | None = None,
            owner_key_id: int | None = None, quota: HistoryQuota | None = None) -> HistoryEntry:
        """Save one caption; ``thumbnail`` is a JPEG from :func:`captioner.history.thumbnails.make_thumbnail`.

        Raises :class:`QuotaExceeded` (and saves nothing) when the owner's entries would pass ``quota``."""
        if not isinstance(thumbnail, bytes) or not thumbnail.startswith(JPEG_MAGIC):
            raise ValueError("the thumbnail must be JPEG bytes (use make_thumbnail)")
        for value, what in ((width, "width"), (height, "height")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"image {what} must be a positive whole number of pixels")
        entry = HistoryEntry(
            model=_check_text(model, "the model name", MAX_MODEL_NAME),
            caption=_check_text(caption, "the caption"),
            alternatives=_check_alternatives(list(alternatives)),
            decoding=_check_decoding(decoding or {}),
            translations=_check_translations(translations or {}),
            thumbnail=thumbnail, width=width, height=height,
            file_name=sanitize_file_name(file_name), owner_key_id=owner_key_id,
        )
        with self._sessions.begin() as session:
            if quota is not None:
                self._check_quota(session, owner_key_id, len(thumbnail), quota)
            session.add(entry)
            session.flush()
            session.expunge(entry)
        return entry

    @staticmethod
    def _check_quota(session: Session, owner_key_id: int | None, new_bytes: int, quota: HistoryQuota) -> None:
        entries, used = session.execute(_usage(owner_key_id)).one()
        if quota.max_entries and entries + 1 > quota.max_entries:
            raise QuotaExceeded(f"this history is full: it holds {entries} entries, the most one key may keep "
                                f"(CAPTIONER_HISTORY_MAX_ENTRIES); delete or export older entries first")
        if quota.max_bytes and used + new_bytes > quota.max_bytes:
            raise QuotaExceeded(f"this history is full: its thumbnails take {used / 1e6:.1f} MB of the "
                                f"{quota.max_bytes / 1e6:g} MB one key may keep (CAPTIONER_HISTORY_MAX_MB); "
                                "delete or export older entries first")

    def usage(self, owner_key_id: int | None) -> tuple[int, int]:
        """(entries, thumbnail bytes) that ``owner_key_id`` keeps."""
        with self._sessions() as session:
            entries, used = session.execute(_usage(owner_key_id)).one()
        return int(entries), int(used)

    def _matching(self, search: str = "", model: str = "", visible_to: int | None = None):
        query = (select(HistoryEntry).options(defer(HistoryEntry.thumbnail))
                 .where(visible(HistoryEntry.owner_key_id, visible_to)))
        search = (search or "").strip().lower()
        if search:
            query = query.where(or_(func.lower(HistoryEntry.caption).contains(search, autoescape=True),
                                    func.lower(HistoryEntry.model).contains(search, autoescape=True)))
        if model:
            query = query.where(HistoryEntry.model == model)
        return query

    def list(self, search: str = "", model: str = "", page: int = 1, per_page: int = 20,
             visible_to: int | None = None) -> HistoryPage:
        """Entries whose caption or model name contains ``search`` (any case), newest first."""
        if page < 1:
            raise ValueError("page must be 1 or more")
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be between 1 and {MAX_PER_PAGE}")
        query = self._matching(search, model, visible_to)
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(query.order_by(HistoryEntry.created_at.desc(), HistoryEntry.id.desc())
                                   .offset((page - 1) * per_page).limit(per_page)).all()
        return HistoryPage(entries=list(rows), total=total, page=page, per_page=per_page)

    def iter_entries(self, search: str = "", model: str = "", batch: int = 200,
                     visible_to: int | None = None) -> Iterator[HistoryEntry]:
        """Every matching entry, oldest first, fetched ``batch`` rows at a time (for exports)."""
        query = self._matching(search, model, visible_to).order_by(HistoryEntry.created_at, HistoryEntry.id)
        with self._sessions() as session:
            yield from session.scalars(query.execution_options(yield_per=batch))

    def get(self, entry_id: int, visible_to: int | None = None) -> HistoryEntry | None:
        with self._sessions() as session:
            return session.scalars(select(HistoryEntry).options(defer(HistoryEntry.thumbnail))
                                   .where(_entry(entry_id, visible_to))).first()

    def thumbnail(self, entry_id: int, visible_to: int | None = None) -> bytes | None:
        with self._sessions() as session:
            return session.scalar(select(HistoryEntry.thumbnail).where(_entry(entry_id, visible_to)))

    def models(self, visible_to: int | None = None) -> list[str]:
        """Names of the models that have entries, for a filter."""
        query = (select(HistoryEntry.model).distinct().where(visible(HistoryEntry.owner_key_id, visible_to))
                 .order_by(HistoryEntry.model))
        with self._sessions() as session:
            return list(session.scalars(query))

    def add_translations(self, entry_id: int, translations: dict[str, str],
                         visible_to: int | None = None) -> HistoryEntry | None:
        """Store (or replace) translations of an entry's caption, e.g. ``{"de": "ein roter Kreis"}``."""
        checked = _check_translations(translations)
        with self._sessions.begin() as session:
            entry = session.scalars(select(HistoryEntry).options(defer(HistoryEntry.thumbnail))
                                    .where(_entry(entry_id, visible_to))).first()
            if entry is None:
                return None
            entry.translations = {**(entry.translations or {}), **checked}
            session.flush()
            session.expunge(entry)
        return entry

    def delete(self, entry_id: int, visible_to: int | None = None) -> bool:
        """Remove an entry; False when there was none with that id (that ``visible_to`` may see)."""
        with self._sessions.begin() as session:
            return session.execute(delete(HistoryEntry).where(_entry(entry_id, visible_to))).rowcount > 0

    def delete_older_than(self, cutoff: datetime) -> int:
        """Remove every entry saved before ``cutoff`` (the retention cleanup); how many went."""
        with self._sessions.begin() as session:
            return session.execute(delete(HistoryEntry).where(HistoryEntry.created_at < cutoff)).rowcount


def _usage(owner_key_id: int | None):
    """(entries, thumbnail bytes) of one owner; None: the entries saved without a key."""
    owned = (HistoryEntry.owner_key_id.is_(None) if owner_key_id is None
             else HistoryEntry.owner_key_id == owner_key_id)
    return select(func.count(), func.coalesce(func.sum(func.length(HistoryEntry.thumbnail)), 0)).where(owned)


def visible(owner_key_id: ColumnElement, visible_to: int | None) -> ColumnElement[bool]:
    """The rows whose ``owner_key_id`` column ``visible_to`` may see: that key's own; every row for None."""
    return true() if visible_to is None else owner_key_id == visible_to


def _entry(entry_id: int, visible_to: int | None):
    return (HistoryEntry.id == entry_id) & visible(HistoryEntry.owner_key_id, visible_to)


def _csv_cell(value) -> str:
    """Text that a spreadsheet shows as text: a leading =, +, - or @ would otherwise run as a formula."""
    text = value if isinstance(value, str) else ("" if value is None else
                                                 json.dumps(value, ensure_ascii=False)
                                                 if isinstance(value, (list, dict)) else str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_csv(entries: Iterable[HistoryEntry]) -> Iterator[str]:
    """CSV text in pieces (header first); list-valued columns hold JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_FIELDS)
    for entry in entries:
        row = entry.to_dict()
        writer.writerow([_csv_cell(row[name]) for name in CSV_FIELDS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def export_json(entries: Iterable[HistoryEntry]) -> Iterator[str]:
    """A JSON array of :meth:`HistoryEntry.to_dict` objects, in pieces."""
    yield "["
    for number, entry in enumerate(entries):
        yield ("," if number else "") + "\n  " + json.dumps(entry.to_dict(), ensure_ascii=False)
    yield "\n]\n"
