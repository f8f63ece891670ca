"""My account's forms (Flask-WTF: every POST carries a CSRF token)."""

from __future__ import annotations

import secrets

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField
from wtforms.validators import DataRequired, Regexp, ValidationError

from .. import billing

INVALID_EMAIL = "Please enter a valid email address."


class SignInForm(FlaskForm):
    """Ask for a sign-in link. ``address`` is the email in the shop's one form (trimmed,
    lower-cased) once the form validates."""

    email = EmailField("Email")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.address: str | None = None

    def validate_email(self, field) -> None:
        # The shop's one email rule (billing.normalise_email), also used by Subscribe and
        # the checkout, rather than WTForms' Email validator with rules of its own.
        self.address = billing.normalise_email(field.data)
        if self.address is None:
            raise ValidationError(INVALID_EMAIL)


class CardActionForm(FlaskForm):
    """Remove a saved card / use it for the membership (``payment_methods``): nothing to
    fill in, but a CSRF-checked POST."""


class ManageBillingForm(FlaskForm):
    """The button. ``form_key`` is new each time My account is shown: the portal session's
    idempotency key, so a double press opens one session."""

    form_key = HiddenField(
        validators=[DataRequired(), Regexp(r"^[A-Za-z0-9_-]{16,64}$", message="Stale form.")]
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_submitted():  # a new key for the page; a POST must bring its own
            self.form_key.data = secrets.token_urlsafe(18)
