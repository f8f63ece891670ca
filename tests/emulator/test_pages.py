"""The emulator's browser pages as HTML: the business name, and URLs that work behind any host."""

from __future__ import annotations

import re

import pytest

from stripe_emulator import create_app
from stripe_emulator.webhooks import stop_delivery

FRAMES = ["payment", "card", "cardNumber", "cardExpiry", "cardCvc", "linkAuthentication", "address"]


@pytest.fixture
def client(tmp_path):
    """A test client of a new emulator; its sweeper thread (started with the app) stops after."""
    app = create_app(
        {
            "EMULATOR_DB": str(tmp_path / "em.sqlite3"),
            "TESTING": True,
            "EMULATOR_BUSINESS_NAME": "Fernwood Coffee Co.",
        }
    )
    yield app.test_client()
    stop_delivery(app)


def test_hosted_page_shows_the_accounts_business_name(client):
    page = client.get("/c/pay/cs_test_x").get_data(as_text=True)
    assert "<title>Fernwood Coffee Co. · Checkout</title>" in page
    assert "Emulator test shop" not in page


def _own_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize(
    "path",
    ["/c/pay/cs_test_x", "/3ds/pi_x?client_secret=pi_x_secret_y"]
    + [f"/elements/{kind}?origin=http://shop.test&frame=f1&group=g1" for kind in FRAMES],
)
def test_pages_load_the_emulators_own_files_by_relative_url(client, path):
    # Served behind another host name, the pages must not name the host they were asked on.
    response = client.get(path, base_url="https://payments.example.test")
    assert response.status_code == 200
    urls = _own_urls(response.get_data(as_text=True))
    assert urls
    for url in urls:
        if url.startswith("#"):
            continue
        assert url.startswith("/") and not url.startswith("//"), url


@pytest.mark.parametrize("kind", FRAMES)
def test_element_frames_only_let_their_page_frame_them(client, kind):
    response = client.get(f"/elements/{kind}?origin=http://shop.test&frame=f1&group=g1")
    assert response.headers["Content-Security-Policy"] == "frame-ancestors http://shop.test"
    assert response.headers["Cache-Control"] == "no-store"


def test_element_frames_refuse_odd_parameters(client):
    assert client.get("/elements/payment?origin=javascript:alert(1)").status_code == 400
    assert client.get('/elements/payment?origin=http://a.test&frame="><script>').status_code == 400
    assert client.get("/elements/bogus?origin=http://a.test").status_code == 404
