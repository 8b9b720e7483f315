"""The retention cleanup: entries older than the retention period are deleted, at start and then every
interval, by a daemon thread in each server process (deleting the same old rows twice is harmless)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from captioner.history.models import utc_now
from captioner.history.store import HistoryStore

log = logging.getLogger(__name__)


class RetentionCleanup:
    def __init__(self, store: HistoryStore, days: float, interval_s: float):
        if days <= 0 or interval_s <= 0:
            raise ValueError("retention days and the cleanup interval must be positive")
        self.store = store
        self.days = days  # entries older than this many days go
        self.interval_s = interval_s  # seconds between runs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Delete what is past the retention period now; how many entries went."""
        removed = self.store.delete_older_than(utc_now() - timedelta(days=self.days))
        if removed:
            log.info("history retention: deleted %d entries older than %g days", removed, self.days)
        return removed

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except SQLAlchemyError as error:  # the database is away: try again next time
                log.warning("history retention cleanup failed (%s); trying again in %g s",
                            str(error).splitlines()[0], self.interval_s)
            self._stop.wait(self.interval_s)

    def start(self) -> "RetentionCleanup":
        self._thread = threading.Thread(target=self._loop, name="history-retention", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
