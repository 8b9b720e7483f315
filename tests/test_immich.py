"""`captioner immich` against a local fake Immich server (support.fake_immich) with the shapes demo model:
a person's description kept, paging, retries on 429 and 500, a wrong key and a missing permission, a dry run,
re-runs that replace captioner's own text but keep a person's edit, resuming, and tags."""

from __future__ import annotations

import time

import pytest

from captioner.collections.immich.state import ImmichState

from support.cli import assert_clean_failure
from support.fake_immich import KEY, FakeImmich, start_fake_immich

PERSON = "Grandma's garden, summer 1998"


@pytest.fixture
def immich(monkeypatch):
    fake, server = start_fake_immich(FakeImmich())
    monkeypatch.setenv("IMMICH_TEST_KEY", KEY)
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def sync(runner, immich, demo_bundle, tmp_path):
    """``sync(*options)``: `captioner immich` against the fake with the demo model and this test's state file."""
    state = tmp_path / "immich-state.jsonl"

    def sync(*options, key_env="IMMICH_TEST_KEY"):
        return runner("immich", "--url", immich.url, "--key-env", key_env, "--model", demo_bundle,
                      "--state", state, *options)

    sync.state = state
    return sync


def test_pages_retries_a_persons_description_and_reruns(immich, sync):
    ids = immich.add_images(7)
    immich.assets[ids[2]].description = PERSON
    immich.fail("POST", "/api/search/metadata", 429, retry_after="1")  # the first search: busy, wait a second
    immich.fail("PUT", f"/api/assets/{ids[4]}", 500)  # one write fails once, then succeeds
    started = time.monotonic()
    result = sync("--page-size", "3")
    assert result.returncode == 0, result
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert [size for size in immich.page_sizes if size == 3] == [3, 3, 3]  # three pages of 3, 3 and 1
    assert immich.assets[ids[2]].description == PERSON  # a person's words are kept
    written = {asset_id: immich.assets[asset_id].description for asset_id in ids if asset_id != ids[2]}
    assert all(text and text != PERSON for text in written.values()), written
    assert "6 description new" in result.stdout and "1 description kept" in result.stdout
    state = ImmichState(sync.state, immich.url)
    assert {asset_id: state.description(asset_id)["Text"] for asset_id in state.assets} == written

    # the same settings again: nothing to do, nothing written
    before = len(immich.writes())
    again = sync("--page-size", "3")
    assert again.returncode == 0 and len(immich.writes()) == before
    assert "6 description unchanged" in again.stdout

    # a person edits one of captioner's descriptions; other settings replace captioner's own text only
    immich.assets[ids[0]].description = written[ids[0]] + " by the lake"
    changed = sync("--page-size", "3", "--greedy", "--max-length", "4")
    assert changed.returncode == 0, changed
    assert immich.assets[ids[0]].description == written[ids[0]] + " by the lake"
    assert immich.assets[ids[2]].description == PERSON
    assert "5 description updated" in changed.stdout and "2 description kept" in changed.stdout
    assert all(len(immich.assets[asset_id].description.split()) <= 4 for asset_id in ids[3:])

    # asked to, it appends after a person's words
    appended = sync("--page-size", "3", "--greedy", "--max-length", "4", "--existing", "append")
    assert appended.returncode == 0, appended
    assert immich.assets[ids[2]].description.startswith(PERSON + "\n\n")


def test_dry_run_writes_nothing(immich, sync):
    ids = immich.add_images(2)
    immich.assets[ids[0]].description = PERSON
    result = sync("--dry-run", "--write", "description,tags")
    assert result.returncode == 0, result
    assert immich.writes() == [] and immich.writes("/api/tags") == [] and not sync.state.exists()
    assert f"asset {ids[0]}: description kept" in result.stdout
    assert f"asset {ids[1]}: description new '" in result.stdout and "tags +" in result.stdout


def test_wrong_key_missing_permission_and_lasting_failure(immich, sync, monkeypatch):
    immich.add_images(1)
    monkeypatch.setenv("IMMICH_WRONG_KEY", "not-the-key")
    assert_clean_failure(sync(key_env="IMMICH_WRONG_KEY"), "refused the API key", "401")
    assert_clean_failure(sync(key_env="IMMICH_UNSET_KEY"), "IMMICH_UNSET_KEY")
    immich.denied.add("asset.update")
    assert_clean_failure(sync(), "403", "asset.update")
    immich.denied.clear()
    immich.fail("GET", "/api/assets/.*", 503, times=99, retry_after="0")
    assert_clean_failure(sync(), "kept failing", "503")


def test_resumes_after_an_interruption(immich, sync):
    ids = immich.add_images(5)
    immich.fail("PUT", f"/api/assets/{ids[2]}", 500, times=99, retry_after="0")  # the server breaks down there
    stopped = sync("--concurrency", "1")
    assert_clean_failure(stopped, "kept failing", "500")
    done = [asset_id for asset_id in ids if immich.assets[asset_id].description]
    assert ids[:2] == done[:2] and ids[2] not in done and len(done) < 5
    immich.failures.clear()
    with open(sync.state, "a", encoding="utf-8") as state:
        state.write('{"asset": "torn by a cr')  # the machine went down in the middle of a line
    before = len(immich.writes())
    resumed = sync("--concurrency", "1")
    assert resumed.returncode == 0, resumed
    assert sorted(immich.writes()[before:]) == sorted(f"/api/assets/{asset_id}" for asset_id in ids
                                                      if asset_id not in done)  # only the rest: resumed
    assert f"{len(done)} description unchanged" in resumed.stdout
    assert f"{5 - len(done)} description new" in resumed.stdout
    assert sorted(ImmichState(sync.state, immich.url).assets) == sorted(ids)  # the torn line was cut off


def test_tags_are_created_once_and_reused(immich, sync):
    album = immich.add_images(2, album="5f9c1e2a-0000-4000-8000-000000000001")
    other = immich.add_images(1)
    immich.tags["circle"] = "0d3a6f9e-0000-4000-8000-00000000c1c1"  # a tag the library already has
    first = sync("--write", "description,tags", "--album", "5f9c1e2a-0000-4000-8000-000000000001")
    assert first.returncode == 0, first
    tagged = {asset_id: immich.tag_names(asset_id) for asset_id in album}
    assert all(tagged.values()) and not immich.tag_names(other[0]) and not immich.assets[other[0]].description
    for asset_id in album:  # the tags are the caption's words
        assert immich.tag_names(asset_id) <= set(immich.assets[asset_id].description.replace(",", " ").split())
    assert immich.tags["circle"] == "0d3a6f9e-0000-4000-8000-00000000c1c1"  # reused by name, never duplicated
    count, tag_writes = len(immich.tags), len(immich.writes("/api/tags"))
    again = sync("--write", "description,tags", "--album", "5f9c1e2a-0000-4000-8000-000000000001")
    assert again.returncode == 0, again
    assert len(immich.tags) == count and len(immich.writes("/api/tags")) == tag_writes  # nothing asked again
    assert "2 tags unchanged" in again.stdout
