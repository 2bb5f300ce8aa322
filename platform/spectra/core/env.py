"""Reading settings from the environment, failing loudly with the variable's name.

Every variable read here is documented in README.md with its default.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off.")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name, default).strip().lower() or default
    if raw not in choices:
        raise ImproperlyConfigured(f"{name}={raw!r} is not one of {', '.join(choices)}.")
    return raw


def production_problems(*, required: tuple[str, ...], local_secret_key: str) -> list[str]:
    """Why the production settings must refuse to load, in plain words (nothing when all is well): a required
    variable unset or blank, the secret key left at the embedded set-up's public default, or debug mode on."""
    problems = []
    missing = [name for name in required if not os.environ.get(name, "").strip()]
    if missing:
        problems.append(f"these environment variables must be set: {', '.join(missing)}")
    if os.environ.get("DJANGO_SECRET_KEY") == local_secret_key:
        problems.append("DJANGO_SECRET_KEY is the local default key, which is public; set a long random one")
    if env_bool("DJANGO_DEBUG", False):
        problems.append("DJANGO_DEBUG is on; debug pages show settings and tracebacks to anyone")
    return problems


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; blanks are dropped, an unset or empty variable gives ``default``."""
    items = [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]
    return items or default


def env_json_object(name: str, default: dict) -> dict:
    """A JSON object, e.g. SPECTRA_ANALYSIS_CONFIG='{"adversarial": {"images": 1000}}'."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object, not {type(value).__name__}.")
    return value


def analysis_config(name: str) -> dict:
    """SPECTRA_ANALYSIS_CONFIG-style options: {analysis: {option: value}}, every analysis and option one its
    protocol knows (a misspelt option would otherwise be ignored silently)."""
    from evaluation.protocols import get_protocol, list_analyses

    config = env_json_object(name, {})
    for analysis, options in config.items():
        if analysis not in list_analyses():
            raise ImproperlyConfigured(f"{name}: no analysis {analysis!r}; the analyses are: {', '.join(list_analyses())}.")
        known = get_protocol(analysis).default_config
        unknown = sorted(set(options) - set(known)) if isinstance(options, dict) else ["(not an object)"]
        if unknown:
            raise ImproperlyConfigured(f"{name}: {analysis} has no option {unknown[0]}; its options are: "
                                       f"{', '.join(sorted(known))}.")
    return config


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None


def env_path(name: str, default: Path) -> Path:
    raw = os.environ.get(name)
    return Path(raw).expanduser().resolve() if raw else default


def database_from_url(url: str) -> dict[str, object]:
    """Django DATABASES entry from sqlite:///path or postgres://user:pass@host:port/name."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        # sqlite:///relative/path and sqlite:////absolute/path, as in dj-database-url.
        name = path[1:]
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            # IMMEDIATE: a transaction takes the write lock when it begins, waiting up to the timeout for it. A
            # deferred one that reads first and then writes fails at once ("database is locked") whenever another
            # process wrote in between, which the workers' heartbeats make common.
            "OPTIONS": {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"},
            "TEST": {"NAME": str(Path(name).with_name("test-" + Path(name).name))},
        }
    if parsed.scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")) or "spectra",
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": int(os.environ.get("DATABASE_CONN_MAX_AGE", "60") or 60),
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL={url!r}: unsupported scheme {parsed.scheme!r}; use sqlite:///path or postgres://…"
    )


def cache_from_url(url: str, default_dir: Path) -> dict[str, object]:
    """Django CACHES entry from CACHE_URL: empty for files under ``default_dir`` (shared by every process of one
    machine), redis://host:port/db for Redis."""
    if not url:
        return {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(default_dir),
                "OPTIONS": {"MAX_ENTRIES": 5000}}
    if urlparse(url).scheme in {"redis", "rediss"}:
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    raise ImproperlyConfigured(f"CACHE_URL={url!r}: unsupported scheme; leave it empty for files or use redis://…")


S3_REQUIRED = ("SPECTRA_S3_ENDPOINT_URL", "SPECTRA_S3_BUCKET", "SPECTRA_S3_ACCESS_KEY_ID", "SPECTRA_S3_SECRET_ACCESS_KEY")
# Write credentials: the web process and the platform worker hold them, an evaluation worker never does.
S3_WRITE_VARIABLES = S3_REQUIRED[2:]


def s3_settings() -> dict[str, str]:
    """The object store under SPECTRA_STORAGE=s3: endpoint (the one this machine reaches), the endpoint that
    presigned links name (what browsers and remote workers reach; default the same), bucket, key and region."""
    missing = [name for name in S3_REQUIRED if not os.environ.get(name, "").strip()]
    if missing:
        raise ImproperlyConfigured(f"SPECTRA_STORAGE=s3 needs {', '.join(missing)}.")
    endpoint = os.environ["SPECTRA_S3_ENDPOINT_URL"].strip()
    for name in ("SPECTRA_S3_ENDPOINT_URL", "SPECTRA_S3_PUBLIC_ENDPOINT_URL"):
        value = os.environ.get(name, "").strip()
        if value and urlparse(value).scheme not in {"http", "https"}:
            raise ImproperlyConfigured(f"{name}={value!r} must be an http:// or https:// address.")
    return {
        "endpoint_url": endpoint,
        "public_endpoint_url": os.environ.get("SPECTRA_S3_PUBLIC_ENDPOINT_URL", "").strip() or endpoint,
        "bucket": os.environ["SPECTRA_S3_BUCKET"].strip(),
        "access_key": os.environ["SPECTRA_S3_ACCESS_KEY_ID"].strip(),
        "secret_key": os.environ["SPECTRA_S3_SECRET_ACCESS_KEY"].strip(),
        "region": os.environ.get("SPECTRA_S3_REGION", "").strip() or "us-east-1",
    }


def s3_storage(s3: dict[str, str], presign_seconds: int) -> dict[str, object]:
    """Django's default storage on the bucket (django-storages' S3Storage): path addressing, SigV4, never
    overwriting (names are sha256s), links that live ``presign_seconds``."""
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": s3["bucket"], "endpoint_url": s3["endpoint_url"], "access_key": s3["access_key"],
        "secret_key": s3["secret_key"], "region_name": s3["region"], "signature_version": "s3v4",
        "addressing_style": "path", "file_overwrite": False, "default_acl": None, "querystring_expire": presign_seconds,
    }}
