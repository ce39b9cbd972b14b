"""Checking configuration values against the type hints of a dataclass's fields.

``check_table(Config, data, where)`` turns a TOML table (or command-line overrides) into
keyword arguments for the dataclass, refusing a value of the wrong type or an unknown key with
one line that names the key, where it came from and what was expected. Everything is read from
the fields' annotations, so a key added to ``Config`` or ``Limits`` is checked, and offered in
"did you mean" hints, without code of its own.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints


class ConfigError(ValueError):
    """A mistake in the configuration: ``str()`` is the one line to show the operator.

    ``where`` is ``config FILE`` for a key of a file and None for an override (a flag);
    ``key`` is the dotted key (``limits.message_size``) the mistake is about, if any.
    """

    def __init__(self, text: str, *, where: str | None = None, key: str | None = None) -> None:
        super().__init__(f"{where}: {text}" if where else text)
        self.text = text
        self.where = where
        self.key = key


class _Mismatch(Exception):
    """A value does not fit a type hint (the caller says what was expected)."""


def show(value: Any) -> str:
    """``value`` as it would be written in TOML: ``"abc"``, ``true``, ``[1, 2]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | PurePath):
        return json.dumps(str(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {show(v)}" for k, v in value.items()) + " }"
    return repr(value)


def _is_union(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType)


def _choices(values: Iterable[Any]) -> str:
    shown = [str(v) for v in values]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def describe(hint: Any, plural: bool = False) -> str:
    """What a value of ``hint`` looks like in words: ``an integer``, ``a list of strings``."""
    if _is_union(hint):
        return _choices(describe(a, plural) for a in get_args(hint) if a is not type(None))
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return _choices(args)
    if origin is tuple or origin is list:
        return ("lists" if plural else "a list") + " of " + describe(args[0], plural=True)
    if origin is dict:
        return ("tables" if plural else "a table") + " of " + describe(args[1], plural=True)
    words = {
        bool: ("true or false", "true or false"),
        int: ("an integer", "integers"),
        float: ("a number", "numbers"),
        str: ("a string", "strings"),
    }
    if hint in words:
        return words[hint][plural]
    if isinstance(hint, type) and issubclass(hint, PurePath):
        return "paths (strings)" if plural else "a path (a string)"
    name = getattr(hint, "__name__", str(hint))
    return f"{name} values" if plural else f"a {name}"


def convert(value: Any, hint: Any) -> Any:
    """``value`` as the field's type (a path, a tuple, a float); ``_Mismatch`` if it is not one."""
    if hint is Any:
        return value
    if _is_union(hint):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        # ``True == 1``: compare types too, so ``watch = 1`` is not some choice.
        if any(type(value) is type(a) and value == a for a in args):
            return value
        raise _Mismatch
    if origin is tuple or origin is list:
        if not isinstance(value, list | tuple):
            raise _Mismatch
        items = [convert(v, args[0]) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch
        return {convert(k, args[0]): convert(v, args[1]) for k, v in value.items()}
    return _convert_scalar(value, hint)


def _convert_scalar(value: Any, hint: Any) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif isinstance(hint, type) and issubclass(hint, PurePath):
        if isinstance(value, str | PurePath):
            return Path(value)
    elif isinstance(hint, type) and isinstance(value, hint):
        return value
    raise _Mismatch


def unknown_key(key: str, known: Iterable[str], where: str | None = None) -> ConfigError:
    """``prot_offset: unknown key; did you mean port_offset?`` (the hint only when one is close)."""
    prefix, _, leaf = key.rpartition(".")
    close = difflib.get_close_matches(leaf, list(known), n=1)
    hint = f"; did you mean {prefix + '.' if prefix else ''}{close[0]}?" if close else ""
    return ConfigError(f"{key}: unknown key{hint}", where=where, key=key)


def check_table(
    cls: type[Any],
    data: Mapping[str, Any],
    where: str | None = None,
    prefix: str = "",
    expected: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for the dataclass ``cls`` from ``data``, every value checked.

    Dashes in keys mean underscores (``users-file``); a nested dataclass field (``[limits]``)
    takes a table of its own fields, checked the same way, or an instance of it. ``expected``
    words a dotted key's type better than its annotation can (``a number of seconds``).
    """
    expected = expected or {}
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        dotted = prefix + key
        if key not in names:
            raise unknown_key(dotted, names, where)
        hint = hints[key]
        if (
            isinstance(hint, type)
            and dataclasses.is_dataclass(hint)
            and not isinstance(value, hint)
        ):
            if not isinstance(value, Mapping):
                raise _wrong_type(dotted, value, f"a table of {key} settings", where)
            out[key] = hint(**check_table(hint, value, where, dotted + ".", expected))
            continue
        try:
            out[key] = convert(value, hint)
        except _Mismatch:
            wanted = expected.get(dotted) or describe(hint)
            raise _wrong_type(dotted, value, wanted, where) from None
    return out


def _wrong_type(key: str, value: Any, expected: str, where: str | None) -> ConfigError:
    return ConfigError(f"{key} must be {expected}, got {show(value)}", where=where, key=key)
