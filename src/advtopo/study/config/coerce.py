"""A TOML table -> typed dataclasses: each value checked against its field's annotation, each
bad key a problem in a ``ConfigCheck`` with its full path (its default stands in)."""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from advtopo.checks import check_seed
from advtopo.errors import AdvtopoError, ConfigErrors, did_you_mean
from advtopo.study.config.collector import ConfigCheck


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return {type(None): "none", float: "number", int: "integer", str: "string", bool: "true/false",
            dict: "table"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(tp: Any, value: Any, path: str, check: ConfigCheck) -> Any:
    """Check ``value`` against annotation ``tp``; ints are accepted where floats are, NaN and
    inf are not. Raises AdvtopoError for this value; a nested table adds its own problems to
    ``check`` (and raises ConfigErrors() without lines when it cannot be built)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _coerce(arg, value, path, check)
            except AdvtopoError as exc:
                if _same_kind(arg, value):  # the right kind of value, a wrong one inside: say which
                    errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise AdvtopoError(f"{path}={value!r} has the wrong type; expected {_type_name(tp)}")
    if origin is list:
        if not isinstance(value, list):
            raise AdvtopoError(f"{path}={value!r} has the wrong type; expected {_type_name(tp)}")
        (arg,) = typing.get_args(tp)
        items, problems = [], []
        for j, v in enumerate(value):
            try:
                items.append(_coerce(arg, v, f"{path}[{j}]", check))
            except AdvtopoError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigErrors(problems)
        return items
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise AdvtopoError(f"{path} must be a table ([{path}]), got {value!r}")
        if hasattr(tp, "from_table"):  # a section that reads its own keys (MapperConfig)
            return tp.from_table(value, path)
        built = _build(tp, value, path, check)
        if built is None:
            raise ConfigErrors([])
        return built
    if tp is type(None):
        if value is None:
            return None
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise AdvtopoError(f"{path}={value} must be a finite number")
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is dict:
        if isinstance(value, dict):
            _check_free_table(value, path)
            return value
    elif isinstance(value, tp):
        return value
    raise AdvtopoError(f"{path}={value!r} has the wrong type; expected {_type_name(tp)}")


def _same_kind(tp: Any, value: Any) -> bool:
    """Whether ``value`` is the kind of value ``tp`` describes (a list for a list type, a
    number for a number type), so that an error checking it is the one to report."""
    origin = typing.get_origin(tp) or tp
    if origin is list:
        return isinstance(value, list)
    if origin is float:
        return isinstance(value, float)
    return False


def _check_free_table(table: dict[str, Any], path: str) -> None:
    """A table whose keys another stage checks (options, train, arch_kwargs, settings): what is
    never valid anywhere is refused here, where the key's full path is known: NaN, and a
    ``seed`` outside [0, 2**32)."""
    problems = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, float) and math.isnan(value):
            problems.append(f"{where}=nan must be a number")
        elif isinstance(value, dict):
            for k, v in value.items():
                key_path = f"{where}.{k}"
                if k == "seed" and not isinstance(v, dict):
                    try:
                        check_seed(key_path, v)
                    except AdvtopoError as exc:
                        problems.append(str(exc))
                        continue
                walk(v, key_path)
        elif isinstance(value, list):
            for j, v in enumerate(value):
                walk(v, f"{where}[{j}]")

    walk(table, path)
    if problems:
        raise ConfigErrors(problems)


def _build(cls: type, d: dict[str, Any], prefix: str, check: ConfigCheck) -> Any:
    """``cls`` from table ``d``; each bad key is a problem in ``check`` (its default stands in,
    and the key's path is marked failed so later checks do not build on it). None when the
    table cannot be built at all (a required key is missing or bad)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("source_text", "base_dir")}
    kwargs = {}
    for key, value in d.items():
        path = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            check.add(path, f"unknown key {path!r}{did_you_mean(key, fields)}; "
                            f"allowed in {prefix or 'the top level'}: {', '.join(fields)}")
            continue
        tp = hints[key]
        try:
            if typing.get_origin(tp) is list and dataclasses.is_dataclass(typing.get_args(tp)[0]):
                kwargs[key] = _build_list(typing.get_args(tp)[0], key, value, path, check)
            else:
                kwargs[key] = _coerce(tp, value, path, check)
        except ConfigErrors as exc:
            for p in exc.problems:
                check.add(path, p)
            check.fail(path)
        except AdvtopoError as exc:
            check.add(path, str(exc))
    missing = [n for n, f in fields.items() if f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING and n not in kwargs]
    if missing:
        check.add(prefix, f"{prefix or 'the top level'} is missing required key(s): {', '.join(missing)}")
        return None
    try:
        return cls(**kwargs)
    except AdvtopoError as exc:  # a section's own checks (ExecutorConfig)
        check.add(prefix, str(exc))
        return None


def _build_list(item_type: type, key: str, value: Any, path: str, check: ConfigCheck) -> list[Any]:
    """An array of tables (``[[models]]``); each element is built on its own, so a mistake in
    one does not hide those of the others. An element that cannot be built at all fails the
    whole list (its index would shift the others')."""
    if isinstance(value, dict) and key in ("mapper",):
        value = [value]
    if not isinstance(value, list):
        raise AdvtopoError(f"{path} must be an array of tables ([[{path}]]), got {value!r}")
    items = []
    for j, v in enumerate(value):
        try:
            item = _coerce(item_type, v, f"{path}[{j}]", check)
        except ConfigErrors as exc:
            for p in exc.problems:
                check.add(f"{path}[{j}]", p)
            item = None
        except AdvtopoError as exc:
            check.add(f"{path}[{j}]", str(exc))
            item = None
        if item is None:
            check.fail(path)
        else:
            items.append(item)
    return items
