# syntax=docker/dockerfile:1.7
# One image for every process of Regional Twin Hub — hub web (granian), Celery worker and
# beat, hub consumer, migrations, the DE-ID worker and the site agent; the Helm charts choose
# the command. Three stages: web-assets installs htmx and Chart.js from npm (package-lock.json);
# build installs the project (no dev extras) into a virtualenv and collects the static files,
# those two included; the runtime stage gets only that virtualenv, the static files and
# manage.py, and runs as an unprivileged user with nothing writable but the volumes the
# charts mount.
#
#   docker build -t regional-twin-hub:0.1.0 .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-slim
ARG RUST_IMAGE=rust:1.95-slim-bookworm

# --- web assets -----------------------------------------------------------------------------
# htmx and Chart.js from the npm registry, pinned by package-lock.json (what scripts/bootstrap
# does for a checkout). Only the three files the web app serves leave this stage: no Node.js,
# no node_modules in the image.
FROM ${NODE_IMAGE} AS web-assets

WORKDIR /assets
COPY hub/web/frontend/package.json hub/web/frontend/package-lock.json ./
# --ignore-scripts: neither package needs an install script, so none gets to run.
RUN npm ci --no-audit --no-fund --loglevel=error --ignore-scripts \
 && mkdir vendor \
 && cp node_modules/htmx.org/dist/htmx.min.js \
       node_modules/chart.js/dist/chart.umd.min.js \
       node_modules/chart.js/dist/chart.umd.min.js.map \
       vendor/

# --- native DE-ID core ---------------------------------------------------------------------
# deid_core (native/deid_core, Rust) as a wheel, built by maturin (pinned in its pyproject.toml)
# with the crates Cargo.lock pins; the toolchain comes from the official Rust image and stays
# in this stage. Only the wheel leaves it.
FROM ${RUST_IMAGE} AS rust-toolchain
FROM ${PYTHON_IMAGE} AS native

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH
COPY --from=rust-toolchain /usr/local/rustup /usr/local/rustup
COPY --from=rust-toolchain /usr/local/cargo /usr/local/cargo
# The linker rustc calls.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /native
COPY native/deid_core ./
RUN pip wheel --wheel-dir /wheels .

# --- build ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies in their own layer, so a code change does not reinstall them. Every pinned
# dependency ships manylinux wheels (psycopg[binary] bundles libpq, confluent-kafka bundles
# librdkafka), so no compiler is needed.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb')); \
print('\n'.join(d['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

COPY manage.py ./
COPY hub ./hub
COPY governance ./governance
COPY deid ./deid
COPY site_agent ./site_agent
COPY simulation ./simulation
# The vendored browser libraries, where Django's staticfiles finds them (git-ignored in a
# checkout, and kept out of the build context by .dockerignore: only the lock file decides).
COPY --from=web-assets /assets/vendor ./hub/web/static/web/vendor
# A regular (not editable) install: the runtime image holds no source tree.
RUN pip install --no-deps .
# The native DE-ID core (the worker falls back to its Python reference without it).
COPY --from=native /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/deid_core-*.whl && rm -rf /tmp/wheels

# Static files are collected here, once, with the hashed names whitenoise serves. Settings
# refuse to load without a secret key; this one is random, lives only in this RUN's
# environment and is never written to a layer. The runtime reads DJANGO_SECRET_KEY_FILE.
ENV DJANGO_STATIC_ROOT=/opt/twinhub/static
RUN cd /tmp \
 && DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    TWINHUB_LOCAL_DIR=/nonexistent \
    python /src/manage.py collectstatic --no-input --verbosity 1

# --- runtime --------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="regional-twin-hub" \
      org.opencontainers.image.description="Regional Twin Hub: hub, workers, DE-ID worker, site agent" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/regional-twin-hub/regional-twin-hub"

# A fixed numeric uid/gid: Kubernetes' runAsNonRoot can only verify a numeric USER, and the
# charts' securityContext uses the same ids.
RUN groupadd --system --gid 10001 twinhub \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin twinhub

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=hub.settings \
    DJANGO_STATIC_ROOT=/opt/twinhub/static \
    TWINHUB_LOCAL_DIR=/nonexistent \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOME=/tmp

COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/twinhub/static /opt/twinhub/static
COPY --from=build /src/manage.py /app/manage.py

# manage.py (migrate, consume) runs from here; everything else is an installed package.
WORKDIR /app
USER 10001:10001

EXPOSE 8000
# The web as the chart runs it: granian's workers serve hub.wsgi, the launcher serves their
# merged metrics on METRICS_PORT when set (hub/serve; WEB_* variables set the rest).
CMD ["python", "-m", "hub.serve", "--host", "0.0.0.0", "--port", "8000"]
