"""Run the Stripe emulator: ``python -m stripe_emulator [--port 12111]``."""

from __future__ import annotations

import argparse
import logging
import sys

from werkzeug.serving import run_simple

from . import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stripe_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--db", help="SQLite file (default instance/stripe-emulator.sqlite3)")
    parser.add_argument("--reset", action="store_true", help="forget every object first")
    parser.add_argument("--quiet", action="store_true", help="do not log every request")
    parser.add_argument(
        "--processing-seconds",
        type=float,
        metavar="SECONDS",
        help="card payments confirmed through the PaymentIntents API stay `processing` this "
        "long, then succeed (default: env STRIPE_EMULATOR_PROCESSING_SECONDS, else 0 = at once)",
    )
    parser.add_argument(
        "--business-name",
        metavar="NAME",
        help="the account's business name shown on the hosted Checkout page "
        "(default: env STRIPE_EMULATOR_BUSINESS_NAME)",
    )
    parser.add_argument(
        "--list-params",
        action="store_true",
        help="print the parameters each endpoint implements (the README's table) and exit",
    )
    args = parser.parse_args(argv)
    if args.list_params:
        from . import strict

        # The table is the command's output (for the README), not a log line.
        sys.stdout.write(strict.describe(create_app({"EMULATOR_DB": ":memory:"})))
        return
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    config: dict = {"EMULATOR_DB": args.db} if args.db else {}
    config["EMULATOR_RESET"] = args.reset
    if args.processing_seconds is not None:
        config["EMULATOR_PROCESSING_SECONDS"] = args.processing_seconds
    if args.business_name:
        config["EMULATOR_BUSINESS_NAME"] = args.business_name
    app = create_app(config)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
