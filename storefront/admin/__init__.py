"""The staff back office under ``/admin``: orders, refunds, disputes, events, revenue.

Staff are the emails in ``STAFF_EMAILS``; they sign in with the shop's own sign-in link
(``account``). Everyone else, signed in or not, gets 404 for every address under
``/admin``, so the back office does not reveal that it exists. Every staff action is a
POST through a Flask-WTF form (CSRF), rate-limited, and written to the audit log.

Modules: ``access`` (who is staff, the audit log), ``views`` (pages and actions),
``refunds`` (the refund action), ``handlers`` (webhook handlers for refunds, disputes and
fraud warnings), ``reports`` (dashboard figures) and ``chart`` (the SVG chart).
"""

from __future__ import annotations

from flask import Blueprint, abort, g

from . import access

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def staff_only():
    """404 for everyone who is not signed in as staff (the back office stays unseen)."""
    email = access.signed_in_staff()
    if email is None:
        abort(404)
    g.staff_email = email


@bp.after_request
def no_store(response):
    # Every back-office page shows customers' data: never kept by a browser or proxy.
    response.headers["Cache-Control"] = "no-store"
    return response


from . import handlers, views  # noqa: E402,F401  (register routes and webhook handlers)
