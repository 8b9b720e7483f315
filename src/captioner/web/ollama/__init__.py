"""The Ollama-compatible protocol: the routes under ``/api`` (:mod:`.routes`) and their request and answer
shapes (:mod:`.schemas`). They translate requests into captions through :mod:`captioner.web.compat`, which
the OpenAI protocol shares."""
