"""Spectra's settings: everything comes from the environment (README.md lists each variable).

The defaults need no server: SQLite, files under SPECTRA_VAR_DIR, and kombu's filesystem broker.
"""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from evaluation.protocols import list_protocols
from evalworker.broker import celery_config
from spectra.core.env import database_from_url, env_bool, env_int, env_list, env_path, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = env_path("SPECTRA_VAR_DIR", BASE_DIR / "var")

DEBUG = env_bool("DJANGO_DEBUG", False)
# The default key is only fit for the embedded set-up on 127.0.0.1; docker-compose requires a real one.
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "spectra-insecure-local-key-change-me-in-production")
# The secret behind a hidden split's archive ids and order (evaluation.datasets.archives): whoever holds it can map
# the ids back to labelled manifest lines, so it stays with the web process; changing it means rebuilding the archives.
SPECTRA_HIDDEN_ID_KEY = env_str("SPECTRA_HIDDEN_ID_KEY", "").encode() or hashlib.sha256(
    b"spectra hidden ids\0" + SECRET_KEY.encode()).digest()
ALLOWED_HOSTS = [h.strip() for h in env_str("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o for o in env_str("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
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
WHITENOISE_USE_FINDERS = True

# Uploads above this many bytes are refused before they are stored (and streamed to disk meanwhile).
SPECTRA_MAX_UPLOAD_BYTES = env_int("SPECTRA_MAX_UPLOAD_MB", 512) * 1024 * 1024
# Protocols every submission is evaluated with (cross-generator on every dataset version, the others on the ranked one).
SPECTRA_PROTOCOLS = env_list("SPECTRA_PROTOCOLS", list_protocols())  # every registered protocol
# Score the validation split too, and report accuracies at a threshold fitted there and carried to every test subset.
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
