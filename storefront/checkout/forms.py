"""What the checkout page POSTs on Pay, its checks, and how it lands on the order."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from .. import billing, shipping
from ..models import Order


def _printable(form: FlaskForm, field: Any) -> None:
    value = field.data
    if isinstance(value, str) and any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValidationError(f"{field.label.text} holds characters we cannot print.")


class PayForm(FlaskForm):
    """What the checkout page POSTs on Pay (JSON; CSRF in the X-CSRFToken header)."""

    class Meta:
        # CSRFProtect checks the header on every POST before this form is read.
        csrf = False

    email = StringField(
        "Email",
        validators=[
            DataRequired("Enter a valid email address, like you@example.com."),
            Length(max=254, message="Enter a valid email address, like you@example.com."),
        ],
    )
    shipping_rate = StringField(
        "Shipping", validators=[DataRequired("Choose a shipping rate."), Length(max=40)]
    )
    total = IntegerField("Total", validators=[InputRequired(), NumberRange(min=0)])
    name = StringField(
        "Full name",
        validators=[DataRequired("Enter the recipient's full name."), Length(max=200), _printable],
    )
    line1 = StringField(
        "Address line 1",
        validators=[DataRequired("Enter the street address."), Length(max=200), _printable],
    )
    line2 = StringField("Address line 2", validators=[Optional(), Length(max=200), _printable])
    city = StringField(
        "City", validators=[DataRequired("Enter the city."), Length(max=100), _printable]
    )
    state = StringField("State", validators=[Optional(), Length(max=100), _printable])
    postal_code = StringField(
        "Postal code",
        validators=[DataRequired("Enter the postal code."), Length(max=20), _printable],
    )
    country = StringField(
        "Country", validators=[DataRequired("Choose a country."), Length(min=2, max=2)]
    )


# Countries whose addresses need a state or province.
STATE_REQUIRED = frozenset({"US", "CA", "AU"})


def form_problem(form: PayForm) -> tuple[str, str] | None:
    """(field, message) for the first thing wrong with the form, or None."""
    if not form.validate():
        name, errors = next(iter(form.errors.items()))
        return name, str(errors[0])
    if billing.normalise_email(form.email.data.strip()) is None:
        return "email", "Enter a valid email address, like you@example.com."
    country = form.country.data.upper()
    if country not in shipping.ship_to_countries():
        return "country", "Sorry, we do not ship to that country."
    if country in STATE_REQUIRED and not (form.state.data or "").strip():
        return "state", "Enter the state."
    return None


def fill(order: Order, form: PayForm) -> None:
    """The recipient and the receipt email, from the checked form. Caller commits."""
    order.email = form.email.data.strip()
    order.ship_name = form.name.data.strip()
    order.ship_line1 = form.line1.data.strip()
    order.ship_line2 = (form.line2.data or "").strip() or None
    order.ship_city = form.city.data.strip()
    order.ship_state = (form.state.data or "").strip() or None
    order.ship_postal_code = form.postal_code.data.strip()
    order.ship_country = form.country.data.upper()


def shipping_param(order: Order) -> dict[str, Any]:
    """The PaymentIntent's ``shipping``: who and where the parcel goes."""
    address = {
        "line1": order.ship_line1,
        "line2": order.ship_line2,
        "city": order.ship_city,
        "state": order.ship_state,
        "postal_code": order.ship_postal_code,
        "country": order.ship_country,
    }
    return {"name": order.ship_name, "address": {k: v for k, v in address.items() if v}}
