"""A folder spread across two model servers by the Ray engine: a real local Ray (more logical CPUs than this
machine's cores, so two actors and the reading tasks all get one), two real local HTTP endpoints standing
in for GPU servers, one registered remote model naming both. Every picture is captioned once, both servers
share the work, a second run resumes without sending a request, and a run whose servers are down stops
with one clear message.

The Ray runs go through the command in a process of their own, as a user runs them: the engine starts and
stops its own local Ray there, and no Ray threads are left in the test process (see test_collections_ray).
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from support.cli import run_cli
from support.fake_vision_endpoint import MODEL, FakeVisionEndpoint

pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_spreads_a_folder_across_two_endpoints(runner, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(12):
        Image.new("RGB", (96, 64), (index * 20, 255 - index * 20, 90)).save(folder / f"photo-{index:02d}.png")
    models, out = tmp_path / "models", tmp_path / "results.jsonl"
    with FakeVisionEndpoint(service_s=0.05) as one, FakeVisionEndpoint(service_s=0.05) as two:
        added = runner("models", "add-remote", "vlm", "--url", one.url, "--url", two.url, "--api", "openai",
                       "--model", MODEL, "--concurrency", "2", "--models-dir", models)
        assert added.returncode == 0, added.stderr
        arguments = ("collection", folder, "--out", out, "--model", "vlm", "--models-dir", models, "--engine", "ray",
                     "--actors", "2", "--batch-size", "3", "--json")
        first = run_cli(*arguments)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["captioned"] == 12
        assert len(one.requests) > 0 and len(two.requests) > 0 and len(one.requests) + len(two.requests) == 12
        assert max(one.most_in_flight, two.most_in_flight) <= 4  # two actors, two requests in flight each

        again = run_cli(*arguments)
        assert again.returncode == 0, again.stderr
        assert (json.loads(again.stdout)["captioned"], json.loads(again.stdout)["skipped"]) == (0, 12)
        assert len(one.requests) + len(two.requests) == 12  # resumed: nothing sent again
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12 and {row["caption"] for row in rows} == {"A red circle."}
    assert all(row["score"] == pytest.approx(-0.875) and row["model"] == "vlm" for row in rows)

    # The servers are gone now: the run stops with the endpoint's one clear message, not Ray's wrapped error.
    stopped = run_cli(*arguments[:3], tmp_path / "more.jsonl", *arguments[4:])
    assert stopped.returncode != 0 and "Traceback" not in stopped.stderr
    assert "captioner: error: the remote endpoint" in stopped.stderr and "cannot be reached" in stopped.stderr
