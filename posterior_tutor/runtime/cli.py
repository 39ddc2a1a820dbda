"""Command-line flags checked at parse time, for every command of the package.

Each function is an ``argparse`` ``type=``: it returns the parsed value or raises
``argparse.ArgumentTypeError`` with a message saying what is accepted.  argparse then prints the
usage line and ``prog: error: argument --flag: <message>`` and exits with code 2, before any work
starts (no traceback, no silent fallback).

    p = Parser(prog="python -m posterior_tutor bench")
    p.add_argument("--images", type=positive_int, default=None)
    p.add_argument("--device", type=device, default=None)
    p.add_argument("--out", type=writable_dir, default="bench_results")
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

__all__ = ["Parser", "positive_int", "nonnegative_int", "positive_float", "nonnegative_float",
           "probability", "boolean", "device", "writable_dir", "writable_file", "existing_file",
           "existing_dir", "choice"]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (plus the usage) and exit with code 2."""

    def error(self, message):  # argparse's own format, kept: usage, then "prog: error: ..."
        self.print_usage()
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int(text: str) -> int:
    try:
        value = float(text) if any(c in text for c in ".eE") else int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if isinstance(value, float):
        if not value.is_integer():
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
        value = int(value)
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (counts: steps, images, samples, batch size, threads)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """A whole number >= 0 (seeds, offsets)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _float(text: str, ok, accepted: str) -> float:
    """``text`` as a finite float for which ``ok(value)`` holds; else say what is ``accepted``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}") from None
    if not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, noise levels)."""
    return _float(text, lambda v: v > 0, "a finite number > 0")


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (weight decay, loss weights that may be switched off with 0)."""
    return _float(text, lambda v: v >= 0, "a finite number >= 0")


def probability(text: str) -> float:
    """A number in [0, 1]."""
    return _float(text, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def boolean(text: str) -> bool:
    """yes/no, true/false, on/off, 1/0 (any case); anything else is refused, never read as False."""
    low = str(text).strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected one of true/false, yes/no, on/off, 1/0, got {text!r}")


def device(text: str):
    """'cpu', 'cuda' or 'cuda:N', and present on this machine (``runtime.config.resolve_device``)."""
    from .config import resolve_device
    try:
        return resolve_device(text, what="the device")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def writable_dir(text: str) -> Path:
    """A folder that exists or can be created, and is not a file."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; give a folder (it is created if "
                                         "missing)")
    parent = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} lies under {str(parent)!r}, which is a file, "
                                         "not a folder")
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write under {str(parent)!r}: permission denied")
    return path


def writable_file(text: str) -> Path:
    """A file path whose folder exists or can be created (the file itself is replaced)."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give a file name")
    writable_dir(str(path.parent))
    return path


def existing_file(text: str) -> Path:
    """A file that exists."""
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return path


def existing_dir(text: str) -> Path:
    """A folder that exists."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {text!r}")
    return path


def choice(*accepted):
    """A ``type=`` accepting exactly one of ``accepted`` (strings); lists them when refused."""
    def parse(text: str) -> str:
        if text not in accepted:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(accepted)}")
        return text
    parse.__name__ = "choice"
    return parse
