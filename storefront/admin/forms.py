"""The back office's forms (Flask-WTF: every POST carries a CSRF token)."""

from __future__ import annotations

import re
import secrets
from decimal import Decimal, InvalidOperation

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from ..models import OrderStatus
from ..money import decimals
from .models import REFUND_REASONS

STATUS_LABELS = {
    "": "Any status",
    **{s.value: s.value.replace("_", " ").capitalize() for s in OrderStatus},
    "disputed": "Disputed",
}


class OrderFilterForm(FlaskForm):
    """The orders list's filters (a GET form: nothing changes, so no CSRF token)."""

    class Meta:
        csrf = False

    status = SelectField(
        "Status",
        choices=[SelectChoice(v, label) for v, label in STATUS_LABELS.items()],
        validators=[Optional()],
    )
    q = StringField(
        "Search",
        description=(
            "Email, order number (FW-10001), order id, PaymentIntent (pi_…) or Checkout"
            " Session (cs_…) id"
        ),
        validators=[Optional(), Length(max=255)],
    )
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])


def to_minor_units(text: str, currency: str) -> int | None:
    """``"12.50"`` in USD → 1250; None when it is not an amount in that currency."""
    text = (text or "").strip().replace(",", "")
    places = decimals(currency)
    pattern = r"[0-9]{1,9}" + (rf"(\.[0-9]{{1,{places}}})?" if places else "")
    if not re.fullmatch(pattern, text):
        return None
    try:
        return int(Decimal(text) * (10**places))
    except InvalidOperation:
        return None


class RefundForm(FlaskForm):
    """A full or partial refund. ``form_key`` is new each time the form is shown: it is the
    refund's idempotency key, so submitting one form twice refunds once."""

    amount = StringField("Amount to refund", validators=[DataRequired("Enter an amount.")])
    reason = SelectField(
        "Reason",
        choices=[SelectChoice(v, label) for v, label in REFUND_REASONS.items()],
        validators=[DataRequired()],
        default="requested_by_customer",
    )
    restock = BooleanField("Return the items to stock")
    form_key = HiddenField(
        validators=[DataRequired(), Regexp(r"^[A-Za-z0-9_-]{16,64}$", message="Stale form.")]
    )

    def __init__(self, *args, currency: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.minor_amount: int | None = None
        # A new key for the page; a POST must bring the one it was shown with (a POST
        # without one would otherwise get a fresh key and defeat the double-submit check).
        if not self.is_submitted():
            self.form_key.data = secrets.token_urlsafe(18)

    def renew_key_if_stale(self) -> None:
        """After a refused POST whose key was missing or malformed, show a fresh one."""
        if self.form_key.errors:
            self.form_key.data = secrets.token_urlsafe(18)
            self.amount.errors = [
                *self.amount.errors,
                "The form was out of date: check it and send it again.",
            ]

    def validate_amount(self, field) -> None:
        value = to_minor_units(field.data, self.currency)
        if value is None or value <= 0:
            places = decimals(self.currency)
            example = "12" + (".50" if places == 2 else "")
            raise ValidationError(f"Enter an amount like {example} in {self.currency.upper()}.")
        self.minor_amount = value


class ActionForm(FlaskForm):
    """A button that changes something (process again, reconcile, mark read): CSRF only."""
