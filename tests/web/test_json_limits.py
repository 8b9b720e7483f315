"""Every JSON route reads its body through one reader with a nesting and a size limit: a body nested thousands
of levels deep is a 400 in the protocol's own error shape (it was a 500, a RecursionError), not a server error."""

from __future__ import annotations

DEEP = "[" * 5000 + "]" * 5000  # deeper than Python's parser recurses
JUST_TOO_DEEP = '{"model": "shapes-demo", "messages": ' + "[" * 70 + "]" * 70 + "}"


def test_deep_nesting_is_a_400_in_each_protocols_shape(client):
    for route in ("/v1/chat/completions", "/v1/responses"):
        openai = client.post(route, data=DEEP, content_type="application/json")
        assert openai.status_code == 400 and openai.json["error"]["type"] == "invalid_request_error"
        assert "nests deeper" in openai.json["error"]["message"]
    ollama = client.post("/api/generate", data=DEEP, content_type="application/json")
    assert ollama.status_code == 400 and "nests deeper" in ollama.json["error"]
    below_the_parsers_limit = client.post("/api/chat", data=JUST_TOO_DEEP, content_type="application/json")
    assert below_the_parsers_limit.status_code == 400 and "nests deeper" in below_the_parsers_limit.json["error"]
    native = client.patch("/api/v1/history/1", data=DEEP, content_type="application/json")
    assert native.status_code == 400 and set(native.json["error"]) == {"code", "message"}


def test_a_text_only_json_route_refuses_a_large_body(client):
    answer = client.patch("/api/v1/history/1", json={"translations": {"de": "x" * 100_000}})
    assert answer.status_code == 413 and answer.json["error"]["code"] == "request_too_large"
    small = client.patch("/api/v1/history/1", json={"translations": {"de": "ein Kreis"}})
    assert small.status_code != 413
