"""The MCP tools with the SDK's own client: over stdio (`python -m captioner mcp`) and over streamable HTTP
(`/mcp` on a real `captioner serve` with API keys), captioning the shapes demo model's pictures."""

from __future__ import annotations

import base64
import random
import sys
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from captioner import environment

from support import ROOT


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """A root folder with three shapes pictures (and one that is not an image), and one picture outside it."""
    from captioner.data.shapes import make_picture

    base = tmp_path_factory.mktemp("mcp")
    root, outside = base / "photos", base / "elsewhere"
    root.mkdir()
    outside.mkdir()
    rng = random.Random(3)
    for index in range(3):
        make_picture(rng)[0].save(root / f"shape-{index}.png")
    (root / "notes.jpg").write_bytes(b"not an image at all")
    make_picture(rng)[0].save(outside / "secret.png")
    return root, outside


def run_in_own_loop(main) -> None:
    """``main()`` on an event loop of its own thread: a session-wide fixture of another test (Playwright's sync
    API) may keep a loop running in this thread, and asyncio refuses to start a second one there."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(anyio.run, main).result()


def png_base64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


async def check_tools(session, root, outside) -> None:
    """What both transports must do: list the tools, caption by path and base64, refuse what is not allowed."""
    await session.initialize()
    names = {tool.name for tool in (await session.list_tools()).tools}
    assert names == {"caption_image", "list_models", "caption_folder"}

    models = await session.call_tool("list_models", {})
    assert not models.is_error and models.structured_content["models"][0]["name"] == "shapes-demo"

    by_data = await session.call_tool("caption_image", {"image_base64": png_base64(root / "shape-0.png")})
    assert not by_data.is_error, by_data
    assert by_data.structured_content["model"] == "shapes-demo" and by_data.structured_content["caption"]
    assert by_data.structured_content["source"] == "base64"

    refused = await session.call_tool("caption_image", {"path": str(outside / "secret.png")})
    assert refused.is_error
    assert "outside" in refused.content[0].text or "reads no files" in refused.content[0].text

    private = await session.call_tool("caption_image", {"url": "http://127.0.0.1:9/photo.png"})
    assert private.is_error and "URL" in private.content[0].text  # the image-URL policy refuses it

    two = await session.call_tool("caption_image", {"path": "a.png", "image_base64": "AAAA"})
    assert two.is_error and "exactly one" in two.content[0].text

    unknown = await session.call_tool("caption_image", {"image_base64": png_base64(root / "shape-0.png"),
                                                        "model": "no-such-model"})
    assert unknown.is_error and "no-such-model" in unknown.content[0].text
    return by_data.structured_content["caption"]


def test_stdio(pictures, demo_models_dir):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    root, outside = pictures
    env = environment.child_environment(PYTHONPATH=str(ROOT / "src"), CAPTIONER_MCP_ROOTS=str(root),
                                        CAPTIONER_TRY_PRETRAINED="0", CAPTIONER_BUILD_DEMO="0",
                                        CAPTIONER_MCP_MAX_IMAGES="2")
    params = StdioServerParameters(command=sys.executable, env=env,
                                   args=["-m", "captioner", "mcp", "--models-dir", str(demo_models_dir)])

    async def main():
        async with stdio_client(params, errlog=sys.stderr) as (read, write):
            async with ClientSession(read, write) as session:
                caption = await check_tools(session, root, outside)
                by_path = await session.call_tool("caption_image", {"path": str(root / "shape-0.png")})
                assert not by_path.is_error, by_path
                assert by_path.structured_content["caption"] == caption  # the same image, the same caption

                sneaky = await session.call_tool("caption_image", {"path": str(root / ".." / "elsewhere" /
                                                                                "secret.png")})
                assert sneaky.is_error and "outside" in sneaky.content[0].text

                folder = await session.call_tool("caption_folder", {"path": str(root), "limit": 10})
                assert not folder.is_error, folder
                entries = folder.structured_content["captions"]
                assert len(entries) == 2 and folder.structured_content["more"]  # bounded by the server's limit
                assert entries[0]["path"].endswith("notes.jpg") and "not a supported image" in entries[0]["error"]
                assert entries[1]["path"].endswith("shape-0.png") and entries[1]["caption"] == caption

                outside_folder = await session.call_tool("caption_folder", {"path": str(outside)})
                assert outside_folder.is_error

    run_in_own_loop(main)


def test_streamable_http_with_keys(pictures, compat_server):
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    root, outside = pictures

    async def main():
        headers = {"Authorization": f"Bearer {compat_server.key('main')}"}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            async with streamable_http_client(f"{compat_server.url}/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await check_tools(session, root, outside)

    run_in_own_loop(main)

    import requests

    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                             "clientInfo": {"name": "test", "version": "1"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    wrong = requests.post(f"{compat_server.url}/mcp", json=initialize, timeout=30,
                          headers={**accept, "Authorization": "Bearer not-a-key"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    none = requests.post(f"{compat_server.url}/mcp", json=initialize, headers=accept, timeout=30)
    assert none.status_code == 401
    foreign = requests.post(f"{compat_server.url}/mcp", json=initialize, timeout=30,
                            headers={**accept, "Authorization": f"Bearer {compat_server.key('main')}",
                                     "Origin": "https://evil.example"})
    assert foreign.status_code == 403


def test_mcp_counts_against_the_rate_limit(make_app, tmp_path):
    """/mcp in the app itself: JSON-RPC answered as JSON, an error result while no model is loaded, and the
    API's rate limit (here, on an app with nothing loaded)."""
    app = make_app(tmp_path / "models", rate_limit="2 per minute", database_url=f"sqlite:///{tmp_path / 'h.db'}")
    client = app.test_client()
    headers = {"Accept": "application/json, text/event-stream"}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_models", "arguments": {}}}
    answers = [client.post("/mcp", json=call, headers=headers) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    result = answers[0].json["result"]
    assert result["isError"] and "no model is loaded" in result["content"][0]["text"]
    app.extensions["captioner"].close()


def test_the_guides_python_example(compat_server, pictures, tmp_path):
    """The Python example of docs/guides/mcp-clients.md, run as written against the real server."""
    import os
    import re
    import subprocess

    guide = (ROOT / "docs" / "guides" / "mcp-clients.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", guide, re.S)
    (tmp_path / "photo.jpg").write_bytes((pictures[0] / "shape-1.png").read_bytes())
    env = {**os.environ, "CAPTIONER_API_KEY": compat_server.key("docs")}
    done = subprocess.run([sys.executable, "-c", code.replace("http://localhost:5000", compat_server.url)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()


def test_caption_image_writes_in_a_language_and_through_a_template(tagging):
    """caption_image takes language, tags_from, template and trigger as the API does: a tagger's English is
    translated, a vision-language model is instructed in the language; the answer says which."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from support.tagging import TAGGER, VLM, red_png

    picture = base64.b64encode(red_png()).decode()
    answers = {}

    async def main():
        async with httpx2.AsyncClient(timeout=60) as http:
            async with streamable_http_client(f"{tagging.url}/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    for name, arguments in (
                            ("translated", {"model": TAGGER, "language": "de"}),
                            ("instructed", {"model": VLM, "language": "de", "tags_from": TAGGER,
                                            "template": "{trigger}, {caption}", "trigger": "ohwx"}),
                            ("impossible", {"model": TAGGER, "language": "ko"})):
                        answers[name] = await session.call_tool("caption_image",
                                                                {"image_base64": picture, **arguments})

    run_in_own_loop(main)
    translated, instructed = answers["translated"], answers["instructed"]
    assert not translated.is_error and not instructed.is_error, (translated, instructed)
    assert translated.structured_content["caption"] == "[de] red theme, [de] ^_^, [de] long hair"
    assert (translated.structured_content["language"], translated.structured_content["language_path"]) == \
        ("de", "translated")
    assert instructed.structured_content["language_path"] == "instructed"
    assert instructed.structured_content["caption"].startswith("ohwx, ")
    assert tagging.instruction().endswith("These tags describe it: red theme, ^_^, long hair. Write the answer "
                                          "in German.")
    assert answers["impossible"].is_error and "nothing here can write 'ko'" in str(answers["impossible"].content)
