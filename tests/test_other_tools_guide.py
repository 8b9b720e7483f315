"""The Python and curl examples of docs/guides/other-tools.md, run as written against a real server: the
server's address, key and model stand in for the guide's, and photo.jpg is a real picture."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.web import shapes_image_bytes

pytestmark = pytest.mark.slow
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "other-tools.md"
BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.S)


def blocks(language: str) -> list[str]:
    return [code for kind, code in BLOCK.findall(GUIDE.read_text()) if kind == language]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, shapes_dataset) -> Path:
    folder = tmp_path_factory.mktemp("guide")
    (folder / "photo.jpg").write_bytes(shapes_image_bytes(shapes_dataset, 5, "JPEG"))
    return folder


def run(command: list[str], code: str, compat_server, workdir: Path) -> str:
    code = code.replace("http://localhost:5000", compat_server.url).replace("vit-gpt2", compat_server.model)
    env = {**os.environ, "CAPTIONER_API_KEY": compat_server.key("docs")}
    done = subprocess.run([*command, code], cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_guide_has_its_examples():
    assert len(blocks("python")) == 3 and len(blocks("bash")) == 2


@pytest.mark.parametrize("index", [0, 1, 2])
def test_python_examples(index, compat_server, workdir):
    lines = run([sys.executable, "-c"], blocks("python")[index], compat_server, workdir).splitlines()
    assert len(lines) >= 3 and all(line.strip() for line in lines)


@pytest.mark.parametrize("index", [0, 1])
def test_curl_examples(index, compat_server, workdir):
    answer = json.loads(run(["bash", "-c"], blocks("bash")[index], compat_server, workdir))
    caption = answer["choices"][0]["message"]["content"] if "choices" in answer else answer["response"]
    assert caption.strip() and "error" not in answer
