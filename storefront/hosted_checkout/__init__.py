"""Pay with Stripe Checkout (the hosted payment page) for one-time orders.

Flow: the cart's "Pay with Stripe Checkout" button POSTs here (``views``); we make (or
reuse) the pending ``Order`` and exactly one live Checkout Session for it (``sessions``,
its parameters in ``params``), and redirect to Stripe. Stripe sends the customer back to
the order page with ``?session_id=...``; that page and the ``checkout.session.completed``
webhook both call ``fulfil_from_session`` (``fulfil``), which asks Stripe what was paid and
calls the shared, exactly-once ``fulfil_order``. ``browser`` is the order this browser's
session remembers. Other modules import the names below from here.
"""

from .browser import SESSION_KEY
from .fulfil import fulfil_from_session, session_expired, session_failed, sync_from_session
from .params import SESSION_ID_PLACEHOLDER, session_params, synced_price_id, totals_match
from .sessions import create_session
from .views import bp, retire_for_payment_element

__all__ = [
    "SESSION_ID_PLACEHOLDER",
    "SESSION_KEY",
    "bp",
    "create_session",
    "fulfil_from_session",
    "retire_for_payment_element",
    "session_expired",
    "session_failed",
    "session_params",
    "sync_from_session",
    "synced_price_id",
    "totals_match",
]
