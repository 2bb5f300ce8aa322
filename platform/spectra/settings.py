"""Spectra's settings: everything comes from the environment (README.md lists each variable).

The defaults need no server: SQLite, files under SPECTRA_VAR_DIR, and kombu's filesystem broker.
"""
from __future__ import annotations

import hashlib
import importlib.util
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from evaluation.protocols import list_analyses, list_protocols
from evaluation.storage import configure_s3
from evalworker.broker import celery_config
from spectra.core.env import (
    analysis_config,
    cache_from_url,
    database_from_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_path,
    env_str,
    production_problems,
    s3_settings,
    s3_storage,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = env_path("SPECTRA_VAR_DIR", BASE_DIR / "var")

# local (the default): the embedded set-up on 127.0.0.1, needing no variable at all. production: secrets and hosts
# come from the environment only, and the settings refuse to load without them (docker-compose.yml sets it).
SPECTRA_ENV = env_choice("SPECTRA_ENV", "local", ("local", "production"))
PRODUCTION = SPECTRA_ENV == "production"
# Only fit for the embedded set-up: it is in the source, so production refuses it.
LOCAL_SECRET_KEY = "spectra-insecure-local-key-change-me-in-production"
PRODUCTION_REQUIRED = ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "SPECTRA_HIDDEN_ID_KEY")
if PRODUCTION and (_problems := production_problems(required=PRODUCTION_REQUIRED, local_secret_key=LOCAL_SECRET_KEY)):
    raise ImproperlyConfigured("Spectra refuses to start with SPECTRA_ENV=production: " + "; ".join(_problems) + ".")

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", LOCAL_SECRET_KEY)
# The secret behind a hidden split's archive ids and order (evaluation.datasets.archives): whoever holds it can map
# the ids back to labelled manifest lines, so it stays with the web process; changing it means rebuilding the archives.
SPECTRA_HIDDEN_ID_KEY = env_str("SPECTRA_HIDDEN_ID_KEY", "").encode() or hashlib.sha256(
    b"spectra hidden ids\0" + SECRET_KEY.encode()).digest()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# HTTPS only in production, behind a TLS-terminating proxy that sets X-Forwarded-Proto (and is the only way in).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SECURE_SSL_REDIRECT = PRODUCTION
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PRODUCTION
SECURE_HSTS_SECONDS = env_int("SPECTRA_HSTS_SECONDS", 365 * 24 * 3600) if PRODUCTION else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = PRODUCTION
# In every mode: no MIME sniffing, no framing, and the referrer only to this site.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "spectra.core.views.csrf_failure"
# No inline script anywhere (page data travels in json_script blocks, which are not executed). Styles may be inline:
# plotly.js and Swagger UI insert their own <style> elements at run time.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "spectra.core",
    "spectra.accounts",
    "spectra.benchmarks",
    "spectra.submissions",
    "spectra.leaderboards",
    "spectra.zoo",
    "spectra.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it turns a lockout into the 429 page
]

ROOT_URLCONF = "spectra.urls"
WSGI_APPLICATION = "spectra.wsgi.application"
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
            ]
        },
    }
]

DATABASES = {"default": database_from_url(env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'spectra.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The page cache (spectra.core.pagecache) and anything else cached: shared by the web and worker processes.
CACHES = {"default": cache_from_url(env_str("CACHE_URL", ""), VAR_DIR / "cache")}
PAGE_CACHE_SECONDS = env_int("SPECTRA_PAGE_CACHE_SECONDS", 300)  # the longest a read page is kept; 0: no page cache

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in ("UserAttributeSimilarityValidator", "MinimumLengthValidator", "CommonPasswordValidator",
                 "NumericPasswordValidator")
]
# django-axes refuses a log-in (the page, the admin's) after AXES_FAILURE_LIMIT wrong passwords for one username from
# one address, for the cool-off time. It watches django.contrib.auth.authenticate only: API tokens never go through it.
SPECTRA_PASSWORD_BACKEND = "django.contrib.auth.backends.ModelBackend"  # the one that checks passwords and logs in
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", SPECTRA_PASSWORD_BACKEND]
AXES_FAILURE_LIMIT = max(env_int("SPECTRA_LOGIN_FAILURE_LIMIT", 5), 1)
AXES_COOLOFF_TIME = timedelta(minutes=max(env_int("SPECTRA_LOGIN_COOLOFF_MINUTES", 15), 1))
# Username and address together: someone guessing one account from one address cannot lock its owner out elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_CLIENT_IP_CALLABLE = "spectra.accounts.client_ip.client_ip"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request when it is missing
# plotly.js is served from the installed plotly package: nothing is loaded from the internet.
_PLOTLY_DIR = Path(importlib.util.find_spec("plotly").submodule_search_locations[0]) / "package_data"  # type: ignore[index, union-attr]
STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", _PLOTLY_DIR)]
MEDIA_ROOT = env_path("SPECTRA_MEDIA_ROOT", VAR_DIR / "media")
MEDIA_URL = "/media/"
SPECTRA_DATA_ROOT = env_path("SPECTRA_DATA_ROOT", VAR_DIR / "datasets")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# local: files under SPECTRA_MEDIA_ROOT and SPECTRA_DATA_ROOT. s3: artifacts, dataset versions and zoo exports in
# an S3-compatible bucket (django-storages here, fsspec/s3fs for manifests), so evaluation workers need no shared disk.
SPECTRA_STORAGE = env_choice("SPECTRA_STORAGE", "local", ("local", "s3"))
SPECTRA_PRESIGN_SECONDS = max(env_int("SPECTRA_PRESIGN_SECONDS", 6 * 3600), 1)  # life of every presigned link
SPECTRA_S3 = s3_settings() if SPECTRA_STORAGE == "s3" else {}
if SPECTRA_S3:
    STORAGES["default"] = s3_storage(SPECTRA_S3, SPECTRA_PRESIGN_SECONDS)
    configure_s3(endpoint_url=SPECTRA_S3["endpoint_url"], key=SPECTRA_S3["access_key"],
                 secret=SPECTRA_S3["secret_key"], region=SPECTRA_S3["region"])
WHITENOISE_USE_FINDERS = True

# Uploads above this many bytes are refused before they are stored (and streamed to disk meanwhile).
SPECTRA_MAX_UPLOAD_BYTES = env_int("SPECTRA_MAX_UPLOAD_MB", 512) * 1024 * 1024
# Protocols every submission is evaluated with (cross-generator on every dataset version, the others on the ranked one);
# the analyses (evaluation.protocols.list_analyses) run only when a submitter asks for them.
SPECTRA_PROTOCOLS = env_list("SPECTRA_PROTOCOLS", [p for p in list_protocols() if p not in list_analyses()])
# Score the validation split too, and report accuracies at a threshold fitted there and carried to every test subset.
# Per analysis, settings over its defaults (e.g. the paper's scale on a GPU deployment: '{"adversarial": {"images":
# 1000, "steps_scale": 1, "cw_steps": 1000}}'); each run stores the settings it ran with.
SPECTRA_ANALYSIS_CONFIG = analysis_config("SPECTRA_ANALYSIS_CONFIG")
# The zoo entry whose newest trained row is the surrogate of transfer attacks on detectors without gradients (ONNX).
SPECTRA_TRANSFER_SURROGATE = env_str("SPECTRA_TRANSFER_SURROGATE", "resnet50")
SPECTRA_CARRY_THRESHOLD = env_bool("SPECTRA_CARRY_THRESHOLD", True)
SPECTRA_SHARD_IMAGES = max(env_int("SPECTRA_SHARD_IMAGES", 2000), 1)  # images per evaluation shard
SPECTRA_BOOTSTRAP_RESAMPLES = max(env_int("SPECTRA_BOOTSTRAP_RESAMPLES", 1000), 1000)  # never fewer than 1000
# The limit is enforced while an upload streams in (spectra.submissions.uploads), before Django's own handlers.
FILE_UPLOAD_HANDLERS = [
    "spectra.submissions.uploads.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None

_celery = celery_config()
CELERY_BROKER_URL = _celery.pop("broker_url")
for _key, _value in _celery.items():
    globals()[f"CELERY_{_key.upper()}"] = _value
CELERY_TASK_ALWAYS_EAGER = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "spectra.api.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "spectra.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Spectra API",
    "DESCRIPTION": "Benchmarks, leaderboards, submissions and results of AI-generated-image detectors.",
    "VERSION": "1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("SPECTRA_LOG_LEVEL", "INFO")},
}
