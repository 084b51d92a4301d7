"""The reliability suite's tally as one JSON line: bad inputs tried, clear errors, raw tracebacks, wrong behaviour;
crash points injected and recovered; concurrent-writer runs and items lost; PHI markers found.

Runs ``pytest tests/reliability`` (``--runslow`` adds the long fuzzing profiles) and reads the tally its conftest
writes (see ``tests/reliability/conftest.py`` for how tests are classified).

    python benchmarks/bench_reliability.py [--runslow]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runslow", action="store_true", help="more fuzzing examples")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tally.json"
        env = {**os.environ, "KGCLIP_RELIABILITY_OUT": str(out)}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(repo / "tests" / "reliability")]
        proc = subprocess.run(cmd + (["--runslow"] if args.runslow else []), cwd=repo, env=env)
        tally = json.loads(out.read_text()) if out.is_file() else {}
    get = lambda key: int(tally.get(key, 0))  # noqa: E731
    summary = {
        "bad_inputs_tried": get("bad_input_tried"),
        "clear_errors": get("bad_input_ok"),
        "raw_tracebacks": get("bad_input_traceback"),
        "wrong_behaviour": get("bad_input_wrong"),
        "bad_inputs_skipped": get("bad_input_skipped"),
        "crash_points_injected": get("crash_tried") - get("crash_skipped"),
        "crash_points_recovered": get("crash_ok"),
        "crash_points_skipped": get("crash_skipped"),
        "concurrent_runs": get("concurrent_tried"),
        "concurrent_runs_losing_items": get("concurrent_tried") - get("concurrent_ok") - get("concurrent_skipped"),
        "phi_checks": get("phi_tried"),
        "phi_checks_failed": get("phi_tried") - get("phi_ok") - get("phi_skipped"),
        "pytest_exit_code": proc.returncode,
    }
    print(json.dumps(summary))
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
