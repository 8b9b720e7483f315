# captioner web app and API on CPU: docker build -t captioner . && docker run -p 8000:8000 -v "$PWD/models:/app/models" captioner
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PORT=8000 \
    CAPTIONER_MODELS_DIR=/app/models \
    CAPTIONER_INSTANCE_DIR=/app/instance \
    CAPTIONER_CACHE_DIR=/app/.cache/captioner \
    HF_HOME=/app/.cache/huggingface \
    KERAS_HOME=/app/.cache/keras

WORKDIR /app

# torch first, from the PyTorch CPU index: the default index would pull a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# The package with its model and web extras, held to the versions the test suite passed with.
COPY requirements.txt pyproject.toml README.md ./
COPY src ./src
RUN pip install -c requirements.txt ".[lstm,vit,web]"

# Run as an unprivileged user; models live on a volume, caches in the user's writable /app/.cache.
RUN useradd --create-home --uid 10001 captioner \
    && mkdir -p /app/models /app/instance /app/.cache \
    && chown -R captioner:captioner /app/models /app/instance /app/.cache
USER captioner
VOLUME ["/app/models", "/app/instance"]
EXPOSE 8000

# /healthz answers as soon as the server runs (models load in the background; /readyz says when they are in).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

# The production server (waitress); never Flask's development server. Settings come from the environment.
CMD ["sh", "-c", "exec captioner serve --host 0.0.0.0 --port \"$PORT\""]
