"""The one reader of JSON request bodies, with a size and a nesting limit, for every route that takes JSON.

Python's JSON parser recurses once per level of nesting, so a body of a few thousand ``[`` would end in a
RecursionError (a 500) wherever a route called ``request.get_json``; and no request captioner understands
nests deeper than a few levels (a JSON schema for a structured answer is the deepest, and stays far below
:data:`MAX_DEPTH`). Too deep is a 400 and too large a 413, both as :class:`~captioner.web.errors.ApiError`,
so each protocol answers in its own error shape.
"""

from __future__ import annotations

import json

from flask import request

from captioner.web.errors import ApiError

MAX_DEPTH = 64  # levels of arrays and objects in one body
SMALL_BODY_BYTES = 64 * 1024  # routes whose JSON carries text only (translations, a caption edit)


def json_body(max_bytes: int | None = SMALL_BODY_BYTES, force: bool = False):
    """The parsed JSON body; None when there is none, it is no JSON, or (unless ``force``) the request does not
    say it is JSON: the route then says what it wants. ``max_bytes`` None leaves the app's upload limit, for
    the bodies that carry a base64 image."""
    if max_bytes is not None and (request.content_length or 0) > max_bytes:
        raise too_large(max_bytes)
    if not force and not request.is_json:
        return None
    data = request.get_data(cache=True)  # beyond the app's upload limit: a 413, as for any upload
    if max_bytes is not None and len(data) > max_bytes:
        raise too_large(max_bytes)
    try:
        parsed = json.loads(data)
    except RecursionError:
        raise too_deep() from None
    except ValueError:  # not JSON, or not UTF-8
        return None
    if depth_exceeds(parsed, MAX_DEPTH):
        raise too_deep()
    return parsed


def too_large(max_bytes: int) -> ApiError:
    return ApiError("request_too_large", f"the JSON body is larger than {max_bytes // 1024} KB", 413)


def too_deep() -> ApiError:
    return ApiError("bad_request", f"the JSON body nests deeper than {MAX_DEPTH} levels", 400)


def depth_exceeds(value, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest more than ``limit`` levels (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
