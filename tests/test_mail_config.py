"""Mail settings: production needs them (or mail turned off explicitly); bad values stop."""

from __future__ import annotations

import pytest

from storefront import create_app
from storefront.config import load_settings
from tests.test_config import PRODUCTION


@pytest.mark.parametrize("missing", ["MAIL_SERVER", "MAIL_FROM"])
def test_production_refuses_to_start_without_mail_settings(missing):
    config = dict(PRODUCTION, DATABASE_URL="sqlite://")
    config[missing] = None
    with pytest.raises(SystemExit) as excinfo:
        create_app(config)
    message = str(excinfo.value)
    assert missing in message and "MAIL_ENABLED=false" in message
    assert "\n" not in message


def test_production_starts_without_mail_when_mail_is_turned_off():
    config = dict(PRODUCTION, DATABASE_URL="sqlite://", MAIL_SERVER=None, MAIL_FROM=None)
    app = create_app(dict(config, MAIL_ENABLED=False))
    assert app.config["MAIL_ENABLED"] is False


def test_production_refuses_a_password_sent_in_clear_text():
    config = dict(
        PRODUCTION,
        DATABASE_URL="sqlite://",
        MAIL_SECURITY="none",
        MAIL_USERNAME="shop",
        MAIL_PASSWORD="s3cret",
    )
    with pytest.raises(SystemExit) as excinfo:
        create_app(config)
    assert "MAIL_SECURITY=none" in str(excinfo.value)
    assert "s3cret" not in str(excinfo.value)
    # A relay on the same machine is fine.
    create_app(dict(config, MAIL_SERVER="localhost"))


def test_mail_settings_are_parsed(tmp_path, monkeypatch):
    monkeypatch.setenv("MAIL_ENABLED", "off")
    monkeypatch.setenv("MAIL_PORT", "465")
    monkeypatch.setenv("MAIL_SECURITY", "TLS")
    settings = load_settings(str(tmp_path), tmp_path / "missing.env")
    assert settings["MAIL_ENABLED"] is False
    assert settings["MAIL_PORT"] == 465
    assert settings["MAIL_SECURITY"] == "tls"


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("MAIL_ENABLED", "maybe", "MAIL_ENABLED must be true or false"),
        ("MAIL_SECURITY", "ssl3", "MAIL_SECURITY must be one of starttls, tls, none"),
        ("MAIL_PORT", "smtp", "MAIL_PORT must be a whole number"),
        ("MAIL_MAX_ATTEMPTS", "0", "MAIL_MAX_ATTEMPTS must be at least 1"),
    ],
)
def test_bad_mail_settings_stop_the_shop(monkeypatch, name, value, reason):
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as excinfo:
        create_app({"TESTING": True, "DATABASE_URL": "sqlite://"})
    assert str(excinfo.value).startswith(f"Refusing to start: {reason}")
