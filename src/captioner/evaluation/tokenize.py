"""Caption tokenisation for scoring, exactly as the COCO caption evaluation does it.

The official code runs Stanford's PTBTokenizer (Java) with ``-preserveLines -lowerCase`` and then drops
punctuation tokens. :func:`ptb_tokenize` runs the same jar that pycocoevalcap ships, but through a pipe
with a timeout (pycocoevalcap writes a temporary file into its own install folder, which may be
read-only). :func:`python_tokenize` mimics it in pure Python for machines without Java; on real Flickr8k
captions the two agree on all but a handful of rare spellings (abbreviations such as ``u.s.``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from captioner.environment import child_environment

# The punctuation tokens pycocoevalcap removes after PTB tokenisation (its own list, kept as is: it
# compares with upper-case bracket tokens, so the lower-cased "-lrb-" and "-rrb-" survive, as they do
# in every published COCO score).
PUNCTUATIONS = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                          ".", "?", "!", ",", ":", "-", "--", "...", ";"])

PTB_TIMEOUT_S = 120.0  # the tokenizer handles ~100k captions in a few seconds; this only catches a hung JVM


class TokenizerError(RuntimeError):
    """The Java tokenizer failed or its output did not line up with its input."""


def pycocoevalcap_dir() -> Path:
    import pycocoevalcap  # a namespace package: it has no __init__.py, so no __file__

    return Path(next(iter(pycocoevalcap.__path__))).resolve()


def java_available() -> bool:
    """Whether a ``java`` executable is on PATH (the PTB tokenizer and METEOR need it)."""
    return shutil.which("java") is not None


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines and Unicode line separators too) as one space."""
    return " ".join(str(text).split())


def ptb_tokenize(sentences: list[str], timeout: float = PTB_TIMEOUT_S) -> list[str]:
    """Tokenise with Stanford's PTBTokenizer and drop punctuation, as pycocoevalcap's PTBTokenizer does."""
    if not sentences:
        return []
    jar = pycocoevalcap_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    if not jar.is_file():
        raise TokenizerError(f"the PTB tokenizer jar is missing from pycocoevalcap ({jar})")
    command = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", "-encoding", "utf-8"]
    text = "\n".join(one_line(s) for s in sentences) + "\n"
    env = child_environment(LC_ALL="C.UTF-8", JAVA_TOOL_OPTIONS="")
    try:
        done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise TokenizerError(f"the PTB tokenizer did not finish within {timeout:.0f} s") from None
    except OSError as error:
        raise TokenizerError(f"could not start Java for the PTB tokenizer ({error})") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise TokenizerError(f"the PTB tokenizer failed (exit {done.returncode}: {detail[0]})")
    lines = done.stdout.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "" and len(lines) == len(sentences) + 1:
        lines.pop()
    if len(lines) != len(sentences):
        raise TokenizerError(f"the PTB tokenizer returned {len(lines)} lines for {len(sentences)} captions")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS) for line in lines]


# --- the pure-Python stand-in --------------------------------------------------------------------
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_CONTRACTION = re.compile(r"(?i)^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$")
_TOKEN = re.compile(
    r"""(?x)
    \d+(?:[.,:]\d+)+           # numbers with separators: 3.5, 10,000, 12:30
    | (?:[a-z]\.){2,}           # acronyms with dots: d.c., r.v.
    | [a-z0-9]+(?:\.[a-z0-9]+)+ # names with inner dots: statefarm.com
    | (?:mr|mrs|ms|dr|jr|sr|st|[a-z])\.(?!\w)  # titles and single initials keep their dot: mr., u.
    | '(?:s|re|ve|ll|d|m)\b    # a clitic already split off by the writer: "dog 's"
    | n't\b
    | \w+(?:[-']\w+)*'?        # words, hyphenated words, words with an inner or closing apostrophe
    | \.\.\.|--                # ellipsis and dash, removed later as punctuation
    | [^\w\s]                  # any other single symbol
    """
)


# Words PTB splits in two although they have no apostrophe.
_SPLIT_WORDS = {"cannot": ["can", "not"], "gonna": ["gon", "na"], "gotta": ["got", "ta"], "wanna": ["wan", "na"]}


def _split_word(word: str) -> list[str]:
    if word in _SPLIT_WORDS:
        return list(_SPLIT_WORDS[word])
    match = _CONTRACTION.match(word)
    if match:
        return list(match.groups())
    if word.endswith("'") and len(word) > 1:  # "dogs'" -> "dogs" "'"
        return [word[:-1], "'"]
    return [word]


def python_tokenize(sentences: list[str]) -> list[str]:
    """A pure-Python approximation of :func:`ptb_tokenize`: lower-case, split punctuation and
    contractions the PTB way ("don't" -> "do n't", "ocean's" -> "ocean 's"), drop punctuation tokens."""
    result = []
    for sentence in sentences:
        tokens: list[str] = []
        for raw in _TOKEN.findall(one_line(sentence).lower().replace('"', " '' ")):
            if raw in _BRACKETS:
                tokens.append(_BRACKETS[raw])
            elif raw[0].isalnum() or raw[0] == "_":
                tokens.extend(_split_word(raw))
            else:
                tokens.append(raw)
        result.append(" ".join(t for t in tokens if t not in PUNCTUATIONS))
    return result
