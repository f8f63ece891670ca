"""Shared machinery of the emulator: object store, request parsing, auth, errors, events.

Every Stripe object is stored as its JSON in one SQLite table, keyed by id.  The
API modules build plain dicts shaped like Stripe's objects and save them here;
nested objects are stored by id and expanded on the way out.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import after_this_request, current_app, g, has_request_context, jsonify, request

API_VERSION = "2026-10-28.endive"

_local = threading.local()
_write_lock = threading.RLock()

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    created INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_type_seq ON objects (type, seq);
-- One row per (API key, Idempotency-Key): claimed (status NULL) before the request runs,
-- filled in with the answer when it ends.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    account TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    created INTEGER NOT NULL,
    PRIMARY KEY (account, key)
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- PaymentIntents in ``processing`` and when (emulator clock) they settle.
CREATE TABLE IF NOT EXISTS settlements (payment_intent TEXT PRIMARY KEY, due REAL NOT NULL);
"""

_FORGET_ALL = (
    "DELETE FROM objects; DELETE FROM idempotency_keys; DELETE FROM counters; "
    "DELETE FROM settlements;"
)


# --------------------------------------------------------------------------- errors


class StripeError(Exception):
    """An error answered in Stripe's format: ``{"error": {...}}`` with an HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type, "message": message}
        if code:
            self.body["code"] = code
        if param:
            self.body["param"] = param
        if decline_code:
            self.body["decline_code"] = decline_code
        if extra:
            self.body.update(extra)


# Stripe names most objects by their ``object`` value in 404s, but not all.
_NOT_FOUND_NAMES = {
    "payment_method": "PaymentMethod",
    "setup_intent": "setupintent",
    "shipping_rate": "shipping rate",
}


def not_found(obj_id: str, type: str, param: str = "id", *, status: int = 404) -> StripeError:
    """Stripe's 404, e.g. ``No such customer: 'cus_x'`` (``type`` is the object's name);
    ``status`` 400 where a request parameter, not the URL, names the missing object."""
    name = _NOT_FOUND_NAMES.get(type, type)
    return StripeError(
        f"No such {name}: '{obj_id}'", status=status, code="resource_missing", param=param
    )


def missing(param: str) -> StripeError:
    return StripeError(f"Missing required param: {param}.", code="parameter_missing", param=param)


def invalid(param: str, message: str | None = None) -> StripeError:
    return StripeError(
        message or f"Invalid value for {param}.", code="parameter_invalid", param=param
    )


# --------------------------------------------------------------------------- storage


def _db_path() -> str:
    return current_app.config["EMULATOR_DB"]


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # No fsync per commit (WAL keeps the file consistent; a power cut may lose the last
    # writes, which a local stand-in for Stripe can afford): 0.6 ms less per commit here,
    # and creating a PaymentIntent commits three times.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


def db() -> sqlite3.Connection:
    """One connection per thread and database file."""
    path = _db_path()
    conns = getattr(_local, "conns", None)
    if conns is None:
        conns = _local.conns = {}
    if path not in conns:
        conns[path] = connect(path)
    return conns[path]


def init_store(path: str, reset: bool = False) -> None:
    conn = connect(path)
    # Older files keyed idempotency by the key alone (no API key); those answers are dropped.
    conn.execute("DROP TABLE IF EXISTS idempotency")
    # A claim still in progress at start-up belongs to a request that died with the process.
    conn.execute("DELETE FROM idempotency_keys WHERE status IS NULL")
    if reset:
        conn.executescript(_FORGET_ALL)
    conn.close()


def reset_store() -> None:
    with _write_lock:
        db().executescript(_FORGET_ALL)


@contextmanager
def transaction() -> Iterator[sqlite3.Connection]:
    """Serialise writers: read-modify-write of objects happens under one lock.

    Re-entrant: a nested ``transaction()`` (e.g. billing calling payment functions that
    open their own) joins the outer one, which alone commits or rolls back.
    """
    with _write_lock:
        conn = db()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")


def now() -> int:
    return int(time.time()) + clock_offset()


def clock() -> float:
    """``now()`` with sub-second precision (for short background delays)."""
    return time.time() + clock_offset()


def clock_offset() -> int:
    """Seconds the emulator's clock runs ahead (moved by test helpers)."""
    row = db().execute("SELECT value FROM counters WHERE name='clock_offset'").fetchone()
    return row[0] if row else 0


def new_id(prefix: str, length: int = 24) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "_" + "".join(secrets.choice(alphabet) for _ in range(length))


def _next_seq(conn: sqlite3.Connection) -> int:
    conn.execute(
        "INSERT INTO counters (name, value) VALUES ('seq', 1) "
        "ON CONFLICT(name) DO UPDATE SET value = value + 1"
    )
    return conn.execute("SELECT value FROM counters WHERE name='seq'").fetchone()[0]


def save(obj: dict[str, Any]) -> dict[str, Any]:
    """Insert or replace a stored object (keeps its original order in lists)."""
    with _write_lock:
        conn = db()
        row = conn.execute("SELECT seq FROM objects WHERE id=?", (obj["id"],)).fetchone()
        seq = row[0] if row else _next_seq(conn)
        conn.execute(
            "INSERT OR REPLACE INTO objects (id, type, created, seq, data) VALUES (?,?,?,?,?)",
            (obj["id"], obj["object"], obj.get("created") or now(), seq, json.dumps(obj)),
        )
    return obj


def get(obj_id: str | None, type: str | None = None) -> dict[str, Any] | None:
    if not obj_id or not isinstance(obj_id, str):
        return None
    row = db().execute("SELECT type, data FROM objects WHERE id=?", (obj_id,)).fetchone()
    if row is None or (type is not None and row[0] != type):
        return None
    return json.loads(row[1])


def get_or_404(obj_id: str, type: str, param: str = "id") -> dict[str, Any]:
    """The stored object, else Stripe's 404 ``No such <type>: '<id>'`` naming ``param``."""
    obj = get(obj_id, type)
    if obj is None:
        raise not_found(obj_id, type, param)
    return obj


def get_or_missing(obj_id: str, type: str, param: str) -> dict[str, Any]:
    """The object a request parameter names (``items[0][price]``, ``customer``), else
    Stripe's 400 ``No such <type>: '<id>'`` (``resource_missing``) naming ``param``.
    An id in the URL is ``get_or_404``'s."""
    obj = get(obj_id, type)
    if obj is None:
        raise not_found(obj_id, type, param, status=400)
    return obj


def delete(obj_id: str) -> None:
    with _write_lock:
        db().execute("DELETE FROM objects WHERE id=?", (obj_id,))


def all_of(type: str, where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict]:
    """Every stored object of a type, newest first (Stripe's list order)."""
    rows = (
        db().execute("SELECT data FROM objects WHERE type=? ORDER BY seq DESC", (type,)).fetchall()
    )
    objs = [json.loads(r[0]) for r in rows]
    return [o for o in objs if where is None or where(o)]


def base_object(prefix: str, object_name: str, **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": new_id(prefix), "object": object_name}
    obj.update(fields)
    obj.setdefault("created", now())
    obj.setdefault("livemode", False)
    return obj


# --------------------------------------------------------------------------- requests


# Stripe's deepest parameters (``line_items[0][price_data][recurring][interval]``) are five
# names long; a name of hundreds is an attack on the parser, not a request.
MAX_PARAM_DEPTH = 16


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn Stripe's form encoding (``a[b][0][c]=v``, ``expand[]=x``) into nested data.

    Integer-keyed dicts become lists; ``""`` stays as the empty string (Stripe uses it
    to unset a field).
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = [key.split("[", 1)[0]]
        if "[" in key:
            parts += [p.rstrip("]") for p in key.split("[", 1)[1].split("[")]
        if len(parts) > MAX_PARAM_DEPTH:
            # Refused before anything recurses over it (``_listify``, the strict checks).
            raise StripeError(
                f"Invalid parameter: {parts[0]} is nested more than {MAX_PARAM_DEPTH} levels deep.",
                param=parts[0],
            )
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # ``a[]=`` appends
                part = str(len(node))
            existing = node.get(part)
            # ``metadata=`` and ``metadata[x]=1`` together: one name both a value and a hash.
            if (last and isinstance(existing, dict)) or (
                not last and existing is not None and not isinstance(existing, dict)
            ):
                name = parts[0] + "".join(f"[{p}]" for p in parts[1 : i + 1])
                raise StripeError(
                    f"Invalid hash: {name} was sent both as a value and as a hash.", param=name
                )
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    # The top level is always a hash, even when every name is a number (``0=x``).
    return {k: _listify(v) for k, v in root.items()}


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def params() -> dict[str, Any]:
    """The request's parameters: query string for GET/DELETE, form body otherwise."""
    if "params" not in g:
        pairs = list(request.args.items(multi=True))
        if request.method not in ("GET", "DELETE"):
            pairs += list(request.form.items(multi=True))
        try:
            g.params = parse_form(pairs)
        except StripeError:
            # Malformed parameters never start the request: Stripe keeps no idempotent answer.
            g.idempotency_discard = True
            raise
    return g.params


def to_int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(param, f"Invalid integer: {value}") from None


def to_bool(value: Any) -> bool:
    return str(value).lower() in ("true", "1", "yes", "on")


def metadata_from(p: dict[str, Any], current: dict[str, str] | None = None) -> dict[str, str]:
    """Merge ``metadata[...]`` like Stripe: ``""`` removes a key or clears all."""
    md = dict(current or {})
    value = p.get("metadata")
    if value == "":
        return {}
    if isinstance(value, dict):
        for k, v in value.items():
            if v == "":
                md.pop(k, None)
            else:
                md[k] = str(v)
    return md


# --------------------------------------------------------------------------- auth


def request_key() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:].strip()
    if request.authorization and request.authorization.type == "basic":
        return request.authorization.username
    return None


def authenticate(allow_publishable: bool = False) -> str:
    """Check the API key; returns ``"secret"`` or ``"publishable"``."""
    key = request_key()
    if not key:
        raise StripeError(
            "You did not provide an API key. Provide it in the Authorization header "
            "(Authorization: Bearer YOUR_SECRET_KEY).",
            status=401,
        )
    if key.startswith(("sk_live_", "pk_live_", "rk_live_")):
        raise StripeError(
            "The Stripe emulator refuses live-mode keys; use a sk_test_/pk_test_ key.",
            status=401,
        )
    cfg = current_app.config
    if key.startswith("sk_test_"):
        expected = cfg.get("EMULATOR_SECRET_KEY")
        if expected and key != expected:
            raise StripeError(f"Invalid API Key provided: {key[:12]}***", status=401)
        return "secret"
    if key.startswith("pk_test_"):
        expected = cfg.get("EMULATOR_PUBLISHABLE_KEY")
        if expected and key != expected:
            raise StripeError(f"Invalid API Key provided: {key[:12]}***", status=401)
        if not allow_publishable:
            raise StripeError(
                "This API call cannot be made with a publishable API key. "
                "Please use a secret API key.",
                status=401,
            )
        return "publishable"
    raise StripeError(f"Invalid API Key provided: {key[:12]}***", status=401)


# --------------------------------------------------------------------------- responses


_INTENT_NAMES = {"payment_intent": "PaymentIntent", "setup_intent": "SetupIntent"}


def intent_for_key(intent_id: str, type: str) -> dict[str, Any]:
    """The PaymentIntent or SetupIntent (``type``) the request names; a publishable key
    must come with its ``client_secret``, as Stripe.js sends it."""
    p = params()
    kind = authenticate(allow_publishable=True)
    intent = get_or_404(intent_id, type, "intent")
    if kind == "publishable":
        name = _INTENT_NAMES[type]
        secret = p.get("client_secret")
        if not secret:
            raise StripeError(
                "This API call cannot be made with a publishable API key without the "
                f"{name}'s client_secret.",
                status=401,
            )
        if secret != intent["client_secret"]:
            raise StripeError(
                "The client_secret provided does not match the client_secret associated with "
                f"the {name}.",
                code=f"{type}_invalid_parameter",
                param="client_secret",
            )
    return intent


def expand(obj: Any, paths: list[str]) -> Any:
    """Replace ids by their objects along dotted ``expand[]`` paths (``data.`` for lists).

    A path naming a field the object does not have (and no hook computes) is Stripe's 400.
    """
    for path in paths:
        obj = _expand_path(obj, path.split("."), [])
    return obj


def cannot_expand(path: str) -> StripeError:
    return StripeError(f"This property cannot be expanded ({path}).")


def _expand_path(node: Any, parts: list[str], done: list[str]) -> Any:
    if not parts or node is None:
        return node
    if isinstance(node, dict) and node.get("object") == "list" and parts[0] == "data":
        node = dict(node)
        node["data"] = [_expand_path(item, parts[1:], done) for item in node["data"]]
        return node
    head, rest = parts[0], parts[1:]
    here = done + [head]
    if isinstance(node, str):
        return node  # an id whose object is gone: left as the id
    if not isinstance(node, dict):
        raise cannot_expand(".".join(here))
    node = dict(node)
    value = node.get(head)
    if isinstance(value, str):
        loaded = get(value)
        if loaded is not None:
            value = present(loaded)
    elif value is None:
        # Includable fields that are not stored (a session's line_items, an invoice's payments).
        value = present_hook(head, node)
        if value is None and head not in node:
            raise cannot_expand(".".join(here))
    node[head] = _expand_path(value, rest, here)
    return node


# Modules can register computed views of an object (e.g. a session's line_items list);
# a hook gets the parent object and returns None when it does not apply to its type.
_present_hooks: dict[str, Callable[[dict[str, Any]], Any]] = {}


def present_hook(name: str, obj: dict[str, Any]) -> Any:
    fn = _present_hooks.get(name)
    return fn(obj) if fn else None


def register_present_hook(name: str, fn: Callable[[dict[str, Any]], Any]) -> None:
    _present_hooks[name] = fn


# Per-type presenters turn a stored object into its API form (e.g. refresh derived fields).
_presenters: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def register_presenter(object_name: str, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    _presenters[object_name] = fn


def present(obj: dict[str, Any]) -> dict[str, Any]:
    fn = _presenters.get(obj.get("object", ""))
    return fn(obj) if fn else obj


def respond(obj: dict[str, Any], status: int = 200):
    """JSON answer for one object, honouring ``expand[]``."""
    paths = params().get("expand") or []
    if isinstance(paths, str):
        paths = [paths]
    body = expand(present(obj), paths)
    return jsonify(body), status


def list_response(objs: list[dict[str, Any]], url: str):
    """A Stripe list object with ``limit``, ``starting_after`` and ``ending_before``."""
    p = params()
    limit = to_int(p.get("limit", 10), "limit")
    if not 1 <= limit <= 100:
        raise invalid("limit", "limit must be between 1 and 100.")
    start = p.get("starting_after")
    end = p.get("ending_before")
    ids = [o["id"] for o in objs]
    if start:
        if start not in ids:
            raise _cursor_not_found(start, objs, "starting_after")
        rest = objs[ids.index(start) + 1 :]
        page, has_more = rest[:limit], len(rest) > limit
    elif end:
        if end not in ids:
            raise _cursor_not_found(end, objs, "ending_before")
        # The page just before the cursor; more remain if anything precedes that page.
        before = objs[: ids.index(end)]
        page, has_more = before[-limit:], len(before) > limit
    else:
        page, has_more = objs[:limit], len(objs) > limit
    paths = p.get("expand") or []
    if isinstance(paths, str):
        paths = [paths]
    for path in paths:
        if not path.startswith("data."):
            raise cannot_expand(path)
    paths = [x[len("data.") :] for x in paths]
    data = [expand(present(o), paths) for o in page]
    return jsonify({"object": "list", "data": data, "has_more": has_more, "url": url})


def list_matching(type: str, url: str, *filters: str, **fixed: Any):
    """The list object of a list route whose filters each ask for one field's value
    (``GET /v1/refunds?charge=ch_…``): the stored objects of ``type`` whose fields equal
    every filter the request gives (an absent or empty one filters nothing), and every
    ``fixed`` value (a filter taken from the path, like ``/v1/customers/<id>/…``)."""
    p = params()
    wanted = {name: p[name] for name in filters if p.get(name)}
    wanted.update(fixed)
    objs = all_of(type, lambda o: all(o.get(k) == v for k, v in wanted.items()))
    return list_response(objs, url)


def _cursor_not_found(obj_id: str, objs: list[dict[str, Any]], param: str) -> StripeError:
    stored = get(obj_id)
    type = (stored or (objs[0] if objs else {})).get("object", "object")
    return not_found(obj_id, type, param)


def list_of(objs: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """An embedded list object (e.g. ``line_items`` inside a session)."""
    return {"object": "list", "data": objs, "has_more": False, "url": url}


# --------------------------------------------------------------------------- idempotency


# Answers Stripe never keeps for a key: the request did not run (auth, rate limit, another
# request in progress) or failed on Stripe's side and may be retried.
_NOT_STORED = {401, 403, 409, 429}


def idempotency_begin() -> Any | None:
    """Claim a POST's ``Idempotency-Key`` before it runs, or answer for the key.

    The key is scoped to the API key.  A request that does not authenticate claims nothing
    (its endpoint answers 401).  A key already claimed answers its stored result, 409 while
    that request is still running, or 400 if it was used with other parameters.
    """
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return None
    try:
        authenticate(allow_publishable=True)
    except StripeError:
        return None
    account = hashlib.sha256((request_key() or "").encode()).hexdigest()
    fingerprint = hashlib.sha256(
        (request.path + "?" + request.get_data(as_text=True)).encode()
    ).hexdigest()
    with transaction() as conn:
        row = conn.execute(
            "SELECT fingerprint, status, body FROM idempotency_keys WHERE account=? AND key=?",
            (account, key),
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO idempotency_keys (account, key, fingerprint, created) "
                "VALUES (?,?,?,?)",
                (account, key, fingerprint, now()),
            )
    if row is None:
        g.idempotency = (account, key)
        return None
    if row[0] != fingerprint:
        raise StripeError(
            "Keys for idempotent requests can only be used with the same parameters they "
            f"were first used with. Try using a key other than '{key}' if you meant to "
            "execute a different request.",
            type="idempotency_error",
        )
    if row[1] is None:
        raise StripeError(
            "There is currently another in-progress request using this Idempotent Key "
            "(that probably means you submitted twice, and the other request is still going "
            f"through): {key}. Please try again later.",
            status=409,
            type="idempotency_error",
            code="idempotency_key_in_use",
        )
    response = current_app.response_class(row[2], status=row[1], mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotency_finish(response) -> None:
    """Store the answer for the claimed key, or release the claim if Stripe would not keep it."""
    claim = g.pop("idempotency", None)
    if claim is None:
        return
    status = response.status_code
    if status >= 500 or status in _NOT_STORED or g.get("idempotency_discard"):
        release_idempotency_claim(claim)
        return
    with transaction() as conn:
        conn.execute(
            "UPDATE idempotency_keys SET status=?, body=? WHERE account=? AND key=?",
            (status, response.get_data(as_text=True), *claim),
        )


def idempotency_abandon() -> None:
    """Teardown: a request that ended without an answer (an exception) releases its claim."""
    claim = g.pop("idempotency", None)
    if claim is not None:
        release_idempotency_claim(claim)


def release_idempotency_claim(claim: tuple[str, str]) -> None:
    with transaction() as conn:
        conn.execute(
            "DELETE FROM idempotency_keys WHERE account=? AND key=? AND status IS NULL", claim
        )


# --------------------------------------------------------------------------- events

# The webhook module registers the function that queues an event for delivery.
_event_listeners: list[Callable[[dict[str, Any]], None]] = []


def on_event(fn: Callable[[dict[str, Any]], None]) -> None:
    _event_listeners.append(fn)


def record_event(
    type: str, obj: dict[str, Any], previous_attributes: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Store an Event for a state change and hand it to webhook delivery."""
    data: dict[str, Any] = {"object": present(obj)}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    req_id = g.get("request_id") if _in_request() else None
    idem = request.headers.get("Idempotency-Key") if _in_request() else None
    event = base_object(
        "evt",
        "event",
        api_version=API_VERSION,
        data=data,
        pending_webhooks=0,
        request={"id": req_id, "idempotency_key": idem},
        type=type,
        context=None,
    )
    event.pop("context")
    save(event)
    for listener in _event_listeners:
        listener(event)
    return event


def _in_request() -> bool:
    return has_request_context()


# --------------------------------------------------------------------------- background

# Work that happens without a request (Checkout Session expiry, settling ``processing``
# payments).  The webhook module's deliverer runs every sweep on its background thread; a
# sweep returns the seconds until it next has something due, or None when it has nothing
# left to watch (the thread stops when no sweep has).
_sweeps: list[Callable[[], float | None]] = []

# ``app.extensions`` key of the function that wakes (or starts) the app's sweeper thread.
SWEEPER_EXTENSION = "stripe_emulator.sweeper"


def on_sweep(fn: Callable[[], float | None]) -> None:
    _sweeps.append(fn)


def sweeps() -> list[Callable[[], float | None]]:
    return list(_sweeps)


def wake_background() -> None:
    """There is new background work (a session to expire, a payment to settle): sweep now,
    and again once this request's transaction has surely committed."""
    kick = current_app.extensions.get(SWEEPER_EXTENSION)
    if kick is None:
        return
    kick()
    if has_request_context():

        @after_this_request
        def _kick_after(response):
            kick()
            return response
