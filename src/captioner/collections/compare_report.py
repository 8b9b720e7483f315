"""The report of ``captioner compare``: one folder a person opens in a browser, written all or nothing.

```
REPORT_DIR/
  index.html     the table, the plot, and every photo's thumbnail with each model's caption and CLIPScore
  report.css     its style (no scripts, no fonts or files from elsewhere: it works offline and from disk)
  scores.png     each model's CLIPScores over the photos (box and points) and its latency
  summary.json   the table and the run's settings, for scripts
  summary.csv    the table
  captions.jsonl one line per photo and model: {"photo", "model", "caption", "clip_score"}
  thumbs/        NNN.jpg, the photos shrunk (named by number: the photos' own names only appear as text)
```
The folder is built beside its target and renamed into place when complete (:func:`captioner.files.staged_folder`),
so the web app, which shows the newest report, never sees half of one.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from captioner import environment
from captioner.evaluation.clipscore import CLIP_WEIGHT
from captioner.collections.compare import Comparison
from captioner.files import staged_folder

DEFAULT_REPORTS_DIR = "reports"  # where reports go when --out is not given, and where the web app looks
REPORT_MARKER = "summary.json"  # a folder holding this (and index.html) is a compare report
THUMBNAIL_SIDE = 320  # pixels, the longer side of each thumbnail
TABLE_COLUMNS = ("model", "mean_clip_score", "clip_score_spread", "median_latency_ms", "distinct_share", "refusals")
STYLE = """\
:root { color-scheme: light dark; --line: #8884; --muted: #777; --accent: #2f6fde; }
body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } .muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: 1rem 0 2rem; }
th, td { border-bottom: 1px solid var(--line); padding: 0.4rem 0.6rem; text-align: left; vertical-align: top; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
.plot { max-width: 100%; height: auto; border: 1px solid var(--line); }
.photos img { width: 100%; max-width: 16rem; height: auto; display: block; border-radius: 4px; }
.photo-name { font-size: 0.8rem; color: var(--muted); word-break: break-all; }
.badge { display: inline-block; border-radius: 999px; padding: 0 0.5rem; font-size: 0.8rem;
         border: 1px solid var(--accent); color: var(--accent); white-space: nowrap; }
.refused { color: var(--muted); font-style: italic; }
"""


def write_compare_report(comparison: Comparison, out: str | os.PathLike) -> Path:
    """Write the report folder ``out`` (replacing an older report there); returns it."""
    summaries = comparison.summaries()
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    with staged_folder(out) as folder:
        (folder / "thumbs").mkdir()
        for number, photo in enumerate(comparison.photos, start=1):
            small = photo.image.copy()
            small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            small.save(folder / "thumbs" / f"{number:03d}.jpg", format="JPEG", quality=85)
        scores_figure(comparison).savefig(folder / "scores.png", dpi=110, format="png")
        (folder / "report.css").write_text(STYLE, encoding="utf-8")
        (folder / "index.html").write_text(report_html(comparison, summaries, created), encoding="utf-8")
        (folder / "summary.csv").write_text(summary_csv(summaries), encoding="utf-8")
        (folder / "captions.jsonl").write_text("".join(
            json.dumps({"photo": photo.path, "model": run.name, "caption": run.captions[index],
                        "clip_score": run.scores[index]}, ensure_ascii=False) + "\n"
            for index, photo in enumerate(comparison.photos) for run in comparison.runs), encoding="utf-8")
        (folder / REPORT_MARKER).write_text(json.dumps({
            "created_at": created, "folder": comparison.folder, "found": comparison.found,
            "photos": len(comparison.photos), "style": comparison.style, "score": "CLIPScore (2.5 * max(cos, 0))",
            "score_model": comparison.score_model, "models": summaries,
            "unreadable": [{"path": path, "error": error} for path, error in comparison.unreadable],
        }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(out)


def reports_dir(path: str | os.PathLike | None = None) -> Path:
    """The reports folder: ``path``, else CAPTIONER_REPORTS_DIR, else ./reports."""
    return Path(path or environment.current().reports_dir or DEFAULT_REPORTS_DIR)


def new_report_path(root: str | os.PathLike | None = None) -> Path:
    """A fresh folder name for a report in the reports folder: compare-YYYYMMDD-HHMMSS."""
    return reports_dir(root) / datetime.now(timezone.utc).strftime("compare-%Y%m%d-%H%M%S")


def is_report(folder: Path) -> bool:
    return (folder / "index.html").is_file() and (folder / REPORT_MARKER).is_file()


def latest_report(root: str | os.PathLike | None = None) -> Path | None:
    """The newest compare report directly inside the reports folder (by when it was written), or None."""
    folder = reports_dir(root)
    if not folder.is_dir():
        return None
    reports = [child for child in folder.iterdir() if not child.name.startswith(".") and is_report(child)]
    return max(reports, key=lambda child: (child / REPORT_MARKER).stat().st_mtime, default=None)


def shown(value, kind: str) -> str:
    """A table cell: scores to 3 places, latency in ms, shares in per cent, '—' for none."""
    if value is None:
        return "—"
    if kind == "score":
        return f"{value:.3f}"
    if kind == "ms":
        return f"{value:,.0f} ms"
    if kind == "share":
        return f"{value:.0%}"
    return str(value)


def summary_csv(summaries: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    for row in summaries:
        writer.writerow("" if row[name] is None else row[name] for name in TABLE_COLUMNS)
    return buffer.getvalue()


def report_html(comparison: Comparison, summaries: list[dict], created: str) -> str:
    models = [run.name for run in comparison.runs]
    table = "".join(
        f"<tr><th scope=\"row\">{escape(row['model'])}</th>"
        f"<td class=\"number\">{shown(row['mean_clip_score'], 'score')}</td>"
        f"<td class=\"number\">{shown(row['clip_score_spread'], 'score')}</td>"
        f"<td class=\"number\">{shown(row['median_latency_ms'], 'ms')}</td>"
        f"<td class=\"number\">{shown(row['distinct_share'], 'share')}</td>"
        f"<td class=\"number\">{row['refusals']}"
        + (f" <span class=\"muted\">({escape(row['refused'])})</span>" if row["refused"] else "") + "</td></tr>"
        for row in summaries)
    photos = []
    for number, photo in enumerate(comparison.photos, start=1):
        cells = [f"<td><img src=\"thumbs/{number:03d}.jpg\" alt=\"Photo {number}\" loading=\"lazy\">"
                 f"<div class=\"photo-name\">{escape(photo.name or photo.path)}</div></td>"]
        for run in comparison.runs:
            caption, score = run.captions[number - 1], run.scores[number - 1]
            cells.append("<td class=\"refused\">refused</td>" if caption is None else
                         f"<td>{escape(caption)} <span class=\"badge\" title=\"CLIPScore\">{shown(score, 'score')}"
                         "</span></td>")
        photos.append("<tr>" + "".join(cells) + "</tr>")
    unreadable = "".join(f"<li>{escape(path)}: {escape(error)}</li>" for path, error in comparison.unreadable)
    heads = "".join(f"<th scope=\"col\">{escape(name)}</th>" for name in models)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Captioners compared on your photos</title>
<link rel="stylesheet" href="report.css">
</head>
<body>
<h1>Captioners compared on your photos</h1>
<p class="muted">{len(comparison.photos)} of the {comparison.found} images in {escape(comparison.folder)},
style <strong>{escape(comparison.style)}</strong>, written {escape(created[:16].replace("T", " "))} UTC. Each caption is
rated with CLIPScore (from 0 to {CLIP_WEIGHT}, higher: CLIP finds the caption fits the photo better) by
{escape(Path(comparison.score_model).name)}.</p>
<table class="summary">
<caption class="muted">Mean CLIPScore and its spread (standard deviation) over the photos, median time per photo,
share of distinct captions, and photos each model gave no caption for.</caption>
<thead><tr><th scope="col">Model</th><th scope="col" class="number">Mean CLIPScore</th>
<th scope="col" class="number">Spread</th><th scope="col" class="number">Latency</th>
<th scope="col" class="number">Distinct captions</th><th scope="col" class="number">Refusals</th></tr></thead>
<tbody>{table}</tbody>
</table>
<img class="plot" src="scores.png" alt="Each model's CLIPScores over the photos, and its latency">
<h2>Every photo</h2>
<table class="photos">
<thead><tr><th scope="col">Photo</th>{heads}</tr></thead>
<tbody>{"".join(photos)}</tbody>
</table>
{f'<h2>Not readable</h2><ul>{unreadable}</ul>' if unreadable else ''}
</body>
</html>
"""


def scores_figure(comparison: Comparison):
    """Left: each model's CLIPScores (a box and the points, the mean marked); right: its median latency."""
    from matplotlib.figure import Figure

    runs = comparison.runs
    figure = Figure(figsize=(9, 0.6 * len(runs) + 2.2), layout="constrained")
    scores_axes, latency_axes = figure.subplots(1, 2, width_ratios=(3, 1.3), sharey=True)
    positions = list(range(1, len(runs) + 1))
    values = [[score for score in run.scores if score is not None] for run in runs]
    drawn = [(position, value) for position, value in zip(positions, values) if value]
    if drawn:
        scores_axes.boxplot([value for _, value in drawn], positions=[p for p, _ in drawn], orientation="horizontal",
                            widths=0.5, showfliers=False)
    for position, value in zip(positions, values):
        scores_axes.scatter(value, [position] * len(value), s=14, alpha=0.6, zorder=3)
        if value:
            scores_axes.scatter([sum(value) / len(value)], [position], marker="D", color="black", s=28, zorder=4)
        else:
            scores_axes.text(0.02, position, "refused", va="center", color="0.4")
    scores_axes.set_yticks(positions, [run.name for run in runs])
    scores_axes.set_xlim(0, max([CLIP_WEIGHT * 0.5] + [v for value in values for v in value]) * 1.05)
    scores_axes.set_xlabel("CLIPScore per photo (diamond: mean)")
    scores_axes.invert_yaxis()
    latencies = [run.summary()["median_latency_ms"] or 0 for run in runs]
    latency_axes.barh(positions, latencies, height=0.5, color="0.6")
    latency_axes.set_xlabel("median ms per photo")
    figure.suptitle(f"{len(comparison.photos)} photos, style {comparison.style}", fontsize=10)
    return figure
