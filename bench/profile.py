"""Profile one shop request in-process with pyinstrument (or cProfile).

    python -m bench.profile /                       # the catalog, 300 times
    python -m bench.profile /products/colombia-huila -n 500
    python -m bench.profile webhook                 # signed customer.updated events
    python -m bench.profile / --cprofile            # cProfile's top functions instead

Production settings (CSRF on, no debug, INFO logging to a discarded stream) on a fresh
SQLite database in a temporary folder; no emulator is needed for these requests. Prints
the mean time per request, then the profile.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import signed_events  # noqa: E402
from bench.shop import SECRET_KEY  # noqa: E402

WEBHOOK_SECRET = "whsec_profile"
os.environ.setdefault("PYINSTRUMENT_IGNORE_OVERHEAD_WARNING", "1")


def make_shop(tmp: Path):
    from flask_migrate import upgrade

    from storefront import create_app
    from storefront.catalog import load_catalog_file, seed_catalog

    app = create_app(
        {
            "SECRET_KEY": SECRET_KEY,
            "STRIPE_SECRET_KEY": "sk_test_emulator",
            "STRIPE_PUBLISHABLE_KEY": "pk_test_emulator",
            "STRIPE_API_BASE": "http://127.0.0.1:9",
            "STRIPE_JS_URL": "http://127.0.0.1:9/v3/",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SHOP_BASE_URL": "http://localhost",  # the test client's host
            "DATABASE_URL": f"sqlite:///{tmp / 'shop.sqlite3'}",
            "MAIL_ENABLED": False,
            "RATELIMIT_ENABLED": False,  # as in bench/shop.py: one client, many requests
        }
    )
    with app.app_context():
        upgrade()
        seed_catalog(load_catalog_file())
    # Production logs at INFO; keep the cost, drop the output.
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(io.StringIO())
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="a path to GET, 'webhook', or 'hello' (the baseline)")
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--sort", default="cumulative", help="cProfile's sort (e.g. tottime)")
    args = parser.parse_args()
    if args.target == "hello":  # the bare baseline, for scale
        from bench.baselines import hello

        app, args.target = hello(), "/"
    else:
        app = make_shop(Path(tempfile.mkdtemp(prefix="storefront-profile-")))
    client = app.test_client()
    if args.target == "webhook":
        events = signed_events(WEBHOOK_SECRET, "profile", 2 * args.n + 20)

        def request(i: int) -> None:
            signature, body = events[i]
            response = client.post(
                "/webhooks/stripe",
                data=body,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            )
            assert response.status_code == 200, response.get_data(as_text=True)
    else:

        def request(i: int) -> None:
            # A new visitor each time (no cookie), as wrk is.
            client._cookies.clear()
            response = client.get(args.target)
            assert response.status_code == 200, response.status_code

    for i in range(20):  # warm-up: imports, template compilation, connections
        request(2 * args.n + i)
    if args.cprofile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for i in range(args.n):
            request(i)
        profiler.disable()
        elapsed = time.perf_counter() - started
        stats = pstats.Stats(profiler)
        # Deterministic, unlike any time on a shared machine: Python calls per request.
        print(
            f"{args.target}: {stats.total_calls / args.n:.0f} function calls and "
            f"{elapsed / args.n * 1000:.2f} ms per request (under cProfile)"
        )
        stats.sort_stats(args.sort).print_stats(40)
        return 0
    from pyinstrument import Profiler

    # CPU time per request, the best of 5 batches: on a busy machine the wall clock
    # mostly measures the other processes.
    batch = max(1, args.n // 5)
    cpu_ms = []
    for b in range(5):
        cpu = time.process_time()
        for i in range(b * batch, (b + 1) * batch):
            request(i)
        cpu_ms.append((time.process_time() - cpu) / batch * 1000)
    print(
        f"{args.target}: {min(cpu_ms):.2f} ms CPU per request (best of 5 batches of {batch}; "
        f"median {sorted(cpu_ms)[2]:.2f})"
    )
    profiler = Profiler(interval=0.0005)
    with profiler:
        for i in range(args.n):
            request(args.n + i)  # new events: the timed loop above used 0..n-1
    print(
        profiler.output_text(
            unicode=True, color=False, show_all=bool(os.environ.get("PROFILE_ALL"))
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
