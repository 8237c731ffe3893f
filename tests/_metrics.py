"""Reading a ``/metrics`` scrape in tests: its samples, and ``promtool check metrics`` on it."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["check_with_promtool", "samples"]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition: (name, labels) -> value. A label whose
    value is empty is left out, as Prometheus does."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = frozenset((key, value) for key, value in sample.labels.items() if value)
            found[sample.name, labels] = sample.value
    return found


def check_with_promtool(text: str) -> None:
    """``promtool check metrics`` passes on ``text`` (skips, saying why, without promtool)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus; .ci/run does)")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60
    )
    problems = (checked.stdout + checked.stderr).decode()
    assert checked.returncode == 0 and not problems.strip(), problems
