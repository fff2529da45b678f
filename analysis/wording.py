"""Counts and numbers as a reader expects them: "1 experiment", "2 experiments", "0%" rather
than "-0%" for a value that rounds to zero."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """"1 edge", "3 edges"; `plural` for nouns that do not take an s."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def without_negative_zero(value: float, digits: int) -> float:
    """`value`, or 0.0 where it rounds to zero at `digits` decimals, so that it prints without
    a minus sign ("-0.000" says nothing the reader can use)."""
    return 0.0 if round(value, digits) == 0 else value
