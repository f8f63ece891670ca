"""Command-line commands: ``flask serve``, ``flask catalog ...`` and friends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from werkzeug.serving import run_simple

EMULATOR_KEYS = {
    "STRIPE_SECRET_KEY": "sk_test_emulator",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_emulator",
}


def init_app(app: Flask) -> None:
    from .catalog import catalog_cli
    from .outbox import outbox_cli
    from .stripe_cli import stripe_cli

    app.cli.add_command(catalog_cli)
    app.cli.add_command(outbox_cli)
    app.cli.add_command(stripe_cli)
    app.cli.add_command(serve_command)


def wait_for(url: str, timeout: float = 15.0) -> None:
    """Poll ``url`` until it answers 200, or raise ClickException."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise click.ClickException(f"{url} did not come up within {timeout:.0f}s")


def start_emulator(
    port: int, instance_path: str, business_name: str | None = None
) -> subprocess.Popen:
    """Start ``python -m stripe_emulator`` as a child process (never imported here); its hosted
    page shows ``business_name`` (the shop's name) as Stripe shows the account's."""
    import socket

    in_use = f"port {port} is already in use; stop what runs there or pass --emulator-port"
    # Whatever holds the port would pass the health check below in the emulator's place.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise click.ClickException(f"Cannot start the Stripe emulator: {in_use}") from None
    db_path = os.path.join(instance_path, "stripe-emulator.sqlite3")
    command = [sys.executable, "-m", "stripe_emulator", "--port", str(port), "--db", db_path]
    command += ["--quiet"] + (["--business-name", business_name] if business_name else [])
    proc = subprocess.Popen(command)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
    except click.ClickException:
        proc.terminate()
        raise
    if proc.poll() is not None:
        raise click.ClickException(
            f"The Stripe emulator exited at start-up (code {proc.returncode}); {in_use}"
        )
    return proc


def start_mail(shop_url: str) -> tuple[Any, subprocess.Popen | None]:
    """The mail dispatcher (``flask outbox send --loop``) as a child process, sending to
    MAIL_SERVER when it is set, else to a development sink (``storefront.devmail``)
    started here; returns (sink or None, dispatcher or None)."""
    config = current_app.config
    if not config["MAIL_ENABLED"]:
        click.echo("MAIL_ENABLED=false: mail stays in the outbox (no dispatcher).")
        return None, None
    env = dict(os.environ)
    sink = None
    if config.get("MAIL_SERVER"):
        click.echo(f"Mail: sent through {config['MAIL_SERVER']}:{config['MAIL_PORT']}")
    else:
        from .devmail import Sink, mail_dir

        sink = Sink(mail_dir(current_app.instance_path))
        # Only the dispatcher's settings: explicit ones (.env, environment) win, above.
        env.update(
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=str(sink.port),
            MAIL_SECURITY="none",
            MAIL_USERNAME="",
            MAIL_PASSWORD="",
        )
        click.echo(f"Mail: a local sink on 127.0.0.1:{sink.port}; read it at {shop_url}/dev/mail")
    command = [sys.executable, "-m", "flask", "--app", "storefront", "outbox", "send"]
    dispatcher = subprocess.Popen([*command, "--loop", "--interval", "1"], env=env)
    return sink, dispatcher


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--emulator-port", default=12111, show_default=True)
@with_appcontext
def serve_command(host: str, port: int, emulator_port: int) -> None:
    """Serve the shop; without STRIPE_SECRET_KEY, start the Stripe emulator beside it.

    Against the emulator it also syncs the catalog to it and registers a webhook
    endpoint pointing at this shop, through the same API calls a deploy makes
    against Stripe. The mail dispatcher runs beside the shop too; without MAIL_SERVER it
    sends to a local SMTP sink whose mail /dev/mail shows. Ctrl-C stops everything.
    """
    from . import create_app, payments
    from .catalog import sync_catalog
    from .config import is_loopback_host

    if current_app.debug and not is_loopback_host(host):
        # Werkzeug's debugger runs code for whoever reaches it; dev sign-in links too.
        raise click.ClickException(
            f"Refusing to serve in debug mode on {host}: use 127.0.0.1, or run without "
            "FLASK_DEBUG behind gunicorn"
        )

    # A plain `kill` should stop the emulator too, like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    emulator = sink = dispatcher = None
    if not current_app.config.get("STRIPE_SECRET_KEY"):
        click.echo(f"No STRIPE_SECRET_KEY: starting the Stripe emulator on port {emulator_port}")
        emulator = start_emulator(
            emulator_port, current_app.instance_path, current_app.config["SHOP_NAME"]
        )
        base = f"http://127.0.0.1:{emulator_port}"
        os.environ.update(EMULATOR_KEYS)
        os.environ["STRIPE_API_BASE"] = base
        os.environ["STRIPE_JS_URL"] = f"{base}/v3/"
    try:
        app = create_app()
        with app.app_context():
            if emulator is not None:
                sync_catalog(echo=click.echo)
                secret = payments.register_webhook_endpoint(f"http://{host}:{port}/webhooks/stripe")
                app.config["STRIPE_WEBHOOK_SECRET"] = secret
                click.echo("Webhook endpoint registered with the emulator.")
        sink, dispatcher = start_mail(f"http://{host}:{port}")
        click.echo(f"Shop: http://{host}:{port}")
        # Not app.run(): Flask ignores that inside a `flask` command.
        run_simple(host, port, app, threaded=True, use_debugger=app.debug, use_reloader=False)
    finally:
        for child in (dispatcher, emulator):
            if child is not None:
                child.terminate()
                child.wait(timeout=10)
        if sink is not None:
            sink.stop()
