import pytest

from storefront import create_app
from storefront.config import DEV_SECRET_KEY, database_uri, load_settings

PRODUCTION = {
    "SECRET_KEY": "a-real-secret-of-at-least-32-characters",
    "STRIPE_SECRET_KEY": "sk_test_123",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_123",
    "STRIPE_WEBHOOK_SECRET": "whsec_123",
    "SHOP_BASE_URL": "https://shop.example.com",
    "MAIL_SERVER": "smtp.example.com",
    "MAIL_FROM": "Fernwood Coffee Co. <shop@example.com>",
}


def test_testing_config(app):
    assert app.testing
    assert not create_app({"SECRET_KEY": "x", "DEBUG": True, "DATABASE_URL": "sqlite://"}).testing


def test_production_refuses_the_development_secret_key(tmp_path):
    config = dict(PRODUCTION, SECRET_KEY=DEV_SECRET_KEY, DATABASE_URL="sqlite://")
    with pytest.raises(SystemExit) as excinfo:
        create_app(config)
    message = str(excinfo.value)
    assert "SECRET_KEY" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "missing", ["STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"]
)
def test_production_refuses_missing_stripe_settings(missing):
    config = dict(PRODUCTION, DATABASE_URL="sqlite://")
    config[missing] = None
    with pytest.raises(SystemExit) as excinfo:
        create_app(config)
    assert missing in str(excinfo.value)
    # Never print a secret in the reason.
    assert "sk_test_123" not in str(excinfo.value)
    assert "whsec_123" not in str(excinfo.value)


def test_production_starts_with_everything_set():
    app = create_app(dict(PRODUCTION, DATABASE_URL="sqlite://"))
    assert not app.debug and not app.testing


def test_settings_come_from_env_file_then_environment(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("SHOP_NAME=From file\nSTRIPE_API_BASE=http://127.0.0.1:1\n")
    monkeypatch.setenv("SHOP_NAME", "From environment")
    settings = load_settings(str(tmp_path), env_file)
    assert settings["SHOP_NAME"] == "From environment"
    assert settings["STRIPE_API_BASE"] == "http://127.0.0.1:1"
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path / 'storefront.sqlite3'}"


def test_default_database_is_sqlite_in_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = load_settings(str(tmp_path), tmp_path / "missing.env")
    assert settings["DATABASE_URL"].startswith("sqlite:///")
    assert settings["STRIPE_JS_URL"] == "https://js.stripe.com/v3/"


def test_tests_ignore_the_developers_shell_and_env_file(app):
    """The autouse ``isolated_settings`` fixture: exported FLASK_DEBUG or a .env must not leak."""
    import os
    from pathlib import Path

    assert not (Path.cwd() / ".env").exists()
    assert "FLASK_DEBUG" not in os.environ and "SHOP_CURRENCIES" not in os.environ
    assert not app.debug
    assert app.config["SHOP_CURRENCIES"] == "usd,eur"
    assert app.config["SHOP_NAME"] == "Fernwood Coffee Co."


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBHOOK_GRACE_SECONDS", "ten"),
        ("WEBHOOK_GRACE_SECONDS", "-5"),
        ("WEBHOOK_GRACE_SECONDS", "٣"),
        ("STRIPE_MAX_NETWORK_RETRIES", "2.5"),
        ("LOG_LEVEL", "verbose"),
        ("LOG_LEVEL", "10"),
    ],
)
def test_bad_setting_stops_the_shop_with_a_one_line_reason(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as excinfo:
        create_app({"TESTING": True, "DATABASE_URL": "sqlite://"})
    message = str(excinfo.value)
    assert message.startswith(f"Refusing to start: {name} must be ")
    assert repr(value) in message
    assert "\n" not in message


def test_bad_setting_in_env_file_is_reported_too(tmp_path):
    (tmp_path / ".env").write_text("WEBHOOK_GRACE_SECONDS=ten\n")  # the working directory
    with pytest.raises(SystemExit) as excinfo:
        create_app({"TESTING": True, "DATABASE_URL": "sqlite://"})
    assert "WEBHOOK_GRACE_SECONDS must be a whole number" in str(excinfo.value)


def test_load_settings_only_parses(tmp_path, monkeypatch):
    # create_app checks the settings once, with any test config on top.
    monkeypatch.setenv("WEBHOOK_GRACE_SECONDS", "ten")
    settings = load_settings(str(tmp_path), tmp_path / "missing.env")
    assert settings["WEBHOOK_GRACE_SECONDS"] == "ten"


def test_good_settings_are_parsed(tmp_path, monkeypatch):
    monkeypatch.setenv("WEBHOOK_GRACE_SECONDS", " 30 ")
    monkeypatch.setenv("LOG_LEVEL", "warning")
    settings = load_settings(str(tmp_path), tmp_path / "missing.env")
    assert settings["WEBHOOK_GRACE_SECONDS"] == 30
    assert settings["LOG_LEVEL"] == "WARNING"


def test_bad_setting_passed_in_code_is_refused_too():
    with pytest.raises(SystemExit) as excinfo:
        create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "WEBHOOK_GRACE_SECONDS": "10"})
    assert str(excinfo.value) == (
        "Refusing to start: WEBHOOK_GRACE_SECONDS must be a whole number (0 or more), not '10'."
    )


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("postgres://u:p@db/shop", "postgresql+psycopg://u:p@db/shop"),
        ("postgresql://u:p@db/shop", "postgresql+psycopg://u:p@db/shop"),
        ("postgresql+psycopg://u@db/shop", "postgresql+psycopg://u@db/shop"),
        ("sqlite:///instance/shop.sqlite3", "sqlite:///instance/shop.sqlite3"),
    ],
)
def test_database_url_uses_the_installed_postgresql_driver(url, uri):
    assert database_uri(url) == uri
