"""Cold start of the CLI: `kgclip ask` on a workspace and a bad-input `kgclip ask`, each from a fresh process,
against `python -c "import torch"` in the same run (this machine is shared: compare ratios, not seconds).

    python benchmarks/bench_cold_start.py [--workspace indexes/demo] [--repeats 3]

Without --workspace the demo workspace is built in a temporary folder first (not timed). Prints one JSON line last:
ask_cold_s, bad_input_s, torch_import_s (medians), their ratios, and the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _wall(cmd: list[str], expect_ok: bool) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if (proc.returncode == 0) != expect_ok:
        raise SystemExit(f"{cmd[:4]}... exited {proc.returncode}: {proc.stderr[-800:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", help="a workspace built by `kgclip demo` (default: build one now)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from kgclip.data.demo import demo_vqa_rad_dir

    tmp = Path(tempfile.mkdtemp(prefix="kgclip-cold-"))
    try:
        workspace = Path(args.workspace) if args.workspace else tmp / "demo"
        kgclip = [sys.executable, "-m", "kgclip"]
        if not args.workspace:
            subprocess.run(kgclip + ["demo", "--out", str(workspace), "--quiet"], check=True, capture_output=True)
        image = str(sorted((demo_vqa_rad_dir() / "images").glob("*.jpg"))[0])
        ask = kgclip + ["ask", image, "Is there a pleural effusion?", "--workspace", str(workspace)]
        bad = kgclip + ["ask", str(tmp / "missing.dcm"), "Is there a pleural effusion?", "--workspace", str(workspace)]
        torch_import = [sys.executable, "-c", "import torch"]
        _wall(torch_import, True)  # warm the OS file cache alike for every command
        _wall(ask, True)
        runs: dict[str, list[float]] = {"ask": [], "bad": [], "torch": []}
        for _ in range(args.repeats):  # interleaved, so load on the machine hits each alike
            runs["torch"].append(_wall(torch_import, True))
            runs["ask"].append(_wall(ask, True))
            runs["bad"].append(_wall(bad, False))
        med = {k: statistics.median(v) for k, v in runs.items()}
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        print(json.dumps({"ask_cold_s": round(med["ask"], 3), "bad_input_s": round(med["bad"], 3),
                          "torch_import_s": round(med["torch"], 3),
                          "ask_over_torch_import": round(med["ask"] / med["torch"], 2),
                          "bad_input_over_torch_import": round(med["bad"] / med["torch"], 2),
                          "repeats": args.repeats, "load_average_1min": load}))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
