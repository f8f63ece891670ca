"""API versions: requests are read and answered in the version they name, webhook events in
each endpoint's ``api_version`` (issue 10)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe
from webhook_receiver import Receiver, start_receiver

from stripe_emulator import core, versions

# Before 2026-07-29.dahlia: only payment_method_types.  From it: both names.  From
# 2026-09-30.endive (and the pinned version): only allowed_payment_method_types.
OLD = "2025-09-30.clover"
BOTH = "2026-08-26.dahlia"


def old(version: str = OLD) -> dict:
    return {"stripe_version": version}


def raw(obj) -> dict:
    return obj.last_response.data


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = start_receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def test_the_default_is_the_pinned_sdk_version():
    assert versions.PINNED == core.API_VERSION == stripe.api_version
    assert {OLD, BOTH, versions.PINNED} <= set(versions.known_versions())


def test_pinned_version_takes_allowed_payment_method_types(stripe_client):
    pi = stripe_client.v1.payment_intents.create(
        params={"amount": 500, "currency": "eur", "allowed_payment_method_types": ["card", "ideal"]}
    )
    # Filtered to what can be used here, as Stripe does; the field says what was allowed.
    assert pi.payment_method_types == ["card"]
    assert pi.allowed_payment_method_types == ["card", "ideal"]
    assert raw(pi)["allowed_payment_method_types"] == ["card", "ideal"]


def test_pinned_version_refuses_payment_method_types(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.create(
            params={"amount": 500, "currency": "eur", "payment_method_types": ["card"]}
        )
    error = excinfo.value.json_body["error"]
    assert error["code"] == "payment_method_types_no_longer_supported"
    assert error["param"] == "payment_method_types"


def test_an_older_version_uses_its_own_names_and_fields(stripe_client):
    pi = stripe_client.v1.payment_intents.create(
        params={"amount": 500, "currency": "eur", "payment_method_types": ["card"]},
        options=old(),
    )
    assert pi.payment_method_types == ["card"]
    assert "allowed_payment_method_types" not in raw(pi)  # the field did not exist then
    again = stripe_client.v1.payment_intents.retrieve(pi.id, options=old())
    assert "allowed_payment_method_types" not in raw(again)
    # The same object read in the pinned version has the field.
    assert raw(stripe_client.v1.payment_intents.retrieve(pi.id))[
        "allowed_payment_method_types"
    ] == ["card"]


def test_an_older_version_does_not_know_the_newer_name(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.create(
            params={"amount": 500, "currency": "eur", "allowed_payment_method_types": ["card"]},
            options=old(),
        )
    error = excinfo.value.json_body["error"]
    assert (error["code"], error["param"]) == ("parameter_unknown", "allowed_payment_method_types")


def test_between_the_two_either_name_but_not_both(stripe_client):
    for name in ("payment_method_types", "allowed_payment_method_types"):
        pi = stripe_client.v1.payment_intents.create(
            params={"amount": 500, "currency": "eur", name: ["card"]}, options=old(BOTH)
        )
        assert pi.payment_method_types == ["card"]
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.create(
            params={
                "amount": 500,
                "currency": "eur",
                "payment_method_types": ["card"],
                "allowed_payment_method_types": ["card"],
            },
            options=old(BOTH),
        )
    assert "only specify one of" in excinfo.value.user_message


def test_errors_name_the_parameter_as_sent(stripe_client):
    pi = stripe_client.v1.payment_intents.create(params={"amount": 500, "currency": "eur"})
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.update(
            pi.id, params={"payment_method_types": ["card"]}, options=old()
        )
    error = excinfo.value.json_body["error"]
    assert error["code"] == "parameter_unsupported"
    assert error["param"] == "payment_method_types"
    assert error["message"].startswith("payment_method_types is not supported")


def test_unknown_and_newer_versions_are_refused(emulator_app):
    client = emulator_app.test_client()
    auth = {"Authorization": "Bearer sk_test_emulator"}
    for version in ("2099-01-01.zebra", "not-a-version"):
        resp = client.get("/v1/customers", headers={**auth, "Stripe-Version": version})
        assert resp.status_code == 400
        assert resp.json["error"]["message"] == f"Invalid Stripe API version: {version}"
    resp = client.post(
        "/v1/webhook_endpoints",
        data={"url": "http://x.test/", "enabled_events[]": "*", "api_version": "2099-01-01"},
        headers=auth,
    )
    assert resp.status_code == 400 and resp.json["error"]["param"] == "api_version"


def test_events_are_rendered_in_each_endpoints_version(stripe_client, receiver):
    for path, params in (("/old", {"api_version": OLD}), ("/pinned", {})):
        stripe_client.v1.webhook_endpoints.create(
            {"url": receiver.url + path, "enabled_events": ["payment_intent.created"], **params}
        )
    pi = stripe_client.v1.payment_intents.create(
        params={"amount": 500, "currency": "eur", "allowed_payment_method_types": ["card"]}
    )
    (old_delivery,) = receiver.wait_for(1, "/old")
    (pinned_delivery,) = receiver.wait_for(1, "/pinned")
    old_event, pinned_event = old_delivery.event, pinned_delivery.event
    assert old_event["id"] == pinned_event["id"]
    assert old_event["api_version"] == OLD
    assert old_event["data"]["object"]["id"] == pi.id
    assert "allowed_payment_method_types" not in old_event["data"]["object"]
    assert pinned_event["api_version"] == versions.PINNED
    assert pinned_event["data"]["object"]["allowed_payment_method_types"] == ["card"]
