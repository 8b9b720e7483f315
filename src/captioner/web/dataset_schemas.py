"""The training-set review API's request bodies and answers (``/api/v1/datasets/...``), as pydantic classes for
the OpenAPI document (:mod:`captioner.web.openapi`); the routes are in :mod:`captioner.web.datasets`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from captioner.collections.existing_text import EXISTING
from captioner.models.base import CAPTION_STYLES
from captioner.web.native_schemas import Open

FOLDER = "the folder's path inside CAPTIONER_DATASETS_DIR, '/' between parts; '.' for the root itself"


# -- requests ------------------------------------------------------------------------------------------
class ItemsQuery(BaseModel):
    folder: str = Field(description=FOLDER)
    page: int | None = Field(None, ge=1)
    per_page: int | None = Field(None, ge=1, le=200)


class ThumbnailQuery(BaseModel):
    folder: str = Field(description=FOLDER)
    image: str = Field(description="the image's file name in the folder")


class CaptionFileSave(BaseModel):
    """PUT /api/v1/datasets/caption-file: the new text of one image's caption file."""

    folder: str = Field(description=FOLDER)
    image: str = Field(description="the image's file name in the folder")
    text: str = Field(description="the caption file's new text (several lines: several captions)")
    version: str = Field(description="the version the text was read at ('none': there was no file); a file "
                                     "changed on disk since is a 409 with both texts")


class ReplaceRequest(BaseModel):
    folder: str = Field(description=FOLDER)
    find: str = Field(min_length=1, description="the text to find, exactly (case and all)")
    replace: str = Field("", description="what to put in its place")
    apply: bool = Field(False, description="false: only count; true: write the caption files")
    images: list[str] | None = Field(None, description="only these images' caption files; unset: every one")


class TagsRequest(BaseModel):
    folder: str = Field(description=FOLDER)
    images: list[str] = Field(description="the selected images")
    add: str | None = Field(None, description="a tag to add at the end of each line that lacks it")
    remove: str | None = Field(None, description="a tag to take out of each line")


class TriggerRequest(BaseModel):
    folder: str = Field(description=FOLDER)
    trigger: str = Field(min_length=1, description="the trigger word, put first in each caption line")
    old: str | None = Field(None, description="an earlier trigger word, replaced where it stands first")
    images: list[str] | None = Field(None, description="only these images' caption files; unset: every one")


class CaptionImagesRequest(BaseModel):
    """POST /api/v1/datasets/captions: caption images with a loaded model into their caption files."""

    folder: str = Field(description=FOLDER)
    images: list[str] | None = Field(None, description="these images (at most 8); unset: the next 8 without "
                                                       "a caption file")
    model: str | None = Field(None, description="a loaded model's name; unset: the default model")
    style: Literal[CAPTION_STYLES] | None = Field(None, description="the caption style")
    existing: Literal[EXISTING] = Field("skip", description="a caption file a person wrote: skip (kept), "
                                                            "replace, append or prepend")
    trigger: str | None = Field(None, description="a trigger word put first in the caption files written")


# -- answers -------------------------------------------------------------------------------------------
class Folder(Open):
    name: str
    images: int
    captions: int


class FolderList(Open):
    folders: list[Folder]
    extension: str


class Item(Open):
    image: str
    caption_file: str
    text: str | None
    version: str
    written_by: Literal["captioner", "person"] | None
    shared: bool
    thumbnail_url: str


class ItemsPage(Open):
    folder: str
    items: list[Item]
    total: int
    uncaptioned: int
    page: int
    per_page: int
    pages: int


class Edited(Open):
    changed: int = Field(description="caption files changed (or, for a count only, that would change)")
    items: list[Item]


class Replaced(Edited):
    occurrences: int
    applied: bool


class Captioned(Open):
    image: str
    action: str = Field(description="new, replaced, appended, prepended, updated, unchanged, kept, or failed")
    error: str | None = None
    item: Item | None = None


class CaptionedImages(Open):
    results: list[Captioned]
    remaining: int = Field(description="images of the folder still without a caption file")
