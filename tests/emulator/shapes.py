"""Check that an object returned by the emulator has the shape the pinned ``stripe`` SDK declares.

The SDK's resource classes carry Stripe's schema as type annotations (``Optional[...]`` for
nullable fields, ``Literal[...]`` for enums, nested ``StripeObject`` classes, ``ListObject[...]``,
``ExpandableField[...]`` = id or expanded object).  ``assert_stripe_shape`` walks an object
against them recursively:

- every non-``Optional`` field is present with a value of the declared type;
- ``Optional`` fields may be ``null`` (or absent);
- enum values are among the declared ``Literal`` values (also where the SDK widens an enum
  with ``str`` for forward compatibility: the emulator should only send documented values);
- no field is unknown to the SDK.

Usage from tests in this directory: ``from shapes import assert_stripe_shape``.
"""

from __future__ import annotations

import ast
import decimal
import importlib
import inspect
import sys
import types
import typing
from functools import cache
from typing import Any, ForwardRef, Literal, Union

import stripe
from stripe._list_object import ListObject
from stripe._stripe_object import StripeObject, UntypedStripeObject

# Where the SDK widens an enum (``Union[Literal[...], str]``) insist on the Literal values.
STRICT_ENUMS = True

_NoneType = type(None)


def assert_stripe_shape(obj: Any, cls: Any) -> None:
    """Assert that ``obj`` (a dict, or an SDK object) matches ``cls`` (e.g. ``stripe.Charge``,
    ``ListObject[stripe.Price]``); the message lists every mismatch with its path."""
    if isinstance(obj, StripeObject):
        response = obj.last_response
        obj = response.data if response is not None else obj.to_dict()
    errors: list[str] = []
    _check(obj, cls, "$", errors, _module_of(cls))
    name = getattr(cls, "__qualname__", cls)
    joined = "\n  ".join(errors)
    assert not errors, f"shape mismatch against {name}:\n  {joined}"


def shape_errors(obj: Any, cls: Any) -> list[str]:
    """The mismatches ``assert_stripe_shape`` would report (empty when the shape fits)."""
    errors: list[str] = []
    _check(obj, cls, "$", errors, _module_of(cls))
    return errors


# --------------------------------------------------------------------------- resolution


def _module_of(cls: Any) -> types.ModuleType | None:
    mod = getattr(cls, "__module__", None)
    return sys.modules.get(mod) if isinstance(mod, str) else None


@cache
def _imports_of(module_name: str) -> dict[str, tuple[str, str]]:
    """Names a module imports (including under ``if TYPE_CHECKING:``) → (module, attribute)."""
    module = sys.modules[module_name]
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return {}
    names: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = (node.module, alias.name)
    return names


def _resolve(ref: ForwardRef, module: types.ModuleType | None) -> Any:
    name = ref.__forward_arg__
    if module is not None:
        if hasattr(module, name):
            return getattr(module, name)
        target = _imports_of(module.__name__).get(name)
        if target is not None:
            return getattr(importlib.import_module(target[0]), target[1])
    if hasattr(stripe, name):
        return getattr(stripe, name)
    raise LookupError(f"cannot resolve forward reference {name!r}")


@cache
def _fields(cls: type) -> dict[str, tuple[Any, types.ModuleType | None]]:
    """Declared fields of an SDK class (own and inherited), with the module to resolve them in."""
    fields: dict[str, tuple[Any, types.ModuleType | None]] = {}
    for klass in reversed(cls.__mro__):
        if klass in (StripeObject, UntypedStripeObject, dict, object):
            continue
        if not (isinstance(klass, type) and issubclass(klass, StripeObject)):
            continue
        for name, ann in vars(klass).get("__annotations__", {}).items():
            if name.startswith("_") or typing.get_origin(ann) is typing.ClassVar:
                continue
            if isinstance(ann, str):  # a bare class name, resolved like a forward reference
                ann = ForwardRef(ann)
            fields[name] = (ann, sys.modules.get(klass.__module__))
    return fields


# --------------------------------------------------------------------------- checking


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_optional(t: Any) -> bool:
    return typing.get_origin(t) is Union and _NoneType in typing.get_args(t)


def _check(value: Any, t: Any, path: str, errors: list[str], module: Any) -> None:
    if isinstance(t, ForwardRef):
        try:
            t = _resolve(t, module)
        except LookupError as exc:
            errors.append(f"{path}: {exc}")
            return
    if isinstance(t, str):
        t = _resolve(ForwardRef(t), module)
    if t is Any:
        return
    origin = typing.get_origin(t)
    args = typing.get_args(t)

    if origin is Union:
        _check_union(value, args, path, errors, module)
    elif origin is Literal:
        if value not in args:
            errors.append(f"{path}: {_describe(value)} is not one of {list(args)}")
    elif origin in (list, typing.List):  # noqa: UP006
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {_describe(value)}")
            return
        for i, item in enumerate(value):
            _check(item, args[0] if args else Any, f"{path}[{i}]", errors, module)
    elif origin in (dict, typing.Dict):  # noqa: UP006
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {_describe(value)}")
            return
        for k, v in value.items():
            _check(v, args[1] if len(args) > 1 else Any, f"{path}.{k}", errors, module)
    elif origin is not None and isinstance(origin, type) and issubclass(origin, ListObject):
        _check_list_object(value, args[0] if args else Any, path, errors, module)
    elif (
        origin is not None and isinstance(origin, type) and issubclass(origin, UntypedStripeObject)
    ):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {_describe(value)}")
            return
        for k, v in value.items():
            _check(v, args[0] if args else Any, f"{path}.{k}", errors, module)
    elif isinstance(t, type) and issubclass(t, ListObject):
        _check_list_object(value, Any, path, errors, module)
    elif isinstance(t, type) and issubclass(t, StripeObject):
        _check_object(value, t, path, errors)
    elif t is bool:
        if not isinstance(value, bool):
            errors.append(f"{path}: expected a boolean, got {_describe(value)}")
    elif t is int:
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: expected an integer, got {_describe(value)}")
    elif t is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            errors.append(f"{path}: expected a number, got {_describe(value)}")
    elif t is str:
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {_describe(value)}")
    elif t is decimal.Decimal:
        # Decimals travel as strings in Stripe's JSON (``unit_amount_decimal: "1250"``).
        try:
            decimal.Decimal(value if isinstance(value, str) else "x")
        except decimal.InvalidOperation:
            errors.append(f"{path}: expected a decimal string, got {_describe(value)}")
    elif t is dict:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {_describe(value)}")
    else:
        errors.append(f"{path}: don't know how to check type {t!r}")


def _check_union(value: Any, args: tuple, path: str, errors: list[str], module: Any) -> None:
    if value is None:
        if _NoneType not in args:
            errors.append(f"{path}: null is not allowed")
        return
    alternatives = [a for a in args if a is not _NoneType]
    literals = [a for a in alternatives if typing.get_origin(a) is Literal]
    others = [a for a in alternatives if typing.get_origin(a) is not Literal]
    if literals and STRICT_ENUMS and all(a is str for a in others) and isinstance(value, str):
        allowed = [v for lit in literals for v in typing.get_args(lit)]
        if value not in allowed:
            errors.append(f"{path}: {_describe(value)} is not one of {allowed}")
        return
    # Prefer the alternative whose object name matches: its errors are the useful ones.
    if isinstance(value, dict) and "object" in value:
        for alt in alternatives:
            resolved = _resolve(alt, module) if isinstance(alt, ForwardRef) else alt
            if getattr(resolved, "OBJECT_NAME", None) == value["object"]:
                _check(value, resolved, path, errors, module)
                return
    attempts: list[list[str]] = []
    for alt in alternatives:
        sub: list[str] = []
        _check(value, alt, path, sub, module)
        if not sub:
            return
        attempts.append(sub)
    best = min(attempts, key=len) if attempts else [f"{path}: no alternative"]
    errors.extend(best)


def _check_list_object(value: Any, item: Any, path: str, errors: list[str], module: Any) -> None:
    if not isinstance(value, dict) or value.get("object") != "list":
        errors.append(f"{path}: expected a list object, got {_describe(value)}")
        return
    for key in value:
        if key not in ("object", "data", "has_more", "url"):
            errors.append(f"{path}.{key}: not a field of a list object")
    if not isinstance(value.get("has_more"), bool):
        errors.append(f"{path}.has_more: expected a boolean")
    if not isinstance(value.get("url"), str):
        errors.append(f"{path}.url: expected a string")
    data = value.get("data")
    if not isinstance(data, list):
        errors.append(f"{path}.data: expected a list")
        return
    for i, entry in enumerate(data):
        _check(entry, item, f"{path}.data[{i}]", errors, module)


def _check_object(value: Any, cls: type, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a {cls.__qualname__} object, got {_describe(value)}")
        return
    if cls is StripeObject:
        return  # untyped nested object
    fields = _fields(cls)
    for name, (ann, module) in fields.items():
        if name not in value:
            if not _is_optional(ann):
                errors.append(f"{path}.{name}: missing (required by {cls.__qualname__})")
            continue
        _check(value[name], ann, f"{path}.{name}", errors, module)
    for name in value:
        if name not in fields:
            errors.append(f"{path}.{name}: not a field of {cls.__qualname__}")
