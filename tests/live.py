"""Integration fixtures: the Stripe emulator and the shop served over HTTP, and Chromium.

Loaded as a pytest plugin from ``tests/conftest.py``. The shop reaches the emulator
only through the official SDK and the Stripe.js URL, exactly as it would reach Stripe.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from storefront.catalog import sync_catalog
from storefront.extensions import db

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    # A test page lives for seconds: V8's optimizing compilers (Maglev, TurboFan) spent more
    # CPU compiling axe-core than the optimized code saved (the axe surveys with and without,
    # run side by side: -9%; the other browser tests about the same). Scripts still run,
    # interpreted and baseline-compiled, with the same results.
    "--js-flags=--no-maglev,--no-turbofan",
]


def closes_its_body(app: Callable) -> Callable:
    """``app`` whose response bodies are closed however the connection ends.

    Werkzeug's development server closes a body only if nothing fails first: when the
    browser resets the connection while a file is being sent (a page closed at the end of
    a test while a stylesheet is on its way), reading what is left of the request raises,
    the body is never closed, and the open file is a ResourceWarning at teardown.
    The generator's ``finally`` runs when the server closes it or, failing that, when it
    is released; the body is closed once either way.
    """

    def body(iterable) -> Iterator[bytes]:
        try:
            yield from iterable
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()

    def wrapped(environ, start_response):
        return body(app(environ, start_response))

    return wrapped


class Server:
    """A WSGI app served on a free loopback port in a daemon thread."""

    def __init__(self, app: Callable) -> None:
        self.server = make_server("127.0.0.1", 0, closes_its_body(app), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # A short poll interval makes shutdown quick (the default 0.5 s adds up over a suite).
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()


@dataclass
class Emulator:
    url: str
    app: Flask


@dataclass
class LiveShop:
    url: str
    app: Flask
    emulator: Emulator

    def with_default_stripe_retries(self) -> None:
        """The SDK's network retries at the shop's default (the tests turn them off), for
        requests that reach Stripe at the same moment: Stripe answers 409 to a create whose
        idempotency key another request is still using, and the retries wait for that
        one's answer."""
        from storefront.config import DEFAULTS

        self.app.config["STRIPE_MAX_NETWORK_RETRIES"] = DEFAULTS["STRIPE_MAX_NETWORK_RETRIES"]

    def order_status(self, public_id: str) -> str | None:
        from storefront.models import Order

        with self.app.app_context():
            order = db.session.scalar(db.select(Order).where(Order.public_id == public_id))
            return order.status if order else None


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05):
    """Poll until ``predicate()`` is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


def wait_in_page(page, predicate: Callable[[], object], timeout: float = 15.0):
    """Like ``wait_until``, for state that Playwright's own callbacks fill in (a route
    handler holding a request, a ``page.on`` listener): those run only while the test is in
    a Playwright call, so this waits through the page instead of ``time.sleep``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        page.wait_for_timeout(20)


def hold_webhooks(shop: LiveShop) -> None:
    """The emulator holds every webhook for the shop back until ``deliver_webhooks``: a
    test of a waiting state decides when the event comes, instead of racing a fixed delay."""
    from storefront import payments

    with shop.app.app_context():
        sc = payments.client()
        [endpoint] = sc.v1.webhook_endpoints.list().data
        sc.v1.webhook_endpoints.update(
            endpoint.id,
            params={"metadata": {"emulator_fault": "late", "emulator_delay_ms": "3600000"}},
        )


def deliver_webhooks(shop: LiveShop) -> None:
    """Send every webhook the emulator holds now, and wait until none is pending."""
    import json
    import urllib.request

    request = urllib.request.Request(
        shop.emulator.url + "/_emulator/flush_webhooks",
        data=b"timeout=30",
        headers={"Authorization": "Bearer sk_test_emulator"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=40) as response:
        assert json.load(response) == {"pending": 0}


@contextmanager
def served_emulator(db_path: Path, **config) -> Iterator[Emulator]:
    """A new Stripe emulator on ``db_path``, served on a free port until the block ends;
    then its sender and sweeper threads are stopped too (a sweeper watching a Checkout
    Session due to expire in a day looks every second for as long as the process lives,
    and a worker runs hundreds of these)."""
    from stripe_emulator import create_app
    from stripe_emulator.webhooks import stop_delivery

    app = create_app({"EMULATOR_DB": str(db_path), "TESTING": True, **config})
    server = Server(app)
    try:
        yield Emulator(url=server.url, app=app)
    finally:
        server.stop()
        stop_delivery(app)


@pytest.fixture
def emulator(tmp_path) -> Iterator[Emulator]:
    """A fresh Stripe emulator on a free port, with quick webhook retries."""
    with served_emulator(
        tmp_path / "stripe-emulator.sqlite3", EMULATOR_WEBHOOK_RETRY_DELAYS=[0.2, 0.5, 1, 2]
    ) as served:
        yield served


def emulator_config(emulator: Emulator) -> dict:
    return {
        "STRIPE_SECRET_KEY": "sk_test_emulator",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_emulator",
        "STRIPE_API_BASE": emulator.url,
        "STRIPE_JS_URL": emulator.url + "/v3/",
    }


def synced_app(tmp_path: Path, emulator: Emulator, **overrides) -> Flask:
    """The shop against ``emulator`` with its catalog synced to it, as ``sync_catalog``
    leaves both: the two databases are copied from a pair synced once per test process
    (a sync is dozens of API calls; a copy takes milliseconds)."""
    from storefront import create_app
    from tests.conftest import TEST_CONFIG

    template = _synced_template()
    # The fixture's emulator is new and empty: its store becomes the synced one.
    _copy_sqlite(template / "stripe-emulator.sqlite3", Path(emulator.app.config["EMULATOR_DB"]))
    target = tmp_path / "shop.sqlite3"
    _copy_sqlite(template / "shop.sqlite3", target)
    config = dict(TEST_CONFIG, DATABASE_URL=f"sqlite:///{target}", **emulator_config(emulator))
    config.update(overrides)
    return create_app(config)


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's backup: a consistent copy, also of a database in WAL mode or in use."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


_synced: Path | None = None


def _synced_template() -> Path:
    """A seeded shop database and an emulator database it is synced to, made once."""
    global _synced
    if _synced is None:
        from tests.conftest import make_app

        folder = Path(tempfile.mkdtemp(prefix="storefront-test-synced-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        with served_emulator(folder / "stripe-emulator.sqlite3") as emulator:
            app = make_app(folder, **emulator_config(emulator))
            with app.app_context():
                sync_catalog(echo=lambda *_: None)
                db.session.remove()
                db.engine.dispose()
        _synced = folder
    return _synced


@pytest.fixture
def stripe_app(tmp_path, emulator) -> Iterator[Flask]:
    """The shop (not served) configured against the emulator, catalog synced to it."""
    app = synced_app(tmp_path, emulator)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def live_shop(tmp_path, emulator) -> Iterator[LiveShop]:
    """The shop served over HTTP against the emulator, with a registered webhook endpoint."""
    from storefront import payments

    app = synced_app(tmp_path, emulator, WTF_CSRF_ENABLED=True)
    server = Server(app)
    with app.app_context():
        secret = payments.register_webhook_endpoint(server.url + "/webhooks/stripe")
    app.config["STRIPE_WEBHOOK_SECRET"] = secret
    yield LiveShop(url=server.url, app=app, emulator=emulator)
    server.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# --------------------------------------------------------------------------- browser


def chromium_path() -> str | None:
    """Debian's Chromium headless shell (or $CHROMIUM_PATH), else its full Chromium; None
    lets Playwright use its own build. The headless shell renders the same pages with the
    same engine, without the desktop browser's parts (profile services, autofill, tab
    machinery): a page load there costs a third of the full browser's CPU, and Chromium
    was most of the test suite's."""
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit
    for name in ("chromium-headless-shell", "chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # expect() waits as long as an action does (``page``'s 15 s), not Playwright's default
    # 5 s: several checks follow a step of many round trips (Pay: the elements' messages,
    # the shop's Pay request, the intent, the confirm, the 3-D Secure frame), which took
    # over 5 s in a stress run with other browser tests on the same 2 cores.
    expect.set_options(timeout=15_000)
    with sync_playwright() as p:
        # More flags, to try one (``python -m bench.side_by_side --b
        # STOREFRONT_TEST_CHROMIUM_ARGS=--some-flag``).
        extra = os.environ.get("STOREFRONT_TEST_CHROMIUM_ARGS", "").split()
        browser = p.chromium.launch(executable_path=chromium_path(), args=[*CHROMIUM_ARGS, *extra])
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def page(browser, request):
    """A fresh browser context and page; a screenshot is saved when the test fails."""
    # Reduced motion, which the shop and the emulator honour (no spinning): otherwise
    # Chromium draws 60 frames a second, ~0.1 CPU-s per second, while a test waits on a
    # Processing page.
    context = browser.new_context(viewport={"width": 1200, "height": 900}, reduced_motion="reduce")
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
