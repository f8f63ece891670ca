"""Profile one shop request in-process, and compare its CPU cost with its bare baseline.

    python -m bench.profile /                       # the catalog: CPU ms, ratio, pyinstrument
    python -m bench.profile /products/colombia-huila -n 500
    python -m bench.profile webhook                 # signed customer.updated events
    python -m bench.profile webhook --cprofile      # cProfile (CPU time) instead
    python -m bench.profile webhook --no-profile    # only the figures

Production settings (CSRF on, no debug, INFO logging to a file in the temporary folder) on a fresh
SQLite database in a temporary folder (removed at the end); no emulator is needed for
these requests. Each request is the WSGI call gunicorn makes (``app(environ,
start_response)`` on an environ built beforehand), so neither the test client's work nor
the HTTP parsing, the same for both sides, is counted.

It prints the CPU time per request of the shop and of the bare baseline ``make bench``
compares it with ("hello" for pages, verify + INSERT for the webhook), measured in
alternating batches in one process, and their ratio: on a machine shared with other work
the wall clock mostly measures the others, and even CPU times drift by tens of percent
from minute to minute, but the ratio of batches taken side by side holds much better.
It is the in-process side of ``make bench``'s throughput ratio (which adds the server's
and the load generator's cost to both sides, and the waits between workers).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from werkzeug.test import EnvironBuilder  # noqa: E402

from bench.run import signed_events  # noqa: E402
from bench.shop import SECRET_KEY  # noqa: E402

WEBHOOK_SECRET = "whsec_profile"
os.environ.setdefault("PYINSTRUMENT_IGNORE_OVERHEAD_WARNING", "1")
BATCHES = 8


def make_shop(tmp: Path):
    from flask_migrate import upgrade

    from storefront import create_app
    from storefront.catalog import load_catalog_file, load_shipping_rates, seed_catalog
    from storefront.shipping import seed_shipping_rates

    app = create_app(
        {
            "SECRET_KEY": SECRET_KEY,
            "STRIPE_SECRET_KEY": "sk_test_emulator",
            "STRIPE_PUBLISHABLE_KEY": "pk_test_emulator",
            "STRIPE_API_BASE": "http://127.0.0.1:9",
            "STRIPE_JS_URL": "http://127.0.0.1:9/v3/",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SHOP_BASE_URL": "http://localhost",
            "DATABASE_URL": f"sqlite:///{tmp / 'shop.sqlite3'}",
            "MAIL_ENABLED": False,
            "RATELIMIT_ENABLED": False,  # as in bench/shop.py: one client, many requests
        }
    )
    with app.app_context():
        upgrade()
        seed_catalog(load_catalog_file())
        seed_shipping_rates(load_shipping_rates())  # as `flask catalog seed`
    # Production logs at INFO to a file (gunicorn's stderr): keep the cost, with the write
    # of each line, not the output. Alembic's logging setup (in ``upgrade``) turned the
    # root logger down to WARNING, which silenced the webhook's per-event INFO line here.
    logging.getLogger().setLevel(app.config["LOG_LEVEL"])
    log_file = (tmp / "shop.log").open("w")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file)
    return app


def requests_for(target: str, count: int, prefix: str) -> list[dict]:
    """``count`` WSGI environs: GETs of ``target`` from a new visitor (no cookie, as
    wrk), or each a new signed event for ``webhook``."""
    if target != "webhook":
        return [EnvironBuilder(path=target, base_url="http://localhost").get_environ()] * count
    return [
        EnvironBuilder(
            path="/webhooks/stripe",
            method="POST",
            data=body.encode(),
            base_url="http://localhost",
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        ).get_environ()
        for signature, body in signed_events(WEBHOOK_SECRET, prefix, count)
    ]


def caller(app) -> Callable[[dict], None]:
    def call(environ: dict) -> None:
        environ = dict(environ)
        if "wsgi.input" in environ:
            environ["wsgi.input"] = io.BytesIO(environ["bench.body"])
        status: list[str] = []
        body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        assert status and status[0].startswith("200"), (status, body[:300])

    return call


def with_bodies(environs: list[dict]) -> list[dict]:
    """Keep each POST body so every call gets a fresh input stream."""
    for environ in environs:
        stream = environ.get("wsgi.input")
        if stream is not None and "bench.body" not in environ:
            environ["bench.body"] = stream.read()
    return environs


def baseline(target: str, tmp: Path):
    from bench.baselines import hello, ingest

    if target != "webhook":
        return hello(), "/"
    os.environ["BENCH_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    os.environ["BENCH_BARE_DB"] = str(tmp / "bare.sqlite3")
    return ingest(), "webhook"


def cpu_ms(call, environs: list[dict]) -> float:
    started = time.process_time()
    for environ in environs:
        call(environ)
    return (time.process_time() - started) / len(environs) * 1000


def compare(shop_call, bare_call, shop_reqs, bare_reqs, n: int) -> tuple[float, float]:
    """CPU ms per request, the best of BATCHES alternating batches each: (shop, bare)."""
    shop_ms, bare_ms = [], []
    for b in range(BATCHES):
        bare_ms.append(cpu_ms(bare_call, bare_reqs[b * n : (b + 1) * n]))
        shop_ms.append(cpu_ms(shop_call, shop_reqs[b * n : (b + 1) * n]))
    ratios = sorted(b / s for s, b in zip(shop_ms, bare_ms, strict=True))
    print(
        f"shop {min(shop_ms):.3f} ms CPU per request, bare {min(bare_ms):.3f} ms "
        f"(best of {BATCHES} alternating batches of {n}); "
        f"in-process ratio bare/shop {min(bare_ms) / min(shop_ms):.2f} "
        f"(per batch pair: median {statistics.median(ratios):.2f})"
    )
    return min(shop_ms), min(bare_ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="a path to GET, or 'webhook'")
    parser.add_argument("-n", type=int, default=200, help="requests per batch and profile")
    parser.add_argument("--cprofile", action="store_true", help="cProfile (CPU time)")
    parser.add_argument("--sort", default="cumulative", help="cProfile's sort (e.g. tottime)")
    parser.add_argument("--no-profile", action="store_true", help="only the CPU figures")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="storefront-profile-"))
    try:
        return run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> int:
    n = args.n
    shop = caller(make_shop(tmp))
    bare_app, bare_target = baseline(args.target, tmp)
    bare = caller(bare_app)
    # Every event is new: warm-up, the batches, and the profile each take their own.
    total = 20 + BATCHES * n + n
    shop_reqs = with_bodies(requests_for(args.target, total, "shop"))
    bare_reqs = with_bodies(requests_for(bare_target, 20 + BATCHES * n, "bare"))
    for environ in shop_reqs[:20]:  # imports, templates, connections
        shop(environ)
    for environ in bare_reqs[:20]:
        bare(environ)
    compare(shop, bare, shop_reqs[20:], bare_reqs[20:], n)
    if args.no_profile:
        return 0
    profiled = shop_reqs[20 + BATCHES * n :]
    if args.cprofile:
        import cProfile
        import pstats

        # CPU time, not the wall clock (which counts the machine's other processes).
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for environ in profiled:
            shop(environ)
        profiler.disable()
        stats = pstats.Stats(profiler)
        # Deterministic, unlike any time on a shared machine: Python calls per request.
        print(f"{args.target}: {stats.total_calls / n:.0f} function calls per request")
        stats.sort_stats(args.sort).print_stats(int(os.environ.get("PROFILE_LINES", 40)))
        return 0
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    with profiler:
        for environ in profiled:
            shop(environ)
    print(
        profiler.output_text(
            unicode=True, color=False, show_all=bool(os.environ.get("PROFILE_ALL"))
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
