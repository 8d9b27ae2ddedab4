"""What the command modules share: the subparsers type and argument helpers."""

from __future__ import annotations

import argparse
from typing import Any

Subparsers = Any  # argparse's _SubParsersAction (private in the standard library)


def positive(text: str) -> float:
    """A number > 0 (durations, intervals, the significance level)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def shared(parser: argparse.ArgumentParser, flag: str) -> dict:
    """The keyword arguments ``parser`` defined ``flag`` with (to define it again)."""
    action = next(a for a in parser._actions if flag in a.option_strings)
    return {"type": action.type, "default": action.default, "help": action.help,
            "choices": action.choices, "metavar": action.metavar}  # fmt: skip
