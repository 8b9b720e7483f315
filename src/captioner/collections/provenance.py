"""Who wrote a text in a photo: captioner's own record, kept in its XMP namespace beside each text it writes.

For every field captioner writes (description, alt text, detailed description, keywords) it also writes a
``XMP-captioner:<Field>`` structure: the model, the style, the prompt, a digest of the decoding settings,
captioner's version, the date, and exactly the text it wrote (for keywords: the words it added). The
namespace is declared by the exiftool configuration shipped with the package (``exiftool_config/``).

Reading it back is how ``--existing`` tells captioner's own text (replaced when the model, style or settings
change) from a person's or another tool's (left alone unless told otherwise): a text is captioner's only
while it is still exactly what the record says captioner wrote, so a description a person edited after
captioner wrote it is the person's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

RECORD_TAGS = {"description": "XMP-captioner:Description", "alt-text": "XMP-captioner:AltText",
               "detailed": "XMP-captioner:ExtDescr", "keywords": "XMP-captioner:Keywords"}


@dataclass(frozen=True)
class Provenance:
    """What wrote a text: enough to tell whether a later run would write it the same way."""

    model: str  # the model's name, as the results file names it
    style: str  # the caption style ("caption", "alt-text", "detailed", "keywords"), or "caption-nouns"
    prompt: str  # the prompt given to the model ("" for its default)
    settings: str  # digest of the decoding settings (a change of beam, length, ... changes it)
    version: str  # captioner's version
    date: str  # when it was written, UTC, as exiftool writes XMP dates

    @classmethod
    def of(cls, model: str, decoding: dict, style: str) -> "Provenance":
        from captioner import __version__

        settings = hashlib.sha256(json.dumps(decoding, sort_keys=True).encode("utf-8")).hexdigest()[:16]
        return cls(model, style, str(decoding.get("prompt") or ""), settings, __version__,
                   datetime.now(timezone.utc).strftime("%Y:%m:%d %H:%M:%SZ"))

    def same_source(self, record: dict | None) -> bool:
        """Whether ``record`` (a structure read back from a photo) was written by this model, style, prompt
        and settings: then the text need not be written again."""
        return bool(record) and all(str(record.get(name, "")) == value for name, value in
                                    (("Model", self.model), ("Style", self.style), ("Prompt", self.prompt),
                                     ("Settings", self.settings)))

    def record(self, text: str, words: tuple[str, ...] = ()) -> dict:
        """The XMP structure to write beside ``text`` (and, for keywords, the ``words`` added)."""
        record = {"Model": self.model, "Style": self.style, "Prompt": self.prompt, "Settings": self.settings,
                  "Version": self.version, "Date": self.date, "Text": text}
        if words:
            record["Words"] = list(words)
        return {name: value for name, value in record.items() if value != ""}
