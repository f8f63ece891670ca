"""Concurrency: N shoppers at once, each adding to a cart and paying, against 4 workers.

Each shopper is a browser session of its own: it opens a product page, adds one bag to
its cart, opens the checkout (the order is made there), presses Pay with its email and
address (the PaymentIntent is made then), and pays: the card is confirmed at the
emulator, as Stripe.js does, and the emulator's ``payment_intent.succeeded`` webhook
fulfils the order. Then the database must hold exactly one paid order and one
PaymentIntent per shopper, each fulfilled once (one confirmation email each, stock down
by exactly N), with no error on any request.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from bench.shop import CSRF_RE, PRICE_RE, Shop, is_postgres, running

PRODUCT = "colombia-huila"  # stock 55 in the seed catalog: enough for 50 shoppers
PAGE_DATA_RE = re.compile(r'<script[^>]*id="checkout-data"[^>]*>(.*?)</script>', re.S)


class ShopperError(Exception):
    pass


def _check(response: requests.Response, *ok: int) -> requests.Response:
    if response.status_code not in ok:
        raise ShopperError(f"{response.request.method} {response.url}: {response.status_code}")
    return response


def page_data(html: str) -> dict:
    match = PAGE_DATA_RE.search(html)
    if not match:
        raise ShopperError("checkout page without its data")
    return json.loads(match.group(1))


SHIP_TO = {
    "name": "Jenny Rosen",
    "line1": "1 Main St",
    "city": "Albany",
    "state": "NY",
    "postal_code": "12207",
    "country": "US",
}


def press_pay(s: requests.Session, shop_url: str, data: dict, email: str) -> requests.Response:
    """What the checkout page does on Pay: the address, the first rate and the shown total;
    the shop makes the order's PaymentIntent and answers its client secret."""
    rate = data["rates"][0]
    return s.post(
        shop_url + data["payUrl"],
        json={"email": email, "shipping_rate": rate["code"], "total": rate["total"], **SHIP_TO},
        headers={"X-CSRFToken": data["csrfToken"]},
        timeout=30,
    )


def shop_once(shop: Shop, n: int, start: threading.Barrier) -> float:
    """One shopper, start to paid; returns the Pay request's time in ms."""
    s = requests.Session()
    page = _check(s.get(f"{shop.url}/products/{PRODUCT}", timeout=30), 200).text
    token, price_id = CSRF_RE.search(page).group(1), PRICE_RE.search(page).group(1)
    start.wait()
    _check(
        s.post(
            f"{shop.url}/cart/add",
            data={"csrf_token": token, "price_id": price_id, "quantity": "1"},
            allow_redirects=False,
            timeout=30,
        ),
        302,
        303,
    )
    checkout = _check(s.get(f"{shop.url}/checkout/", timeout=30), 200)
    data = page_data(checkout.text)
    began = time.perf_counter()
    paid = _check(press_pay(s, shop.url, data, f"shopper{n}@example.com"), 200).json()
    pay_ms = (time.perf_counter() - began) * 1000
    pi_id = paid["clientSecret"].split("_secret_")[0]
    # What Stripe.js does when the customer presses Pay: confirm with the card.
    _check(
        requests.post(
            f"{shop.emulator_url}/v1/payment_intents/{pi_id}/confirm",
            data={"payment_method": "pm_card_visa", "return_url": data["returnUrl"]},
            auth=("sk_test_emulator", ""),
            timeout=30,
        ),
        200,
    )
    return pay_ms


def stripe_intents(shop: Shop) -> int:
    """How many PaymentIntents the emulator holds (the run starts with none)."""
    response = requests.get(
        f"{shop.emulator_url}/v1/payment_intents",
        params={"limit": 100},
        auth=("sk_test_emulator", ""),
        timeout=30,
    )
    return len(_check(response, 200).json()["data"])


def outcome(database_url: str, n: int) -> dict:
    url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", database_url)
    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT COUNT(*), COUNT(DISTINCT stripe_payment_intent_id), "
                "SUM(CASE WHEN status = 'paid' AND fulfilled_at IS NOT NULL THEN 1 ELSE 0 END) "
                'FROM "order"'
            )
        ).one()
        emails = conn.execute(
            text(
                "SELECT COUNT(*), COUNT(DISTINCT order_id) FROM outbox_message "
                "WHERE kind = 'order_confirmation'"
            )
        ).one()
        stock = conn.scalar(text("SELECT stock FROM product WHERE slug = :s"), {"s": PRODUCT})
    engine.dispose()
    return {
        "orders": row[0],
        "intents": row[1],
        "fulfilled": row[2] or 0,
        "emails": emails[0],
        "orders_emailed": emails[1],
        "stock": stock,
    }


def run(database_url: str, log_dir: Path, *, shoppers: int = 50, workers: int = 4) -> dict:
    """The whole run on one database; the dict holds the figures and ``ok``."""
    label = "postgresql" if is_postgres(database_url) else "sqlite"
    with running(database_url, log_dir, workers=workers, name=f"shop-shoppers-{label}") as shop:
        stock_before = outcome(database_url, shoppers)["stock"]
        released: list[float] = []
        # Timed from the moment every shopper has its page open and all start at once.
        barrier = threading.Barrier(shoppers, action=lambda: released.append(time.perf_counter()))
        pays: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def one(i: int) -> None:
            try:
                ms = shop_once(shop, i, barrier)
            except (ShopperError, requests.RequestException, threading.BrokenBarrierError) as err:
                with lock:
                    errors.append(str(err))
                barrier.abort()
                return
            with lock:
                pays.append(ms)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(shoppers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        # Webhooks arrive after the confirm answers: wait (bounded) for every order.
        deadline = time.monotonic() + 60
        while True:
            state = outcome(database_url, shoppers)
            if state["fulfilled"] >= shoppers or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - (released[0] if released else time.perf_counter())
        at_stripe = stripe_intents(shop)
    sold = (stock_before - state["stock"]) if stock_before is not None else None
    ok = (
        not errors
        and state["orders"] == shoppers
        and state["intents"] == shoppers
        and at_stripe == shoppers
        and state["fulfilled"] == shoppers
        and state["emails"] == shoppers
        and state["orders_emailed"] == shoppers
        and sold == shoppers
    )
    pays.sort()
    return {
        "database": label,
        "shoppers": shoppers,
        "workers": workers,
        "seconds": round(elapsed, 2),
        "checkouts_per_s": round(state["fulfilled"] / elapsed, 1) if elapsed else 0,
        "pay_p50_ms": round(statistics.median(pays), 1) if pays else None,
        "pay_p99_ms": round(pays[min(len(pays) - 1, int(len(pays) * 0.99))], 1) if pays else None,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        **state,
        "stock_sold": sold,
        "intents_at_stripe": at_stripe,
        "ok": ok,
    }
