"""`captioner serve`: the web app and API on a production WSGI server (never Flask's development server).

One worker process (the default) runs on waitress: threads, no fork, so TensorFlow and PyTorch are
safe and every request of the process shares one micro-batching queue per model. Waitress reads each
request whole before a thread takes it, so slow clients hold no thread, and it closes connections silent
for ``CAPTIONER_CLIENT_TIMEOUT_S``. ``--workers N`` (N > 1) runs gunicorn with N threaded workers (Unix
only); each worker creates the app, and so loads its models, after the fork, never before it, and accepts
connections only once its models are loaded; ``/readyz`` says ready when every worker is (see
:mod:`captioner.web.workers`). Every worker gets the one settings object read here (the same secret key
included); nothing travels through ``os.environ``.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import replace

from captioner.cli.common import add_precision_argument, positive_int
from captioner.web.settings import WebSettings

DEFAULTS = WebSettings(secret_key="unused")  # the settings' defaults, shown in --help


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the web app and JSON API on a production server",
        description="Serve the web app and the JSON API. Settings come from the environment or .env "
                    "(see .env.example); the options below win over them.")
    parser.add_argument("--host", default=None,
                        help=f"address to listen on (default $HOST or {DEFAULTS.host}; 0.0.0.0 for every interface)")
    parser.add_argument("--port", default=None,
                        help=f"port to listen on (default $PORT or {DEFAULTS.port}; 0 picks a free one)")
    parser.add_argument("--models-dir", metavar="DIR",
                        help=f"folder of model bundles (default $CAPTIONER_MODELS_DIR or ./{DEFAULTS.models_dir})")
    parser.add_argument("--threads", type=positive_int, default=DEFAULTS.threads,
                        help=f"request threads per worker (default {DEFAULTS.threads})")
    parser.add_argument("--workers", type=positive_int, default=DEFAULTS.workers,
                        help=f"worker processes (default {DEFAULTS.workers}: waitress; more: gunicorn, each loading "
                             "its own models)")
    add_precision_argument(parser)
    parser.set_defaults(handler=serve)


def port_number(text) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"port must be a number, not {text!r}") from None
    if not 0 <= value <= 65535:
        raise ValueError(f"port must be between 0 and 65535, not {value}")
    return value


def serve_settings(args) -> WebSettings:
    """The server's settings: the options over the environment and ``.env``; fails early, as one line."""
    options = {"threads": args.threads, "workers": args.workers,
               "flask": {"DEBUG": False}}  # never debug mode, whatever FLASK_DEBUG says
    if args.host:
        options["host"] = args.host
    if args.port is not None:
        options["port"] = port_number(args.port)
    if args.models_dir:
        options["models_dir"] = str(args.models_dir)
    # /healthz answers while the models load, unless CAPTIONER_LOAD_IN_BACKGROUND says otherwise
    return WebSettings.from_env(defaults={"load_in_background": True}, **options)


def serve(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
                        stream=sys.stderr)
    settings = serve_settings(args)
    if settings.workers > 1:
        return serve_gunicorn(settings)
    return serve_waitress(settings)


def serve_waitress(settings: WebSettings) -> int:
    from waitress import create_server

    from captioner.web import create_app

    host, threads = settings.host, settings.threads
    app = create_app(settings)
    server = create_server(
        app, host=host, port=settings.port, threads=threads, ident="captioner",
        max_request_body_size=settings.max_upload_bytes + 64 * 1024,  # the upload limit plus form overhead
        # Request bodies stay in memory up to that size (waitress would spill bigger ones to a temporary
        # file): uploads never touch the disk. At most connection_limit of them are held at once.
        inbuf_overflow=settings.max_upload_bytes + 64 * 1024,
        connection_limit=max(100, threads * 16),
        # A connection that sends nothing for this long is closed; one whose request is being answered is not.
        channel_timeout=settings.client_timeout_s, cleanup_interval=max(1, min(30, settings.client_timeout_s / 2)),
    )
    print(f"captioner: serving on http://{host}:{server.effective_port} (waitress, {threads} threads); "
          f"models from {settings.models_dir}", file=sys.stderr, flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        app.extensions["captioner"].close()
    return 0


def serve_gunicorn(settings: WebSettings) -> int:
    if sys.platform == "win32":
        raise ValueError("--workers above 1 needs gunicorn, which runs on Unix only; use --threads instead")
    import tempfile
    import threading

    from gunicorn.app.base import BaseApplication

    from captioner.web.workers import WorkerReadiness

    host, port, workers, threads = settings.host, settings.port, settings.workers, settings.threads
    readiness = WorkerReadiness(tempfile.mkdtemp(prefix="captioner-workers-"), workers)

    def keep_alive_while_loading(_server, worker):
        """Tell the master the worker lives while its models load (a long load is not a hung worker)."""
        def beat():
            while not worker.booted and worker.alive:
                worker.notify()
                time.sleep(1)
        threading.Thread(target=beat, name="loading-heartbeat", daemon=True).start()

    class CaptionerApplication(BaseApplication):
        """gunicorn with our settings; load() runs in each worker after the fork, before it accepts."""

        def load_config(self):
            options = {
                "bind": f"{host}:{port}", "workers": workers, "threads": threads, "worker_class": "gthread",
                "preload_app": False, "timeout": max(60, int(settings.request_timeout_s) + 30),
                "graceful_timeout": 30, "accesslog": "-", "errorlog": "-",
                "limit_request_line": 8190,
                "post_fork": keep_alive_while_loading,
                "post_worker_init": lambda worker: readiness.mark_ready(worker.pid),
                "child_exit": lambda _server, worker: readiness.forget(worker.pid),
                "on_exit": lambda _server: readiness.remove(),
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            from captioner.web import create_app

            # the one settings object (secret key included); models in memory before the first request
            app = create_app(replace(settings, load_in_background=False))
            app.extensions["captioner.workers"] = readiness
            return app

    print(f"captioner: serving on http://{host}:{port} (gunicorn, {workers} workers x {threads} threads); "
          f"models from {settings.models_dir}", file=sys.stderr, flush=True)
    CaptionerApplication().run()
    return 0
