"""Background caption jobs in the database: created with their images' names, filled in as images are
captioned, read by any server process, and marked failed when the process that ran them is gone. A job
belongs to the API key that created it, exactly as a history entry does (see :func:`visible`)."""

from __future__ import annotations

import os
import socket
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from captioner.history.models import CaptionJob, CaptionJobItem
from captioner.history.store import MAX_CAPTION, sanitize_file_name, visible

FINISHED = ("done", "failed")
RESTARTED = ("the server stopped before this job finished (the uploaded images are kept only in memory); "
             "send the images again")


class JobStore:
    """Creating, updating and reading jobs; every method is one short transaction."""

    def __init__(self, session_factory: sessionmaker[Session]):
        self._sessions = session_factory

    def create(self, model: str, decoding: dict, files: list[dict], owner_key_id: int | None = None) -> str:
        """A new queued job; ``files`` are {"file_name", "sha256", "width", "height", "error"} per image."""
        job_id = uuid.uuid4().hex
        with self._sessions.begin() as session:
            session.add(CaptionJob(id=job_id, status="queued", model=model, decoding=decoding, total=len(files),
                                   owner=_owner(), owner_key_id=owner_key_id))
            for position, item in enumerate(files):
                session.add(CaptionJobItem(job_id=job_id, position=position, alternatives=[], edited=False,
                                           file_name=sanitize_file_name(item.get("file_name")),
                                           sha256=item.get("sha256"), width=item.get("width"),
                                           height=item.get("height"), error=item.get("error")))
        return job_id

    def set_status(self, job_id: str, status: str, error: str | None = None) -> None:
        with self._sessions.begin() as session:
            session.execute(update(CaptionJob).where(CaptionJob.id == job_id).values(status=status, error=error))

    def set_result(self, job_id: str, position: int, **values) -> None:
        """Fill in one image: caption, score, alternatives, thumbnail, width, height, or error."""
        with self._sessions.begin() as session:
            session.execute(update(CaptionJobItem).where(CaptionJobItem.job_id == job_id,
                                                         CaptionJobItem.position == position).values(**values))

    def edit_caption(self, job_id: str, position: int, caption: str, visible_to: int | None = None) -> dict | None:
        caption = caption.strip() if isinstance(caption, str) else ""
        if not caption or len(caption) > MAX_CAPTION:
            raise ValueError(f"the caption must be 1 to {MAX_CAPTION} characters of text")
        with self._sessions.begin() as session:
            item = session.scalar(select(CaptionJobItem).join(CaptionJob)
                                  .where(CaptionJobItem.job_id == job_id, CaptionJobItem.position == position,
                                         visible(CaptionJob.owner_key_id, visible_to)))
            if item is None or item.error is not None:
                return None
            item.caption, item.edited = caption, True
            return item_json(item)

    def get(self, job_id: str, visible_to: int | None = None) -> dict | None:
        """The job with its items, in upload order; an unfinished job whose process is gone is failed first.
        None when there is no such job that ``visible_to`` may see."""
        with self._sessions.begin() as session:
            job = session.scalar(select(CaptionJob).where(CaptionJob.id == job_id,
                                                          visible(CaptionJob.owner_key_id, visible_to)))
            if job is None:
                return None
            if job.status not in FINISHED and not _alive(job.owner):
                job.status, job.error = "failed", RESTARTED
            items = session.scalars(select(CaptionJobItem).where(CaptionJobItem.job_id == job_id)
                                    .order_by(CaptionJobItem.position)).all()
            done = sum(1 for item in items if item.caption is not None or item.error is not None)
            return {"id": job.id, "status": job.status, "model": job.model, "decoding": dict(job.decoding or {}),
                    "total": job.total, "done": done, "error": job.error,
                    "created_at": job.created_at.isoformat() if job.created_at else None,
                    "items": [item_json(item) for item in items]}

    def thumbnails(self, job_id: str) -> dict[int, bytes]:
        with self._sessions.begin() as session:
            rows = session.execute(select(CaptionJobItem.position, CaptionJobItem.thumbnail)
                                   .where(CaptionJobItem.job_id == job_id)).all()
            return {position: thumbnail for position, thumbnail in rows if thumbnail}

    def fail_orphans(self) -> int:
        """Mark failed every unfinished job whose process on this host is gone (run at server start)."""
        failed = 0
        with self._sessions.begin() as session:
            for job in session.scalars(select(CaptionJob).where(CaptionJob.status.not_in(FINISHED))):
                if not _alive(job.owner):
                    job.status, job.error = "failed", RESTARTED
                    failed += 1
        return failed


def item_json(item: CaptionJobItem) -> dict:
    return {"index": item.position, "file_name": item.file_name, "sha256": item.sha256, "width": item.width,
            "height": item.height, "caption": item.caption, "score": item.score,
            "alternatives": list(item.alternatives or []), "edited": bool(item.edited), "error": item.error,
            "tags": list(item.tags or []), "rating": item.rating}


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(owner: str) -> bool:
    """Whether the server process ``host:pid`` still runs; processes on other hosts are assumed alive."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    if owner == _owner():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True
