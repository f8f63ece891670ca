"""Checkout with Payment Intents on the shop's own page: address, shipping rate, payment.

Stripe's "collect payment details before creating an Intent" flow. The page view makes
(or refills) the order in our database only and calls no Stripe API: the page mounts the
Address Element (shipping mode) and the Payment Element with the order's amount. On Pay,
the page POSTs the address, the rate and the total it shows; ``pay`` recomputes the order
from the cart and the database, answers 409 when the shown total is stale, and otherwise
creates the order's one PaymentIntent (idempotency key from the order) or updates it, with
``shipping``, and returns its client secret for ``stripe.confirmPayment``.

No database transaction is held across a Stripe call: read, call Stripe, then a short
transaction that re-checks what it changes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from wtforms import IntegerField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from . import billing, payments, shipping
from .cart import TOKEN_KEY, Cart, CartError, new_checkout_token
from .extensions import db
from .fulfilment import set_status
from .links import external_url
from .models import Customer, Order, OrderStatus
from .money import format_money
from .orders import (
    check_stock,
    create_order_from_cart,
    order_matches_cart,
    refill_order,
    reprice,
)
from .security import stripe_page
from .viewer import remember_placed

log = logging.getLogger(__name__)

bp = Blueprint("checkout", __name__, url_prefix="/checkout")

SESSION_KEY = "checkout_order"
# How many finished orders of one browser session the token chain follows (see below).
MAX_TOKEN_STEPS = 20
OPEN_STATUSES = (OrderStatus.PENDING, OrderStatus.FAILED)


def current_order() -> Order | None:
    """The unpaid Payment Element order this browser is checking out, if any."""
    public_id = session.get(SESSION_KEY)
    if not public_id:
        return None
    return db.session.scalar(select(Order).where(Order.public_id == public_id))


def next_checkout_token(token: str, finished: Order) -> str:
    """The token for the order after ``finished`` (paid, canceled, ...): derived rather
    than random, so simultaneous requests that both find it finished agree on one."""
    return hashlib.sha256(f"{token}:{finished.public_id}".encode()).hexdigest()[:43]


def is_open(order: Order) -> bool:
    """Can this order still be paid here (unpaid, and not a Stripe Checkout order)?"""
    return order.status in OPEN_STATUSES and order.stripe_checkout_session_id is None


def order_for_token(cart: Cart, *, member: bool = False) -> Order:
    """The open order holding this browser's checkout token, made from ``cart`` if none.

    The unique token decides: of simultaneous requests, one INSERT wins and the others,
    refused by the database, load its order. Commits; remembers the order in the session.
    """
    token = session.get(TOKEN_KEY) or new_checkout_token()
    for _ in range(MAX_TOKEN_STEPS):
        order = db.session.scalar(select(Order).where(Order.checkout_token == token))
        if order is None:
            order = create_order_from_cart(cart, member=member)
            order.checkout_token = token
            try:
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                if db.session.scalar(select(Order.id).where(Order.checkout_token == token)):
                    continue  # a simultaneous request made it just now: load that one
                raise
            log.info("order %s created for checkout", order.public_id)
        elif not is_open(order):
            token = next_checkout_token(token, order)
            continue
        session[TOKEN_KEY] = token
        session[SESSION_KEY] = order.public_id
        remember_placed(order)
        return order
    raise RuntimeError("checkout token chain too long")


def _member() -> bool:
    from .account import signed_in_member

    return signed_in_member()


def submitted_order() -> Order | None:
    """This browser's order whose payment is under way or made, by either way to pay:
    both checkout buttons lead to its page, so one cart is never paid twice."""
    from .hosted_checkout import SESSION_KEY as HOSTED_KEY

    for key in (SESSION_KEY, HOSTED_KEY):
        public_id = session.get(key)
        if not public_id:
            continue
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        if order is not None and (order.status == OrderStatus.PROCESSING or order.is_paid):
            return order
    return None


# Plain words for the customer; the page shows them next to the Pay button.
CHANGED = "Your order changed — please review the new total."
EXPIRED = "This checkout has expired. Please review your order and pay again."


def _paid_at_stripe(order: Order) -> bool:
    """Is the order's PaymentIntent paid or being paid (the webhook may not be here yet)?
    A read only; asked before an order with an intent is refilled, so a payment already
    made is never left disagreeing with its order."""
    if not order.stripe_payment_intent_id:
        return False
    pi_id = order.stripe_payment_intent_id
    db.session.commit()  # no transaction open across the Stripe call
    try:
        intent = payments.retrieve_payment_intent(pi_id)
    except payments.IntentUnusable:
        return False
    return intent.status in ("succeeded", "processing")


def page_order(cart: Cart, member: bool) -> Order:
    """The open order for this cart (made or refilled here: our database only; Stripe is
    only asked, when the cart changed under an order with an intent). Commits."""
    order = current_order()
    if order is None or not is_open(order):
        return order_for_token(cart, member=member)
    if not order_matches_cart(order, cart):
        if _paid_at_stripe(order):
            return order  # the caller sends the customer to its page
        refill_order(order, cart, member=member)
        log.info("order %s: cart changed, amount now %s", order.public_id, order.amount_total)
    else:
        before = order.amount_total
        reprice(order, member=member)  # e.g. signed in as a member since
        if order.amount_total != before:
            log.info("order %s: shipping now %s", order.public_id, order.shipping_amount)
    db.session.commit()
    return order


@bp.route("/", methods=["GET", "POST"])
@stripe_page(js=True, checkout=True)  # and the no-JavaScript form to Stripe Checkout
def start():
    """The checkout page: summary, address, shipping rate, email, Payment Element, Pay.

    Makes no Stripe object: the PaymentIntent is made when the customer presses Pay.
    """
    if not payments.is_configured():
        flash(payments.NOT_CONFIGURED, "error")
        return redirect(url_for("cart.view"), code=303)
    submitted = submitted_order()
    if submitted is not None:
        # This cart's payment is under way (e.g. a bank debit) or already made (the
        # webhook was first; the customer came back): never charge the same cart twice.
        # The order page follows it to paid or failed, and empties the cart once paid.
        return redirect(url_for("orders.show", public_id=submitted.public_id), code=303)
    cart = Cart.load()
    if not cart.lines():
        flash("Your cart is empty.", "error")
        return redirect(url_for("cart.view"), code=303)
    member = _member()
    try:
        order = page_order(cart, member)
    except CartError as err:
        db.session.rollback()
        flash(str(err), "error")
        return redirect(url_for("cart.view"), code=303)
    except payments.PaymentError as err:
        flash(err.user_message, "error")
        return redirect(url_for("cart.view"), code=303)
    if not order_matches_cart(order, cart):  # paid at Stripe already (page_order asked)
        return redirect(url_for("orders.show", public_id=order.public_id), code=303)
    customer = _signed_in_customer()
    saved_cards = _customer_session_secret(order, customer) if customer else None
    subtotal = order.subtotal
    rates = [
        {
            "code": q.code,
            "name": q.rate.display_name,
            "estimate": q.rate.delivery_estimate,
            "amount": q.amount,
            "price": format_money(q.amount, order.currency) if q.amount else "Free",
            "freeReason": q.free_reason,
            "total": subtotal + q.amount,
            "totalLabel": format_money(subtotal + q.amount, order.currency),
        }
        for q in shipping.quotes(order.currency, subtotal, member=member)
    ]
    page_data = {
        "publishableKey": current_app.config["STRIPE_PUBLISHABLE_KEY"],
        "payUrl": url_for("checkout.pay", public_id=order.public_id),
        "returnUrl": external_url("orders.show", public_id=order.public_id),
        "csrfToken": generate_csrf(),
        "currency": order.currency,
        "amount": order.amount_total,
        "rates": rates,
        "countries": shipping.ship_to_countries(),
        "address": _address_defaults(order, customer),
        "declineMessages": payments.DECLINE_MESSAGES,
        "genericMessage": payments.GENERIC,
    }
    if saved_cards:
        # Signed in: the Payment Element shows their saved cards and offers to save one.
        page_data["customerSessionClientSecret"] = saved_cards
    return render_template(
        "checkout/page.html",
        order=order,
        rates=rates,
        page_data=page_data,
        email=order.email or (customer.email if customer else ""),
        stripe_js_url=current_app.config["STRIPE_JS_URL"],
    )


# --------------------------------------------------------------------------- returning customers


def _signed_in_customer() -> Customer | None:
    """The signed-in customer's record (made at sign-in), or None for a guest."""
    from .account import signed_in_customer

    return signed_in_customer()


def _order_customer(order: Order, customer: Customer) -> str:
    """The order's Stripe Customer: the signed-in customer's, created once (key from the
    email) when they have none yet; the order is linked to them. Commits; calls Stripe
    outside any transaction. Raises ``PaymentError`` when Stripe cannot be reached."""
    if not customer.stripe_customer_id:
        db.session.commit()  # no transaction open across the Stripe call
        customer = billing.get_or_create_customer(customer.email)
    if order.customer_id != customer.id:
        order.customer_id = customer.id
        db.session.commit()
    assert customer.stripe_customer_id
    return customer.stripe_customer_id


# A page view reuses its Customer Session for this long (they live 30 minutes at Stripe),
# so reloading the checkout does not make a new one each time.
CUSTOMER_SESSION_REUSE_SECONDS = 10 * 60


def _customer_session_secret(order: Order, customer: Customer) -> str | None:
    """A Customer Session's client secret for the checkout's Payment Element (saved cards,
    "Save this card"), or None when Stripe cannot be reached now: the page then takes a
    new card only, and Pay makes the customer."""
    for _attempt in range(2):
        try:
            stripe_customer_id = _order_customer(order, customer)
            window = int(time.time()) // CUSTOMER_SESSION_REUSE_SECONDS
            key = payments.idempotency_key(
                "customer-session", stripe_customer_id, order.public_id, window
            )
            return payments.create_customer_session(stripe_customer_id, key).client_secret
        except payments.CustomerMissing:
            # The stored id names no Customer at this Stripe account: forget it, so one is
            # made here (else Pay would fail on it too). Once: then a new-card checkout.
            db.session.rollback()
            customer.stripe_customer_id = None
            db.session.commit()
        except payments.PaymentError as err:
            db.session.rollback()
            log.warning("order %s: no saved cards on the page (%s)", order.public_id, err.kind)
            return None
    return None


def _address_defaults(order: Order, customer: Customer | None = None) -> dict[str, Any] | None:
    """What the Address Element starts with: the order's own address, else (signed in) the
    one their last order went to, so a returning customer pays in one step."""
    source: Order | None = order
    if not order.ship_line1 and customer is not None:
        source = db.session.scalar(
            select(Order)
            .where(Order.customer_id == customer.id, Order.ship_line1.is_not(None))
            .where(Order.id != order.id)
            .order_by(Order.id.desc())
            .limit(1)
        )
    if source is None or not source.ship_line1:
        return None
    return {
        "name": source.ship_name,
        "address": {
            "line1": source.ship_line1,
            "line2": source.ship_line2,
            "city": source.ship_city,
            "state": source.ship_state,
            "postal_code": source.ship_postal_code,
            "country": source.ship_country,
        },
    }


# --------------------------------------------------------------------------- Pay


def _printable(form: FlaskForm, field: Any) -> None:
    from wtforms.validators import ValidationError

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


def _form_problem(form: PayForm) -> tuple[str, str] | None:
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


def _fill(order: Order, form: PayForm) -> None:
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


def _lock(order: Order) -> None:
    """Take the order's row lock (a no-op UPDATE) and see it as committed now."""
    db.session.execute(
        update(Order).where(Order.id == order.id).values(amount_total=Order.amount_total)
    )
    db.session.refresh(order)


def _json_error(message: str, status: int, **extra: Any):
    return {"error": message, **extra}, status


@bp.post("/<public_id>/pay")
def pay(public_id: str):
    """Pay pressed: recompute the order, then create or update its one PaymentIntent.

    200 ``{clientSecret}``; 200 ``{redirect}`` when the order's payment is already under
    way or made; 409 when what the page shows is stale (``reload``); 400 for bad input
    (``field`` names it); 503 when Stripe cannot be reached.
    """
    if not isinstance(request.get_json(silent=True), dict):
        return _json_error("Send the payment details as a JSON object.", 400)
    order = current_order()
    if order is None or order.public_id != public_id:
        return _json_error(EXPIRED, 409, reload=True)
    if not payments.is_configured():  # the shop's setup, not the client's request, is at fault
        return _json_error(payments.NOT_CONFIGURED, 503)
    if order.status == OrderStatus.PROCESSING or order.is_paid:
        return {"redirect": url_for("orders.show", public_id=order.public_id)}
    if not is_open(order):
        return _json_error(EXPIRED, 409, reload=True)
    form = PayForm()
    problem = _form_problem(form)
    if problem is not None:
        return _json_error(problem[1], 400, field=problem[0])
    member = _member()
    cart = Cart.load()
    if shipping.find_quote(order.currency, form.shipping_rate.data, 0, member=member) is None:
        return _json_error("Choose a shipping rate.", 400, field="shipping_rate")

    # An order whose payment was made (or is under way) in another tab keeps its items.
    try:
        if not order_matches_cart(order, cart) and _paid_at_stripe(order):
            return {"redirect": url_for("orders.show", public_id=order.public_id)}
    except payments.PaymentError as err:
        return _json_error(err.user_message, 503 if err.kind == "unavailable" else 400)

    # A short transaction: the order follows the cart (stock checked again), the rate,
    # the address and the email. Committed before Stripe is called.
    try:
        if not refill_order(order, cart, member=member):
            # refill_order took the row lock and re-read the order and its items in this
            # transaction already: a second lock here only repeated those statements.
            check_stock(order)
        if not is_open(order):
            db.session.rollback()
            return _json_error(EXPIRED, 409, reload=True)
        reprice(order, member=member, rate_code=form.shipping_rate.data)
        _fill(order, form)
        # As committed just below (read now: the commit expires the order, and reading it
        # after would be one more SELECT of the row this transaction wrote).
        total = order.amount_total
        db.session.commit()
    except CartError as err:
        db.session.rollback()
        return _json_error(str(err), 409, reload=True)
    if total != form.total.data:
        log.info(
            "order %s: page showed %s, order is %s: 409",
            public_id,
            form.total.data,
            total,
        )
        return _json_error(CHANGED, 409, reload=True)

    try:
        hosted = _retire_hosted_checkout()
        if hosted is not None:  # paid (or being paid) on Stripe Checkout meanwhile
            return {"redirect": url_for("orders.show", public_id=hosted.public_id)}
        customer = _signed_in_customer()
        if customer is not None:
            _order_customer(order, customer)  # the intent is theirs (saved cards)
        order, intent = _intent_for(order, cart, member)
    except payments.PaymentError as err:
        db.session.rollback()
        return _json_error(err.user_message, 503 if err.kind == "unavailable" else 400)
    if intent is None:  # paid or under way at Stripe
        return {"redirect": url_for("orders.show", public_id=order.public_id)}

    # The second short transaction: record the intent, and check that no other tab
    # changed the order while Stripe was called.
    _lock(order)
    if order.stripe_payment_intent_id not in (None, intent.id) or not is_open(order):
        db.session.rollback()
        return _json_error(EXPIRED, 409, reload=True)
    if order.amount_total != intent.amount or order.currency != intent.currency:
        db.session.rollback()
        return _json_error(CHANGED, 409, reload=True)
    order.stripe_payment_intent_id = intent.id
    if order.status == OrderStatus.FAILED:
        # Back on the checkout page after a decline: a new attempt.
        set_status(order, OrderStatus.PENDING)
    return_url = _return_url(order)  # before the commit expires the order
    db.session.commit()
    return {"clientSecret": intent.client_secret, "returnUrl": return_url}


def _return_url(order: Order) -> str:
    return external_url("orders.show", public_id=order.public_id)


def _intent_for(order: Order, cart: Cart, member: bool) -> tuple[Order, Any]:
    """The order's PaymentIntent, created or updated to the order as it is now; no
    transaction is open while Stripe is called. ``(order, None)``: its payment is under
    way or made already. The order may be a successor (its intent was canceled or lost)."""
    db.session.commit()  # end the read transaction before calling Stripe
    fields = {"amount": order.amount_total, "currency": order.currency, **_intent_details(order)}
    if order.stripe_payment_intent_id:
        try:
            intent = payments.retrieve_payment_intent(order.stripe_payment_intent_id)
        except payments.IntentUnusable:
            order = _successor(order, cart, member, "Stripe no longer has its payment intent")
        else:
            if intent.status in ("succeeded", "processing"):
                return order, None
            if intent.status == "requires_action" and intent.amount != order.amount_total:
                # The cart changed mid-authentication: leave that attempt, start anew.
                payments.cancel_payment_intent(intent.id)
                order = _successor(order, cart, member, "the cart changed during authentication")
            elif intent.status == "canceled":
                order = _successor(order, cart, member, "its payment was canceled")
            else:
                stripe_customer_id = payments.order_stripe_customer_id(order)
                if stripe_customer_id and not intent.customer:
                    fields["customer"] = stripe_customer_id  # made before saved cards
                return order, payments.update_payment_intent(intent.id, **fields)
    # One call: the create carries the shipping and receipt email too (an update after
    # it was a second round trip to Stripe on every first Pay).
    try:
        intent = payments.create_payment_intent(order, **_intent_details(order))
    except payments.IntentUnusable:
        # The key is taken for other parameters (an earlier create's answer was lost,
        # then the order changed): a new order has a new key.
        order = _successor(order, cart, member, "Stripe refused to create its payment intent")
        intent = payments.create_payment_intent(order, **_intent_details(order))
    return order, intent


def _intent_details(order: Order) -> dict[str, Any]:
    """What Pay gives the intent besides what the items fix: where it goes, the receipt."""
    return {"shipping": shipping_param(order), "receipt_email": order.email}


def _successor(order: Order, cart: Cart, member: bool, reason: str) -> Order:
    """Cancel ``order`` (unless it moved on meanwhile) and make the cart's next order, with
    the same rate, recipient and email. Commits."""
    if set_status(order, OrderStatus.CANCELED):
        log.info("order %s canceled: %s", order.public_id, reason)
    db.session.commit()
    new = order_for_token(cart, member=member)
    reprice(new, member=member, rate_code=order.shipping_rate_code)
    for name in (
        "customer_id",  # a signed-in customer's next order is theirs too (saved cards)
        "email",
        "ship_name",
        "ship_line1",
        "ship_line2",
        "ship_city",
        "ship_state",
        "ship_postal_code",
        "ship_country",
    ):
        setattr(new, name, getattr(order, name))
    db.session.commit()
    return new


def _retire_hosted_checkout() -> Order | None:
    """Paying here after opening Stripe Checkout: that order's session must not stay
    payable too (one live payment per cart), so it is expired and its order canceled.
    Returns that order instead when it was paid (or its payment started) meanwhile."""
    from .hosted_checkout import retire_for_payment_element

    return retire_for_payment_element()


def retire_for_hosted_checkout() -> Order | None:
    """Stripe Checkout pressed: this browser's order here must not stay payable too.

    Returns the order when its payment was submitted (processing, waiting for 3-D Secure,
    or made): the customer goes to its page. Otherwise its unused PaymentIntent is
    canceled and the order with it, and None returned. Calls Stripe outside any
    transaction; raises ``PaymentError`` when Stripe cannot be asked.
    """
    order = current_order()
    if order is None or order.stripe_checkout_session_id is not None:
        return None
    if order.status == OrderStatus.PROCESSING or order.is_paid:
        return order
    if order.status not in OPEN_STATUSES:
        return None
    pi_id = order.stripe_payment_intent_id
    db.session.commit()  # no transaction open across the Stripe calls
    if pi_id:
        try:
            intent = payments.retrieve_payment_intent(pi_id)
        except payments.IntentUnusable:
            intent = None
        if intent is not None and intent.status in ("processing", "succeeded", "requires_action"):
            return order
        if intent is not None and intent.status != "canceled":
            try:
                payments.cancel_payment_intent(pi_id)
            except payments.PaymentError:
                # Confirmed a moment ago? Stripe's word decides.
                intent = payments.retrieve_payment_intent(pi_id)
                if intent.status != "canceled":
                    return order
    if set_status(order, OrderStatus.CANCELED):
        log.info("order %s canceled: the customer chose Stripe Checkout", order.public_id)
    db.session.commit()
    session.pop(SESSION_KEY, None)
    return None
