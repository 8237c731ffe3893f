"""Benchmark medians as ratios to the reference measured in the same run (`conftest`, `compare`).

A group's reference is its benchmark labelled ``floor`` (the label is what the name holds in
brackets: ``asgi[floor]``). Ratios measured in one run survive a noisy machine far better than
absolute times do, so these are what the summary prints and what `compare` checks.
"""

from __future__ import annotations

__all__ = ["REFERENCE", "label", "ratios"]

REFERENCE = "floor"

_PAIRS = [
    ("naive/compiled", "naive", "compiled"),
    ("fallback/compiled", "fallback", "compiled"),
    ("sync/hop", "sync", "hop"),
]


def label(name: str) -> str:
    """``asgi[sync]`` -> ``sync``; ``hot_path[compiled-tiny]`` -> ``compiled``."""
    return name.rsplit("[", 1)[-1].rstrip("]").split("-")[0]


def ratios(medians: dict[str, float]) -> list[tuple[str, float]]:
    """Each label's median over the reference's, then the fixed pairs, where both exist."""
    pairs = [(f"{each}/{REFERENCE}", each, REFERENCE) for each in sorted(medians)]
    return [
        (name, medians[top] / medians[bottom])
        for name, top, bottom in pairs + _PAIRS
        if top != bottom and top in medians and bottom in medians and medians[bottom] > 0
    ]
