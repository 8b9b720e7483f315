"""The MCP tools, built with the official ``mcp`` SDK: ``caption_image``, ``list_models``, ``caption_folder``.

They are thin translations into the same :class:`~captioner.web.service.CaptionService` as the API (its
queues, limits and decoding rules), over stdio (``captioner mcp``) and over HTTP (``/mcp``). Images come as
a path under ``CAPTIONER_MCP_ROOTS`` (resolved first, so ``..`` and links cannot leave a root), a URL on a host
``CAPTIONER_IMAGE_URL_HOSTS`` allows, or base64; all are decoded by the one safe loader. Answers are structured
(each tool has an output schema); every failure a caller can cause is an ``isError`` result saying why.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field

from captioner.errors import CaptionerError
from captioner.models.base import CAPTION_STYLES, DecodingRequest
from captioner.web.composed import Wording

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".heic", ".heif", ".tif", ".tiff")
INSTRUCTIONS = ("Captions images with the models this captioner server has loaded. Give caption_image a file "
                "path (under the server's allowed folders), an image URL, or base64 image data.")


class McpMissing(CaptionerError):
    """The ``mcp`` package (the ``mcp`` extra) is not installed."""


class Caption(BaseModel):
    caption: str = Field(description="the caption (in the language asked for, when one was)")
    model: str = Field(description="the model that wrote it")
    style: str = Field(description="the kind of text: " + ", ".join(CAPTION_STYLES))
    keywords: list[str] = Field(default_factory=list, description="keywords (the keywords style)")
    language: str | None = Field(None, description="the language of the caption, when one was asked for")
    language_path: str | None = Field(None, description="how it came to be in that language: 'instructed' (a "
                                                        "vision-language model wrote it so) or 'translated'")
    source: str = Field(description="the image captioned: its path, its URL, or 'base64'")


class ModelEntry(BaseModel):
    name: str
    kind: str
    dataset: str
    styles: list[str]
    default: bool


class Models(BaseModel):
    models: list[ModelEntry]


class FolderEntry(BaseModel):
    path: str
    caption: str | None = None
    error: str | None = None


class FolderCaptions(BaseModel):
    folder: str
    model: str
    captions: list[FolderEntry]
    more: bool = Field(description="whether the folder holds more images than were captioned")


def build_server(service, settings):
    """An MCPServer whose tools caption through ``service`` (a CaptionService, whose translator writes other
    languages) under ``settings`` (WebSettings: roots, image-URL policy, limits)."""
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
    except ImportError:
        raise McpMissing("the MCP server needs the mcp package: pip install 'captioner[mcp]'") from None

    from captioner import __version__

    server = MCPServer("captioner", instructions=INSTRUCTIONS, version=__version__)

    def failing(error: Exception):
        return ToolError(str(error) or type(error).__name__)

    @server.tool(description="Caption one image. Give exactly one of path (a file under the server's allowed "
                             "folders), url (an http(s) image URL on an allowed host) or image_base64.")
    def caption_image(path: Annotated[str | None, Field(description="an image file under the allowed folders")] = None,
                      url: Annotated[str | None, Field(description="an http(s) image URL")] = None,
                      image_base64: Annotated[str | None, Field(description="the image file, base64")] = None,
                      model: Annotated[str | None, Field(description="a model from list_models")] = None,
                      style: Annotated[str | None, Field(description=", ".join(CAPTION_STYLES))] = None,
                      language: Annotated[str | None, Field(description="a language code, e.g. de: "
                                                                        "vision-language models are instructed in "
                                                                        "it, other models' captions translated")]
                      = None,
                      tags_from: Annotated[str | None, Field(description="a loaded tagger whose tags go into a "
                                                                         "vision-language model's instruction and "
                                                                         "fill {tags}")] = None,
                      template: Annotated[str | None, Field(description="write the caption as this text with "
                                                                        "{caption}, {tags} and {trigger} filled in")]
                      = None,
                      trigger: Annotated[str | None, Field(description="what {trigger} stands for")] = None
                      ) -> Caption:
        given = [name for name, value in (("path", path), ("url", url), ("image_base64", image_base64)) if value]
        if len(given) != 1:
            raise ToolError("give exactly one of path, url or image_base64" +
                            (f", not {' and '.join(given)}" if given else ""))
        try:
            if path:
                image, source = load_path(checked_path(path, settings), settings), path
            elif url:
                image, source = load_url(url, settings), url
            else:
                image, source = load_base64(image_base64, settings), "base64"
            wording = Wording(tags_from=tags_from, template=template, trigger=trigger or "", language=language)
            answer = service.caption(image, model, DecodingRequest(style=style), wording=wording)
            return described(answer, source, style)
        except (CaptionerError, ValueError, OSError) as error:
            raise failing(error) from None

    @server.tool(description="The models this server has loaded, with the styles each can write.")
    def list_models() -> Models:
        try:
            service.require_ready()
        except CaptionerError as error:
            raise failing(error) from None
        default = service.default_model
        return Models(models=[ModelEntry(name=name, kind=loaded.captioner.kind, dataset=loaded.info.dataset,
                                         styles=list(loaded.describe()["styles"]), default=name == default)
                              for name, loaded in service.models.items()])

    @server.tool(description="Caption the images of a folder under the server's allowed folders (not its "
                             f"subfolders), in name order, at most limit of them (at most {settings.mcp_max_images}).")
    def caption_folder(path: Annotated[str, Field(description="a folder under the allowed folders")],
                       limit: Annotated[int, Field(ge=1, description="most images to caption")] = 10,
                       model: str | None = None, style: str | None = None) -> FolderCaptions:
        try:
            folder = checked_path(path, settings)
            if not folder.is_dir():
                raise ValueError(f"{path} is not a folder")
            files = sorted(item for item in folder.iterdir() if item.is_file()
                           and item.suffix.lower() in IMAGE_SUFFIXES)
            chosen = files[:min(limit, settings.mcp_max_images)]
            entries, work = [], []
            for item in chosen:
                try:
                    work.append((load_path(item, settings), DecodingRequest(style=style)))
                    entries.append(FolderEntry(path=str(item)))
                except CaptionerError as error:
                    entries.append(FolderEntry(path=str(item), error=str(error)))
            answers = iter(service.caption_all(work, model) if work else [])
            for entry in entries:
                if entry.error is None:
                    entry.caption = next(answers)["caption"]
            name = service.model(model).name
        except (CaptionerError, ValueError, OSError) as error:
            raise failing(error) from None
        return FolderCaptions(folder=str(folder), model=name, captions=entries, more=len(files) > len(chosen))

    return server


def checked_path(path: str, settings) -> Path:
    """``path`` resolved, when it lies under one of the MCP roots; else ValueError saying why not."""
    roots = settings.mcp_root_paths
    if not roots:
        raise ValueError("this server reads no files: set CAPTIONER_MCP_ROOTS to the folders it may read, or "
                         "send the image as url or image_base64")
    resolved = Path(path).expanduser().resolve()
    if not any(resolved.is_relative_to(root) for root in roots):
        raise ValueError(f"{path} is outside the folders this server may read ({', '.join(map(str, roots))})")
    if not resolved.exists():
        raise ValueError(f"{path}: no such file or folder")
    return resolved


def load_path(path: Path, settings):
    from captioner.data.images import load_image

    return load_image(path, max_pixels=settings.max_pixels, name=str(path))


def load_url(url: str, settings):
    from captioner.data.images import image_from_bytes
    from captioner.web.image_urls import ImageUrlPolicy, fetch_image_url

    policy = ImageUrlPolicy.from_setting(settings.image_url_hosts, max_bytes=settings.max_upload_bytes,
                                         timeout_s=settings.image_url_timeout_s)
    return image_from_bytes(fetch_image_url(url, policy), max_pixels=settings.max_pixels, name="the image URL")


def load_base64(text: str, settings):
    from captioner.data.images import image_from_bytes

    payload = text.partition(",")[2] if text.startswith("data:") else text
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("image_base64 is not valid base64") from None
    if len(data) > settings.max_upload_bytes:
        raise ValueError(f"the image is larger than this server takes ({settings.max_upload_mb} MB)")
    return image_from_bytes(data, max_pixels=settings.max_pixels, name="the base64 image")


def described(answer: dict, source: str, style: str | None) -> Caption:
    """The service's answer as a Caption, with the language path it took when a language was asked for."""
    language = answer.get("language") or {}
    return Caption(caption=answer["caption"], model=answer["model"], style=style or "caption",
                   keywords=answer["keywords"], language=language.get("code"), language_path=language.get("how"),
                   source=source)