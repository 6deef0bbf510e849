"""Settings, driven by environment variables (see README, "Configuration").

Nothing configured is the embedded default: SQLite under var/, a filesystem Celery broker,
no Redis or PostgreSQL. DATABASE_URL and REDIS_URL switch to the production parts.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from workflow_app.env import (
    env_bool,
    env_choice,
    env_database,
    env_email,
    env_int,
    env_keys,
    env_list,
    env_rate,
    env_redis_url,
    env_site_url,
    env_storage,
    env_str,
    env_time_zone,
    field_encryption_keys,
    secret_key,
    signing_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("SIGNOFF_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# PostgreSQL connections per process (README, "Sizing the database connections"): a pool of at
# most DATABASE_POOL_SIZE, shared by the process's threads; a request waits up to
# DATABASE_POOL_TIMEOUT_SECONDS for one, then gets a 503 with Retry-After (overload.py).
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 10)
DATABASE_POOL_TIMEOUT_SECONDS = env_int("DATABASE_POOL_TIMEOUT_SECONDS", 10, minimum=1)
DATABASES = {
    "default": env_database(
        "DATABASE_URL",
        VAR_DIR / "signoff.sqlite3",
        pool_size=DATABASE_POOL_SIZE,
        pool_timeout=DATABASE_POOL_TIMEOUT_SECONDS,
    )
}
# HTTP requests one web process runs at once (each may hold a pooled connection): by default
# the pool less two connections kept for the WebSocket consumers' reads (8 without a pool).
# More wait in line up to WEB_QUEUE_TIMEOUT_SECONDS, then get the same 503
# (overload.RequestLine): 30 s by default, under the 60 s a proxy usually allows, so that a
# burst waits its turn (200 API clients on two cores wait about 10 s, bench/load.py) rather than
# failing.
WEB_MAX_REQUESTS = env_int(
    "WEB_MAX_REQUESTS", max(1, DATABASE_POOL_SIZE - 2) if DATABASE_POOL_SIZE else 8, minimum=1
)
WEB_QUEUE_TIMEOUT_SECONDS = env_int("WEB_QUEUE_TIMEOUT_SECONDS", 30, minimum=1)
# Time limits of the web's sessions, and the worker's longer one for its sweeps (0: none); set
# when the process starts (database.py), so that commands such as migrate have none.
DATABASE_STATEMENT_TIMEOUT_SECONDS = env_int("DATABASE_STATEMENT_TIMEOUT_SECONDS", 30)
DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS = env_int(
    "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", 60
)
WORKER_STATEMENT_TIMEOUT_SECONDS = env_int("WORKER_STATEMENT_TIMEOUT_SECONDS", 600)
REDIS_URL = env_redis_url("REDIS_URL")
# The embedded default is what a newcomer gets with nothing configured; it is also the only
# mode in which DEBUG (and with it the demo passwords) is on unless asked for.
EMBEDDED = env_str("DATABASE_URL") is None and REDIS_URL is None

DEBUG = env_bool("DEBUG", EMBEDDED)
# Django's technical 404 and 500 pages (every URL pattern, the settings, a traceback) only for a
# developer who set DEBUG=true; the embedded default's DEBUG shows the site's own error pages.
TECHNICAL_ERROR_PAGES = env_bool("DEBUG", False)
SECRET_KEY = secret_key("SECRET_KEY", debug=DEBUG, keep_file=VAR_DIR / "secret_key")
# Keys the audit chain's MACs (docs/engine.md, "Audit trail"): kept outside the database, so
# write access to the database alone cannot recompute the chain. New events are keyed with
# AUDIT_CHAIN_KEY; AUDIT_CHAIN_PREVIOUS_KEYS still verify the events keyed before a rotation.
AUDIT_CHAIN_KEY = secret_key(
    "AUDIT_CHAIN_KEY", debug=DEBUG, keep_file=VAR_DIR / "audit_chain_key", min_length=32
)
AUDIT_CHAIN_PREVIOUS_KEYS = env_keys("AUDIT_CHAIN_PREVIOUS_KEYS", min_length=32)
# Signs the audit export's bundles (README, "Signed audit export"): Ed25519, PEM or a PEM file's
# path. The embedded default makes one once under var/; production without it cannot export.
AUDIT_SIGNING_KEY = signing_key(
    "AUDIT_SIGNING_KEY", debug=DEBUG, keep_file=VAR_DIR / "audit_signing_key.pem"
)
# Key-encryption keys of sensitive form fields (README, "Sensitive fields"): `<id>:<base64 of 32
# bytes>`, comma-separated, the current key first; older ones still unwrap the data keys that
# `manage.py rotate_field_keys` has not re-wrapped yet. The embedded default makes one under var/.
FIELD_ENCRYPTION_KEYS = field_encryption_keys(
    "FIELD_ENCRYPTION_KEYS", debug=DEBUG, keep_file=VAR_DIR / "field_encryption_keys"
)
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else []
)
SITE_URL = env_site_url("SITE_URL", "http://localhost:8000")
CSRF_TRUSTED_ORIGINS = [SITE_URL]

TIME_ZONE = env_time_zone("TIME_ZONE", "UTC")
USE_TZ = True
LANGUAGE_CODE = "en-gb"
USE_I18N = True

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "csp",
    "axes",
    # TOTP codes for electronic signatures (approvals/services/signatures.py).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "accounts",
    "approvals",
]

MIDDLEWARE = [
    # Before all: each line logged while a request runs names it (X-Request-ID). It changes
    # no answer but for that header.
    "workflow_app.observability.logs.RequestContext",
    # Next, so that it sees every answer: under /api/ errors are JSON, whoever made them.
    "workflow_app.errors.ApiErrorsAsJson",
    "workflow_app.errors.FriendlyErrorPages",
    "workflow_app.overload.OverloadMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "workflow_app.middleware.StorableTextMiddleware",
    "workflow_app.middleware.UserTimeZone",
    # Last, as axes asks: turns a sign-in refused by a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "workflow_app.urls"
WSGI_APPLICATION = "workflow_app.wsgi.application"
ASGI_APPLICATION = "workflow_app.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "approvals.formatting.reader_time_zone",
            ],
        },
    },
]

# Single sign-on with OpenID Connect (README, "Single sign-on"; accounts/sso.py): on when
# OIDC_ISSUER is set, its endpoints and keys found through the issuer's discovery document.
# Authorization code flow with PKCE, state and nonce (mozilla-django-oidc); the ID token's
# RS256 signature is checked against the provider's JWKS, its audience, issuer and expiry too.
OIDC_ISSUER = (env_str("OIDC_ISSUER", "") or "").rstrip("/")
OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID", "")
OIDC_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET", "")
# Space- or comma-separated; openid is always asked for.
OIDC_SCOPES = " ".join(
    dict.fromkeys(
        ["openid", *(env_str("OIDC_SCOPES", "email profile") or "").replace(",", " ").split()]
    )
)
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
# E-mail domains whose people may sign in with the provider (empty: any).
OIDC_ALLOWED_DOMAINS = [
    domain.lower().lstrip("@") for domain in env_list("OIDC_ALLOWED_DOMAINS", [])
]
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT_SECONDS", 10, minimum=1)
# LOCAL_LOGIN=false: no password sign-in but for BREAK_GLASS_USER, a superuser kept for when
# the provider is down; the login page shows only the provider's button.
LOCAL_LOGIN = env_bool("LOCAL_LOGIN", True)
BREAK_GLASS_USER = env_str("BREAK_GLASS_USER", "")
if OIDC_ISSUER:
    if urlsplit(OIDC_ISSUER).scheme not in {"http", "https"}:
        raise ImproperlyConfigured(f"OIDC_ISSUER={OIDC_ISSUER!r} is not an http(s) URL")
    for _name in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"):
        if not globals()[_name]:
            raise ImproperlyConfigured(f"{_name} must be set when OIDC_ISSUER is")
elif not LOCAL_LOGIN:
    raise ImproperlyConfigured("LOCAL_LOGIN=false needs single sign-on: set OIDC_ISSUER")

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out sign-in before any password is checked (accounts/throttling.py).
    "axes.backends.AxesStandaloneBackend",
    # Passwords, and permissions for everyone; with LOCAL_LOGIN=false, passwords only for
    # BREAK_GLASS_USER (accounts/backends.py).
    "accounts.backends.LocalPasswordBackend",
    "guardian.backends.ObjectPermissionBackend",
    # Sign-in with the identity provider, when OIDC_ISSUER is set (accounts/sso.py).
    *(["accounts.sso.ProviderBackend"] if OIDC_ISSUER else []),
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox"
LOGOUT_REDIRECT_URL = "login"
GUARDIAN_RAISE_403 = False

# Sign-in throttling (django-axes, accounts/throttling.py; README, "Sign-in throttling"): after
# Authenticator apps list the key under this name (electronic signatures' codes).
OTP_TOTP_ISSUER = "Signoff"

# AXES_FAILURE_LIMIT failures for one username or from one address within the cool-off, sign-in
# for it is refused until the cool-off has passed; a successful sign-in forgets the user's own
# failures. Attempts are kept in the database, which every web process shares.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Refused attempts during a lockout do not extend it: the page can say when it ends, and
# someone hammering a username cannot keep its owner out for good.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HANDLER = "accounts.throttling.LoginAttempts"
AXES_LOCKOUT_CALLABLE = "accounts.throttling.lockout_response"
AXES_CLIENT_IP_CALLABLE = "accounts.throttling.client_address"
# Every failed attempt is kept for the admin (Axes: "Access failures"), not only the counters.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# Reverse proxies in front of the web processes that append to X-Forwarded-For: the client's
# address is then read from that header (0: the connection's own address).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Uploaded documents (artifacts) go through Django's storage API: files under var/media/ by
# default, an S3-compatible bucket with STORAGE_URL=s3://bucket/prefix (django-storages; boto3
# reads AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY itself). They are never served from a
# public URL: downloads are permission-checked views (approvals/artifacts/views.py).
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": env_storage(
        "STORAGE_URL",
        MEDIA_ROOT,
        endpoint_url=env_str("S3_ENDPOINT_URL", None),
        region=env_str("S3_REGION", None),
    ),
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Security: strict whenever DEBUG is off (`manage.py check --deploy` is clean).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy on every page (django-csp; docs/web.md, "Content-Security-Policy"):
# scripts, styles, images and fonts come from this site only and nothing inline runs, so an
# injected <script>, on*= handler or style= attribute is inert. The Django admin runs under
# the same policy. Live updates connect back over WebSocket: 'self' covers ws(s) to this
# host in current browsers, SITE_URL's ws(s) origin is named for the others.
_SITE = urlsplit(SITE_URL)
_SITE_WEBSOCKETS = f"{'wss' if _SITE.scheme == 'https' else 'ws'}://{_SITE.netloc}"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # Swagger UI and the admin draw some icons from data: URLs.
        "img-src": [SELF, "data:"],
        "connect-src": [SELF, _SITE_WEBSOCKETS],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

if OIDC_ISSUER:
    # Signing out posts a form whose answer redirects to the provider's end-session endpoint
    # (RP-initiated logout); browsers hold that redirect to form-action too.
    _ISSUER = urlsplit(OIDC_ISSUER)
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(
        f"{_ISSUER.scheme}://{_ISSUER.netloc}"
    )

# Celery: Redis in production; with nothing configured, kombu's filesystem transport, which
# needs no server and is shared by every process on this machine through var/broker/.
BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
else:
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Worker child processes; each runs one task at a time and holds one database connection.
CELERY_WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 2, minimum=1)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Signs what the `webhook` action posts (X-Signoff-Signature); receivers verify with it.
WEBHOOK_SECRET = env_str("WEBHOOK_SECRET", "")
# Webhook targets (subscriptions, the `webhook` action) must be public addresses; loopback,
# private and link-local ones are allowed only with this on (cloud metadata never). On by
# default with DEBUG, where everything runs on one machine and a test receiver is on localhost.
ALLOW_PRIVATE_WEBHOOK_TARGETS = env_bool("ALLOW_PRIVATE_WEBHOOK_TARGETS", DEBUG)
SLA_SWEEP_SECONDS = env_int("SLA_SWEEP_SECONDS", 30, minimum=1)
# Schedules (a definition's cron `schedule`): how often beat looks for due ticks, and how late
# a tick may be taken before it counts as missed (a `catch_up: false` schedule skips it).
SCHEDULE_SWEEP_SECONDS = env_int("SCHEDULE_SWEEP_SECONDS", 30, minimum=1)
SCHEDULE_GRACE_SECONDS = env_int("SCHEDULE_GRACE_SECONDS", 120, minimum=1)
# Inbound webhooks: how far X-Signoff-Timestamp may be from now.
INBOUND_HOOK_TOLERANCE_SECONDS = env_int("INBOUND_HOOK_TOLERANCE_SECONDS", 300, minimum=1)
# Automated steps: how long one attempt may run before the sweep assumes its worker died and
# sends it again (keep it above the slowest action, e.g. the webhook's 10 s timeout), and the
# role whose members get the manual-review task of a step that failed its last attempt.
ACTION_LEASE_SECONDS = env_int("ACTION_LEASE_SECONDS", 300, minimum=1)
ACTION_REVIEW_ROLE = env_str("ACTION_REVIEW_ROLE", "operator")
# How often beat sweeps what is due to leave (automated steps, Slack messages, webhooks):
# retries whose backoff ran out, attempts whose worker died, rows queued while the broker was
# down. WEBHOOK_SWEEP_SECONDS is its older name, still read.
OUTBOX_SWEEP_SECONDS = env_int(
    "OUTBOX_SWEEP_SECONDS", env_int("WEBHOOK_SWEEP_SECONDS", 15, minimum=1), minimum=1
)
# The Celery queue this installation's worker and beat share (several installations, or test
# runs, may then share one Redis database).
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
HEARTBEAT_SECONDS = env_int("HEARTBEAT_SECONDS", 30, minimum=1)

# Notifications and Slack (docs/notifications.md). Browser push crosses processes through the
# channel layer when it is shared (channels-redis); the in-memory layer of the embedded default
# reaches one process only, so there each ASGI process polls new rows by id instead.
NOTIFY_PUSH = "layer" if REDIS_URL else "poll"
NOTIFY_POLL_MS = env_int("NOTIFY_POLL_MS", 500, minimum=50)
SLACK_BOT_TOKEN = env_str("SLACK_BOT_TOKEN", "")
SLACK_SIGNING_SECRET = env_str("SLACK_SIGNING_SECRET", "")
# Slack's Web API; tests point it at a local server that speaks the calls Signoff makes.
SLACK_API_URL = env_site_url("SLACK_API_URL", "https://slack.com/api/") + "/"
SLACK_MAX_ATTEMPTS = env_int("SLACK_MAX_ATTEMPTS", 10, minimum=1)
# E-mail (docs/notifications.md#e-mail): EMAIL_URL becomes Django's e-mail settings; unset,
# every message is written to var/mail/ (Django's file backend) for a newcomer to read.
globals().update(env_email("EMAIL_URL", VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env_str("EMAIL_FROM", "Signoff <signoff@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The organisation's default for every kind of notification; each person may turn it off.
EMAIL_NOTIFICATIONS = env_bool("EMAIL_NOTIFICATIONS", True)
EMAIL_MAX_ATTEMPTS = env_int("EMAIL_MAX_ATTEMPTS", 8, minimum=1)
# How long an Approve / Reject / Request changes link in a task e-mail may be followed.
EMAIL_LINK_HOURS = env_int("EMAIL_LINK_HOURS", 72, minimum=1)
# Replies to e-mails become comments (approvals/integrations/email/replies.py) when this is set:
# it signs each message's Reply-To address and is the password of the inbound-mail webhook.
INBOUND_EMAIL_SECRET = env_str("INBOUND_EMAIL_SECRET", "")
# Where replies go: reply+<signed token>@this domain (its mail routed to the webhook); by
# default the domain of EMAIL_FROM.
INBOUND_EMAIL_DOMAIN = env_str("INBOUND_EMAIL_DOMAIN", "")
# Microsoft Teams (docs/notifications.md#microsoft-teams): cards to the webhooks set on roles
# and people in the admin; off: none are written.
TEAMS_ENABLED = env_bool("TEAMS_ENABLED", True)
TEAMS_MAX_ATTEMPTS = env_int("TEAMS_MAX_ATTEMPTS", 10, minimum=1)
# How often beat makes the digests that are due.
DIGEST_SWEEP_SECONDS = env_int("DIGEST_SWEEP_SECONDS", 60, minimum=1)
# REST API and outgoing webhooks. Rates are DRF's "<count>/<second|minute|hour|day>".
API_WRITE_RATE = env_rate("API_WRITE_RATE", "120/minute")
API_READ_RATE = env_rate("API_READ_RATE", "1200/minute")
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 50, minimum=1)
# Documents and discussion (docs/documents.md).
ARTIFACT_MAX_MB = env_int("ARTIFACT_MAX_MB", 25, minimum=1)
ARTIFACT_MAX_VERSIONS = env_int("ARTIFACT_MAX_VERSIONS", 200, minimum=1)
# A stored file without a row (an upload whose transaction rolled back after the file was
# written) older than this is removed by the hourly sweep; younger ones may be in flight.
ARTIFACT_ORPHAN_MINUTES = env_int("ARTIFACT_ORPHAN_MINUTES", 60, minimum=1)
# Retention (docs/audit-export.md#retention-and-legal-hold): how often beat archives and
# deletes the requests past their workflow's `retention`, and how many go in one bundle.
RETENTION_SWEEP_SECONDS = env_int("RETENTION_SWEEP_SECONDS", 3600, minimum=60)
RETENTION_BATCH = env_int("RETENTION_BATCH", 500, minimum=1)
# How long a comment's author may still edit it.
COMMENT_EDIT_MINUTES = env_int("COMMENT_EDIT_MINUTES", 10, minimum=0)
# How long an Idempotency-Key's answer is replayed (Stripe keeps them 24 hours too).
IDEMPOTENCY_KEY_HOURS = env_int("IDEMPOTENCY_KEY_HOURS", 24, minimum=1)
# Asks from programs (POST /api/v1/asks/, docs/agents.md): a rate per API token, size limits.
ASK_RATE = env_rate("ASK_RATE", "60/minute")
ASK_MAX_ACTION_BYTES = env_int("ASK_MAX_ACTION_BYTES", 65536, minimum=1024)
ASK_MAX_CONTEXT_CHARS = env_int("ASK_MAX_CONTEXT_CHARS", 20000, minimum=100)
# Waiting for answers: the longest long-poll, the fallback re-read while waiting, and the
# Server-Sent Events stream's keep-alive comment and length before the client resumes.
ASK_WAIT_MAX_SECONDS = env_int("ASK_WAIT_MAX_SECONDS", 60, minimum=1)
ASK_WAIT_POLL_SECONDS = env_int("ASK_WAIT_POLL_SECONDS", 5, minimum=1)
ASK_STREAM_PING_SECONDS = env_int("ASK_STREAM_PING_SECONDS", 15, minimum=1)
ASK_STREAM_MAX_SECONDS = env_int("ASK_STREAM_MAX_SECONDS", 300, minimum=5)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
# Delay before retry n is WEBHOOK_BACKOFF_SECONDS * 4**(n-1), capped at 6 hours:
# 30 s, 2 min, 8 min, 32 min, 2 h 8 min, 6 h, 6 h with the defaults.
WEBHOOK_BACKOFF_SECONDS = env_int("WEBHOOK_BACKOFF_SECONDS", 30, minimum=1)

# Channels: channels-redis in production. redis-py 8 defaults the socket timeout to 5 s, which
# would drop idle group subscriptions; the layer must block indefinitely on its reads. Its
# connections to Redis, per event loop of a process (a Daphne process has two: the server's and
# the push loop's): at most CHANNEL_LAYER_MAX_CONNECTIONS, a command waiting up to
# CHANNEL_LAYER_POOL_TIMEOUT_SECONDS for one when all are busy (approvals/notify/layer.py).
CHANNEL_LAYER_MAX_CONNECTIONS = env_int("CHANNEL_LAYER_MAX_CONNECTIONS", 50, minimum=2)
CHANNEL_LAYER_POOL_TIMEOUT_SECONDS = env_int("CHANNEL_LAYER_POOL_TIMEOUT_SECONDS", 10, minimum=1)
# Messages waiting for one process's connections before channels-redis drops new ones: all the
# WebSockets of a process share one list in Redis, so this bounds a burst to every open tab of
# the process together, not to one tab (channels-redis's own default is 100). A drop is logged
# ("channels over capacity") and the tab gets the notification on its next ping (consumers.py).
CHANNEL_LAYER_CAPACITY = env_int("CHANNEL_LAYER_CAPACITY", 10000, minimum=100)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "approvals.notify.layer.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": None,
                        "max_connections": CHANNEL_LAYER_MAX_CONNECTIONS,
                        "timeout": CHANNEL_LAYER_POOL_TIMEOUT_SECONDS,
                    }
                ],
                "capacity": CHANNEL_LAYER_CAPACITY,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes an anonymous call a 401, not a 403.
        "approvals.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "approvals.api.pagination.Pagination",
    "DEFAULT_THROTTLE_RATES": {"api_write": API_WRITE_RATE, "api_read": API_READ_RATE},
    "EXCEPTION_HANDLER": "approvals.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["approvals.api.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Signoff API",
    "DESCRIPTION": "Start approval requests, send external events and act on tasks. "
    "See docs/api.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # /api/docs/ loads Swagger UI from our own static files (drf-spectacular-sidecar), no CDN.
    # (No Redoc page: its bundle fetches fonts and a logo from the internet.)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Several components have a `status`: each set of choices under a name of its own.
    "ENUM_NAME_OVERRIDES": {
        "InstanceStatusEnum": "approvals.models.InstanceStatus",
        "TaskStatusEnum": "approvals.models.TaskStatus",
    },
}
# API throttling counts in a cache every process shares: Redis in production. While it does not
# answer, each process counts in its own memory (approvals/api/throttling.py); the short
# timeouts keep a Redis that drops packets from holding requests for long.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "api": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "api"}
    ),
}

# LOG_FORMAT=json: one JSON object a line with the request, user, instance and trace ids
# (workflow_app/observability/logs.py); the console format stays the default.
LOG_FORMAT = env_choice("LOG_FORMAT", "console", ("console", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "workflow_app.observability.logs.ContextFilter"}},
    "formatters": {
        "plain": {"()": "workflow_app.observability.logs.ConsoleFormatter"},
        "json": {"()": "workflow_app.observability.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handler of its loggers prints the bare message a second time (and not
        # as JSON): its lines go to the root's handler only.
        "django": {"handlers": [], "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        # Its one message, at INFO, says that pushes were dropped for a full channel.
        "channels_redis": {"level": "INFO"},
    },
}

# ----- Observability (docs/observability.md)
# Prometheus: every process writes its samples under PROMETHEUS_MULTIPROC_DIR and GET /metrics
# adds them up. prometheus-client reads the variable when it is first imported, so it is put in
# the environment here, before any of our modules imports it (the processes a command starts
# inherit it). The launcher empties the folder before it starts web, worker and beat.
PROMETHEUS_MULTIPROC_DIR = Path(env_str("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics")))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
# Without a token /metrics answers 404: nothing about the installation is public by default.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_REFRESH_SECONDS = env_int("METRICS_REFRESH_SECONDS", 30, minimum=1)
# With JSON logs the worker and beat log through LOGGING too, not Celery's own format, and
# Python's warnings become log lines (logger py.warnings) rather than bare text on stderr.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"
if LOG_FORMAT == "json":
    logging.captureWarnings(True)
# OpenTelemetry (workflow_app/observability/tracing.py): traces are exported by OTLP over HTTP
# when OTEL_EXPORTER_OTLP_ENDPOINT is set (http://collector:4318), and nothing is traced
# otherwise. The exporter reads the other OTEL_EXPORTER_OTLP_* variables itself.
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "")
OTEL_SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "signoff")
