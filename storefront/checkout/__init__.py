"""Checkout with Payment Intents on the shop's own page: address, shipping rate, payment.

Stripe's "collect payment details before creating an Intent" flow. The page view
(``views``) makes (or refills) the order in our database only and calls no Stripe API: the
page mounts the Address Element (shipping mode) and the Payment Element with the order's
amount. On Pay (``paying``), the page POSTs the address, the rate and the total it shows;
the order is recomputed from the cart and the database, 409 when the shown total is stale,
and otherwise the order's one PaymentIntent is created or updated and its client secret
returned for ``stripe.confirmPayment``.

``order`` is the browser's checkout order (session, token, open or not), ``customers`` the
returning customer's saved cards and address, ``forms`` what Pay posts. Other modules
import the names below from here.
"""

from . import paying, views  # noqa: F401  (registers the routes on bp)
from .blueprint import bp
from .order import SESSION_KEY, current_order, retire_for_hosted_checkout
from .paying import intent_details

__all__ = ["SESSION_KEY", "bp", "current_order", "intent_details", "retire_for_hosted_checkout"]
