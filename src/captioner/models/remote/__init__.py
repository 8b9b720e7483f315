"""Remote models: a captioner served by an OpenAI-compatible or Ollama endpoint (vLLM, Ollama, llama.cpp,
OpenAI, another captioner server), registered as a bundle and loaded like any other kind.

- :mod:`.settings`: what a remote bundle records (endpoints, protocol, model id, key variable, limits);
- :mod:`.protocols`: each protocol's request and answer, as pure functions;
- :mod:`.transport`: one request with timeouts, retries and backoff;
- :mod:`.captioner`: the ``Captioner`` (bounded concurrency, styles, scores) and ``load``;
- :mod:`.registration`: writing a remote bundle (``captioner models add-remote``).
"""

from captioner.models.remote.captioner import load

__all__ = ["load"]
