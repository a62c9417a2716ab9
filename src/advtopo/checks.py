"""Value checks shared by the study config, the command line and the public API.

Why one module: a seed, a count, an eps or an output path is the same value whether it comes
from a TOML file, a flag or a keyword argument, so the same rule (and the same message) applies
everywhere. Each ``check_*`` raises :class:`advtopo.errors.AdvtopoError` naming the parameter
and what is allowed; each ``arg_*`` is an argparse ``type=`` built on them (argparse turns its
error into ``advtopo CMD: error: argument --flag: ...`` and exit code 2). Importing this module
is cheap: no numpy, no torch.
"""
from __future__ import annotations

import argparse
import math
import numbers
import os
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advtopo.errors import AdvtopoError

SEED_LIMIT = 2 ** 32  # numpy's and torch's generators take seeds in [0, 2**32)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """An integer (not a bool, not a float) in [lo, hi]."""
    if not _is_int(value):
        raise AdvtopoError(f"{name}={value!r} must be an integer{_range_text(lo, hi)}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise AdvtopoError(f"{name}={value} is out of range; allowed: an integer{_range_text(lo, hi)}")
    return value


def check_seed(name: str, value: Any) -> int:
    """A seed: an integer in [0, 2**32) (what numpy and torch accept)."""
    if not _is_int(value) or not 0 <= int(value) < SEED_LIMIT:
        raise AdvtopoError(f"{name}={value!r} is not a valid seed; allowed: an integer from 0 to 2**32 - 1 "
                           f"({SEED_LIMIT - 1})")
    return int(value)


def check_number(name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
                 lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number (not a bool, not NaN or inf) in the given range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AdvtopoError(f"{name}={value!r} must be a number{_interval_text(lo, hi, lo_open, hi_open)}")
    value = float(value)
    if not math.isfinite(value):
        raise AdvtopoError(f"{name}={value} must be a finite number{_interval_text(lo, hi, lo_open, hi_open)}")
    if ((lo is not None and (value < lo or (lo_open and value == lo)))
            or (hi is not None and (value > hi or (hi_open and value == hi)))):
        allowed = _interval_text(lo, hi, lo_open, hi_open)
        raise AdvtopoError(f"{name}={value:g} is out of range; allowed: a number{allowed}")
    return value


def _range_text(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f" from {lo} to {hi}"
    if lo is not None:
        return f" >= {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""


def _interval_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {hi:g}"
    return ""


# --- paths ---------------------------------------------------------------------------------------

def _named(name: str, text: str) -> str:
    """``name: text``; just ``text`` for an unnamed value (argparse names the flag itself)."""
    return f"{name}: {text}" if name else text


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (a dangling symlink counts as existing)."""
    p = path
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _check_creatable(name: str, path: Path) -> None:
    """Every missing folder on the way to ``path`` can be created: the closest existing
    ancestor is a folder we may write into."""
    anc = _nearest_existing(path.parent if not os.path.lexists(path) else path)
    if not anc.is_dir():
        raise AdvtopoError(_named(name, f"{path} cannot be created: {anc} is a file, not a folder"))
    if not os.access(anc, os.W_OK | os.X_OK):
        raise AdvtopoError(_named(name, f"{path} cannot be written: no write permission in {anc}"))


def _check_component_lengths(name: str, path: Path) -> None:
    """No part of the path is longer than a file system takes (255 bytes on Linux, macOS, Windows)."""
    for part in path.parts:
        if len(os.fsencode(part)) > 255:
            raise AdvtopoError(_named(name, f"{part[:30]}... has {len(os.fsencode(part))} bytes; a file or folder "
                                            "name may have at most 255"))


def check_output_dir(name: str, path: str | os.PathLike[str]) -> Path:
    """A folder to write into: empty text, an existing file, a file on the way or an
    unwritable parent are errors now, before any work."""
    if not str(path).strip():
        raise AdvtopoError(_named(name, "the path is empty; give a folder"))
    p = Path(path).expanduser()
    _check_component_lengths(name, p)
    if os.path.lexists(p) and not p.is_dir():
        raise AdvtopoError(_named(name, f"{p} is a file, not a folder"))
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise AdvtopoError(_named(name, f"no write permission in {p}"))
        return p
    _check_creatable(name, p)
    return p


def check_output_file(name: str, path: str | os.PathLike[str]) -> Path:
    """A file to write: not a folder, and its folder exists or can be created."""
    if not str(path).strip():
        raise AdvtopoError(_named(name, "the path is empty; give a file name"))
    p = Path(path).expanduser()
    _check_component_lengths(name, p)
    if p.is_dir():
        raise AdvtopoError(_named(name, f"{p} is a folder; give a file name"))
    if str(path).endswith(("/", os.sep)):
        raise AdvtopoError(_named(name, f"{path} ends with a path separator; give a file name"))
    if os.path.lexists(p):
        if not os.access(p, os.W_OK) or not os.access(p.parent, os.W_OK | os.X_OK):
            raise AdvtopoError(_named(name, f"{p} cannot be replaced: no write permission"))
        return p
    _check_creatable(name, p)
    return p


def check_input_file(name: str, path: str | os.PathLike[str]) -> Path:
    """A file to read: exists, is a file, may be read."""
    p = Path(path).expanduser()
    if not os.path.lexists(p):
        raise AdvtopoError(_named(name, f"{p} does not exist"))
    if p.is_dir():
        raise AdvtopoError(_named(name, f"{p} is a folder, not a file"))
    if not p.exists():
        raise AdvtopoError(_named(name, f"{p} is a broken symbolic link"))
    if not os.access(p, os.R_OK):
        raise AdvtopoError(_named(name, f"{p} cannot be read: no read permission"))
    return p


def check_template(name: str, template: str, fields: dict[str, str]) -> str:
    """A ``str.format`` template that uses only ``fields`` (``runs/{name}``); returns it filled in."""
    allowed = ", ".join("{" + f + "}" for f in fields)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise AdvtopoError(f"{name}={template!r} is not a valid template ({exc}); use {allowed} "
                           "and write a literal brace as {{ or }}") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in fields:
            from advtopo.errors import did_you_mean

            what = f"{{{field}}}" if field else "{}"
            raise AdvtopoError(f"{name}={template!r} uses {what}{did_you_mean(field, fields)}; allowed: {allowed} "
                               "(write a literal brace as {{ or }})")
        if spec or conversion:
            raise AdvtopoError(f"{name}={template!r}: write {{{field}}} without a format spec or conversion")
    return template.format(**fields)


# --- argparse types --------------------------------------------------------------------------------

def _arg_type(check: Callable[[str], Any], label: str) -> Callable[[str], Any]:
    """An argparse ``type=`` that turns an AdvtopoError into argparse's one-line usage error."""
    def parse(text: str) -> Any:
        try:
            return check(text)
        except AdvtopoError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix("value=")) from None
    parse.__name__ = label  # argparse names the type in "invalid <name> value" messages
    return parse


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise AdvtopoError(f"{text!r} is not an integer") from None


def _parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise AdvtopoError(f"{text!r} is not a number") from None


def arg_int(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """argparse type: an integer in [lo, hi]."""
    return _arg_type(lambda t: check_int("value", _parse_int(t), lo, hi), "integer")


positive_int = arg_int(1)
nonnegative_int = arg_int(0)


def arg_float(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
              hi_open: bool = False) -> Callable[[str], float]:
    """argparse type: a finite number in the given range (NaN and inf refused)."""
    return _arg_type(lambda t: check_number("value", _parse_float(t), lo, hi, lo_open=lo_open, hi_open=hi_open),
                     "number")


arg_seed = _arg_type(lambda t: check_seed("value", _parse_int(t)), "seed")
arg_input_file = _arg_type(lambda t: str(check_input_file("", t)), "file")
arg_output_file = _arg_type(lambda t: str(check_output_file("", t)), "output file")
arg_output_dir = _arg_type(lambda t: str(check_output_dir("", t)), "output folder")


def arg_float_list(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                   hi_open: bool = False) -> Callable[[str], list[float]]:
    """argparse type: comma-separated finite numbers in the given range, at least one."""
    def parse(text: str) -> list[float]:
        parts = [p for p in text.split(",") if p.strip()]
        if not parts:
            raise AdvtopoError(f"{text!r} holds no numbers; give a comma-separated list such as 0,0.1,0.3")
        return [check_number("value", _parse_float(p), lo, hi, lo_open=lo_open, hi_open=hi_open) for p in parts]
    return _arg_type(parse, "list of numbers")
