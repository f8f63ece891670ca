"""Events API, webhook endpoints and signed webhook delivery.

Every ``core.record_event`` call lands here through ``core.on_event``: for each enabled
endpoint whose ``enabled_events`` match, a delivery row is queued in the emulator's SQLite
file (so a restart resumes what was pending).  One sender thread per endpoint (started on
demand, gone when the endpoint's queue is empty) POSTs the stored event JSON, signed like
Stripe (``Stripe-Signature: t=...,v1=HMAC-SHA256(secret, "{t}.{body}")``), and retries
failures with backoff.  Endpoints are independent; for one endpoint first attempts leave in
event order, while a retry waits for its backoff without holding up later events (as Stripe).

Fault modes for testing receivers (``metadata[emulator_fault]`` on an endpoint, or the
``EMULATOR_WEBHOOK_FAULT`` setting for endpoints without that key; comma-separated):
``duplicate`` sends every event twice, ``shuffle`` collects events for a short window and
sends each batch in random order, ``late`` holds each event back ``emulator_delay_ms``
(default 3000) and ``drop_first`` loses the first attempt of each event (retried per backoff).

The same deliverer runs the emulator's other background work on one more thread, the
sweeper (started on demand, gone when nothing is left to watch): ``core.on_sweep`` functions
such as Checkout Session expiry and settling ``processing`` payments.

Test helpers outside ``/v1``: ``GET /_emulator/deliveries?event=evt_...&endpoint=we_...``
lists the queued deliveries and every attempt; ``POST /_emulator/flush_webhooks`` makes all
pending deliveries due now and waits (``timeout`` seconds, default 10) until none is pending.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import os
import random
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from flask import Blueprint, Flask, after_this_request, current_app, has_request_context, request

from . import core, strict, versions

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/v1")
helpers_bp = Blueprint("webhook_helpers", __name__, url_prefix="/_emulator")

FAULT_MODES = ("duplicate", "shuffle", "late", "drop_first")
DEFAULT_RETRY_DELAYS = [1.0, 2.0, 5.0, 10.0, 30.0]
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
EXTENSION = "stripe_emulator.webhooks"

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    copy INTEGER NOT NULL DEFAULT 0,
    faults TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    sort_key REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_queue
    ON webhook_deliveries (endpoint_id, status, next_attempt_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_event ON webhook_deliveries (event_id);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    dropped INTEGER NOT NULL DEFAULT 0,
    at REAL NOT NULL,
    duration_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS webhook_attempts_event ON webhook_attempts (event_id);
"""

# A sender whose queue is empty stays a moment: the request that queued its rows may not
# have committed them yet when it was woken.
IDLE_LINGER = 0.5
MAX_CONSECUTIVE_ERRORS = 20
# The sweeper looks at least this often (seconds) while it has something to watch, so work
# made due by another process or a direct database edit is not missed for long.
SWEEP_INTERVAL = 1.0


# --------------------------------------------------------------------------- setup


def init_app(app: Flask) -> None:
    """Create the delivery tables, register the test helpers and resume pending deliveries."""
    cfg = app.config
    cfg.setdefault(
        "EMULATOR_WEBHOOK_RETRY_DELAYS",
        os.environ.get("STRIPE_EMULATOR_WEBHOOK_RETRY_DELAYS") or DEFAULT_RETRY_DELAYS,
    )
    cfg.setdefault("EMULATOR_WEBHOOK_TIMEOUT", os.environ.get("STRIPE_EMULATOR_WEBHOOK_TIMEOUT"))
    cfg.setdefault("EMULATOR_WEBHOOK_SEED", os.environ.get("STRIPE_EMULATOR_WEBHOOK_SEED"))
    cfg.setdefault("EMULATOR_WEBHOOK_SHUFFLE_WINDOW", 0.5)
    cfg.setdefault("EMULATOR_WEBHOOK_DELAY_MS", 3000)
    # Fail at start-up on a typo rather than silently delivering without the fault.
    parse_faults(cfg.get("EMULATOR_WEBHOOK_FAULT"))
    retry_delays(cfg)

    conn = core.connect(cfg["EMULATOR_DB"])
    try:
        conn.executescript(SCHEMA)
        if cfg.get("EMULATOR_RESET"):
            conn.executescript("DELETE FROM webhook_deliveries; DELETE FROM webhook_attempts;")
        pending = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT endpoint_id FROM webhook_deliveries WHERE status='pending'"
            )
        ]
    finally:
        conn.close()

    app.register_blueprint(helpers_bp)
    app.after_request(_forget_deliveries_on_reset)
    deliverer = Deliverer(app)
    app.extensions[EXTENSION] = deliverer
    app.extensions[core.SWEEPER_EXTENSION] = deliverer.kick_sweeper
    for endpoint_id in pending:
        deliverer.kick(endpoint_id)
    # Sessions or payments left open by a previous run are due whether or not anyone asks.
    deliverer.kick_sweeper()


def stop_delivery(app: Flask) -> None:
    """Stop the app's sender and sweeper threads (tests; the threads are daemons anyway)."""
    deliverer: Deliverer | None = app.extensions.get(EXTENSION)
    if deliverer is not None:
        deliverer.stop()


def _forget_deliveries_on_reset(response):
    # ``POST /_emulator/reset`` forgets every object; the queue and log go with them.
    if request.path == "/_emulator/reset" and response.status_code == 200:
        with core.transaction() as conn:
            conn.execute("DELETE FROM webhook_deliveries")
            conn.execute("DELETE FROM webhook_attempts")
    return response


# --------------------------------------------------------------------------- config


def parse_faults(value: Any) -> list[str]:
    """``"duplicate,shuffle"`` → ``["duplicate", "shuffle"]``; ``""``/``none``/``off`` → []."""
    if not value:
        return []
    modes = [m.strip().lower() for m in str(value).split(",") if m.strip()]
    modes = [m for m in modes if m not in ("none", "off")]
    unknown = [m for m in modes if m not in FAULT_MODES]
    if unknown:
        raise ValueError(
            f"unknown webhook fault mode(s) {', '.join(unknown)}; use {', '.join(FAULT_MODES)}"
        )
    return sorted(set(modes), key=FAULT_MODES.index)


def retry_delays(cfg: Any) -> list[float]:
    """Seconds to wait before each retry (a list, or a comma-separated string)."""
    value = cfg.get("EMULATOR_WEBHOOK_RETRY_DELAYS", DEFAULT_RETRY_DELAYS)
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    return [float(v) for v in value]


def _timeout(cfg: Any) -> float:
    return float(cfg.get("EMULATOR_WEBHOOK_TIMEOUT") or 10)


def endpoint_faults(endpoint: dict[str, Any], cfg: Any) -> list[str]:
    """An endpoint's ``metadata[emulator_fault]`` if set (``none`` turns faults off), else the
    app-wide ``EMULATOR_WEBHOOK_FAULT``."""
    md = endpoint.get("metadata") or {}
    if "emulator_fault" in md:
        return parse_faults(md["emulator_fault"])
    return parse_faults(cfg.get("EMULATOR_WEBHOOK_FAULT"))


def _delay_seconds(endpoint: dict[str, Any], cfg: Any) -> float:
    md = endpoint.get("metadata") or {}
    try:
        return int(md.get("emulator_delay_ms", cfg.get("EMULATOR_WEBHOOK_DELAY_MS", 3000))) / 1000
    except ValueError:
        return 3.0


# --------------------------------------------------------------------------- events API


@bp.get("/events/<event_id>")
@strict.accepts("EventRetrieveParams", strict.RETRIEVE)
def retrieve_event(event_id: str):
    core.authenticate()
    return core.respond(core.get_or_404(event_id, "event"))


@bp.get("/events")
@strict.accepts("EventListParams", [*strict.LIST, "types", "type", "created", "delivery_success"])
def list_events():
    core.authenticate()
    p = core.params()
    events = core.all_of("event")

    types = p.get("types")
    if isinstance(types, str):
        types = [types]
    if p.get("type"):
        if types:
            raise core.invalid("type", "You may only specify one of these parameters: type, types.")
        types = [p["type"]]
    if types:
        patterns = [_type_pattern(t) for t in types]
        events = [e for e in events if any(pat.fullmatch(e["type"]) for pat in patterns)]

    created = p.get("created")
    if isinstance(created, dict):
        ops = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
        for op, value in created.items():
            if op not in ops:
                raise core.invalid(f"created[{op}]", f"Received unknown parameter: created[{op}]")
            bound = core.to_int(value, f"created[{op}]")
            events = [e for e in events if ops[op](e["created"], bound)]
    elif created not in (None, ""):
        exact = core.to_int(created, "created")
        events = [e for e in events if e["created"] == exact]

    if p.get("delivery_success") not in (None, ""):
        delivered = core.to_bool(p["delivery_success"])
        events = [e for e in events if (e.get("pending_webhooks", 0) == 0) == delivered]
    return core.list_response(events, "/v1/events")


def _type_pattern(value: str) -> re.Pattern[str]:
    # Stripe accepts ``*`` as a wildcard, e.g. ``payment_intent.*``.
    return re.compile(".*".join(re.escape(part) for part in value.split("*")))


# --------------------------------------------------------------------------- endpoints API


def _present_endpoint(obj: dict[str, Any]) -> dict[str, Any]:
    # Like Stripe, the signing secret is only shown in the create response.
    return {k: v for k, v in obj.items() if not k.startswith("_")}


core.register_presenter("webhook_endpoint", _present_endpoint)


@cache
def _known_event_types() -> frozenset[str] | None:
    """Event types the pinned SDK knows (None: SDK not importable, accept any)."""
    try:
        import typing

        from stripe.params import WebhookEndpointCreateParams
    except ImportError:  # the emulator does not strictly need the SDK
        return None
    hint = WebhookEndpointCreateParams.__annotations__["enabled_events"]
    (literal,) = typing.get_args(hint)
    return frozenset(typing.get_args(literal))


def _enabled_events(p: dict[str, Any]) -> list[str]:
    value = p.get("enabled_events")
    if isinstance(value, str):
        value = [value]
    if not value or not isinstance(value, list):
        raise core.missing("enabled_events")
    known = _known_event_types()
    for i, name in enumerate(value):
        valid = name in known if known is not None else bool(re.fullmatch(r"\*|[a-z0-9_.]+", name))
        if not valid:
            raise core.invalid(
                f"enabled_events[{i}]", f"Invalid enabled_events[{i}]: unknown event {name!r}."
            )
    return list(dict.fromkeys(value))


def _url(p: dict[str, Any]) -> str:
    url = p.get("url")
    if not url:
        raise core.missing("url")
    if not re.match(r"https?://[^/\s]+", str(url)):
        raise core.invalid("url", "Invalid URL: URL must be publicly accessible.")
    return str(url)


def _checked_metadata(p: dict[str, Any], current: dict[str, str] | None = None) -> dict[str, str]:
    md = core.metadata_from(p, current)
    try:
        parse_faults(md.get("emulator_fault"))
    except ValueError as exc:
        raise core.invalid("metadata[emulator_fault]", str(exc)) from None
    if "emulator_delay_ms" in md and not md["emulator_delay_ms"].isdigit():
        raise core.invalid("metadata[emulator_delay_ms]", "Must be a whole number of ms.")
    return md


@bp.post("/webhook_endpoints")
@strict.accepts(
    "WebhookEndpointCreateParams",
    ["url", "enabled_events", "api_version", "description", "metadata", "expand"],
)
def create_endpoint():
    core.authenticate()
    p = core.params()
    url = _url(p)
    events = _enabled_events(p)
    endpoint = core.base_object(
        "we",
        "webhook_endpoint",
        api_version=versions.check(p["api_version"], "api_version")
        if p.get("api_version")
        else None,
        application=None,
        description=p.get("description") or None,
        enabled_events=events,
        metadata=_checked_metadata(p),
        status="enabled",
        url=url,
        _secret="whsec_" + secrets.token_hex(16),
    )
    core.save(endpoint)
    log.info("webhook endpoint %s created for %s", endpoint["id"], url)
    body = _present_endpoint(endpoint)
    body["secret"] = endpoint["_secret"]
    return core.respond(body)


@bp.get("/webhook_endpoints/<endpoint_id>")
@strict.accepts("WebhookEndpointRetrieveParams", strict.RETRIEVE)
def retrieve_endpoint(endpoint_id: str):
    core.authenticate()
    return core.respond(core.get_or_404(endpoint_id, "webhook_endpoint"))


@bp.get("/webhook_endpoints")
@strict.accepts("WebhookEndpointListParams", strict.LIST)
def list_endpoints():
    core.authenticate()
    return core.list_response(core.all_of("webhook_endpoint"), "/v1/webhook_endpoints")


@bp.post("/webhook_endpoints/<endpoint_id>")
@strict.accepts(
    "WebhookEndpointUpdateParams",
    ["url", "enabled_events", "description", "metadata", "disabled", "expand"],
)
def update_endpoint(endpoint_id: str):
    core.authenticate()
    p = core.params()
    with core.transaction():
        endpoint = core.get_or_404(endpoint_id, "webhook_endpoint")
        if "url" in p:
            endpoint["url"] = _url(p)
        if "enabled_events" in p:
            endpoint["enabled_events"] = _enabled_events(p)
        if "description" in p:
            endpoint["description"] = p["description"] or None
        if "metadata" in p:
            endpoint["metadata"] = _checked_metadata(p, endpoint["metadata"])
        if "disabled" in p:
            endpoint["status"] = "disabled" if core.to_bool(p["disabled"]) else "enabled"
        core.save(endpoint)
    return core.respond(endpoint)


@bp.delete("/webhook_endpoints/<endpoint_id>")
@strict.accepts("WebhookEndpointDeleteParams")
def delete_endpoint(endpoint_id: str):
    core.authenticate()
    with core.transaction() as conn:
        core.get_or_404(endpoint_id, "webhook_endpoint")
        core.delete(endpoint_id)
        event_ids = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT event_id FROM webhook_deliveries WHERE endpoint_id=? "
                "AND status='pending'",
                (endpoint_id,),
            )
        ]
        conn.execute(
            "UPDATE webhook_deliveries SET status='skipped' WHERE endpoint_id=? "
            "AND status='pending'",
            (endpoint_id,),
        )
        for event_id in event_ids:
            _refresh_pending_webhooks(conn, event_id)
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


# --------------------------------------------------------------------------- queueing


def _matches(endpoint: dict[str, Any], event_type: str) -> bool:
    events = endpoint.get("enabled_events") or []
    return "*" in events or event_type in events


def _queue_event(event: dict[str, Any]) -> None:
    """``core.on_event`` listener: queue the event for every matching enabled endpoint."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    deliverer: Deliverer | None = app.extensions.get(EXTENSION)
    endpoints = [
        e
        for e in core.all_of("webhook_endpoint")
        if e.get("status") == "enabled" and _matches(e, event["type"])
    ]
    if not endpoints:
        return
    now = time.time()
    window = float(app.config.get("EMULATOR_WEBHOOK_SHUFFLE_WINDOW") or 0.5)
    with core.transaction() as conn:
        for endpoint in endpoints:
            faults = endpoint_faults(endpoint, app.config)
            due = now + (_delay_seconds(endpoint, app.config) if "late" in faults else 0)
            shuffled = "shuffle" in faults
            if shuffled:
                # Join the endpoint's open batch, or open one that leaves after the window.
                row = conn.execute(
                    "SELECT MAX(next_attempt_at) FROM webhook_deliveries WHERE endpoint_id=? "
                    "AND status='pending' AND attempts=0 AND sort_key>0 AND next_attempt_at>?",
                    (endpoint["id"], due),
                ).fetchone()
                due = row[0] if row[0] is not None and row[0] <= due + window else due + window
            for copy in range(2 if "duplicate" in faults else 1):
                sort_key = _random(deliverer).random() + 1e-9 if shuffled else 0.0
                conn.execute(
                    "INSERT INTO webhook_deliveries (event_id, endpoint_id, copy, faults, "
                    "next_attempt_at, sort_key, created) VALUES (?,?,?,?,?,?,?)",
                    (event["id"], endpoint["id"], copy, ",".join(faults), due, sort_key, now),
                )
        event["pending_webhooks"] = len(endpoints)
        core.save(event)
    log.info("event %s (%s) queued for %d endpoint(s)", event["id"], event["type"], len(endpoints))
    if deliverer is None:
        return
    ids = [e["id"] for e in endpoints]
    for endpoint_id in ids:
        deliverer.kick(endpoint_id)
    if has_request_context():
        # Wake the senders again once the request's transaction has surely committed.
        @after_this_request
        def _kick_after(response):
            for endpoint_id in ids:
                deliverer.kick(endpoint_id)
            return response


_fallback_rng = random.Random()


def _random(deliverer: Deliverer | None) -> random.Random:
    return deliverer.rng if deliverer is not None else _fallback_rng


core.on_event(_queue_event)


# --------------------------------------------------------------------------- delivery


@dataclass
class _Sender:
    thread: threading.Thread
    wake: threading.Event = field(default_factory=threading.Event)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # Stripe counts a redirect as a failed delivery; so do we.
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        return None


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def sign(secret: str, payload: bytes, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value for a payload."""
    signed = str(timestamp).encode() + b"." + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class Deliverer:
    """One app's background threads: a webhook sender per endpoint while it has pending
    deliveries, and one sweeper running ``core.on_sweep`` work while any is left."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.senders: dict[str, _Sender] = {}
        self.sweeper: _Sender | None = None
        self.stopped = False
        seed = app.config.get("EMULATOR_WEBHOOK_SEED")
        self.rng = random.Random(int(seed)) if seed not in (None, "") else random.Random()

    def kick(self, endpoint_id: str) -> None:
        """Wake (or start) the endpoint's sender."""
        with self.lock:
            if self.stopped:
                return
            sender = self.senders.get(endpoint_id)
            if sender is None:
                thread = threading.Thread(
                    target=self._run,
                    args=(endpoint_id,),
                    name=f"webhooks-{endpoint_id}",
                    daemon=True,
                )
                sender = self.senders[endpoint_id] = _Sender(thread)
                thread.start()
            sender.wake.set()

    def kick_all(self) -> None:
        rows = core.db().execute(
            "SELECT DISTINCT endpoint_id FROM webhook_deliveries WHERE status='pending'"
        )
        for (endpoint_id,) in rows.fetchall():
            self.kick(endpoint_id)

    def kick_sweeper(self) -> None:
        """Wake (or start) the sweeper thread."""
        with self.lock:
            if self.stopped:
                return
            if self.sweeper is None:
                thread = threading.Thread(target=self._sweep, name="emulator-sweeper", daemon=True)
                self.sweeper = _Sender(thread)
                thread.start()
            self.sweeper.wake.set()

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            senders = list(self.senders.values())
            if self.sweeper is not None:
                senders.append(self.sweeper)
        for sender in senders:
            sender.wake.set()
        for sender in senders:
            if sender.thread is not threading.current_thread():
                sender.thread.join(timeout=5)

    # ------------------------------------------------------------------ sender thread

    def _run(self, endpoint_id: str) -> None:
        with self.lock:
            wake = self.senders[endpoint_id].wake
        errors = 0
        lingered = False
        try:
            with self.app.app_context():
                while not self.stopped:
                    wake.clear()
                    try:
                        row = self._next(endpoint_id)
                        if row is None:
                            if not lingered:
                                # Look once more after a pause before leaving.
                                lingered = True
                                wake.wait(IDLE_LINGER)
                                continue
                            with self.lock:
                                # Decide and deregister atomically, so no kick is lost.
                                if not wake.is_set():
                                    self.senders.pop(endpoint_id, None)
                                    return
                            continue
                        lingered = False
                        wait = row["next_attempt_at"] - time.time()
                        if wait > 0:
                            wake.wait(wait)
                            continue
                        self._attempt(row)
                        errors = 0
                    except Exception:
                        # Keep delivering: one bad row or a locked database must not stop it.
                        errors += 1
                        log.exception("webhook sender for %s failed", endpoint_id)
                        if errors >= MAX_CONSECUTIVE_ERRORS:
                            return
                        wake.wait(0.5)
        finally:
            with self.lock:
                sender = self.senders.get(endpoint_id)
                if sender is not None and sender.wake is wake:
                    del self.senders[endpoint_id]
            _close_thread_connections()

    # ------------------------------------------------------------------ sweeper thread

    def _sweep(self) -> None:
        with self.lock:
            me = self.sweeper
        assert me is not None
        interval = float(self.app.config.get("EMULATOR_SWEEP_INTERVAL") or SWEEP_INTERVAL)
        lingered = False
        try:
            with self.app.app_context():
                while not self.stopped:
                    me.wake.clear()
                    due: list[float] = []
                    for sweep in core.sweeps():
                        try:
                            after = sweep()
                        except Exception:
                            # Try again next round: a locked database must not stop the sweeper.
                            log.exception("background sweep %s failed", sweep.__name__)
                            after = interval
                        if after is not None:
                            due.append(after)
                    if due:
                        lingered = False
                        me.wake.wait(min(max(min(due), 0.05), interval))
                        continue
                    if not lingered:
                        # Look once more after a pause: a kick may precede its commit.
                        lingered = True
                        me.wake.wait(IDLE_LINGER)
                        continue
                    with self.lock:
                        if not me.wake.is_set():
                            self.sweeper = None
                            return
        finally:
            with self.lock:
                if self.sweeper is me:
                    self.sweeper = None
            _close_thread_connections()

    def _next(self, endpoint_id: str) -> dict[str, Any] | None:
        cur = core.db().execute(
            "SELECT id, event_id, endpoint_id, copy, faults, attempts, next_attempt_at "
            "FROM webhook_deliveries WHERE endpoint_id=? AND status='pending' "
            "ORDER BY next_attempt_at, sort_key, id LIMIT 1",
            (endpoint_id,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cur.description], row, strict=True))

    def _attempt(self, row: dict[str, Any]) -> None:
        cfg = self.app.config
        endpoint = core.get(row["endpoint_id"], "webhook_endpoint")
        stored = (
            core.db()
            .execute("SELECT data FROM objects WHERE id=? AND type='event'", (row["event_id"],))
            .fetchone()
        )
        if endpoint is None or stored is None or endpoint.get("status") != "enabled":
            self._finish(row, "skipped")
            return
        attempt = row["attempts"] + 1
        faults = row["faults"].split(",") if row["faults"] else []
        started = time.time()
        if "drop_first" in faults and attempt == 1:
            status, error, dropped = None, "dropped by fault mode drop_first", True
        else:
            # The stored event JSON, or the event in the endpoint's own API version; these
            # same bytes are signed.
            payload = stored[0].encode()
            version = endpoint.get("api_version")
            if version and version != versions.PINNED:
                event = versions.render_event(json.loads(stored[0]), version)
                payload = json.dumps(event).encode()
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Stripe-Signature": sign(endpoint["_secret"], payload, int(time.time())),
            }
            status, error = _post(endpoint["url"], payload, headers, _timeout(cfg))
            dropped = False
        ok = status is not None and 200 <= status < 300
        log.info(
            "webhook %s -> %s attempt %d: %s",
            row["event_id"],
            row["endpoint_id"],
            attempt,
            status if status is not None else error,
        )
        delays = retry_delays(cfg)
        with core.transaction() as conn:
            conn.execute(
                "INSERT INTO webhook_attempts (delivery_id, event_id, endpoint_id, attempt, "
                "status_code, error, dropped, at, duration_ms) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    row["id"],
                    row["event_id"],
                    row["endpoint_id"],
                    attempt,
                    status,
                    error,
                    int(dropped),
                    started,
                    int((time.time() - started) * 1000),
                ),
            )
            if ok:
                self._finish(row, "succeeded", attempts=attempt)
            elif attempt <= len(delays):
                conn.execute(
                    "UPDATE webhook_deliveries SET attempts=?, next_attempt_at=? WHERE id=?",
                    (attempt, time.time() + delays[attempt - 1], row["id"]),
                )
            else:
                log.warning(
                    "webhook %s -> %s: giving up after %d attempts",
                    row["event_id"],
                    row["endpoint_id"],
                    attempt,
                )
                self._finish(row, "failed", attempts=attempt)

    def _finish(self, row: dict[str, Any], status: str, attempts: int | None = None) -> None:
        with core.transaction() as conn:
            conn.execute(
                "UPDATE webhook_deliveries SET status=?, attempts=? WHERE id=?",
                (status, row["attempts"] if attempts is None else attempts, row["id"]),
            )
            _refresh_pending_webhooks(conn, row["event_id"])


def _refresh_pending_webhooks(conn: Any, event_id: str) -> None:
    """``pending_webhooks``: endpoints the event has not yet reached (Stripe keeps counting
    an endpoint whose deliveries failed for good)."""
    (count,) = conn.execute(
        "SELECT COUNT(DISTINCT endpoint_id) FROM webhook_deliveries WHERE event_id=? "
        "AND status IN ('pending', 'failed') AND endpoint_id NOT IN (SELECT endpoint_id "
        "FROM webhook_deliveries WHERE event_id=? AND status='succeeded')",
        (event_id, event_id),
    ).fetchone()
    event = core.get(event_id, "event")
    if event is not None and event.get("pending_webhooks") != count:
        event["pending_webhooks"] = count
        core.save(event)


def _post(url: str, payload: bytes, headers: dict[str, str], timeout: float):
    """POST and return ``(status, None)`` or ``(None, error)`` for a connection failure."""
    req = urllib.request.Request(url, data=payload, headers=headers, method="POST")
    try:
        with _opener.open(req, timeout=timeout) as resp:
            resp.read(65536)
            return resp.status, None
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _close_thread_connections() -> None:
    conns = getattr(core._local, "conns", None) or {}
    for conn in conns.values():
        try:
            conn.close()
        except Exception:  # closing is best effort at thread exit
            log.debug("closing a sender's database connection failed", exc_info=True)
    conns.clear()


# --------------------------------------------------------------------------- test helpers


def _deliverer() -> Deliverer:
    return current_app.extensions[EXTENSION]


@helpers_bp.get("/deliveries")
def list_deliveries():
    """Queued deliveries and every attempt, optionally for one ``event`` / ``endpoint``."""
    core.authenticate()
    where, args = [], []
    for param, column in (("event", "event_id"), ("endpoint", "endpoint_id")):
        if request.args.get(param):
            where.append(f"{column}=?")
            args.append(request.args[param])
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    conn = core.db()
    deliveries = [
        {
            "id": r[0],
            "event": r[1],
            "endpoint": r[2],
            "copy": r[3],
            "faults": r[4].split(",") if r[4] else [],
            "status": r[5],
            "attempts": r[6],
            "next_attempt_at": r[7],
        }
        for r in conn.execute(
            "SELECT id, event_id, endpoint_id, copy, faults, status, attempts, next_attempt_at "
            f"FROM webhook_deliveries{clause} ORDER BY id",
            args,
        )
    ]
    attempts = [
        {
            "delivery": r[0],
            "event": r[1],
            "endpoint": r[2],
            "attempt": r[3],
            "status_code": r[4],
            "error": r[5],
            "dropped": bool(r[6]),
            "at": r[7],
            "duration_ms": r[8],
        }
        for r in conn.execute(
            "SELECT delivery_id, event_id, endpoint_id, attempt, status_code, error, dropped, "
            f"at, duration_ms FROM webhook_attempts{clause} ORDER BY id",
            args,
        )
    ]
    pending = sum(1 for d in deliveries if d["status"] == "pending")
    return {"object": "list", "data": attempts, "deliveries": deliveries, "pending": pending}


@helpers_bp.post("/flush_webhooks")
def flush_webhooks():
    """Send every pending delivery now (ignoring backoff and ``late``) and wait for the queue
    to drain; ``timeout`` seconds (default 10).  Answers ``{"pending": n}``."""
    core.authenticate()
    timeout = float(request.values.get("timeout", 10))
    deadline = time.time() + timeout
    deliverer = _deliverer()
    while True:
        with core.transaction() as conn:
            conn.execute(
                "UPDATE webhook_deliveries SET next_attempt_at=MIN(next_attempt_at, ?) "
                "WHERE status='pending'",
                (time.time(),),
            )
        (pending,) = (
            core.db()
            .execute("SELECT COUNT(*) FROM webhook_deliveries WHERE status='pending'")
            .fetchone()
        )
        if pending == 0 or time.time() >= deadline:
            return {"pending": pending}
        deliverer.kick_all()
        time.sleep(0.05)
