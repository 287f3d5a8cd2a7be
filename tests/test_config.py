"""Unit tests of ledger.config: configuration from an explicit environment, and the production guard."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

import ledger
from ledger.config import (
    DEVELOPMENT_ID_NUMBER_KEY,
    DEVELOPMENT_SECRET_KEY,
    MINIMUM_SECRET_LENGTH,
    check_production_secrets,
    load_config,
)
from ledger.errors import ConfigurationError

INSTANCE = "/srv/ledger/instance"
SECRET_NAMES = ("SECRET_KEY", "LEDGER_ID_NUMBER_KEY")
INTEGER_NAMES = ("LEDGER_WRITE_RETRIES", "LEDGER_SQLITE_BUSY_TIMEOUT_MS", "LEDGER_MAX_BODY_BYTES")
#: The config key each integer variable sets.
INTEGER_KEYS = {
    "LEDGER_WRITE_RETRIES": "LEDGER_WRITE_RETRIES",
    "LEDGER_SQLITE_BUSY_TIMEOUT_MS": "LEDGER_SQLITE_BUSY_TIMEOUT_MS",
    "LEDGER_MAX_BODY_BYTES": "MAX_CONTENT_LENGTH",
}


def random_secret() -> str:
    secret = secrets.token_urlsafe(36)
    assert len(secret) == 48
    return secret


def production_environ(**overrides: str) -> dict[str, str]:
    environ = {name: random_secret() for name in SECRET_NAMES}
    environ.update(overrides)
    return environ


def test_an_unset_ledger_env_means_production():
    config = load_config(INSTANCE, {})
    assert config["LEDGER_ENV"] == "production"
    assert config["TESTING"] is False


@pytest.mark.parametrize(("env", "testing"), [("production", False), ("development", False), ("testing", True)])
def test_each_known_ledger_env_is_kept_and_only_testing_sets_testing(env, testing):
    config = load_config(INSTANCE, {"LEDGER_ENV": env})
    assert (config["LEDGER_ENV"], config["TESTING"]) == (env, testing)


@pytest.mark.parametrize("env", ["prod", "Production", "PRODUCTION", "staging", "dev", " testing", ""])
def test_an_unknown_ledger_env_is_refused(env):
    with pytest.raises(ConfigurationError, match="LEDGER_ENV"):
        load_config(INSTANCE, {"LEDGER_ENV": env})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://ledger:pw@db:5432/ledger", "postgresql+psycopg://ledger:pw@db:5432/ledger"),
        ("postgresql://ledger:pw@db:5432/ledger", "postgresql+psycopg://ledger:pw@db:5432/ledger"),
        ("postgresql+psycopg2://ledger@db/ledger", "postgresql+psycopg://ledger@db/ledger"),
        ("postgresql+psycopg://ledger@db/ledger", "postgresql+psycopg://ledger@db/ledger"),
        ("sqlite:////var/lib/ledger/ledger.sqlite3", "sqlite:////var/lib/ledger/ledger.sqlite3"),
    ],
)
def test_database_urls_are_normalised_to_psycopg_3(url, expected):
    assert load_config(INSTANCE, {"LEDGER_DATABASE_URL": url})["SQLALCHEMY_DATABASE_URI"] == expected


@pytest.mark.parametrize("environ", [{}, {"LEDGER_DATABASE_URL": ""}], ids=["unset", "empty"])
def test_the_default_database_is_a_sqlite_file_in_the_instance_folder(environ):
    expected = f"sqlite:///{Path(INSTANCE) / 'ledger.sqlite3'}"
    assert load_config(INSTANCE, environ)["SQLALCHEMY_DATABASE_URI"] == expected


@pytest.mark.parametrize(("name", "default"), list(zip(INTEGER_NAMES, (8, 10_000, 1024 * 1024))))
def test_integer_settings_have_defaults_and_accept_positive_integers(name, default):
    key = INTEGER_KEYS[name]
    assert load_config(INSTANCE, {})[key] == default
    assert load_config(INSTANCE, {name: ""})[key] == default
    assert load_config(INSTANCE, {name: "3"})[key] == 3


@pytest.mark.parametrize("name", INTEGER_NAMES)
@pytest.mark.parametrize("raw", ["abc", "0", "-3", "1.5", "1e3", "ten"])
def test_bad_integer_settings_are_refused_naming_the_variable(name, raw):
    with pytest.raises(ConfigurationError, match=name):
        load_config(INSTANCE, {name: raw})


@pytest.mark.parametrize("name", SECRET_NAMES)
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("changeme", id="changeme"),
        pytest.param("secret", id="secret"),
        pytest.param(DEVELOPMENT_SECRET_KEY, id="development secret key"),
        pytest.param(DEVELOPMENT_ID_NUMBER_KEY, id="development id number key"),
        pytest.param(f"  {DEVELOPMENT_SECRET_KEY.upper()}  ", id="development key in capitals with spaces"),
        pytest.param(" " * 48, id="blank"),
        pytest.param("x" * (MINIMUM_SECRET_LENGTH - 1), id="one character too short"),
    ],
)
def test_production_refuses_missing_short_or_placeholder_secrets_naming_them(name, value):
    environ = production_environ()
    if value is None:
        del environ[name]
    else:
        environ[name] = value
    config = load_config(INSTANCE, environ)
    with pytest.raises(ConfigurationError, match=f"^{name} "):
        check_production_secrets(config)


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param(production_environ(), id="48 random characters"),
        pytest.param(production_environ(SECRET_KEY="k" * MINIMUM_SECRET_LENGTH), id="exactly the minimum length"),
    ],
)
def test_production_accepts_long_random_secrets(environ):
    config = load_config(INSTANCE, environ)
    check_production_secrets(config)
    assert {name: config[name] for name in SECRET_NAMES} == {name: environ[name] for name in SECRET_NAMES}


def test_production_does_not_fill_in_missing_secrets():
    config = load_config(INSTANCE, {})
    assert (config["SECRET_KEY"], config["LEDGER_ID_NUMBER_KEY"]) == ("", "")


@pytest.mark.parametrize("env", ["development", "testing"])
def test_outside_production_missing_secrets_become_the_development_keys(env):
    config = load_config(INSTANCE, {"LEDGER_ENV": env})
    assert (config["SECRET_KEY"], config["LEDGER_ID_NUMBER_KEY"]) == (DEVELOPMENT_SECRET_KEY, DEVELOPMENT_ID_NUMBER_KEY)
    check_production_secrets(config)


def test_outside_production_given_secrets_are_kept():
    config = load_config(INSTANCE, {"LEDGER_ENV": "development", "SECRET_KEY": "mine", "LEDGER_ID_NUMBER_KEY": "ours"})
    assert (config["SECRET_KEY"], config["LEDGER_ID_NUMBER_KEY"]) == ("mine", "ours")


def test_create_app_without_ledger_env_or_secret_key_refuses_to_start(monkeypatch, tmp_path):
    for name in ("SECRET_KEY", "LEDGER_ENV", "LEDGER_ID_NUMBER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEDGER_DATABASE_URL", f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        ledger.create_app()


@pytest.mark.parametrize("arguments", [["verify"], ["--help"]])
def test_the_command_says_what_production_lacks_in_one_line_without_a_traceback(tmp_path, arguments):
    environment = {
        name: value for name, value in os.environ.items() if name not in ("LEDGER_ENV", "FLASK_APP", *SECRET_NAMES)
    }
    environment["LEDGER_DATABASE_URL"] = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    done = subprocess.run(
        [sys.executable, "-c", "from ledger.cli import main; main()", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Error: SECRET_KEY must be set" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert (done.returncode != 0) == (arguments == ["verify"])
