"""Signing a test client in without going through a sign-in link."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select

from storefront import account
from storefront.extensions import db
from storefront.models import Customer


def sign_in(client: FlaskClient, email: str) -> None:
    """Put ``email``'s signed-in session (with its current session generation) in the
    client's cookie, as the sign-in link's POST would; makes the local Customer if need be."""
    with client.application.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.email == email))
        if customer is None:
            customer = Customer(email=email)
            db.session.add(customer)
            db.session.commit()
        generation = customer.session_generation
    with client.session_transaction() as sess:
        sess[account.SESSION_KEY] = email
        sess[account.GENERATION_KEY] = generation


def session_cookie(client: FlaskClient) -> str:
    """The client's session cookie, to put in another client (another browser or device)."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value
