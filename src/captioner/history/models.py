"""The caption history as SQLAlchemy 2 typed ORM classes (the schema the migrations create)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MAX_MODEL_NAME = 200  # longest model name stored
MAX_FILE_NAME = 255  # longest (sanitized) original file name stored
MAX_KEY_NAME = 100  # longest label of an API key


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """Base class of the history tables."""


class ApiKey(Base):
    """A key that opens a server with access control on. Only the key's SHA-256 is stored, never the key."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_KEY_NAME))  # who or what holds it, for people
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)  # sha256 hex of the key
    prefix: Mapped[str] = mapped_column(String(16))  # the key's first characters, to tell keys apart
    admin: Mapped[bool] = mapped_column(Boolean, default=False)  # sees every key's history
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class HistoryEntry(Base):
    """One saved caption: what the model said about an image, with a small thumbnail of that image.

    The original upload is never stored: only a re-encoded JPEG thumbnail without metadata.
    """

    __tablename__ = "history_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, index=True)
    model: Mapped[str] = mapped_column(String(MAX_MODEL_NAME), index=True)  # bundle name that captioned
    caption: Mapped[str] = mapped_column(Text)  # the best caption
    alternatives: Mapped[list] = mapped_column(JSON, default=list)  # [{"text", "log_prob"}], best first
    decoding: Mapped[dict] = mapped_column(JSON, default=dict)  # Decoding.to_dict() of the run, or {}
    translations: Mapped[dict] = mapped_column(JSON, default=dict)  # {"ar": "...", "de": "..."}
    thumbnail: Mapped[bytes] = mapped_column(LargeBinary)  # JPEG, at most THUMBNAIL_SIZE pixels a side
    width: Mapped[int] = mapped_column(Integer)  # of the uploaded image, in pixels
    height: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str | None] = mapped_column(String(MAX_FILE_NAME), nullable=True)  # sanitized
    # The API key that saved it; None: saved with access control off (the local, shared history).
    owner_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", name="fk_history_entries_owner_key_id"), nullable=True, index=True)

    def to_dict(self) -> dict:
        """Everything but the thumbnail bytes, JSON-ready."""
        created = self.created_at
        if created is not None and created.tzinfo is None:  # SQLite hands back naive datetimes
            created = created.replace(tzinfo=timezone.utc)
        return {
            "id": self.id,
            "created_at": created.isoformat() if created else None,
            "model": self.model,
            "caption": self.caption,
            "alternatives": list(self.alternatives or []),
            "decoding": dict(self.decoding or {}),
            "translations": dict(self.translations or {}),
            "width": self.width,
            "height": self.height,
            "file_name": self.file_name,
        }


class CaptionJob(Base):
    """A batch of uploaded images captioned in the background (``/api/v1/jobs``). The uploads live only in
    the memory of the server process that runs the job; a job whose process ended unfinished is marked
    failed, so it never waits forever."""

    __tablename__ = "caption_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random hex, unguessable
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, index=True)
    status: Mapped[str] = mapped_column(String(16))  # "queued", "running", "done" or "failed"
    model: Mapped[str] = mapped_column(String(MAX_MODEL_NAME))  # model that captions the job
    decoding: Mapped[dict] = mapped_column(JSON, default=dict)  # Decoding.to_dict() of the job
    total: Mapped[int] = mapped_column(Integer)  # images in the job
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why the job failed
    owner: Mapped[str] = mapped_column(String(200))  # "host:pid" of the server process running it
    # The API key that created it, as for history entries; None: created with access control off. No
    # foreign key: keys are only ever revoked, and adding one would rebuild this table on SQLite (0004).
    owner_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)


class CaptionJobItem(Base):
    """One image of a job and what became of it; the caption may be edited afterwards."""

    __tablename__ = "caption_job_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("caption_jobs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 0-based order of the upload
    file_name: Mapped[str | None] = mapped_column(String(MAX_FILE_NAME), nullable=True)  # sanitized
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)  # of the uploaded bytes
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    caption: Mapped[str | None] = mapped_column(Text, nullable=True)  # None until captioned, or on error
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # log-probability of the model's caption
    alternatives: Mapped[list] = mapped_column(JSON, default=list)
    edited: Mapped[bool] = mapped_column(Boolean, default=False)  # the caption was changed by a person
    tags: Mapped[list | None] = mapped_column(JSON, nullable=True)  # a tagger's [{"name", "probability"}], as found
    rating: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # a tagger's {"label", "probability"}
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why this image has no caption
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # JPEG, for saving to history
