import pytest
from sqlalchemy import select

from storefront.cart import TOKEN_KEY
from storefront.extensions import db
from storefront.models import Price, Product
from tests.webhook_helpers import make_event, post_event


def price_id(app, lookup_key):
    with app.app_context():
        return db.session.scalar(select(Price.id).where(Price.lookup_key == lookup_key))


def cart_items(client):
    with client.session_transaction() as session:
        return dict((session.get("cart") or {}).get("items", {}))


def session_cart(client):
    with client.session_transaction() as session:
        return session.get("cart")


@pytest.fixture
def usd(app):
    return price_id(app, "ethiopia-yirgacheffe-usd")


@pytest.fixture
def filled(app, client):
    """A cart already holding a valid line (2 x Colombia Huila); returns the session cart."""
    other = price_id(app, "colombia-huila-usd")
    client.post("/cart/add", data={"price_id": other, "quantity": "2"})
    cart = session_cart(client)
    assert cart == {"currency": "usd", "items": {str(other): 2}}
    return cart


def test_add_to_cart_shows_line_and_total(app, client, usd):
    response = client.post("/cart/add", data={"price_id": usd, "quantity": "2"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/cart/")
    page = client.get("/cart/").get_data(as_text=True)
    assert "Ethiopia Yirgacheffe" in page
    with app.app_context():
        amount = db.session.get(Price, usd).unit_amount
    assert f"${amount * 2 / 100:,.2f}" in page
    assert cart_items(client) == {str(usd): 2}


def test_cart_cookie_holds_only_ids_and_quantities(client, usd):
    client.post("/cart/add", data={"price_id": usd, "quantity": "1"})
    with client.session_transaction() as session:
        assert session["cart"] == {"currency": "usd", "items": {str(usd): 1}}


def test_first_item_gives_the_session_its_checkout_token_once(client, usd):
    with client.session_transaction() as session:
        assert TOKEN_KEY not in session
    client.post("/cart/add", data={"price_id": usd, "quantity": "1"})
    with client.session_transaction() as session:
        token = session[TOKEN_KEY]
    client.post("/cart/add", data={"price_id": usd, "quantity": "1"})
    with client.session_transaction() as session:
        assert session[TOKEN_KEY] == token


def test_webhook_endpoint_neither_reads_nor_writes_the_session(client):
    # GET / still sets the cookie: its add-to-cart forms carry a CSRF token.
    response = post_event(client, make_event("ping.unknown", {"id": "x"}))
    assert response.status_code == 200
    assert "Cookie" not in response.headers.get("Vary", "")
    assert response.headers.getlist("Set-Cookie") == []


def test_adding_again_adds_up(client, usd):
    client.post("/cart/add", data={"price_id": usd, "quantity": "2"})
    client.post("/cart/add", data={"price_id": usd, "quantity": "3"})
    assert cart_items(client) == {str(usd): 5}


def test_update_quantity(client, usd):
    client.post("/cart/add", data={"price_id": usd, "quantity": "2"})
    client.post("/cart/update", data={"price_id": usd, "quantity": "7"})
    assert cart_items(client) == {str(usd): 7}


def test_remove(client, usd):
    client.post("/cart/add", data={"price_id": usd, "quantity": "2"})
    client.post("/cart/remove", data={"price_id": usd})
    assert cart_items(client) == {}
    assert "Your cart is empty" in client.get("/cart/").get_data(as_text=True)


@pytest.mark.parametrize("quantity", ["0", "100", "-1", "2.5", "abc", ""])
def test_bad_quantity_is_refused_and_cart_unchanged(client, usd, quantity):
    client.post("/cart/add", data={"price_id": usd, "quantity": "1"})
    response = client.post(
        "/cart/update", data={"price_id": usd, "quantity": quantity}, follow_redirects=True
    )
    assert "Quantity must be a whole number from 1 to 99." in response.get_data(as_text=True)
    assert cart_items(client) == {str(usd): 1}


def test_total_quantity_above_99_is_capped_at_99(app, client):
    with app.app_context():
        product = db.session.scalar(select(Product).where(Product.stock.is_(None)))
        usd = product.price_in("usd").id
        name = product.name
    client.post("/cart/add", data={"price_id": usd, "quantity": "60"})
    response = client.post(
        "/cart/add", data={"price_id": usd, "quantity": "50"}, follow_redirects=True
    )
    assert f"Only 99 of {name} per order: your cart now holds 99." in response.get_data(
        as_text=True
    )
    assert cart_items(client) == {str(usd): 99}
    again = client.post("/cart/add", data={"price_id": usd, "quantity": "1"}, follow_redirects=True)
    assert "already holds 99" in again.get_data(as_text=True)
    assert cart_items(client) == {str(usd): 99}


@pytest.mark.parametrize(
    ("bad_id", "message"),
    [
        ("999999", "Sorry, that product is not available."),
        ("x", "Please choose a product."),
        ("", "Please choose a product."),
    ],
)
def test_unknown_price_is_refused_and_cart_unchanged(client, filled, bad_id, message):
    response = client.post(
        "/cart/add", data={"price_id": bad_id, "quantity": "1"}, follow_redirects=True
    )
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert session_cart(client) == filled


def test_inactive_price_is_refused_and_cart_unchanged(app, client, filled, usd):
    with app.app_context():
        db.session.get(Price, usd).active = False
        db.session.commit()
    response = client.post(
        "/cart/add", data={"price_id": usd, "quantity": "1"}, follow_redirects=True
    )
    assert response.status_code == 200
    assert "Sorry, that product is not available." in response.get_data(as_text=True)
    assert session_cart(client) == filled


def adding_is_refused(client, price: int, message: str, filled) -> None:
    """Adding one of ``price`` says ``message`` and leaves the cart as it was."""
    response = client.post(
        "/cart/add", data={"price_id": price, "quantity": "1"}, follow_redirects=True
    )
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert session_cart(client) == filled


def test_inactive_product_is_refused_and_cart_unchanged(app, client, filled, usd):
    with app.app_context():
        db.session.get(Price, usd).product.active = False
        db.session.commit()
    adding_is_refused(client, usd, "Sorry, that product is not available.", filled)


def test_price_in_another_currency_is_refused_and_cart_unchanged(app, client, filled):
    eur = price_id(app, "ethiopia-yirgacheffe-eur")
    adding_is_refused(client, eur, "Switch currency first", filled)


def test_recurring_price_is_not_a_cart_item_and_cart_unchanged(app, client, filled):
    monthly = price_id(app, "coffee-club-monthly-usd")
    adding_is_refused(client, monthly, "Memberships are not cart items", filled)


def test_switching_currency_moves_items_to_that_currency(app, client, usd):
    client.post("/cart/add", data={"price_id": usd, "quantity": "2"})
    client.post("/cart/currency", data={"currency": "eur"})
    eur = price_id(app, "ethiopia-yirgacheffe-eur")
    assert cart_items(client) == {str(eur): 2}
    assert "€" in client.get("/cart/").get_data(as_text=True)


def test_unknown_currency_is_refused(client, usd):
    client.post("/cart/add", data={"price_id": usd, "quantity": "2"})
    response = client.post("/cart/currency", data={"currency": "xyz"}, follow_redirects=True)
    assert "We do not sell in that currency." in response.get_data(as_text=True)
    assert cart_items(client) == {str(usd): 2}


def test_asking_for_more_than_the_stock_caps_the_line_and_stays_on_the_product(app, client):
    with app.app_context():
        product = db.session.scalar(select(Product).where(Product.stock.is_not(None)))
        product.stock = 3
        db.session.commit()
        pid, name, slug = product.price_in("usd").id, product.name, product.slug
    page = client.get(f"/products/{slug}").get_data(as_text=True)
    assert 'name="quantity" type="number" inputmode="numeric" min="1" max="3"' in page
    form = {"price_id": pid, "quantity": "4", "back": f"/products/{slug}"}
    response = client.post("/cart/add", data=form)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/products/{slug}"
    page = client.get(f"/products/{slug}").get_data(as_text=True)
    assert f"Only 3 of {name} in stock: your cart now holds 3." in page
    assert 'data-testid="cart-count">3<' in page
    assert cart_items(client) == {str(pid): 3}
    # Nothing more to add: said on the product page, the cart unchanged.
    response = client.post("/cart/add", data=dict(form, quantity="1"), follow_redirects=True)
    assert response.request.path == f"/products/{slug}"
    assert f"Your cart already holds 3 of {name}" in response.get_data(as_text=True)
    assert cart_items(client) == {str(pid): 3}
    # The cart's own quantity box goes no higher, and a larger number is capped too.
    page = client.get("/cart/").get_data(as_text=True)
    assert 'min="1" max="3" value="3"' in page
    client.post("/cart/update", data={"price_id": pid, "quantity": "1"})
    response = client.post(
        "/cart/update", data={"price_id": pid, "quantity": "7"}, follow_redirects=True
    )
    assert f"Only 3 of {name} in stock" in response.get_data(as_text=True)
    assert cart_items(client) == {str(pid): 3}
    answer = client.post("/cart/update", json={"price_id": str(pid), "quantity": 9}).get_json()
    assert answer["count"] == 3 and answer["notice"].startswith("Only 3 of")


def test_json_request_gets_400_with_reason(client, usd):
    response = client.post("/cart/add", json={"price_id": str(usd), "quantity": 0})
    assert response.status_code == 400
    assert response.get_json() == {"error": "Quantity must be a whole number from 1 to 99."}
    assert cart_items(client) == {}


def test_json_request_succeeds(client, usd):
    response = client.post("/cart/add", json={"price_id": str(usd), "quantity": 2})
    assert response.status_code == 200
    assert response.get_json()["count"] == 2


def test_non_form_body_is_400(client):
    response = client.post("/cart/add", data="garbage", content_type="text/plain")
    assert response.status_code == 400


def test_items_that_stop_being_sold_drop_out_of_the_cart(app, client, usd):
    client.post("/cart/add", data={"price_id": usd, "quantity": "2"})
    with app.app_context():
        db.session.get(Price, usd).active = False
        db.session.commit()
    page = client.get("/cart/").get_data(as_text=True)
    assert "Your cart is empty" in page


def test_tampered_cookie_items_are_ignored(client, usd):
    with client.session_transaction() as session:
        session["cart"] = {"currency": "usd", "items": {str(usd): "lots", "abc": 3}}
    assert client.get("/cart/").status_code == 200
    assert "Your cart is empty" in client.get("/cart/").get_data(as_text=True)


@pytest.mark.parametrize(
    ("endpoint", "data"),
    [
        ("/cart/add", {"quantity": "1"}),
        ("/cart/update", {"quantity": "5"}),
        ("/cart/remove", {}),
        ("/cart/currency", {"currency": "eur"}),
    ],
)
def test_cart_posts_require_csrf_token(csrf_app, endpoint, data):
    usd = price_id(csrf_app, "ethiopia-yirgacheffe-usd")
    client = csrf_app.test_client()
    filled = {"currency": "usd", "items": {str(usd): 2}}
    with client.session_transaction() as session:
        session["cart"] = filled
    response = client.post(endpoint, data={"price_id": usd, **data})
    assert response.status_code == 400
    assert "Please try again" in response.get_data(as_text=True)
    assert session_cart(client) == filled


def test_cart_post_with_csrf_token_works(csrf_app, usd):
    import re

    client = csrf_app.test_client()
    page = client.get("/products/ethiopia-yirgacheffe").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(
        "/cart/add", data={"price_id": usd, "quantity": "1", "csrf_token": token}
    )
    assert response.status_code == 303
    assert cart_items(client) == {str(usd): 1}


@pytest.mark.parametrize("quantity", ["²", "٣", "--5", "+5", "1e1", "9" * 5000])
def test_malformed_quantity_on_update_is_refused_and_cart_unchanged(client, usd, quantity):
    client.post("/cart/add", data={"price_id": usd, "quantity": "1"})
    response = client.post(
        "/cart/update", data={"price_id": usd, "quantity": quantity}, follow_redirects=True
    )
    assert response.status_code == 200
    assert "Quantity must be a whole number from 1 to 99." in response.get_data(as_text=True)
    assert cart_items(client) == {str(usd): 1}


@pytest.mark.parametrize("bad_id", ["²", "٣", "9" * 25, "9" * 5000, "-1", " 1"])
def test_malformed_price_id_on_add_is_refused_and_cart_unchanged(client, usd, bad_id):
    client.post("/cart/add", data={"price_id": usd, "quantity": "1"})
    response = client.post(
        "/cart/add", data={"price_id": bad_id, "quantity": "1"}, follow_redirects=True
    )
    assert response.status_code == 200
    assert "Please choose a product." in response.get_data(as_text=True)
    assert cart_items(client) == {str(usd): 1}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"quantity": "²"}, "Quantity must be a whole number from 1 to 99."),
        ({"quantity": True}, "Quantity must be a whole number from 1 to 99."),
        ({"quantity": 2.0}, "Quantity must be a whole number from 1 to 99."),
        ({"quantity": 100}, "Quantity must be a whole number from 1 to 99."),
        ({"price_id": 10**30}, "Please choose a product."),
        ({"price_id": True}, "Please choose a product."),
        ({"price_id": "9" * 5000}, "Please choose a product."),
    ],
)
def test_malformed_json_cart_change_is_400_and_cart_unchanged(client, usd, body, error):
    client.post("/cart/add", data={"price_id": usd, "quantity": "1"})
    response = client.post("/cart/update", json={"price_id": str(usd), "quantity": 1} | body)
    assert response.status_code == 400
    assert response.get_json() == {"error": error}
    assert cart_items(client) == {str(usd): 1}


def test_json_price_id_may_be_a_number(client, usd):
    response = client.post("/cart/add", json={"price_id": usd, "quantity": 3})
    assert response.status_code == 200
    assert response.get_json()["count"] == 3
    assert cart_items(client) == {str(usd): 3}


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "/\t/evil.example",
        "/\n/x",
        "/\r\n/x",
        "/ /evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "http://evil.example/",
        "https:/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\u3000/evil.example",
    ],
)
def test_next_redirect_refuses_other_hosts(client, usd, target):
    response = client.post("/cart/add", data={"price_id": usd, "quantity": "1", "next": target})
    assert response.status_code == 303
    assert response.headers["Location"] == "/cart/"
    assert cart_items(client) == {str(usd): 1}


def test_next_redirect_refuses_other_hosts_on_error_too(client):
    response = client.post(
        "/cart/add", data={"price_id": "x", "quantity": "1", "next": "/\t/evil.example"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/cart/"


def test_next_redirect_keeps_a_local_path_and_query(client, usd):
    response = client.post(
        "/cart/add", data={"price_id": usd, "quantity": "1", "next": "/?category=coffee"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/?category=coffee"


def test_json_cart_post_without_csrf_token_gets_json_400(csrf_app):
    usd = price_id(csrf_app, "ethiopia-yirgacheffe-usd")
    client = csrf_app.test_client()
    response = client.post("/cart/add", json={"price_id": str(usd), "quantity": 1})
    assert response.status_code == 400
    assert response.is_json
    error = response.get_json()["error"]
    assert "Please try again" in error
    assert "CSRF token is missing" in error
    assert session_cart(client) is None


def test_csrf_error_for_a_client_that_wants_json_is_json(csrf_app):
    usd = price_id(csrf_app, "ethiopia-yirgacheffe-usd")
    client = csrf_app.test_client()
    response = client.post(
        "/cart/add",
        data={"price_id": usd, "quantity": "1"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    assert "Please try again" in response.get_json()["error"]
    assert session_cart(client) is None
