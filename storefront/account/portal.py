"""My account's "Manage billing": opens Stripe's Customer Portal (``billing_portal``).

A POST (CSRF token, rate-limited: it makes a Stripe object) creates a portal session for
the signed-in customer's Stripe Customer and redirects to its ``url``; the portal sends
them back to My account. What they change there reaches us by webhook.
"""

from __future__ import annotations

import logging

from flask import flash, redirect, url_for

from .. import billing_portal, payments
from ..viewer import signed_in_email
from . import bp, signed_in_customer
from .forms import ManageBillingForm

log = logging.getLogger(__name__)


@bp.post("/billing")
def manage_billing():
    """Open the Customer Portal (303 to Stripe), or say why not on My account."""
    if signed_in_email() is None:
        return redirect(url_for("account.show"), code=303)
    form = ManageBillingForm()
    if not form.validate_on_submit():
        flash("That form has expired. Please press Manage billing again.", "error")
        return redirect(url_for("account.show"), code=303)
    customer = signed_in_customer()
    if customer is None or not customer.stripe_customer_id:
        flash("There is no billing to manage yet: you have no membership.", "error")
        return redirect(url_for("account.show"), code=303)
    try:
        url = billing_portal.open_session(customer.stripe_customer_id, form.form_key.data)
    except payments.PaymentError as err:
        flash(err.user_message, "error")
        return redirect(url_for("account.show"), code=303)
    return redirect(url, code=303)
