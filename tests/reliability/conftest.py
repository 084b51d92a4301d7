"""The reliability suite's tally: each test here is one bad input, crash point, concurrent-writer run or PHI check.

A test is classified by its name: ``crash`` -> a crash point injected (passed = recovered), ``concurrent`` -> a
concurrent-writer run (passed = nothing lost), ``phi`` -> a PHI check (passed = no marker found), anything else -> a
bad input (passed = a clear ``KgclipError`` or documented skip). A failing bad-input test is a *raw traceback* when an
exception other than pytest's own assertion escaped, and *wrong behaviour* when an assertion failed (for example no
error where one was due). Each parametrized case counts once. ``benchmarks/bench_reliability.py`` runs this folder
with ``KGCLIP_RELIABILITY_OUT`` set and prints the tally as one JSON line.
"""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

_TALLY: Counter[str] = Counter()


def _category(name: str) -> str:
    lowered = name.lower()
    for key in ("crash", "concurrent", "phi"):
        if key in lowered:
            return key
    return "bad_input"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" and not (report.when == "setup" and report.skipped):
        return
    category = _category(item.name)
    _TALLY[f"{category}_tried"] += 1
    if report.skipped:
        _TALLY[f"{category}_skipped"] += 1
    elif report.passed:
        _TALLY[f"{category}_ok"] += 1
    elif call.excinfo is not None and call.excinfo.errisinstance(AssertionError):
        _TALLY[f"{category}_wrong"] += 1
    else:
        _TALLY[f"{category}_traceback"] += 1


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("KGCLIP_RELIABILITY_OUT")
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            json.dump(dict(_TALLY), handle)
