"""Fernwood Coffee Co.: a Flask + Stripe storefront."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from werkzeug.exceptions import HTTPException, SecurityError

from .config import (
    database_uri,
    debug_problem,
    load_settings,
    production_problem,
    settings_problem,
)
from .extensions import csrf, db, migrate


class Shop(Flask):
    """Flask, with ``ensure_sync``'s answer kept per function. Flask asks whether each
    hook, the view and each teardown is a coroutine function (``inspect``) on every
    request, a dozen times per webhook delivery; for a given function the answer never
    changes. Kept weakly: a function made per request is not kept after it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: WeakKeyDictionary[Callable[..., Any], Callable[..., Any]] = WeakKeyDictionary()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._sync[func]
        except KeyError:
            sync = super().ensure_sync(func)
            self._sync[func] = sync
            return sync
        except TypeError:  # a callable that cannot be weakly referenced
            return super().ensure_sync(func)

    def wsgi_app(self, environ: dict, start_response: Callable[..., Any]) -> Any:
        """A path in ``extensions["wsgi_paths"]`` (the Stripe webhook) is answered by its
        own WSGI app, without Flask's request pipeline; every other path by Flask."""
        own = self.extensions.get("wsgi_paths")
        if own:
            endpoint = own.get(environ.get("PATH_INFO"))
            if endpoint is not None:
                return endpoint(environ, start_response)
        return super().wsgi_app(environ, start_response)


def create_app(test_config: dict[str, Any] | None = None) -> Shop:
    """Create and configure the shop."""
    app = Shop(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(load_settings(app.instance_path))
    if test_config is not None:
        app.config.from_mapping(test_config)
    problem = settings_problem(app.config)  # the settings with test_config on top
    if problem:
        raise SystemExit(f"Refusing to start: {problem}.")
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri(app.config["DATABASE_URL"])
    # A server database's connections can be dropped (a restart, a proxy's idle timeout):
    # each is pinged when taken from the pool. A SQLite file cannot drop a connection, so
    # that round of "SELECT 1" on every request would be pure cost there.
    server_db = not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": server_db})

    if not app.debug and not app.testing:
        problem = production_problem(app.config)
        if problem:
            raise SystemExit(f"Refusing to start in production: {problem}.")
    elif app.debug and not app.testing:
        problem = debug_problem(app.config)
        if problem:
            raise SystemExit(f"Refusing to start in debug mode: {problem}.")

    logging.basicConfig(
        level=app.config["LOG_LEVEL"],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    # The SDK logs every request at INFO; our own log lines carry the ids that matter.
    logging.getLogger("stripe").setLevel(logging.WARNING)
    from .logging_filters import install as install_log_redaction  # before db.init_app

    install_log_redaction(app)

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)
    migrate.init_app(
        app, db, directory=os.path.join(app.root_path, "..", "migrations"), render_as_batch=True
    )
    csrf.init_app(app)
    from . import security
    from .security import wants_json

    security.init_app(app)

    from . import cart, catalog, checkout, cli, orders, pages, payments, webhook_endpoint, webhooks

    payments.init_app(app)
    for module in (catalog, cart, checkout, orders, pages):
        app.register_blueprint(module.bp)
    webhooks.init_app(app)
    webhook_endpoint.init_app(app)  # POST /webhooks/stripe, in front of Flask
    # Stripe Checkout, membership and accounts (they import ``billing``, whose webhook
    # handlers register themselves with ``webhooks.handles``).
    from . import account, admin, hosted_checkout, membership

    for module in (hosted_checkout, membership, account, admin):
        app.register_blueprint(module.bp)
    from . import devmail

    devmail.init_app(app)  # /dev/mail, in debug mode only
    cli.init_app(app)
    from . import card_testing, ratelimits

    ratelimits.init_app(app)  # after the blueprints: it wraps their views
    card_testing.init_app(app, ratelimits.PAYMENT_ENDPOINTS)

    from . import assets, dates, links
    from .money import format_money

    assets.init_app(app)
    dates.init_app(app)

    app.jinja_env.filters["money"] = format_money
    app.jinja_env.globals["url_for"] = links.template_url_for
    app.context_processor(cart.template_context)
    app.context_processor(account.template_context)

    @app.errorhandler(CSRFError)
    def csrf_error(err: CSRFError):
        reason = "Your session expired or the form was stale. Please try again."
        if wants_json():
            # Say which check failed (e.g. "The CSRF token is missing.") to API callers.
            return {"error": f"{reason} ({err.description})"}, 400
        return render_template("errors/400.html", reason=reason), 400

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        if isinstance(err, SecurityError):
            # An untrusted Host: no page, since every link on it would use that host.
            return {"error": "Unknown host."}, 400
        if wants_json():
            return {"error": err.description}, err.code
        template = "errors/404.html" if err.code == 404 else "errors/400.html"
        return render_template(template, reason=err.description, code=err.code), err.code

    return app


# Long enough for any of the shop's write transactions (short: none spans a Stripe call)
# to finish under load; a writer waits this long for the lock before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 15_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Each SQLite connection: WAL (readers never block the writer, nor it them),
    ``synchronous=NORMAL`` (safe with WAL: a power cut may lose the last commits, never
    corrupt the file), a busy timeout, and foreign keys (SQLite ignores them otherwise)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
