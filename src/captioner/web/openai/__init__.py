"""The OpenAI-compatible protocol: the routes under ``/v1`` (:mod:`.routes`) and their request and answer
shapes (:mod:`.schemas`). They translate requests into captions through :mod:`captioner.web.compat`, which
the Ollama protocol shares."""
