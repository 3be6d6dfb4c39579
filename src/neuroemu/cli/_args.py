"""Argument types shared by the CLI modules."""
from __future__ import annotations

import argparse


def int_list(text: str) -> list[int]:
    """Parse ``"1,2,3"`` into ``[1, 2, 3]`` (an argparse type; errors name the text)."""
    try:
        vals = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not vals:
        raise argparse.ArgumentTypeError("empty list")
    return vals
