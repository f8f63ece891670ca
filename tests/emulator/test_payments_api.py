"""The emulator's payments API, driven through the official stripe SDK over HTTP."""

from __future__ import annotations

import datetime
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import stripe
from conftest import make_client
from shapes import assert_stripe_shape

from stripe_emulator import core, payments

NEXT_YEAR = datetime.date.today().year + 1


def card_pm(client: stripe.StripeClient, number: str, **card) -> stripe.PaymentMethod:
    """A card PaymentMethod created the way Stripe.js does (works with pk or sk clients)."""
    details = {"number": number, "exp_month": 12, "exp_year": NEXT_YEAR, "cvc": "123"}
    details.update(card)
    return client.v1.payment_methods.create(params={"type": "card", "card": details})


def new_pi(client: stripe.StripeClient, **params) -> stripe.PaymentIntent:
    base = {"amount": 2500, "currency": "eur", "automatic_payment_methods": {"enabled": True}}
    base.update(params)
    return client.v1.payment_intents.create(params=base)


def events_of(app) -> list[dict]:
    with app.app_context():
        return list(reversed(core.all_of("event")))


def authenticate(client, pi: stripe.PaymentIntent, result: str) -> dict:
    response = client.raw_request(
        "post",
        f"/v1/payment_intents/{pi.id}/authenticate",
        client_secret=pi.client_secret,
        result=result,
    )
    return response.data


# --------------------------------------------------------------------------- test-card matrix

DECLINING_CARDS = [
    ("4000000000000002", "card_declined", "generic_decline", "Your card was declined."),
    (
        "4000000000009995",
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    ("4000000000009987", "card_declined", "lost_card", "Your card was declined."),
    ("4000000000000069", "expired_card", "expired_card", "Your card has expired."),
    (
        "4000000000000127",
        "incorrect_cvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
    (
        "4000000000000119",
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    ("4000000000000341", "card_declined", "generic_decline", "Your card was declined."),
]


def test_visa_4242_succeeds_with_an_authorized_charge(stripe_client, publishable_client):
    pm = card_pm(publishable_client, "4242424242424242")
    assert (pm.card.brand, pm.card.last4, pm.card.exp_year) == ("visa", "4242", NEXT_YEAR)
    pi = new_pi(stripe_client, payment_method=pm.id, confirm=True, expand=["latest_charge"])
    assert pi.status == "succeeded"
    assert pi.amount_received == 2500
    assert pi.payment_method == pm.id
    charge = pi.latest_charge
    assert charge.status == "succeeded" and charge.paid and charge.captured
    assert charge.outcome.type == "authorized"
    assert charge.outcome.network_status == "approved_by_network"
    assert charge.payment_method_details.card.last4 == "4242"


@pytest.mark.parametrize("number,code,decline_code,message", DECLINING_CARDS)
def test_declining_cards_raise_card_error_and_reset_the_intent(
    stripe_client, publishable_client, number, code, decline_code, message
):
    pm = card_pm(publishable_client, number)
    pi = new_pi(stripe_client)
    with pytest.raises(stripe.CardError) as excinfo:
        stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": pm.id})
    err = excinfo.value
    assert err.http_status == 402
    assert err.code == code
    assert err.error.decline_code == decline_code
    assert err.user_message == message
    assert err.error.payment_intent.id == pi.id
    assert err.error.payment_intent.status == "requires_payment_method"

    pi = stripe_client.v1.payment_intents.retrieve(pi.id, params={"expand": ["latest_charge"]})
    assert pi.status == "requires_payment_method"
    assert pi.payment_method is None
    assert pi.last_payment_error.type == "card_error"
    assert pi.last_payment_error.code == code
    assert pi.last_payment_error.decline_code == decline_code
    assert pi.last_payment_error.payment_method.id == pm.id
    assert pi.last_payment_error.charge == pi.latest_charge.id
    assert pi.latest_charge.status == "failed"
    assert not pi.latest_charge.paid
    assert pi.latest_charge.failure_code == code
    assert pi.latest_charge.outcome.type == "issuer_declined"
    assert pi.latest_charge.outcome.reason == decline_code
    assert pi.amount_received == 0


@pytest.mark.parametrize("number", ["4000002500003155", "4000000000003220", "4000008400001629"])
def test_three_d_secure_cards_require_action(
    stripe_client, publishable_client, emulator_url, number
):
    pm = card_pm(publishable_client, number)
    pi = new_pi(stripe_client, payment_method=pm.id, confirm=True, return_url="http://shop/ret")
    assert pi.status == "requires_action"
    assert pi.next_action.type == "redirect_to_url"
    assert pi.next_action.redirect_to_url.return_url == "http://shop/ret"
    assert pi.next_action.redirect_to_url.url == (
        f"{emulator_url}/3ds/{pi.id}?client_secret={pi.client_secret}"
    )
    assert pi.latest_charge is None


def test_incorrect_number_is_rejected_when_the_payment_method_is_created(publishable_client):
    with pytest.raises(stripe.CardError) as excinfo:
        card_pm(publishable_client, "4242424242424241")
    assert excinfo.value.code == "incorrect_number"
    assert excinfo.value.user_message == "Your card number is incorrect."
    assert excinfo.value.param == "number"


def test_past_expiry_is_rejected(publishable_client):
    with pytest.raises(stripe.CardError) as excinfo:
        card_pm(publishable_client, "4242424242424242", exp_year=2020)
    assert excinfo.value.code == "invalid_expiry_year"
    today = datetime.date.today()
    if today.month > 1:
        with pytest.raises(stripe.CardError) as excinfo:
            card_pm(publishable_client, "4242424242424242", exp_year=today.year, exp_month=1)
        assert excinfo.value.code == "expired_card"


def test_two_digit_expiry_year_means_this_century(publishable_client):
    pm = card_pm(publishable_client, "5555555555554444", exp_year=str(NEXT_YEAR)[2:])
    assert pm.card.exp_year == NEXT_YEAR
    assert pm.card.brand == "mastercard"


def test_card_number_is_never_stored(emulator_app, publishable_client):
    card_pm(publishable_client, "4000000000009995")
    with emulator_app.app_context():
        rows = core.db().execute("SELECT data FROM objects").fetchall()
    assert rows and not any("4000000000009995" in r[0] for r in rows)


@pytest.mark.parametrize(
    "pm_id,status,decline_code",
    [
        ("pm_card_visa", "succeeded", None),
        ("pm_card_mastercard", "succeeded", None),
        ("pm_card_visa_chargeDeclined", None, "generic_decline"),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", None, "insufficient_funds"),
        ("pm_card_chargeDeclinedLostCard", None, "lost_card"),
        ("pm_card_chargeDeclinedExpiredCard", None, "expired_card"),
        ("pm_card_chargeDeclinedIncorrectCvc", None, "incorrect_cvc"),
        ("pm_card_chargeDeclinedProcessingError", None, "processing_error"),
        ("pm_card_chargeCustomerFail", None, "generic_decline"),
        ("pm_card_threeDSecure2Required", "requires_action", None),
        ("pm_card_authenticationRequired", "requires_action", None),
    ],
)
def test_stripe_test_payment_method_ids(stripe_client, pm_id, status, decline_code):
    if decline_code:
        with pytest.raises(stripe.CardError) as excinfo:
            new_pi(stripe_client, payment_method=pm_id, confirm=True)
        assert excinfo.value.error.decline_code == decline_code
    else:
        pi = new_pi(stripe_client, payment_method=pm_id, confirm=True)
        assert pi.status == status
        assert pi.payment_method.startswith("pm_") and pi.payment_method != pm_id


# --------------------------------------------------------------------------- 3-D Secure


def test_authenticate_complete_charges_the_card(emulator_app, stripe_client, publishable_client):
    pm = card_pm(publishable_client, "4000000000003220")
    pi = new_pi(stripe_client, payment_method=pm.id, confirm=True)
    data = authenticate(publishable_client, pi, "complete")
    assert data["status"] == "succeeded"
    assert data["next_action"] is None
    charge = stripe_client.v1.charges.retrieve(data["latest_charge"])
    assert charge.status == "succeeded"
    assert charge.payment_method_details.card.three_d_secure.result == "authenticated"
    types = [e["type"] for e in events_of(emulator_app)]
    assert types[-3:] == [
        "payment_intent.requires_action",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]


def test_authenticate_complete_then_declined_for_1629(stripe_client, publishable_client):
    pm = card_pm(publishable_client, "4000008400001629")
    pi = new_pi(stripe_client, payment_method=pm.id, confirm=True)
    data = authenticate(publishable_client, pi, "complete")
    assert data["status"] == "requires_payment_method"
    assert data["last_payment_error"]["code"] == "card_declined"
    assert data["last_payment_error"]["type"] == "card_error"
    assert stripe_client.v1.charges.retrieve(data["latest_charge"]).status == "failed"


def test_authenticate_fail_returns_to_requires_payment_method(stripe_client, publishable_client):
    pm = card_pm(publishable_client, "4000002500003155")
    pi = new_pi(stripe_client, payment_method=pm.id, confirm=True)
    data = authenticate(publishable_client, pi, "fail")
    assert data["status"] == "requires_payment_method"
    assert data["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    assert data["latest_charge"] is None
    # A second attempt with a good card then succeeds.
    pi = stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert pi.status == "succeeded"


def test_authenticate_needs_the_client_secret_and_a_pending_challenge(
    stripe_client, publishable_client
):
    pi = new_pi(stripe_client, payment_method="pm_card_threeDSecure2Required", confirm=True)
    with pytest.raises(stripe.InvalidRequestError):
        publishable_client.raw_request(
            "post",
            f"/v1/payment_intents/{pi.id}/authenticate",
            client_secret=pi.client_secret + "x",
            result="complete",
        )
    authenticate(publishable_client, pi, "complete")
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        authenticate(publishable_client, pi, "complete")
    assert excinfo.value.code == "payment_intent_unexpected_state"


def test_off_session_payment_with_a_3ds_card_is_declined_authentication_required(stripe_client):
    customer = stripe_client.v1.customers.create()
    pm = stripe_client.v1.payment_methods.attach(
        "pm_card_threeDSecure2Required", params={"customer": customer.id}
    )
    with pytest.raises(stripe.CardError) as excinfo:
        new_pi(
            stripe_client,
            customer=customer.id,
            payment_method=pm.id,
            confirm=True,
            off_session=True,
        )
    assert excinfo.value.code == "authentication_required"


def test_saved_3155_card_pays_off_session_without_authentication(stripe_client):
    customer = stripe_client.v1.customers.create()
    pm = stripe_client.v1.payment_methods.attach(
        "pm_card_authenticationRequiredOnSetup", params={"customer": customer.id}
    )
    pi = new_pi(
        stripe_client, customer=customer.id, payment_method=pm.id, confirm=True, off_session=True
    )
    assert pi.status == "succeeded"


# --------------------------------------------------------------------------- keys


def test_publishable_key_creates_payment_methods_and_confirms_with_client_secret(
    stripe_client, publishable_client
):
    pi = new_pi(stripe_client)
    got = publishable_client.v1.payment_intents.retrieve(
        pi.id, params={"client_secret": pi.client_secret}
    )
    assert got.id == pi.id and got.status == "requires_payment_method"
    confirmed = publishable_client.v1.payment_intents.confirm(
        pi.id,
        params={
            "client_secret": pi.client_secret,
            "payment_method_data": {
                "type": "card",
                "card": {"number": "4242424242424242", "exp_month": 4, "exp_year": NEXT_YEAR},
                "billing_details": {"name": "Jenny Rosen", "address": {"postal_code": "10115"}},
            },
            "return_url": "http://shop/ret",
            "receipt_email": "jenny@example.com",
        },
    )
    assert confirmed.status == "succeeded"
    assert confirmed.receipt_email == "jenny@example.com"
    pm = stripe_client.v1.payment_methods.retrieve(confirmed.payment_method)
    assert pm.billing_details.name == "Jenny Rosen"
    assert pm.billing_details.address.postal_code == "10115"


def test_publishable_key_needs_the_matching_client_secret(stripe_client, publishable_client):
    pi = new_pi(stripe_client)
    with pytest.raises(stripe.AuthenticationError):
        publishable_client.v1.payment_intents.retrieve(pi.id)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        publishable_client.v1.payment_intents.confirm(
            pi.id, params={"client_secret": "pi_other_secret_x", "payment_method": "pm_card_visa"}
        )
    assert excinfo.value.param == "client_secret"
    assert stripe_client.v1.payment_intents.retrieve(pi.id).status == "requires_payment_method"


def test_publishable_key_cannot_create_or_list_intents(publishable_client):
    with pytest.raises(stripe.AuthenticationError):
        new_pi(publishable_client)
    with pytest.raises(stripe.AuthenticationError):
        publishable_client.v1.payment_intents.list()
    with pytest.raises(stripe.AuthenticationError):
        publishable_client.v1.customers.create()


@pytest.mark.parametrize(
    "kind, name", [("payment_intents", "PaymentIntent"), ("setup_intents", "SetupIntent")]
)
def test_publishable_key_reads_an_intent_only_with_its_client_secret(
    stripe_client, publishable_client, kind, name
):
    create = {"payment_intents": {"amount": 500, "currency": "usd"}, "setup_intents": {}}
    intent = getattr(stripe_client.v1, kind).create(create[kind])
    service = getattr(publishable_client.v1, kind)
    with pytest.raises(stripe.AuthenticationError) as missing:
        service.retrieve(intent.id)
    assert f"without the {name}'s client_secret" in str(missing.value)
    with pytest.raises(stripe.InvalidRequestError) as wrong:
        service.retrieve(intent.id, {"client_secret": intent.id + "_secret_nope"})
    assert wrong.value.code == intent.object + "_invalid_parameter"
    assert f"associated with the {name}." in str(wrong.value)
    assert service.retrieve(intent.id, {"client_secret": intent.client_secret}).id == intent.id


@pytest.mark.parametrize("key", ["sk_live_abc", "pk_live_abc", "rk_test_abc", "nonsense"])
def test_live_and_unknown_keys_are_refused(emulator_url, key):
    with pytest.raises(stripe.AuthenticationError):
        make_client(emulator_url, key).v1.payment_methods.create(
            params={"type": "card", "card": {"number": "4242424242424242"}}
        )


def test_configured_secret_key_is_enforced(emulator_app, emulator_url):
    emulator_app.config["EMULATOR_SECRET_KEY"] = "sk_test_right"
    with pytest.raises(stripe.AuthenticationError):
        make_client(emulator_url, "sk_test_wrong").v1.products.list()
    assert make_client(emulator_url, "sk_test_right").v1.products.list().data == []


# --------------------------------------------------------------------------- idempotency


def test_idempotent_replay_returns_the_same_object(stripe_client):
    options = {"idempotency_key": "order-42"}
    first = stripe_client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "eur"}, options=options
    )
    second = stripe_client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "eur"}, options=options
    )
    assert second.id == first.id
    assert second.client_secret == first.client_secret
    assert first.last_response.headers.get("Idempotent-Replayed") is None
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(stripe_client.v1.payment_intents.list().data) == 1


def test_idempotency_key_with_different_params_is_an_error(stripe_client):
    options = {"idempotency_key": "order-43"}
    stripe_client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "eur"}, options=options
    )
    with pytest.raises(stripe.IdempotencyError) as excinfo:
        stripe_client.v1.payment_intents.create(
            params={"amount": 2000, "currency": "eur"}, options=options
        )
    assert excinfo.value.http_status == 400


def test_idempotent_replay_of_a_decline_replays_the_402(stripe_client):
    options = {"idempotency_key": "declined-1"}
    params = {
        "amount": 1000,
        "currency": "eur",
        "payment_method": "pm_card_visa_chargeDeclined",
        "confirm": True,
    }
    with pytest.raises(stripe.CardError) as first:
        stripe_client.v1.payment_intents.create(params=params, options=options)
    with pytest.raises(stripe.CardError) as second:
        stripe_client.v1.payment_intents.create(params=params, options=options)
    assert second.value.headers["Idempotent-Replayed"] == "true"
    assert second.value.error.payment_intent.id == first.value.error.payment_intent.id


def raw_post(
    url: str, data: dict | list[tuple[str, str]], headers: dict[str, str]
) -> tuple[int, dict, dict]:
    """POST a form over plain HTTP; returns (status, headers, JSON body)."""
    body = urllib.parse.urlencode(data).encode()
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, dict(resp.headers), json.load(resp)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), json.load(exc)


def test_idempotency_over_plain_http(emulator_url):
    def post(amount: int):
        return raw_post(
            f"{emulator_url}/v1/payment_intents",
            {"amount": amount, "currency": "usd"},
            {"Authorization": "Bearer sk_test_x", "Idempotency-Key": "k-1"},
        )

    s1, h1, b1 = post(700)
    s2, h2, b2 = post(700)
    s3, _h3, b3 = post(800)
    assert (s1, s2) == (200, 200) and b1 == b2
    assert "Idempotent-Replayed" not in h1 and h2["Idempotent-Replayed"] == "true"
    assert s3 == 400 and b3["error"]["type"] == "idempotency_error"


PAY_NOW = {"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}


def test_concurrent_requests_with_one_key_create_one_payment_intent(emulator_url):
    barrier = threading.Barrier(6)
    created: list[stripe.PaymentIntent] = []
    refused: list[stripe.StripeError] = []

    def create() -> None:
        client = make_client(emulator_url)
        barrier.wait()
        try:
            created.append(
                client.v1.payment_intents.create(
                    params=PAY_NOW, options={"idempotency_key": "race-1"}
                )
            )
        except stripe.StripeError as exc:
            refused.append(exc)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(created) + len(refused) == 6
    assert len({pi.id for pi in created}) == 1
    for exc in refused:
        assert exc.http_status == 409
        assert exc.error.type == "idempotency_error"
        assert exc.error.code == "idempotency_key_in_use"
    listed = make_client(emulator_url).v1.payment_intents.list().data
    assert [pi.id for pi in listed] == [created[0].id]


def test_key_in_progress_answers_409_then_replays_the_result(emulator_url, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    original = payments.create_payment_intent

    def held_back(p, *args, **kwargs):
        entered.set()
        release.wait(10)
        return original(p, *args, **kwargs)

    monkeypatch.setattr(payments, "create_payment_intent", held_back)
    options = {"idempotency_key": "slow-1"}
    first: dict[str, stripe.PaymentIntent] = {}
    thread = threading.Thread(
        target=lambda: first.update(
            pi=make_client(emulator_url).v1.payment_intents.create(params=PAY_NOW, options=options)
        )
    )
    thread.start()
    assert entered.wait(10)
    client = make_client(emulator_url)
    with pytest.raises(stripe.APIError) as excinfo:
        client.v1.payment_intents.create(params=PAY_NOW, options=options)
    assert excinfo.value.http_status == 409
    assert excinfo.value.error.code == "idempotency_key_in_use"
    release.set()
    thread.join(timeout=10)

    again = client.v1.payment_intents.create(params=PAY_NOW, options=options)
    assert again.id == first["pi"].id and again.status == "succeeded"
    assert again.last_response.headers["Idempotent-Replayed"] == "true"


def test_unauthenticated_requests_do_not_use_up_the_key(emulator_url, publishable_client):
    url = f"{emulator_url}/v1/payment_intents"
    status, _, body = raw_post(url, PAY_NOW, {"Idempotency-Key": "auth-1"})
    assert status == 401
    with pytest.raises(stripe.AuthenticationError):
        publishable_client.v1.payment_intents.create(
            params=PAY_NOW, options={"idempotency_key": "auth-1"}
        )
    status, headers, body = raw_post(
        url, PAY_NOW, {"Authorization": "Bearer sk_test_x", "Idempotency-Key": "auth-1"}
    )
    assert status == 200 and body["status"] == "succeeded"
    assert "Idempotent-Replayed" not in headers


def test_idempotency_keys_are_scoped_to_the_api_key(emulator_url):
    ann, bob = make_client(emulator_url, "sk_test_ann"), make_client(emulator_url, "sk_test_bob")
    options = {"idempotency_key": "shared-1"}
    for_ann = ann.v1.payment_intents.create(params=PAY_NOW, options=options)
    for_bob = bob.v1.payment_intents.create(params=PAY_NOW, options=options)
    assert for_bob.id != for_ann.id
    assert ann.v1.payment_intents.create(params=PAY_NOW, options=options).id == for_ann.id


def test_a_crashed_request_releases_its_key(stripe_client, monkeypatch):
    def crash(p, *args, **kwargs):
        raise RuntimeError("boom")

    options = {"idempotency_key": "crash-1"}
    with monkeypatch.context() as patch:
        patch.setattr(payments, "create_payment_intent", crash)
        with pytest.raises(stripe.APIError) as excinfo:
            stripe_client.v1.payment_intents.create(params=PAY_NOW, options=options)
        assert excinfo.value.http_status == 500
    pi = stripe_client.v1.payment_intents.create(params=PAY_NOW, options=options)
    assert pi.status == "succeeded"
    assert pi.last_response.headers.get("Idempotent-Replayed") is None


# --------------------------------------------------------------------------- intents lifecycle


def test_create_validates_amount_and_currency(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.create(params={"amount": 0, "currency": "eur"})
    assert excinfo.value.param == "amount"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.create(params={"currency": "eur"})
    assert excinfo.value.code == "parameter_missing"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.create(params={"amount": 100})
    assert excinfo.value.param == "currency"


def test_create_records_params(stripe_client):
    customer = stripe_client.v1.customers.create(params={"email": "a@example.com"})
    pi = new_pi(
        stripe_client,
        customer=customer.id,
        metadata={"order_id": "17"},
        description="Order 17",
        receipt_email="a@example.com",
        setup_future_usage="off_session",
        currency="EUR",
    )
    assert pi.status == "requires_payment_method"
    assert pi.currency == "eur"
    assert pi.customer == customer.id
    assert pi.metadata.to_dict() == {"order_id": "17"}
    assert pi.description == "Order 17"
    assert pi.setup_future_usage == "off_session"
    assert pi.automatic_payment_methods.enabled is True
    assert pi.client_secret.startswith(pi.id + "_secret_")


SHIPPING = {
    "name": "Jenny Rosen",
    "phone": "+15555550100",
    "address": {
        "line1": "510 Townsend St",
        "city": "San Francisco",
        "state": "CA",
        "postal_code": "94103",
        "country": "US",
    },
}


def test_shipping_on_create_update_and_confirm(stripe_client, publishable_client):
    pi = new_pi(stripe_client, shipping=SHIPPING)
    assert pi.shipping.name == "Jenny Rosen"
    assert pi.shipping.phone == "+15555550100"
    assert pi.shipping.address.line2 is None
    assert pi.shipping.address.state == "CA"
    assert_stripe_shape(pi, stripe.PaymentIntent)
    moved = dict(SHIPPING, name="Jenny R.", address=dict(SHIPPING["address"], city="Oakland"))
    pi = stripe_client.v1.payment_intents.update(pi.id, params={"shipping": moved})
    assert (pi.shipping.name, pi.shipping.address.city) == ("Jenny R.", "Oakland")
    # Stripe.js sends the Address Element's address with the confirm (publishable key).
    pm = card_pm(publishable_client, "4242424242424242")
    pi = publishable_client.v1.payment_intents.confirm(
        pi.id,
        params={"client_secret": pi.client_secret, "payment_method": pm.id, "shipping": SHIPPING},
    )
    assert pi.status == "succeeded"
    assert pi.shipping.name == "Jenny Rosen"
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert charge.shipping.address.city == "San Francisco"
    assert_stripe_shape(charge, stripe.Charge)
    # An empty value clears it while the intent is unpaid.
    other = new_pi(stripe_client, shipping=SHIPPING)
    cleared = stripe_client.v1.payment_intents.update(other.id, params={"shipping": ""})
    assert cleared.shipping is None


@pytest.mark.parametrize(
    ("shipping", "param"),
    [
        ({"address": {"line1": "1 Main St"}}, "shipping[name]"),
        ({"name": "Jenny Rosen"}, "shipping[address]"),
    ],
)
def test_shipping_needs_a_name_and_an_address(stripe_client, shipping, param):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        new_pi(stripe_client, shipping=shipping)
    assert excinfo.value.code == "parameter_missing"
    assert excinfo.value.param == param
    assert stripe_client.v1.payment_intents.list().data == []


def test_update_while_unpaid_then_refused(stripe_client):
    pi = new_pi(stripe_client, metadata={"a": "1", "b": "2"})
    pi = stripe_client.v1.payment_intents.update(
        pi.id, params={"amount": 3100, "metadata": {"b": "", "c": "3"}, "description": "x"}
    )
    assert pi.amount == 3100
    assert pi.metadata.to_dict() == {"a": "1", "c": "3"}
    pi = stripe_client.v1.payment_intents.update(pi.id, params={"payment_method": "pm_card_visa"})
    assert pi.status == "requires_confirmation"
    pi = stripe_client.v1.payment_intents.confirm(pi.id)
    assert pi.status == "succeeded" and pi.amount_received == 3100
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.update(pi.id, params={"amount": 10})
    assert excinfo.value.code == "payment_intent_unexpected_state"
    assert stripe_client.v1.payment_intents.retrieve(pi.id).amount == 3100


def test_confirm_without_payment_method_is_refused(stripe_client):
    pi = new_pi(stripe_client)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.confirm(pi.id)
    assert excinfo.value.code == "payment_intent_unexpected_state"


def test_confirm_twice_is_refused(stripe_client):
    pi = new_pi(stripe_client, payment_method="pm_card_visa", confirm=True)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert excinfo.value.code == "payment_intent_unexpected_state"
    assert len(stripe_client.v1.charges.list(params={"payment_intent": pi.id}).data) == 1


def test_retry_after_decline_succeeds_on_the_same_intent(stripe_client):
    pi = new_pi(stripe_client)
    with pytest.raises(stripe.CardError):
        stripe_client.v1.payment_intents.confirm(
            pi.id, params={"payment_method": "pm_card_visa_chargeDeclined"}
        )
    pi = stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert pi.status == "succeeded"
    assert pi.last_payment_error is None
    charges = stripe_client.v1.charges.list(params={"payment_intent": pi.id}).data
    assert [c.status for c in charges] == ["succeeded", "failed"]


def wait_for_status(client, pi_id: str, status: str, timeout: float = 10) -> stripe.PaymentIntent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pi = client.v1.payment_intents.retrieve(pi_id, params={"expand": ["latest_charge"]})
        if pi.status == status:
            return pi
        time.sleep(0.05)
    raise AssertionError(f"{pi_id} is still {pi.status}, not {status}")


def event_types_for(app, *ids: str) -> list[str]:
    return [e["type"] for e in events_of(app) if e["data"]["object"]["id"] in ids]


def test_processing_setting_settles_card_payments_in_the_background(stripe_client, emulator_app):
    emulator_app.config["EMULATOR_PROCESSING_SECONDS"] = 0.5
    pi = new_pi(
        stripe_client, payment_method="pm_card_visa", confirm=True, expand=["latest_charge"]
    )
    # Refused while processing: asked first, as the payment settles 0.5 s after confirming.
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    assert pi.status == "processing" and pi.amount_received == 0
    assert pi.processing.type == "card"
    assert pi.latest_charge.status == "pending" and pi.latest_charge.paid is False
    assert_stripe_shape(pi, stripe.PaymentIntent)

    done = wait_for_status(stripe_client, pi.id, "succeeded")
    assert done.amount_received == 2500 and done.processing is None
    assert done.latest_charge.status == "succeeded" and done.latest_charge.paid is True
    assert event_types_for(emulator_app, pi.id, pi.latest_charge.id) == [
        "payment_intent.created",
        "charge.pending",
        "payment_intent.processing",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]


def test_processing_follows_3ds_authentication(stripe_client, publishable_client, emulator_app):
    emulator_app.config["EMULATOR_PROCESSING_SECONDS"] = 0.5
    pi = new_pi(stripe_client)
    assert pi.status == "requires_payment_method"
    pi = stripe_client.v1.payment_intents.update(
        pi.id, params={"payment_method": "pm_card_threeDSecure2Required"}
    )
    assert pi.status == "requires_confirmation"
    pi = stripe_client.v1.payment_intents.confirm(pi.id, params={"return_url": "http://shop/r"})
    assert pi.status == "requires_action"
    assert authenticate(publishable_client, pi, "complete")["status"] == "processing"
    assert wait_for_status(stripe_client, pi.id, "succeeded").latest_charge.paid is True


def test_payments_succeed_at_once_by_default(stripe_client, emulator_app):
    pi = new_pi(stripe_client, payment_method="pm_card_visa", confirm=True)
    assert pi.status == "succeeded"
    assert "payment_intent.processing" not in event_types_for(emulator_app, pi.id)


def test_cancel(stripe_client, emulator_app):
    pi = new_pi(stripe_client)
    pi = stripe_client.v1.payment_intents.cancel(
        pi.id, params={"cancellation_reason": "requested_by_customer"}
    )
    assert pi.status == "canceled"
    assert pi.cancellation_reason == "requested_by_customer"
    assert isinstance(pi.canceled_at, int)
    assert events_of(emulator_app)[-1]["type"] == "payment_intent.canceled"
    paid = new_pi(stripe_client, payment_method="pm_card_visa", confirm=True)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.cancel(paid.id)
    assert excinfo.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})


def test_manual_capture(stripe_client, emulator_app):
    pi = new_pi(stripe_client, capture_method="manual", payment_method="pm_card_visa", confirm=True)
    assert pi.status == "requires_capture"
    assert pi.amount_capturable == 2500 and pi.amount_received == 0
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert charge.status == "succeeded" and not charge.captured and charge.amount_captured == 0
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    pi = stripe_client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 2000})
    assert pi.status == "succeeded"
    assert pi.amount_received == 2000 and pi.amount_capturable == 0
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert charge.captured and charge.amount_captured == 2000
    types = [e["type"] for e in events_of(emulator_app)]
    assert "payment_intent.amount_capturable_updated" in types
    assert types[-2:] == ["charge.captured", "payment_intent.succeeded"]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.capture(pi.id)
    # Only the captured amount can be refunded.
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 2001})
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    assert refund.amount == 2000


def test_cancel_releases_an_authorisation(stripe_client):
    pi = new_pi(stripe_client, capture_method="manual", payment_method="pm_card_visa", confirm=True)
    pi = stripe_client.v1.payment_intents.cancel(pi.id)
    assert pi.status == "canceled" and pi.amount_capturable == 0
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert charge.refunded and charge.amount_refunded == 2500


def test_successful_payment_events(stripe_client, emulator_app):
    pi = new_pi(stripe_client)
    stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    events = [e for e in events_of(emulator_app) if e["type"].startswith(("payment_", "charge"))]
    assert [e["type"] for e in events] == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]
    assert events[-1]["data"]["object"]["id"] == pi.id
    assert events[-1]["data"]["object"]["status"] == "succeeded"
    assert events[1]["data"]["object"]["payment_intent"] == pi.id


def test_declined_payment_events(stripe_client, emulator_app):
    with pytest.raises(stripe.CardError):
        new_pi(stripe_client, payment_method="pm_card_visa_chargeDeclined", confirm=True)
    types = [e["type"] for e in events_of(emulator_app)]
    assert types[-3:] == [
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
    ]


def test_setup_future_usage_saves_the_card_to_the_customer(stripe_client):
    customer = stripe_client.v1.customers.create()
    pi = new_pi(
        stripe_client,
        customer=customer.id,
        setup_future_usage="off_session",
        payment_method="pm_card_visa",
        confirm=True,
    )
    pms = stripe_client.v1.payment_methods.list(params={"customer": customer.id, "type": "card"})
    assert [pm.id for pm in pms.data] == [pi.payment_method]


def test_list_payment_intents_by_customer(stripe_client):
    customer = stripe_client.v1.customers.create()
    mine = new_pi(stripe_client, customer=customer.id)
    new_pi(stripe_client)
    listed = stripe_client.v1.payment_intents.list(params={"customer": customer.id})
    assert [pi.id for pi in listed.data] == [mine.id]
    assert len(stripe_client.v1.payment_intents.list().data) == 2


def test_list_filters_combine_and_an_empty_one_filters_nothing(stripe_client):
    """Every list route's equality filters (core.list_matching): all given ones must hold."""
    ann = stripe_client.v1.customers.create({"email": "ann@example.com"})
    bob = stripe_client.v1.customers.create({"email": "bob@example.com"})
    paid = new_pi(
        stripe_client,
        customer=ann.id,
        payment_method="pm_card_visa",
        confirm=True,
        setup_future_usage="off_session",
    )
    new_pi(stripe_client, customer=bob.id, payment_method="pm_card_visa", confirm=True)

    def ids(listed):
        return [o.id for o in listed.data]

    charges = stripe_client.v1.charges
    assert ids(charges.list({"customer": ann.id})) == [paid.latest_charge]
    assert ids(charges.list({"customer": ann.id, "payment_intent": paid.id})) == [
        paid.latest_charge
    ]
    assert ids(charges.list({"customer": bob.id, "payment_intent": paid.id})) == []
    assert len(charges.list({"customer": ""}).data) == 2
    assert ids(stripe_client.v1.customers.list({"email": "bob@example.com"})) == [bob.id]
    # The customer from the path, the type from the query.
    mine = stripe_client.v1.customers.payment_methods.list(ann.id, {"type": "card"})
    assert ids(mine) == [paid.payment_method]
    assert (
        stripe_client.v1.customers.payment_methods.list(ann.id, {"type": "sepa_debit"}).data == []
    )


# --------------------------------------------------------------------------- refunds


def test_partial_then_full_refund(stripe_client, emulator_app):
    pi = new_pi(stripe_client, payment_method="pm_card_visa", confirm=True)
    first = stripe_client.v1.refunds.create(
        params={"payment_intent": pi.id, "amount": 1000, "reason": "requested_by_customer"}
    )
    assert first.status == "succeeded" and first.amount == 1000
    assert first.charge == pi.latest_charge and first.payment_intent == pi.id
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert charge.amount_refunded == 1000 and charge.refunded is False
    rest = stripe_client.v1.refunds.create(params={"charge": charge.id})
    assert rest.amount == 1500
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert charge.amount_refunded == 2500 and charge.refunded is True
    listed = stripe_client.v1.refunds.list(params={"payment_intent": pi.id})
    assert [r.id for r in listed.data] == [rest.id, first.id]
    assert stripe_client.v1.refunds.retrieve(first.id).amount == 1000
    events = events_of(emulator_app)
    assert [e["type"] for e in events[-2:]] == ["refund.created", "charge.refunded"]
    assert events[-1]["data"]["object"]["amount_refunded"] == 2500
    assert events[-1]["data"]["previous_attributes"]["amount_refunded"] == 1000
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    assert excinfo.value.code == "charge_already_refunded"


def test_over_refund_is_refused(stripe_client):
    pi = new_pi(stripe_client, payment_method="pm_card_visa", confirm=True)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 2501})
    assert excinfo.value.http_status == 400 and excinfo.value.param == "amount"
    assert stripe_client.v1.charges.retrieve(pi.latest_charge).amount_refunded == 0


def test_refund_of_unpaid_intent_is_refused(stripe_client):
    pi = new_pi(stripe_client)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id})


# --------------------------------------------------------------------------- errors


def test_fail_next_rate_limit_then_recovers(stripe_client):
    stripe_client.raw_request("post", "/_emulator/fail_next", status=429, count=2)
    for _ in range(2):
        with pytest.raises(stripe.RateLimitError) as excinfo:
            stripe_client.v1.products.list()
        assert excinfo.value.http_status == 429
    assert stripe_client.v1.products.list().data == []


@pytest.mark.parametrize("status", [500, 503])
def test_fail_next_server_errors(stripe_client, status):
    stripe_client.raw_request("post", "/_emulator/fail_next", status=status, count=1)
    with pytest.raises(stripe.APIError) as excinfo:
        new_pi(stripe_client)
    assert excinfo.value.http_status == status
    assert stripe_client.v1.payment_intents.list().data == []  # nothing was created
    new_pi(stripe_client)


def test_sdk_retries_ride_over_injected_failures(emulator_url):
    client = stripe.StripeClient(
        "sk_test_x", base_addresses={"api": emulator_url}, max_network_retries=2
    )
    client.raw_request("post", "/_emulator/fail_next", status=500, count=2)
    product = client.v1.products.create(params={"name": "Retried"})
    assert client.v1.products.retrieve(product.id).name == "Retried"


def test_fail_next_needs_the_secret_key(publishable_client):
    with pytest.raises(stripe.AuthenticationError):
        publishable_client.raw_request("post", "/_emulator/fail_next", status=500, count=1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.v1.payment_intents.retrieve("pi_missing"), "payment_intent: 'pi_missing'"),
        (lambda c: c.v1.charges.retrieve("ch_missing"), "charge: 'ch_missing'"),
        (lambda c: c.v1.refunds.retrieve("re_missing"), "refund: 're_missing'"),
        (lambda c: c.v1.customers.retrieve("cus_missing"), "customer: 'cus_missing'"),
        (lambda c: c.v1.products.retrieve("prod_missing"), "product: 'prod_missing'"),
        (lambda c: c.v1.prices.retrieve("price_missing"), "price: 'price_missing'"),
        (lambda c: c.v1.payment_methods.retrieve("pm_missing"), "PaymentMethod: 'pm_missing'"),
        (lambda c: new_pi(c, payment_method="pm_missing"), "PaymentMethod: 'pm_missing'"),
        (
            lambda c: c.v1.checkout.sessions.retrieve("cs_test_missing"),
            "checkout.session: 'cs_test_missing'",
        ),
    ],
)
def test_missing_objects_are_404_resource_missing(stripe_client, call, message):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        call(stripe_client)
    assert excinfo.value.http_status == 404
    assert excinfo.value.code == "resource_missing"
    assert excinfo.value.user_message == f"No such {message}"


def test_value_and_hash_for_one_param_is_a_400(emulator_url):
    url = f"{emulator_url}/v1/customers"
    auth = {"Authorization": "Bearer sk_test_x"}
    both = [("metadata", ""), ("metadata[x]", "1")]
    for pairs in (both, both[::-1]):
        status, _, body = raw_post(url, pairs, auth)
        assert status == 400, body
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["param"] == "metadata"


def test_unknown_expansions_are_refused(stripe_client):
    pi = new_pi(stripe_client, payment_method="pm_card_visa", confirm=True)
    for expand in (["bogus"], ["latest_charge.bogus"], ["amount.currency"]):
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            stripe_client.v1.payment_intents.retrieve(pi.id, params={"expand": expand})
        assert excinfo.value.http_status == 400
        assert "cannot be expanded" in excinfo.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.list(params={"expand": ["data.bogus"]})
    assert excinfo.value.user_message == "This property cannot be expanded (bogus)."
    # A session's line_items are computed, not stored: still not a PaymentIntent field.
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.retrieve(pi.id, params={"expand": ["line_items"]})
    # Known fields still expand, including ones that are null.
    full = stripe_client.v1.payment_intents.retrieve(
        pi.id, params={"expand": ["latest_charge", "customer"]}
    )
    assert full.latest_charge.object == "charge" and full.customer is None


# --------------------------------------------------------------------------- catalogue


def test_products_and_prices(stripe_client, emulator_app):
    tea = stripe_client.v1.products.create(params={"name": "Tea", "metadata": {"sku": "T1"}})
    old = stripe_client.v1.products.create(params={"name": "Old"})
    stripe_client.v1.products.update(old.id, params={"active": False})
    assert [p.id for p in stripe_client.v1.products.list(params={"active": True}).data] == [tea.id]
    tea = stripe_client.v1.products.update(tea.id, params={"description": "Green"})
    assert tea.description == "Green" and tea.metadata.to_dict() == {"sku": "T1"}

    one = stripe_client.v1.prices.create(
        params={"product": tea.id, "unit_amount": 450, "currency": "eur", "lookup_key": "tea"}
    )
    monthly = stripe_client.v1.prices.create(
        params={
            "product_data": {"name": "Tea club"},
            "unit_amount": 900,
            "currency": "eur",
            "recurring": {"interval": "month"},
            "lookup_key": "club",
        }
    )
    assert (
        one.type == "one_time" and one.recurring is None and str(one.unit_amount_decimal) == "450"
    )
    assert monthly.type == "recurring"
    assert (monthly.recurring.interval, monthly.recurring.interval_count) == ("month", 1)
    club = stripe_client.v1.products.retrieve(monthly.product)
    assert club.name == "Tea club"

    by_key = stripe_client.v1.prices.list(params={"lookup_keys": ["tea", "club"]})
    assert {p.id for p in by_key.data} == {one.id, monthly.id}
    assert [p.id for p in stripe_client.v1.prices.list(params={"product": tea.id}).data] == [one.id]
    assert [p.id for p in stripe_client.v1.prices.list(params={"type": "recurring"}).data] == [
        monthly.id
    ]
    expanded = stripe_client.v1.prices.list(
        params={"lookup_keys": ["tea"], "expand": ["data.product"]}
    )
    assert expanded.data[0].product.name == "Tea"

    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.prices.create(
            params={"product": tea.id, "unit_amount": 500, "currency": "eur", "lookup_key": "tea"}
        )
    newer = stripe_client.v1.prices.create(
        params={
            "product": tea.id,
            "unit_amount": 500,
            "currency": "eur",
            "lookup_key": "tea",
            "transfer_lookup_key": True,
        }
    )
    assert [p.id for p in stripe_client.v1.prices.list(params={"lookup_keys": ["tea"]}).data] == [
        newer.id
    ]
    assert stripe_client.v1.prices.retrieve(one.id).lookup_key is None
    stripe_client.v1.prices.update(one.id, params={"active": False})
    active = stripe_client.v1.prices.list(params={"active": False}).data
    assert [p.id for p in active] == [one.id]

    types = [e["type"] for e in events_of(emulator_app)]
    assert types.count("product.created") == 3
    assert types.count("price.created") == 3


def test_product_with_custom_id_and_default_price(stripe_client):
    product = stripe_client.v1.products.create(
        params={
            "id": "tea-sencha",
            "name": "Sencha",
            "default_price_data": {"unit_amount": 700, "currency": "eur"},
        }
    )
    assert product.id == "tea-sencha"
    price = stripe_client.v1.prices.retrieve(product.default_price)
    assert price.product == "tea-sencha" and price.unit_amount == 700
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.products.create(params={"id": "tea-sencha", "name": "Again"})


def test_price_list_pagination(stripe_client):
    product = stripe_client.v1.products.create(params={"name": "P"})
    ids = [
        stripe_client.v1.prices.create(
            params={"product": product.id, "unit_amount": n, "currency": "usd"}
        ).id
        for n in range(1, 6)
    ]
    page = stripe_client.v1.prices.list(params={"limit": 2})
    assert [p.id for p in page.data] == ids[::-1][:2] and page.has_more
    page2 = stripe_client.v1.prices.list(params={"limit": 2, "starting_after": page.data[-1].id})
    assert [p.id for p in page2.data] == ids[::-1][2:4]
    assert [p.id for p in stripe_client.v1.prices.list().auto_paging_iter()] == ids[::-1]


def test_ending_before_pages_back_with_has_more(stripe_client):
    product = stripe_client.v1.products.create(params={"name": "P"})
    newest_first = [
        stripe_client.v1.prices.create(
            params={"product": product.id, "unit_amount": n, "currency": "usd"}
        ).id
        for n in range(1, 6)
    ][::-1]
    page = stripe_client.v1.prices.list(params={"limit": 2, "ending_before": newest_first[4]})
    assert [p.id for p in page.data] == newest_first[2:4] and page.has_more
    page = stripe_client.v1.prices.list(params={"limit": 2, "ending_before": newest_first[2]})
    assert [p.id for p in page.data] == newest_first[0:2] and not page.has_more
    everything = stripe_client.v1.prices.list(
        params={"limit": 10, "ending_before": newest_first[4]}
    )
    assert [p.id for p in everything.data] == newest_first[:4] and not everything.has_more


def test_customers(stripe_client, emulator_app):
    ann = stripe_client.v1.customers.create(
        params={"email": "ann@example.com", "name": "Ann", "metadata": {"user": "1"}}
    )
    stripe_client.v1.customers.create(params={"email": "bob@example.com"})
    found = stripe_client.v1.customers.list(params={"email": "ann@example.com"})
    assert [c.id for c in found.data] == [ann.id]
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": ann.id})
    ann = stripe_client.v1.customers.update(
        ann.id,
        params={"invoice_settings": {"default_payment_method": pm.id}, "name": "Ann B"},
    )
    assert ann.invoice_settings.default_payment_method == pm.id and ann.name == "Ann B"
    got = stripe_client.v1.customers.retrieve(
        ann.id, params={"expand": ["invoice_settings.default_payment_method"]}
    )
    assert got.invoice_settings.default_payment_method.card.last4 == "4242"
    stranger = stripe_client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 1, "exp_year": NEXT_YEAR},
        }
    )
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.update(
            ann.id, params={"invoice_settings": {"default_payment_method": stranger.id}}
        )
    events = events_of(emulator_app)
    assert [e["type"] for e in events].count("customer.created") == 2
    updated = [e for e in events if e["type"] == "customer.updated"]
    assert updated[-1]["data"]["previous_attributes"]["name"] == "Ann"


# --------------------------------------------------------------------------- payment methods


def test_attach_detach_and_list(stripe_client, publishable_client):
    customer = stripe_client.v1.customers.create()
    pm = card_pm(publishable_client, "4000000000000341")
    assert pm.customer is None
    attached = stripe_client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
    assert attached.customer == customer.id
    listed = stripe_client.v1.payment_methods.list(params={"customer": customer.id})
    assert [p.id for p in listed.data] == [pm.id]
    via_customer = stripe_client.v1.customers.payment_methods.list(customer.id)
    assert [p.id for p in via_customer.data] == [pm.id]
    # 0341 attaches fine, but charging it fails (e.g. a renewal).
    with pytest.raises(stripe.CardError) as excinfo:
        new_pi(
            stripe_client,
            customer=customer.id,
            payment_method=pm.id,
            confirm=True,
            off_session=True,
        )
    assert excinfo.value.code == "card_declined"
    other = stripe_client.v1.customers.create()
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_methods.attach(pm.id, params={"customer": other.id})
    with pytest.raises(stripe.InvalidRequestError):
        new_pi(stripe_client, customer=other.id, payment_method=pm.id)
    detached = stripe_client.v1.payment_methods.detach(pm.id)
    assert detached.customer is None
    assert stripe_client.v1.payment_methods.list(params={"customer": customer.id}).data == []
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_methods.detach(pm.id)


def test_payment_method_retrieve_and_fingerprint(stripe_client, publishable_client):
    a = card_pm(publishable_client, "4242424242424242")
    b = card_pm(publishable_client, "4242 4242 4242 4242", exp_month=3)
    c = card_pm(publishable_client, "5555555555554444")
    assert a.card.fingerprint == b.card.fingerprint != c.card.fingerprint
    got = stripe_client.v1.payment_methods.retrieve(a.id)
    assert got.id == a.id and got.type == "card" and got.card.funding == "credit"
    with pytest.raises(stripe.AuthenticationError):
        publishable_client.v1.payment_methods.retrieve(a.id)


def test_payment_method_requires_card_number(publishable_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        publishable_client.v1.payment_methods.create(params={"type": "card", "card": {}})
    assert excinfo.value.param == "card[number]"


# --------------------------------------------------------------------------- shipping (rules)


@pytest.mark.parametrize(
    ("shipping", "param"),
    [
        ({"name": "Ada"}, "shipping[address]"),
        ({"name": "Ada", "address": {"city": "Albany"}}, "shipping[address][line1]"),
        ({"address": {"line1": "1 Main St"}}, "shipping[name]"),
    ],
)
def test_payment_intent_shipping_needs_a_name_and_a_first_line(stripe_client, shipping, param):
    with pytest.raises(stripe.InvalidRequestError) as err:
        new_pi(stripe_client, shipping=shipping)
    assert (err.value.code, err.value.param) == ("parameter_missing", param)
