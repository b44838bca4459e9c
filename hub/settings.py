"""The hub's one settings module: everything comes from the environment.

Local defaults point at the services that ``scripts/services up`` starts on loopback, so a new
user needs to set nothing. Production sets ``DJANGO_DEBUG`` off (the default), real URLs and
secrets (or ``*_FILE`` paths to them).
"""

import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from deid.kafka_security import KafkaSecurityError, kafka_security_config
from deid.logformat import PLAIN_FORMAT, log_format
from hub.env import env, env_bool, env_int, env_list, env_secret
from hub.pgbackend.timeouts import ENV as STATEMENT_TIMEOUT_ENV
from hub.pgbackend.timeouts import timeout_seconds, with_statement_timeout

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = Path(env("TWINHUB_LOCAL_DIR", str(BASE_DIR / ".local")))

DEBUG = env_bool("DJANGO_DEBUG", default=False)


def _secret_key() -> str:
    key = env_secret("DJANGO_SECRET_KEY")
    if key:
        return key
    # scripts/services generates this file for local use; it is git-ignored.
    local = LOCAL_DIR / "secrets" / "django_secret_key"
    if local.exists():
        return local.read_text(encoding="utf-8").strip()
    raise ImproperlyConfigured(
        "Set DJANGO_SECRET_KEY or DJANGO_SECRET_KEY_FILE (or run scripts/services up, which "
        f"generates {local} for local use)."
    )


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",  # intcomma: counts on the governance screens
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "guardian",
    "governance",
    "hub.health",
    "hub.demo",
    "hub.registry",
    "hub.census",
    "hub.api",
    "hub.coordination",
    "hub.benchmarks",
    "hub.web",
]

MIDDLEWARE = [
    # First: times the whole stack and binds the request id to every log line of the request.
    "hub.observability.web.RequestObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "hub.web.csp.CSPMiddleware",  # django-csp, the site-wide header built once
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "governance.audit.AuditMiddleware",  # after auth: names the user; one event per request
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: a view's database timeout or outage becomes a 503 before the audit records it.
    "hub.database_unavailable.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "hub.urls"
WSGI_APPLICATION = "hub.wsgi.application"
ASGI_APPLICATION = "hub.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "hub" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "hub.web.navigation.nav",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------
# URLs may hold credentials, so they may come from files too (DATABASE_URL_FILE, REDIS_URL_FILE).
DATABASE_URL = env_secret("DATABASE_URL") or "postgres://twinhub@127.0.0.1:55432/twinhub"
if not DATABASE_URL.startswith(("postgres://", "postgresql://")):
    # The hub's partitioning, triggers and upserts are PostgreSQL features; no SQLite stand-in.
    raise ImproperlyConfigured("DATABASE_URL must be a PostgreSQL URL")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
# Django's PostgreSQL backend whose per-request health check asks the socket before it sends
# ``SELECT 1`` (hub/pgbackend/base.py).
DATABASES["default"]["ENGINE"] = "hub.pgbackend"
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"]["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 5)
# How long one statement may run (hub/pgbackend/timeouts.py): the web launcher sets it for its
# workers; other processes have none unless the variable is set for them.
try:
    _STATEMENT_TIMEOUT = timeout_seconds(env(STATEMENT_TIMEOUT_ENV))
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from exc
if _STATEMENT_TIMEOUT:
    DATABASES["default"]["OPTIONS"]["options"] = with_statement_timeout(
        str(DATABASES["default"]["OPTIONS"].get("options", "")), _STATEMENT_TIMEOUT
    )
DATABASE_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
if env("DATABASE_SSLMODE"):
    if env("DATABASE_SSLMODE") not in DATABASE_SSLMODES:
        raise ImproperlyConfigured(
            f"DATABASE_SSLMODE must be one of {', '.join(DATABASE_SSLMODES)}"
        )
    DATABASES["default"]["OPTIONS"]["sslmode"] = env("DATABASE_SSLMODE")
    if env("DATABASE_SSLROOTCERT"):
        DATABASES["default"]["OPTIONS"]["sslrootcert"] = env("DATABASE_SSLROOTCERT")
    elif env("DATABASE_SSLMODE") in ("verify-ca", "verify-full"):
        # libpq would fall back to ~/.postgresql/root.crt, which the image does not have: say
        # so at start rather than at the first connection.
        raise ImproperlyConfigured(
            f"DATABASE_SSLMODE={env('DATABASE_SSLMODE')} needs DATABASE_SSLROOTCERT (a CA file)"
        )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Kafka and Redis -----------------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
# TLS/SASL settings every Kafka client of the hub adds to its own (KAFKA_SECURITY_PROTOCOL,
# KAFKA_SSL_*, KAFKA_SASL_*; deid/kafka_security.py). Holds the SASL password when there is
# one: Django's error reports hide it (the key contains "pass").
try:
    KAFKA_CLIENT_CONFIG = kafka_security_config(os.environ)
except KafkaSecurityError as exc:
    raise ImproperlyConfigured(str(exc)) from exc
REDIS_URL = env_secret("REDIS_URL") or "redis://127.0.0.1:56379/0"

# Database sessions, read with one plain statement (hub/api/sessions.py): deleting a session
# row signs its holder out at once. API clients with a bearer credential never touch one.
SESSION_ENGINE = "hub.api.sessions"

CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
# A task is acknowledged after it ran, so a worker killed mid-task does not lose it; tasks
# are written to be idempotent for that reason.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

# --- Auth ----------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # ModelBackend with the session's user memoised per grants version (governance.versions).
    "hub.api.authentication.CachedModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"

# --- API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "hub.api.authentication.SiteAgentAuthentication",
    ],
    # Every error a client can cause is a 4xx with a message (hub/api/exceptions.py).
    "EXCEPTION_HANDLER": "hub.api.exceptions.exception_handler",
    # DRF's JSON through orjson (hub/api/renderers.py): the same bytes, less CPU.
    "DEFAULT_RENDERER_CLASSES": [
        "hub.api.renderers.FastJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Regional Twin Hub API",
    "DESCRIPTION": "Site agents and the regional operations center talk to the hub here.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed sidecar package: no CDN, works offline and under the CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status" or "kind"; naming each choice set keeps the schema
    # stable for client generators (and drf-spectacular quiet under check --deploy).
    "ENUM_NAME_OVERRIDES": {
        "DirectiveKindEnum": "hub.registry.models.Directive.Kind",
        "ResourceKindEnum": "hub.coordination.models.ResourceKind",
        "DiversionStatusEnum": "hub.coordination.models.DiversionStatus",
        "RequestStatusEnum": "hub.coordination.models.RequestStatus",
        "PolicyStatusEnum": "governance.models.PolicyStatus",
        "ErasureStatusEnum": "governance.models.ErasureStatus",
    },
}

# --- Internationalisation, static files ----------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env("DJANGO_STATIC_ROOT", str(LOCAL_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Security ------------------------------------------------------------------------------
# Behind TLS (production) these are all on; the local demo serves plain HTTP on loopback.
SECURE_SSL = env_bool("DJANGO_SECURE_SSL", default=not DEBUG and env_bool("DJANGO_BEHIND_TLS"))
SESSION_COOKIE_SECURE = SECURE_SSL
CSRF_COOKIE_SECURE = SECURE_SSL
SECURE_SSL_REDIRECT = SECURE_SSL and env_bool("DJANGO_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000 if SECURE_SSL else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_SSL
SECURE_HSTS_PRELOAD = SECURE_SSL
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE_SSL else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy: every script and style comes from our own static files (htmx and
# Chart.js are installed from npm at build time), no inline code, no third-party origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Logging -------------------------------------------------------------------------------
# LOG_FORMAT=json: one JSON object per line with the request id (web), the envelope's batch id
# and the records' event ids (consumer), the task (Celery); see deid/logformat.py. Plain text
# stays the default for the local demo.
LOG_FORMAT = log_format()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": PLAIN_FORMAT},
        "json": {"()": "deid.logformat.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The web's access lines (hub.serve, web.server.accessLog) are switched by their own
        # setting, not dropped by a quieter LOG_LEVEL.
        "hub.access": {"level": "INFO"},
    },
}
# Celery replaces the root logger's handlers with its own plain ones, and sends stdout and
# stderr through a logger, unless told not to; either would break the JSON lines.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"
CELERY_WORKER_REDIRECT_STDOUTS = LOG_FORMAT != "json"

# --- Metrics ---
# Each process serves Prometheus metrics on METRICS_PORT (the web launcher hub.serve, the
# Celery worker, `manage.py consume`); hub/observability. /metrics on the web port as well
# only when METRICS_ENABLED, behind METRICS_TOKEN(_FILE) as a bearer token when set.
METRICS_ENABLED = env_bool("METRICS_ENABLED", default=False)
METRICS_TOKEN = env_secret("METRICS_TOKEN")

# --- Governance ---
# Governance never imports the hub: it finds the scoping models by label (docs/governance.md).
GOVERNANCE_HOSPITAL_MODEL = "registry.Hospital"
GOVERNANCE_UNIT_MODEL = "registry.Unit"
GOVERNANCE_UNIT_HOSPITAL_FIELD = "hospital"
GOVERNANCE_HOSPITAL_SITE_CODE_FIELD = "site_code"
GOVERNANCE_HOSPITAL_REGION_FIELD = "region"
GOVERNANCE_ED_UNIT_FILTER = {"unit_type": "emergency"}


def _governance_local_secret(name: str) -> str | None:
    # `manage.py governance keygen --local` writes these (git-ignored) for the local demo only.
    path = LOCAL_DIR / "secrets" / name
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


# Ed25519 key signing policies and audit checkpoints; AES-256-GCM field keys "1:<b64>,2:<b64>".
GOVERNANCE_SIGNING_KEY = env_secret("GOVERNANCE_SIGNING_KEY") or _governance_local_secret(
    "governance_signing_key"
)
GOVERNANCE_FIELD_KEYS = env_secret("GOVERNANCE_FIELD_KEYS") or _governance_local_secret(
    "governance_field_keys"
)
GOVERNANCE_FIELD_KEY_VERSION = env_int("GOVERNANCE_FIELD_KEY_VERSION", 0)  # 0: the highest
GOVERNANCE_CONTROL_TOPIC = env("GOVERNANCE_CONTROL_TOPIC", "regional.control.v1")
GOVERNANCE_POLICY_QUORUM = env_int("GOVERNANCE_POLICY_QUORUM", 2)  # unless a region sets one
GOVERNANCE_TRUSTED_PROXY_COUNT = env_int("GOVERNANCE_TRUSTED_PROXY_COUNT", 0)
GOVERNANCE_AUDIT_EXEMPT_PATHS = ["/healthz", "/readyz", "/metrics", "/static/", "/favicon.ico"]
GOVERNANCE_AUDIT_CHECKPOINT_DIR = env("GOVERNANCE_AUDIT_CHECKPOINT_DIR", "")
# A read's audit event commits without waiting for the disk (lost only if the database server
# crashes within ~0.6 s of it); true makes it wait, as a change's event always does
# (governance/durability.py).
GOVERNANCE_AUDIT_READS_DURABLE = env_bool("GOVERNANCE_AUDIT_READS_DURABLE", default=False)
GOVERNANCE_ERASURE_DEADLINE_DAYS = env_int("GOVERNANCE_ERASURE_DEADLINE_DAYS", 30)
GOVERNANCE_ERASURE_ALERT_DAYS = env_int("GOVERNANCE_ERASURE_ALERT_DAYS", 7)
# URL names (or "namespace:*") that declare no governed action, each for a reason: probes and
# metrics carry no data, the schema has no rows, the admin is guarded by model permissions
# (and audited); pages with no data of their own: sign-in/out, the landing redirect (it only
# forwards to a governed page), the favicon.
GOVERNANCE_UNGOVERNED_URLS = [
    *("healthz", "readyz", "metrics", "api-schema", "api-docs", "admin:*", "favicon"),
    *("web:home", "web:login", "web:logout"),
]
# Retention per data class (audit events: 7 years, built in). Flow records keep what each
# hospital's published sharing policy says (retention.flow_records_months), else `months`.
GOVERNANCE_RETENTION_CLASSES = {
    "operational_metrics": {
        "tables": ["census_censussnapshot"],
        "time_column": "observed_at",
        "months": 12,
    },
    "flow_records": {
        "tables": ["census_flowevent"],
        "time_column": "observed_at",
        "months": 12,
        "hospital_column": "hospital_id",
        "policy_key": "flow_records_months",
    },
}
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "governance-audit-link": {"task": "governance.audit.link", "schedule": 5.0},
    "governance-audit-checkpoint": {"task": "governance.audit.checkpoint", "schedule": 86400.0},
    "governance-retention": {"task": "governance.retention.enforce", "schedule": 86400.0},
    "governance-erasure-deadlines": {"task": "governance.erasure.deadlines", "schedule": 3600.0},
    "governance-publish-due": {"task": "governance.policies.publish_due", "schedule": 60.0},
}

# --- Coordination ---
# Diversion, surge and alerts for every region each minute, and within seconds of a census
# change (a region whose census is newer than its last evaluation); KPIs nightly.
CELERY_BEAT_SCHEDULE = {
    **CELERY_BEAT_SCHEDULE,
    "coordination-evaluate-all": {"task": "coordination.evaluate_all", "schedule": 60.0},
    "coordination-evaluate-changed": {"task": "coordination.evaluate_changed", "schedule": 10.0},
    "benchmarks-refresh": {"task": "benchmarks.refresh", "schedule": 86400.0},
}
# The evaluations have a queue of their own. What a region's last evaluation stored is kept by
# the process that made it (hub/coordination/kept.py), and an evaluation in another process
# reads it all back (for a national region under pressure, up to twice the time). So one
# worker process consumes this queue (`celery -A hub worker -Q coordination --concurrency 1`)
# and the others the default one (`-Q celery`); a worker started without -Q takes both.
COORDINATION_QUEUE = "coordination"
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("celery"), Queue(COORDINATION_QUEUE))
CELERY_TASK_ROUTES = {
    f"coordination.{name}": {"queue": COORDINATION_QUEUE}
    for name in ("evaluate_all", "evaluate_changed", "evaluate_region")
}
