"""Cold start of ``kgclip ask`` (issue 19): wall time of a fresh process answering one question on the demo
workspace, of a fresh process refusing a bad input (a missing image), and of ``python -c "import torch"`` in the
same run, the floor every torch-based command pays.

Usage: python benchmarks/bench_cold_start.py [--workspace indexes/demo] [--repeats 3]
Builds the demo workspace first when it is missing (not timed). Goals: ask_cold_s <= 4, bad_input_s < 1.
Prints one JSON line last: ask_cold_s, bad_input_s, torch_import_s (medians over the repeats) and the ratio
ask_vs_torch_import.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _wall(cmd: list[str], expect_rc: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != expect_rc:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}, expected {expect_rc}:\n{proc.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspace", default="indexes/demo")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from kgclip.engine import shipped_demo_dir

    workspace = Path(args.workspace)
    if not (workspace / "manifest.json").is_file():
        from kgclip.engine.demo import run_demo

        print(f"building the demo workspace in {workspace} (not timed)", file=sys.stderr)
        run_demo(workspace, show_progress=False)
    image = sorted((shipped_demo_dir() / "images").glob("*.jpg"))[0]
    kgclip = [sys.executable, "-m", "kgclip"]
    ask = kgclip + ["ask", str(image), "Is there a fracture?", "--workspace", str(workspace), "--json"]
    bad = kgclip + ["ask", str(workspace / "no-such-image.dcm"), "Is there a fracture?", "--workspace",
                    str(workspace)]
    torch = [sys.executable, "-c", "import torch"]
    _wall(ask, 0)  # warm the OS file cache once: "cold" here means a fresh process, not a cold disk
    runs: dict[str, list[float]] = {"ask_cold_s": [], "bad_input_s": [], "torch_import_s": []}
    for _ in range(max(1, args.repeats)):
        runs["torch_import_s"].append(_wall(torch, 0))
        runs["ask_cold_s"].append(_wall(ask, 0))
        runs["bad_input_s"].append(_wall(bad, 1))
    result = {key: round(statistics.median(values), 3) for key, values in runs.items()}
    result["ask_vs_torch_import"] = round(result["ask_cold_s"] / max(result["torch_import_s"], 1e-9), 2)
    result |= {"repeats": max(1, args.repeats), "workspace": str(workspace), "cpu_count": os.cpu_count(),
               "load_1min": round(os.getloadavg()[0], 2)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
