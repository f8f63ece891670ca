"""Strict requests: every /v1 endpoint checks its parameters the way Stripe does.

Each view declares what it accepts with :func:`accepts`, naming the request TypedDict of the
pinned ``stripe`` SDK (``stripe.params``) that lists every parameter Stripe knows for that
call, and the parameters the emulator *implements*.  Before the view runs, the request is
answered with Stripe's 400 when it has

- a parameter Stripe does not know (``parameter_unknown``, top level or nested, e.g.
  ``line_items[0][bogus]``);
- a value of the wrong type or outside an enum (``parameter_invalid_integer``,
  ``parameter_invalid_string`` listing the allowed values, ...);
- a missing required parameter (``parameter_missing``);
- a parameter Stripe knows but the emulator does not implement (``parameter_unsupported``,
  "... is not supported by the Stripe emulator"): never accepted and ignored.

The known parameters come from the SDK, so they follow it when it is bumped; the
implemented ones are an explicit list per endpoint.  ``check_app`` fails at start-up if a
/v1 route has no declaration, or declares as implemented a parameter the SDK does not know.

Implemented parameters are written as dotted paths, lists being transparent:
``"line_items.price"`` implements ``line_items[0][price]``.  A path implements everything
under it unless a longer path names some of its children, which then are the only ones.
``expand`` is implemented wherever Stripe takes it (``core.respond`` and
``core.list_response`` do it for every endpoint).  A request in an older API version is
first rewritten to the pinned version's names (``versions``).  The request options of
the SDK's TypedDicts (``api_key``, ``idempotency_key``, ``stripe_version``...) travel as
headers and are not body parameters.
"""

from __future__ import annotations

import importlib
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import typing_extensions
from flask import Flask, current_app, g, request

from . import core, versions

# What a TypedDict inheriting the SDK's RequestOptions declares that is not a parameter.
REQUEST_OPTIONS = frozenset(
    {
        "api_key",
        "stripe_version",
        "stripe_account",
        "stripe_context",
        "max_network_retries",
        "idempotency_key",
        "content_type",
        "headers",
    }
)

# What every list endpoint implements (``core.list_response``), and every retrieve.
LIST = ("limit", "starting_after", "ending_before", "expand")
RETRIEVE = ("expand",)

ATTR = "stripe_params"


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Spec:
    """What one endpoint accepts: the SDK TypedDict (by name in ``stripe.params``, or a
    TypedDict class for the emulator's own endpoints) and the implemented paths."""

    params: str | type | None
    implemented: frozenset[str]
    public: bool = False  # answered without an API key (the hosted page's own API)
    extra: type | None = None  # parameters Stripe knows that the SDK does not declare

    def schema(self) -> Node:
        return schema_of(self.params, self.extra)


def accepts(
    params: str | type | None,
    implemented: Iterable[str] = (),
    *,
    public: bool = False,
    extra: type | None = None,
) -> Callable[[Callable], Callable]:
    """Declare an endpoint's parameters: ``@accepts("PaymentIntentCreateParams", [...])``
    under the route decorator.  ``params`` is a name in ``stripe.params`` (dotted for its
    namespaces, e.g. ``"checkout.SessionCreateParams"``), a TypedDict class for an
    emulator-only endpoint, or None for an endpoint that takes no parameters at all.
    ``extra`` is a TypedDict of parameters Stripe knows that the SDK does not list
    (Stripe.js's ``client_secret`` with a publishable key)."""
    spec = Spec(params, frozenset(implemented), public, extra)

    def decorate(fn: Callable) -> Callable:
        setattr(fn, ATTR, spec)
        return fn

    return decorate


def spec_of(app: Flask, endpoint: str | None) -> Spec | None:
    view = app.view_functions.get(endpoint or "")
    return getattr(view, ATTR, None)


def api_rules(app: Flask) -> list[Any]:
    """The /v1 routes the emulator serves (what strictness covers)."""
    return [r for r in app.url_map.iter_rules() if r.rule.startswith("/v1/")]


def check_app(app: Flask) -> None:
    """Fail fast: every /v1 route declares its parameters, and what it says it implements
    is a parameter the SDK knows."""
    problems = []
    for rule in api_rules(app):
        spec = spec_of(app, rule.endpoint)
        methods = ",".join(sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
        where = f"{methods} {rule.rule} (view {rule.endpoint})"
        if spec is None:
            problems.append(f"{where} has no @strict.accepts(...) declaration")
            continue
        try:
            schema = spec.schema()
        except Exception as exc:  # noqa: BLE001 - reported with the route it belongs to
            problems.append(f"{where}: cannot read {spec.params!r}: {exc}")
            continue
        for path in sorted(spec.implemented):
            if schema.find(path.split(".")) is None:
                problems.append(f"{where}: implements {path!r}, which {spec.params} lacks")
    if problems:
        raise RuntimeError("Stripe emulator routes:\n  " + "\n  ".join(problems))


def describe(app: Flask) -> str:
    """The README's table of what each endpoint implements (``--list-params`` prints it)."""
    rows = ["| endpoint | parameters it implements |", "|---|---|"]
    for rule in sorted(api_rules(app), key=lambda r: r.rule):
        spec = spec_of(app, rule.endpoint)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            implemented = set(spec.implemented if spec else ()) - {"expand"}
            names = [f"`{p}`" for p in sorted(implemented - set(LIST))]
            if set(LIST) - {"expand"} <= implemented:
                names.insert(0, "paging")
            own = "" if spec and isinstance(spec.params, str) else " (emulator only)"
            rows.append(f"| `{method} {rule.rule}`{own} | {', '.join(names) or '—'} |")
    return "\n".join(rows) + "\n"


# --------------------------------------------------------------------------- schemas


@dataclass
class Node:
    """One parameter's accepted forms, read from its SDK annotation."""

    scalars: set[str] = field(default_factory=set)  # str, int, bool, float, any
    enum: tuple[str, ...] = ()  # Literal values (other than "")
    empty: bool = False  # Literal[""]: the empty string unsets it
    fields: dict[str, Node] | None = None  # a TypedDict (hash) ...
    required: frozenset[str] = frozenset()
    items: Node | None = None  # ... a list of ...
    values: Node | None = None  # ... a hash with free keys (metadata)

    def find(self, path: list[str]) -> Node | None:
        node: Node | None = self
        for name in path:
            while node is not None and node.items is not None and node.fields is None:
                node = node.items
            if node is None or node.fields is None or name not in node.fields:
                return None
            node = node.fields[name]
        return node


_SCALARS = {str: "str", int: "int", bool: "bool", float: "float"}


@cache
def schema_of(params: str | type | None, extra: type | None = None) -> Node:
    node = Node(fields={})
    if params is not None:
        cls = _resolve(params) if isinstance(params, str) else params
        base = _typed_dict(cls)
        node = Node(fields=dict(base.fields or {}), required=base.required)
    if extra is not None:
        node = _merged(node, _typed_dict(extra))
    return node


def _merged(base: Node, extra: Node) -> Node:
    """``base`` with ``extra``'s fields added, nested hashes merged (neither is changed)."""
    if base.items is not None and extra.items is not None:
        return Node(**{**vars(base), "items": _merged(base.items, extra.items)})
    if base.fields is None and extra.fields is None:  # e.g. one more enum value
        return Node(
            **{
                **vars(base),
                "scalars": base.scalars | extra.scalars,
                "enum": base.enum + tuple(v for v in extra.enum if v not in base.enum),
            }
        )
    if base.fields is None or extra.fields is None:
        return extra
    fields = dict(base.fields)
    for name, sub in extra.fields.items():
        fields[name] = _merged(fields[name], sub) if name in fields else sub
    return Node(**{**vars(base), "fields": fields})


def _resolve(name: str) -> type:
    module = importlib.import_module("stripe.params")
    *namespaces, cls_name = name.split(".")
    for ns in namespaces:
        module = importlib.import_module(f"{module.__name__}.{ns}")
    return getattr(module, cls_name)


_building: dict[type, Node] = {}
_built: dict[type, Node] = {}


def _typed_dict(cls: type) -> Node:
    if cls in _built:
        return _built[cls]
    if cls in _building:  # a recursive TypedDict: share the node being built
        return _building[cls]
    node = Node(fields={})
    _building[cls] = node
    try:
        # The SDK writes annotations as strings, read in the class's own module.
        ns = vars(importlib.import_module(cls.__module__))
        required = set()
        for name, hint in cls.__annotations__.items():
            if name in REQUEST_OPTIONS and _is_request_options(cls):
                continue
            hint = _evaluated(hint, ns)
            origin = typing.get_origin(hint)
            if origin is typing.Required or (
                origin is not typing.NotRequired and getattr(cls, "__total__", True)
            ):
                required.add(name)
            node.fields[name] = _node(hint, ns)  # type: ignore[index]
        node.required = frozenset(required)
    finally:
        _building.pop(cls, None)
    _built[cls] = node
    return node


def _is_request_options(cls: type) -> bool:
    return any(base.__name__ == "RequestOptions" for base in getattr(cls, "__orig_bases__", ()))


def _node(hint: Any, ns: dict[str, Any]) -> Node:
    node = Node()
    _add(node, hint, ns)
    if node.enum and "str" in node.scalars:
        # ``Literal[...]|str`` is the SDK's escape hatch for values newer than itself; the
        # API still only takes the listed ones.
        node.scalars.discard("str")
    return node


def _evaluated(hint: Any, ns: dict[str, Any]) -> Any:
    """An annotation written as a string (the SDK's, or postponed ones) as a type."""
    if isinstance(hint, typing.ForwardRef):
        hint = hint.__forward_arg__
    if isinstance(hint, str):
        hint = eval(hint, ns)  # noqa: S307 - annotations of the SDK and of this package
    return hint


def _add(node: Node, hint: Any, ns: dict[str, Any]) -> None:
    hint = _evaluated(hint, ns)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.NotRequired, typing.Required):
        _add(node, args[0], ns)
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            _add(node, arg, ns)
    elif origin is typing.Literal:
        for value in args:
            if value == "":
                node.empty = True
            elif isinstance(value, str):
                node.enum += (value,)
            else:
                node.scalars.add(_SCALARS.get(type(value), "any"))
    elif origin is list:
        node.items = _node(args[0], ns) if args else Node(scalars={"any"})
    elif origin is dict or getattr(origin, "__name__", "") == "UntypedStripeObject":
        value_hint = args[-1] if args else Any
        node.values = Node(scalars={"any"}) if value_hint is Any else _node(value_hint, ns)
    elif getattr(hint, "__name__", "") == "UntypedStripeObject":
        node.values = Node(scalars={"any"})
    elif isinstance(hint, type) and typing_extensions.is_typeddict(hint):
        sub = _typed_dict(hint)
        node.fields, node.required = sub.fields, sub.required
    elif hint in _SCALARS:
        node.scalars.add(_SCALARS[hint])
    elif hint is type(None):
        pass
    else:
        node.scalars.add("any")


# --------------------------------------------------------------------------- checking


class _Problems:
    """Errors found in one request, answered in Stripe's order of precedence."""

    ORDER = ("parameter_unknown", "invalid", "parameter_missing", "parameter_unsupported")

    def __init__(self) -> None:
        self.found: dict[str, core.StripeError] = {}

    def add(self, kind: str, err: core.StripeError) -> None:
        self.found.setdefault(kind, err)

    def first(self) -> core.StripeError | None:
        for kind in self.ORDER:
            if kind in self.found:
                return self.found[kind]
        return None


def unknown(name: str) -> core.StripeError:
    return core.StripeError(
        f"Received unknown parameter: {name}", code="parameter_unknown", param=name
    )


def unsupported(name: str) -> core.StripeError:
    return core.StripeError(
        f"{name} is not supported by the Stripe emulator: Stripe knows this parameter, but "
        "the emulator does not implement it and refuses it rather than ignore it.",
        code="parameter_unsupported",
        param=name,
    )


def _one_of(values: tuple[str, ...]) -> str:
    values = tuple(values)
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return f"{values[0]} or {values[1]}"
    return ", ".join(values[:-1]) + f", or {values[-1]}"


def _name(path: list[str]) -> str:
    return path[0] + "".join(f"[{p}]" for p in path[1:])


def check(p: dict[str, Any], schema: Node, implemented: frozenset[str]) -> core.StripeError | None:
    """The error Stripe (or, for unsupported parameters, the emulator) answers, if any."""
    problems = _Problems()
    if "expand" in (schema.fields or {}):
        implemented = implemented | {"expand"}  # core.respond/list_response do it for all
    prefixes = {
        ".".join(parts[:i])
        for e in implemented
        for parts in [e.split(".")]
        for i in range(1, len(parts))
    }
    _check_hash(p, schema, [], [], implemented, prefixes, problems, top=True)
    return problems.first()


def _check_hash(
    value: dict[str, Any],
    node: Node,
    path: list[str],
    dotted: list[str],
    implemented: frozenset[str],
    prefixes: set[str],
    problems: _Problems,
    *,
    top: bool = False,
    whole: bool = False,
) -> None:
    fields = node.fields or {}
    for key, sub in value.items():
        here = path + [key]
        if key not in fields:
            problems.add("parameter_unknown", unknown(_name(here)))
            continue
        sub_dotted = dotted + [key]
        sub_whole = whole
        if not whole:
            joined = ".".join(sub_dotted)
            if joined in prefixes:
                pass  # only some of its children are implemented
            elif joined in implemented:
                sub_whole = True
            else:
                problems.add("parameter_unsupported", unsupported(_name(_first_leaf(sub, here))))
                sub_whole = True  # still checked for unknown and invalid values below
        _check_value(
            sub, fields[key], here, sub_dotted, implemented, prefixes, problems, whole=sub_whole
        )
    for key in sorted(node.required):
        if key not in value:
            problems.add("parameter_missing", core.missing(_name(path + [key])))


def _first_leaf(value: Any, path: list[str]) -> list[str]:
    """``automatic_tax[enabled]`` rather than ``automatic_tax``: the parameter as sent."""
    while value and (
        isinstance(value, dict) or (isinstance(value, list) and isinstance(value[0], dict))
    ):
        key, value = next(iter(value.items())) if isinstance(value, dict) else (0, value[0])
        path = path + [str(key)]
    return path


def _check_value(
    value: Any,
    node: Node,
    path: list[str],
    dotted: list[str],
    implemented: frozenset[str],
    prefixes: set[str],
    problems: _Problems,
    *,
    whole: bool,
) -> None:
    name = _name(path)
    if "any" in node.scalars:
        return
    if isinstance(value, dict):
        if node.fields is not None:
            _check_hash(value, node, path, dotted, implemented, prefixes, problems, whole=whole)
        elif node.values is not None:
            for key, sub in value.items():
                _check_value(
                    sub,
                    node.values,
                    path + [key],
                    dotted,
                    implemented,
                    prefixes,
                    problems,
                    whole=True,
                )
        elif node.items is not None:
            problems.add("invalid", core.invalid(name, "Invalid array"))
        else:
            problems.add("invalid", _invalid_scalar(name, node, value))
        return
    if isinstance(value, list):
        if node.items is not None:
            for i, item in enumerate(value):
                _check_value(
                    item,
                    node.items,
                    path + [str(i)],
                    dotted,
                    implemented,
                    prefixes,
                    problems,
                    whole=whole,
                )
        elif node.values is not None:
            # ``metadata[0]=x``: a hash whose keys happen to be numbers.
            for i, item in enumerate(value):
                _check_value(
                    item,
                    node.values,
                    path + [str(i)],
                    dotted,
                    implemented,
                    prefixes,
                    problems,
                    whole=True,
                )
        elif node.fields is not None:
            problems.add("invalid", core.invalid(name, "Invalid hash"))
        else:
            problems.add("invalid", _invalid_scalar(name, node, value))
        return
    # A single value.
    if value == "":
        if node.empty or node.scalars & {"str"} or node.fields is not None or node.values:
            return
        if node.items is not None:
            return  # ``expand=`` and friends: an empty list
    if _scalar_ok(str(value), node):
        return
    if node.fields is not None or node.values is not None:
        problems.add("invalid", core.invalid(name, "Invalid hash"))
    elif node.items is not None:
        problems.add("invalid", core.invalid(name, "Invalid array"))
    else:
        problems.add("invalid", _invalid_scalar(name, node, value))


_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")


def _scalar_ok(value: str, node: Node) -> bool:
    if value in node.enum:
        return True
    kinds = node.scalars
    if "str" in kinds:
        return True
    if "int" in kinds and _INT.fullmatch(value):
        return True
    if "float" in kinds and _FLOAT.fullmatch(value):
        return True
    return "bool" in kinds and value.lower() in ("true", "false")


def _invalid_scalar(name: str, node: Node, value: Any) -> core.StripeError:
    shown = value if isinstance(value, str) else "(a hash or array)"
    if node.enum:
        allowed = node.enum + (("true", "false") if "bool" in node.scalars else ())
        return core.StripeError(
            f"Invalid {name}: must be one of {_one_of(allowed)}",
            code="parameter_invalid_string",
            param=name,
        )
    if "int" in node.scalars:
        return core.StripeError(
            f"Invalid integer: {shown}", code="parameter_invalid_integer", param=name
        )
    if "float" in node.scalars:
        return core.invalid(name, f"Invalid decimal: {shown}")
    if "bool" in node.scalars:
        return core.invalid(name, f"Invalid boolean: {shown}")
    return core.invalid(name, f"Invalid string: {shown}")


# --------------------------------------------------------------------------- per request


def check_request() -> None:
    """``before_request``: refuse a /v1 request whose parameters Stripe (or the emulator)
    would refuse.  Runs after the API key is known to be good, so a bad key still gets its
    401 first; nothing is kept for the request's idempotency key."""
    if request.method == "OPTIONS" or not request.path.startswith("/v1/"):
        return
    spec = spec_of(current_app, request.endpoint)
    if spec is None:
        return  # a 404/405: answered as Stripe does by the error handlers
    if not spec.public:
        try:
            core.authenticate(allow_publishable=True)
        except core.StripeError:
            return  # the view answers with the 401
    try:
        p = core.params()
        # An older API version's names become the pinned ones the views read.
        sent_as = versions.upgrade_params(request.endpoint, p, versions.requested())
        err = check(p, spec.schema(), spec.implemented)
        if err is not None:
            raise versions.as_sent(err, sent_as)
    except core.StripeError:
        g.idempotency_discard = True
        raise
