"""The config file: read (every way a file can be unreadable is one line) and written back (``dumps_toml``)."""
from __future__ import annotations

import codecs
import os
import tomllib
from pathlib import Path
from typing import Any

from advtopo.errors import AdvtopoError


def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)


def dumps_toml(d: dict[str, Any]) -> str:
    """A minimal TOML writer for configs (tables, arrays of tables, inline sub-tables)."""
    lines: list[str] = []
    scalars = {k: v for k, v in d.items() if not isinstance(v, dict)
               and not (isinstance(v, list) and v and isinstance(v[0], dict))}
    for k, v in scalars.items():
        lines.append(f"{_key(k)} = {_toml_value(v)}")
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(f"\n[{_key(k)}]")
            lines.extend(f"{_key(kk)} = {_toml_value(vv)}" for kk, vv in v.items())
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                lines.append(f"\n[[{_key(k)}]]")
                lines.extend(f"{_key(kk)} = {_toml_value(vv)}" for kk, vv in item.items())
    return "\n".join(lines) + "\n"


def read_config_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """A study config file -> (its table, its text). Every way a file can be unreadable is one
    line: missing, a folder, no permission, not UTF-8 (UTF-16 and UTF-32 named as such; a UTF-8
    byte-order mark is accepted and dropped), not TOML."""
    path = Path(path)
    what = f"study config {path}"
    if not os.path.lexists(path):
        raise AdvtopoError(f"{what} does not exist")
    if path.is_dir():
        raise AdvtopoError(f"{what} is a folder; give the TOML file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AdvtopoError(f"{what} cannot be read: {exc.strerror or exc}") from None
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if raw.startswith(bom):
            raise AdvtopoError(f"{what} is {name} encoded; TOML files are UTF-8: save it as UTF-8 "
                               f"(e.g. iconv -f {name} -t UTF-8)")
    raw = raw.removeprefix(codecs.BOM_UTF8)
    if b"\x00" in raw[:4096]:
        raise AdvtopoError(f"{what} holds NUL bytes: it is not a text file (or it is UTF-16 without a "
                           "byte-order mark); save it as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise AdvtopoError(f"{what} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
                           "save it as UTF-8") from None
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AdvtopoError(f"{what} is not valid TOML: {exc}") from None
    except RecursionError:
        raise AdvtopoError(f"{what} nests arrays or tables too deeply to read") from None
    return d, text
