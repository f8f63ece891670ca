"""The emulator is strict like Stripe: unknown, invalid, missing and unimplemented parameters
are answered with a 400 before anything happens (issue 10)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import stripe
from flask import Flask

from stripe_emulator import strict

SECRET = {"Authorization": "Bearer sk_test_emulator"}


def refused(excinfo) -> dict:
    """The error body of a refused SDK call."""
    assert excinfo.value.http_status == 400
    return excinfo.value.json_body["error"]


def session_params(**extra) -> dict:
    params = {
        "mode": "payment",
        "success_url": "http://shop.test/done",
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 1200,
                    "product_data": {"name": "Beans"},
                },
                "quantity": 1,
            }
        ],
    }
    params.update(extra)
    return params


# --------------------------------------------------------------------------- every endpoint


def _url(rule) -> str:
    # The check runs before the view looks anything up, so any id will do.
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"x_\1", rule.rule)


def test_every_endpoint_refuses_an_unknown_parameter(emulator_app: Flask):
    client = emulator_app.test_client()
    rules = strict.api_rules(emulator_app)
    assert len(rules) >= 50  # the walk covers the whole API, not an empty map
    seen = []
    for rule in rules:
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            url = _url(rule)
            if method == "POST":
                resp = client.post(url, data={"bogus_param": "1"}, headers=SECRET)
            else:
                resp = client.open(
                    url, method=method, query_string={"bogus_param": "1"}, headers=SECRET
                )
            where = f"{method} {rule.rule}"
            assert resp.status_code == 400, where
            assert resp.json == {
                "error": {
                    "type": "invalid_request_error",
                    "code": "parameter_unknown",
                    "param": "bogus_param",
                    "message": "Received unknown parameter: bogus_param",
                }
            }, where
            seen.append(where)
    assert "POST /v1/checkout/sessions" in seen and "GET /v1/payment_intents/<pi_id>" in seen


def test_a_route_without_a_declaration_fails_at_start_up():
    app = Flask(__name__)

    @app.post("/v1/widgets")
    def create_widget():
        return {}

    @app.post("/v1/products")
    @strict.accepts("ProductCreateParams", ["name", "nmae"])
    def create_product():
        return {}

    with pytest.raises(RuntimeError) as excinfo:
        strict.check_app(app)
    message = str(excinfo.value)
    assert "POST /v1/widgets (view create_widget) has no @strict.accepts" in message
    assert "implements 'nmae', which ProductCreateParams lacks" in message
    assert "'name'" not in message


def test_known_parameters_follow_the_sdk():
    """The allow-list is read from stripe.params, not kept by hand."""
    schema = strict.schema_of("checkout.SessionCreateParams")
    assert set(schema.fields) == set(stripe.params.checkout.SessionCreateParams.__annotations__) - (
        strict.REQUEST_OPTIONS
    )
    assert schema.fields["mode"].enum == ("payment", "setup", "subscription")


# --------------------------------------------------------------------------- the examples


@pytest.mark.parametrize(
    "extra,param",
    [
        ({"allow_promotion_codes": True}, "allow_promotion_codes"),
        ({"automatic_tax": {"enabled": True}}, "automatic_tax[enabled]"),
        # (shipping_address_collection is implemented since the shipping issue)
        ({"phone_number_collection": {"enabled": True}}, "phone_number_collection[enabled]"),
        ({"locale": "fr"}, "locale"),
    ],
)
def test_checkout_refuses_what_it_does_not_implement(stripe_client, extra, param):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.checkout.sessions.create(params=session_params(**extra))
    error = refused(excinfo)
    assert error["code"] == "parameter_unsupported"
    assert error["param"] == param
    assert error["message"].startswith(f"{param} is not supported by the Stripe emulator")
    assert not stripe_client.v1.checkout.sessions.list().data  # nothing was created


def test_checkout_refuses_a_made_up_parameter(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.checkout.sessions.create(params=session_params(bogus_param="1"))
    error = refused(excinfo)
    assert error == {
        "type": "invalid_request_error",
        "code": "parameter_unknown",
        "param": "bogus_param",
        "message": "Received unknown parameter: bogus_param",
    }


def test_nested_unknown_parameters_are_named_in_full(stripe_client):
    params = session_params()
    params["line_items"][0]["bogus"] = "1"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.checkout.sessions.create(params=params)
    error = refused(excinfo)
    assert error["code"] == "parameter_unknown"
    assert error["param"] == "line_items[0][bogus]"
    assert error["message"] == "Received unknown parameter: line_items[0][bogus]"


def test_an_unknown_parameter_is_reported_before_an_unsupported_one(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.checkout.sessions.create(params=session_params(locale="fr", zzz_bogus="1"))
    assert refused(excinfo)["param"] == "zzz_bogus"


def test_what_the_shop_sends_is_accepted(stripe_client):
    session = stripe_client.v1.checkout.sessions.create(
        params=session_params(
            client_reference_id="order-1",
            metadata={"order_id": "order-1"},
            payment_intent_data={"metadata": {"order_id": "order-1"}},
            cancel_url="http://shop.test/cart",
            customer_email="jo@example.com",
        )
    )
    assert session.status == "open"


# --------------------------------------------------------------------------- each kind of error


def test_invalid_enum_value_lists_the_allowed_values(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.checkout.sessions.create(params=session_params(mode="bogus"))
    assert refused(excinfo) == {
        "type": "invalid_request_error",
        "code": "parameter_invalid_string",
        "param": "mode",
        "message": "Invalid mode: must be one of payment, setup, or subscription",
    }


def test_nested_enum_values_are_checked(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.prices.create(
            params={
                "currency": "eur",
                "unit_amount": 500,
                "product_data": {"name": "Club"},
                "recurring": {"interval": "fortnight"},
            }
        )
    error = refused(excinfo)
    assert error["param"] == "recurring[interval]"
    assert (
        error["message"] == "Invalid recurring[interval]: must be one of day, month, week, or year"
    )


def test_wrong_type_is_parameter_invalid_integer(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.create(params={"amount": "ten", "currency": "eur"})
    assert refused(excinfo) == {
        "type": "invalid_request_error",
        "code": "parameter_invalid_integer",
        "param": "amount",
        "message": "Invalid integer: ten",
    }
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.checkout.sessions.create(
            params=session_params(line_items=[{"price": "price_x", "quantity": "2.5"}])
        )
    assert refused(excinfo)["param"] == "line_items[0][quantity]"


def test_wrong_boolean(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.create(
            params={"amount": 100, "currency": "eur", "confirm": "perhaps"}
        )
    error = refused(excinfo)
    assert error["param"] == "confirm"
    assert error["message"] == "Invalid boolean: perhaps"


def test_a_hash_where_a_value_belongs(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.create(
            params={"amount": 100, "currency": "eur", "metadata": {"a": {"b": "c"}}}
        )
    assert refused(excinfo)["param"] == "metadata[a]"


def test_missing_required_parameters(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.create(params={"amount": 100})
    assert refused(excinfo) == {
        "type": "invalid_request_error",
        "code": "parameter_missing",
        "param": "currency",
        "message": "Missing required param: currency.",
    }
    params = session_params()
    del params["line_items"][0]["price_data"]["currency"]
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.checkout.sessions.create(params=params)
    assert refused(excinfo)["param"] == "line_items[0][price_data][currency]"


def test_request_options_are_headers_not_parameters(stripe_client, emulator_app):
    client = emulator_app.test_client()
    for name in ("api_key", "idempotency_key", "stripe_account", "stripe_version"):
        resp = client.post(
            "/v1/customers", data={"email": "a@example.com", name: "x"}, headers=SECRET
        )
        assert resp.status_code == 400, name
        assert resp.json["error"]["code"] == "parameter_unknown", name
    # ...while the SDK's options, sent as headers, work.
    created = stripe_client.v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "cus-1"}
    )
    again = stripe_client.v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "cus-1"}
    )
    assert created.id == again.id


def test_a_refused_request_keeps_no_idempotent_answer(stripe_client):
    options = {"idempotency_key": "refused-1"}
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.checkout.sessions.create(
            params=session_params(locale="fr"), options=options
        )
    session = stripe_client.v1.checkout.sessions.create(params=session_params(), options=options)
    assert session.status == "open"


def test_a_bad_key_is_answered_before_the_parameters(emulator_app):
    resp = emulator_app.test_client().post("/v1/customers", data={"bogus_param": "1"})
    assert resp.status_code == 401


def test_raw_card_details_are_not_a_create_parameter(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.create(
            params={
                "amount": 100,
                "currency": "eur",
                "payment_method_data": {"type": "card", "card": {"number": "4242424242424242"}},
            }
        )
    assert refused(excinfo)["param"] == "payment_method_data[card]"


def test_readme_lists_what_each_endpoint_implements(emulator_app: Flask):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    begin, end = "<!-- emulator-params:begin -->\n", "<!-- emulator-params:end -->"
    assert begin in readme and end in readme
    listed = readme.split(begin, 1)[1].split(end, 1)[0]
    assert listed == strict.describe(emulator_app), (
        "README's emulator table is out of date: paste the output of "
        "`.venv/bin/python -m stripe_emulator --list-params` between its markers"
    )


@pytest.mark.parametrize("body", ["0=x", "%5B%5D=x", "0=x&1=y"])
def test_numbered_top_level_names_are_unknown_parameters(emulator_app: Flask, body: str):
    resp = emulator_app.test_client().post(
        "/v1/customers",
        data=body,
        headers=SECRET,
        content_type="application/x-www-form-urlencoded",
    )
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "parameter_unknown"
    assert resp.json["error"]["param"] == "0"


@pytest.mark.parametrize(
    "name", ["metadata" + "[0]" * 3_000, "expand" + "[]" * 3_000, "email" + "[a]" * 3_000]
)
def test_a_parameter_nested_absurdly_deep_is_a_400_not_a_crash(emulator_app, name):
    resp = emulator_app.test_client().post("/v1/customers", data={name: "x"}, headers=SECRET)
    assert resp.status_code == 400
    error = resp.json["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == name.split("[")[0]
    assert "nested more than" in error["message"]
    # Stripe's deepest parameters still go through.
    client = emulator_app.test_client()
    ok = client.post("/v1/customers", data={"metadata[a]": "1"}, headers=SECRET)
    assert ok.status_code == 200
