# syntax=docker/dockerfile:1
# Likeview: one image for the API (`serve`, the default) and the workers (`worker`).
# Dependencies come only from requirements.lock (exact versions, hashes checked); the
# process runs as an unprivileged user and writes nothing under / (a read-only root file
# system works: compose.yaml runs it so). README, Production.
# tests/unit/test_deployment_files.py checks its commands and settings against main.py.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements.lock

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 likeview \
 && useradd --system --uid 10001 --gid likeview --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin likeview
COPY --from=deps /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOG_JSON=true \
    GRAPHIQL=false \
    INTROSPECTION=false
WORKDIR /app
COPY main.py ./
COPY domain ./domain
COPY resolvers ./resolvers
COPY schema ./schema
COPY storage ./storage
COPY subscriptions ./subscriptions
COPY tracing ./tracing
COPY transport ./transport
COPY workers ./workers
# The reference app's committed build, served at /app/ (its dev sign-in is off whenever
# JWT_SECRET is set).
COPY web/app/dist ./web/app/dist
# Bytecode now, owned by root: at run time nothing is written and nothing can be.
RUN python -m compileall -q /app
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["python", "main.py"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
