"""Configuration read from environment variables.

``LEDGER_ENV`` is ``production`` unless set to ``development`` or ``testing``: a deployment
that forgets to say what it is gets the strict checks, not the lax ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from ledger.errors import ConfigurationError

ENVIRONMENTS = ("production", "development", "testing")

#: Keys that only make sense on a developer's laptop; production refuses them.
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-not-for-production"
DEVELOPMENT_ID_NUMBER_KEY = "development-only-id-number-key-not-for-production"
_PLACEHOLDER_SECRETS = {
    "",
    "dev",
    "secret",
    "changeme",
    "change-me",
    DEVELOPMENT_SECRET_KEY,
    DEVELOPMENT_ID_NUMBER_KEY,
}
MINIMUM_SECRET_LENGTH = 32


def load_config(instance_path: str, environ: Mapping[str, str] | None = None) -> dict:
    """Build the Flask config from ``environ`` (default: the process environment)."""
    environ = os.environ if environ is None else environ
    env = environ.get("LEDGER_ENV", "production")
    if env not in ENVIRONMENTS:
        raise ConfigurationError(f"LEDGER_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    database_url = environ.get("LEDGER_DATABASE_URL") or default_database_url(instance_path)
    config = {
        "LEDGER_ENV": env,
        "TESTING": env == "testing",
        "SECRET_KEY": environ.get("SECRET_KEY", ""),
        "LEDGER_ID_NUMBER_KEY": environ.get("LEDGER_ID_NUMBER_KEY", ""),
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "LEDGER_WRITE_RETRIES": _positive_int(environ, "LEDGER_WRITE_RETRIES", 8),
        "LEDGER_SQLITE_BUSY_TIMEOUT_MS": _positive_int(environ, "LEDGER_SQLITE_BUSY_TIMEOUT_MS", 10_000),
        "LEDGER_DEFAULT_TIME_ZONE": environ.get("LEDGER_DEFAULT_TIME_ZONE", "Asia/Shanghai"),
        "MAX_CONTENT_LENGTH": _positive_int(environ, "LEDGER_MAX_BODY_BYTES", 1024 * 1024),
        "RATELIMIT_STORAGE_URI": environ.get("LEDGER_RATELIMIT_STORAGE_URI", "memory://"),
        "API_TITLE": "Volunteer points ledger",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
    }
    if env != "production":
        config["SECRET_KEY"] = config["SECRET_KEY"] or DEVELOPMENT_SECRET_KEY
        config["LEDGER_ID_NUMBER_KEY"] = config["LEDGER_ID_NUMBER_KEY"] or DEVELOPMENT_ID_NUMBER_KEY
    return config


def check_production_secrets(config: Mapping) -> None:
    """Refuse to run in production with missing, short or placeholder secrets."""
    if config["LEDGER_ENV"] != "production":
        return
    for name in ("SECRET_KEY", "LEDGER_ID_NUMBER_KEY"):
        value = config.get(name) or ""
        if value.strip().lower() in _PLACEHOLDER_SECRETS or len(value) < MINIMUM_SECRET_LENGTH:
            raise ConfigurationError(
                f"{name} must be set to a random value of at least {MINIMUM_SECRET_LENGTH} "
                "characters in production (for example: python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'), or set LEDGER_ENV=development on a laptop"
            )


def default_database_url(instance_path: str) -> str:
    """Return the embedded default: a SQLite file in the instance folder."""
    return f"sqlite:///{Path(instance_path) / 'ledger.sqlite3'}"


def normalise_database_url(url: str) -> str:
    """Make PostgreSQL URLs use psycopg 3, whatever scheme the operator wrote."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a positive integer, not {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be a positive integer, not {raw!r}")
    return value
