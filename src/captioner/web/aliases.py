"""The original project's endpoints, kept as thin aliases of the API.

``POST /flickr8k``, ``/flickr30k`` and ``/VitGpt2ImageCaption`` take a multipart field ``image`` and
answer ``{"image": <file name>, "description": <caption>}`` like the original did, using the loaded
model that best matches the old name. Errors are the API's JSON errors.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from captioner.web.errors import ApiError, from_domain
from captioner.web.loaded_model import LoadedModel
from captioner.web.service import CaptionService, DecodingRequest
from captioner.web.uploads import decode_image, read_upload

bp = Blueprint("aliases", __name__)

# Old endpoint -> (model kind, data sets to prefer in order, what to install when missing).
ALIASES = {
    "flickr8k": ("lstm", ("flickr8k",), "train one with 'captioner train lstm' on Flickr8k"),
    "flickr30k": ("lstm", ("flickr30k", "flickr8k"), "train one with 'captioner train lstm' on Flickr30k"),
    "VitGpt2ImageCaption": ("vit-gpt2", ("pretrained", "flickr8k", "flickr30k"),
                            "install the pretrained ViT-GPT2 (it loads by itself with internet access) "
                            "or copy a vit-gpt2 bundle into the models folder"),
}


def model_for(endpoint: str) -> LoadedModel:
    svc: CaptionService = current_app.extensions["captioner"]
    try:
        svc.require_ready()
    except Exception as error:
        raise from_domain(error) from None
    kind, datasets, how = ALIASES[endpoint]
    loaded = svc.find(kind, datasets)
    if loaded is None:
        raise ApiError("unknown_model", f"/{endpoint} needs a {kind} model and none is loaded ({how}); "
                                        f"loaded models: {', '.join(svc.models) or 'none'}", 404)
    return loaded


def caption_with(endpoint: str):
    loaded = model_for(endpoint)
    upload = read_upload()
    image = decode_image(upload)
    svc: CaptionService = current_app.extensions["captioner"]
    try:
        result = svc.caption(image, loaded.name, DecodingRequest())
    except Exception as error:
        raise from_domain(error) from None
    return jsonify({"image": upload.filename, "description": result["caption"], "model": loaded.name})


@bp.post("/flickr8k")
def flickr8k_alias():
    return caption_with("flickr8k")


@bp.post("/flickr30k")
def flickr30k_alias():
    return caption_with("flickr30k")


@bp.post("/VitGpt2ImageCaption")
def vit_gpt2_alias():
    return caption_with("VitGpt2ImageCaption")
