"""The newest ``captioner compare`` report, served as written at ``/compare-report/``.

Only when the operator names a reports folder (``CAPTIONER_REPORTS_DIR``): a report shows thumbnails and
file names of their photos. Only the files a report consists of are served (any other name is 404, and
``send_from_directory`` refuses paths that leave the folder), under a policy stricter than the pages':
the report has no scripts, so none may run.
"""

from __future__ import annotations

import json
import re

from flask import Blueprint, abort, current_app, send_from_directory

bp = Blueprint("reports", __name__)

REPORT_FILES = re.compile(r"^(index\.html|report\.css|scores\.png|summary\.json|summary\.csv|captions\.jsonl|"
                          r"thumbs/\d{3,}\.jpg)$")
REPORT_POLICY = ("default-src 'none'; img-src 'self'; style-src 'self'; base-uri 'none'; form-action 'none'; "
                 "frame-ancestors 'none'")


def latest() -> dict | None:
    """The newest report's folder and summary ({"path", "created_at", "photos", "models", "style"}), or None
    when no reports folder is set or it holds none."""
    from captioner.collections.compare_report import REPORT_MARKER, latest_report

    folder = current_app.config["CAPTIONER_SETTINGS"].reports_dir
    found = latest_report(folder) if folder else None
    if found is None:
        return None
    try:
        summary = json.loads((found / REPORT_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {"path": found, "created_at": summary.get("created_at", ""), "photos": summary.get("photos"),
            "style": summary.get("style", ""), "models": [row.get("model") for row in summary.get("models", [])]}


@bp.route("/compare-report/")
@bp.route("/compare-report/<path:name>")
def compare_report(name: str = "index.html"):
    report = latest()
    if report is None or not REPORT_FILES.match(name):
        abort(404)
    response = send_from_directory(report["path"], name, max_age=0)
    response.headers["Content-Security-Policy"] = REPORT_POLICY
    return response
