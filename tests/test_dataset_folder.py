"""The review page's folder rules on a real folder tree: what lies under the root opens, what leads out of it
(``..``, absolute paths, symbolic links out, hidden folders) is refused, links that stay inside are followed;
each image's caption file with its version; a save refused over a changed file; and the edits across a set
(find and replace, tags, the trigger word), each rule tested on its own text."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from captioner.collections import caption_edits as edits
from captioner.collections.dataset_folder import NO_FILE, CaptionConflict, DatasetRoot, NotFound, RefusedPath


def picture(path, color=(200, 40, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), color).save(path)
    return path


@pytest.fixture
def tree(tmp_path):
    """sets/ (the root) with dogs/ (two images, one captioned, a stem conflict pair), a link inside
    (alias -> dogs), a link out (escape -> ../secret), a hidden state folder; secret/ beside the root."""
    root = tmp_path / "sets"
    picture(root / "dogs" / "rex.jpg")
    picture(root / "dogs" / "max.png")
    (root / "dogs" / "rex.txt").write_text("a dog, on grass\n")
    picture(root / "dogs" / "twin.jpg")
    picture(root / "dogs" / "twin.png")
    picture(root / "dogs" / ".hidden.jpg")
    picture(tmp_path / "secret" / "private.jpg")
    (tmp_path / "secret" / "private.txt").write_text("not yours")
    (root / "alias").symlink_to(root / "dogs", target_is_directory=True)
    (root / "escape").symlink_to(tmp_path / "secret", target_is_directory=True)
    (root / "dogs" / "leak.jpg").symlink_to(tmp_path / "secret" / "private.jpg")
    picture(root / "dogs" / "linked.jpg")
    (root / "dogs" / "linked.txt").symlink_to(tmp_path / "secret" / "private.txt")
    picture(root / ".captioner" / "state.jpg")
    return root


@pytest.mark.parametrize("name, message", [
    ("../secret", "climbs out"),
    ("dogs/../../secret", "climbs out"),
    ("/etc", "absolute path"),
    ("escape", "leads outside"),
    (".captioner", "hidden"),
    ("", "name the folder"),
    ("dogs\\..\\..", "not a path"),
])
def test_paths_leading_out_of_the_root_are_refused(tree, name, message):
    with pytest.raises(RefusedPath, match=message):
        DatasetRoot(tree).folder(name)


def test_folders_inside_open_and_links_inside_are_followed(tree):
    root = DatasetRoot(tree)
    assert root.folder("dogs").path == (tree / "dogs").resolve()
    assert root.folder("alias").path == (tree / "dogs").resolve()  # a link that stays inside
    assert root.folder(".").path == tree.resolve()
    with pytest.raises(NotFound):
        root.folder("cats")
    listed = {folder["name"]: folder for folder in root.folders()}
    assert list(listed) == ["alias"]  # dogs is the same real folder: listed once; escape and .captioner never
    assert listed["alias"]["images"] == 5 and listed["alias"]["captions"] == 1


def test_items_leave_out_what_leads_out_and_mark_stem_conflicts(tree):
    items = {item.image: item for item in DatasetRoot(tree).folder("dogs").items()}
    assert sorted(items) == ["linked.jpg", "max.png", "rex.jpg", "twin.jpg", "twin.png"]  # no leak.jpg, no hidden
    assert items["rex.jpg"].text == "a dog, on grass" and items["rex.jpg"].written_by == "person"
    assert items["max.png"].text is None and items["max.png"].version == NO_FILE
    assert items["linked.jpg"].text is None  # its caption file is a link out: never read
    assert items["twin.jpg"].shared and items["twin.png"].shared and not items["rex.jpg"].shared
    folder = DatasetRoot(tree).folder("dogs")
    for name in ("leak.jpg", "../secret/private.jpg", "rex.txt"):
        with pytest.raises(RefusedPath):
            folder.image(name)
    with pytest.raises(RefusedPath, match="neither read nor written"):
        folder.save("linked.jpg", "overwritten", NO_FILE)
    assert (tree.parent / "secret" / "private.txt").read_text() == "not yours"


def test_a_save_needs_the_version_it_read_and_writes_beside_the_image(tree):
    folder = DatasetRoot(tree).folder("dogs")
    rex = folder.item("rex.jpg")
    saved = folder.save("rex.jpg", "sks dog, on grass  \r\n", rex.version)
    assert (tree / "dogs" / "rex.txt").read_bytes() == b"sks dog, on grass\n"
    assert saved.version != rex.version and saved.text == "sks dog, on grass"
    (tree / "dogs" / "rex.txt").write_text("edited in another program\n")
    with pytest.raises(CaptionConflict) as refused:
        folder.save("rex.jpg", "my edit", saved.version)
    assert refused.value.item.text == "edited in another program" and refused.value.text == "my edit"
    assert (tree / "dogs" / "rex.txt").read_text() == "edited in another program\n"
    folder.save("max.png", "a new caption", NO_FILE)  # no file yet: version "none"
    assert (tree / "dogs" / "max.txt").read_text() == "a new caption\n"
    assert not [name for name in os.listdir(tree / "dogs") if name.startswith(".tmp-")]


def test_edits_across_the_set_change_only_existing_caption_files(tree):
    folder = DatasetRoot(tree).folder("dogs")
    preview = folder.edit(edits.replace_text("dog", "puppy"), apply=False)
    assert [item.text for item in preview] == ["a puppy, on grass"]
    assert (tree / "dogs" / "rex.txt").read_text() == "a dog, on grass\n"  # only counted
    folder.edit(edits.set_trigger("sks"))
    assert (tree / "dogs" / "rex.txt").read_text() == "sks, a dog, on grass\n"
    assert not (tree / "dogs" / "max.txt").exists()  # no caption file: none created


@pytest.mark.parametrize("edit, before, after", [
    (edits.add_tag("outdoors"), "a dog, on grass", "a dog, on grass, outdoors"),
    (edits.add_tag("dog"), "sks, dog", "sks, dog"),
    (edits.add_tag("tag"), "one\ntwo", "one, tag\ntwo, tag"),  # one caption per line: every line
    (edits.remove_tag("dog"), "sks, dog, grass", "sks, grass"),
    (edits.remove_tag("do"), "sks, dog", "sks, dog"),  # whole tags only
    (edits.set_trigger("sks"), "a dog, grass", "sks, a dog, grass"),
    (edits.set_trigger("sks"), "sks, a dog", "sks, a dog"),
    (edits.set_trigger("zzk", old="sks"), "sks, a dog", "zzk, a dog"),
    (edits.set_trigger("zzk", old="sks"), "a dog, sks", "zzk, a dog, sks"),  # old only where it stands first
    (edits.replace_text("Dog", "cat"), "a dog, Dog", "a dog, cat"),
])
def test_each_edit_rule(edit, before, after):
    assert edit(before) == after


def test_empty_tags_and_finds_are_refused():
    for make in (lambda: edits.add_tag("  "), lambda: edits.set_trigger(""), lambda: edits.replace_text("", "x"),
                 lambda: edits.remove_tag("a\nb")):
        with pytest.raises(ValueError):
            make()
