"""Web app overhead and a bounded concurrent burst, against calling the Engine directly in the same run.

Starts `kgclip serve`'s app with uvicorn on 127.0.0.1 (a free port) over a workspace (default: builds the demo in a
temporary folder), then measures p50/p95 latency of ask and draft through HTTP and through ``Engine`` directly on the
same uploaded image, and sends a burst of concurrent requests (asks and curation edits of a temporary copy of a
shipped ontology) checking that none errs and no edit is lost. Traffic goes to 127.0.0.1 only; the burst is bounded.

    python benchmarks/bench_serve.py [--workspace indexes/demo] [--repeats 10] [--burst 50]

Prints one JSON line last: ask_p50_http_s, ask_p50_direct_s, ask_overhead_ratio, draft_* likewise, burst_requests,
burst_errors, burst_edits_lost.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", help="engine workspace (default: build the demo in a temp dir)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--burst", type=int, default=50)
    args = parser.parse_args(argv)

    import httpx
    import uvicorn

    from kgclip.cli.main import main as kgclip_main
    from kgclip.data.demo import demo_vqa_rad_dir
    from kgclip.engine import Engine
    from kgclip.ontology.changelog import CHANGELOG_FILE, Changelog
    from kgclip.ontology.store import shipped_ontology_dirs
    from kgclip.serve.app import create_app
    from kgclip.serve.config import ServeConfig

    tmp = Path(tempfile.mkdtemp(prefix="kgclip-bench-serve-"))
    try:
        workspace = Path(args.workspace) if args.workspace else tmp / "demo"
        if not args.workspace:
            assert kgclip_main(["demo", "--out", str(workspace), "--quiet"]) == 0
        onto = tmp / "doid"
        shutil.copytree([d for d in shipped_ontology_dirs() if d.name == "doid"][0], onto)
        image_path = sorted((demo_vqa_rad_dir() / "images").glob("*.jpg"))[0]
        question = "Is there a pleural effusion?"

        engine = Engine.load(workspace)
        port = _free_port()
        app = create_app(ServeConfig(workspace=workspace, ontologies=(onto,), port=port), engine=engine)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=base, timeout=300)
        client.get("/api/ontology")
        headers = {"X-CSRF-Token": client.cookies["kgclip_csrf"]}
        upload = client.post("/api/upload", headers=headers,
                             files={"file": ("x.jpg", image_path.read_bytes(), "image/jpeg")}).json()["upload"]
        image = app.state.kgclip.uploads.get(upload).image

        timings: dict[str, list[float]] = {k: [] for k in ("ask_http", "ask_direct", "draft_http", "draft_direct")}
        engine.ask(image, question), engine.draft_report(image)  # warm caches on both paths alike
        for _ in range(args.repeats):
            t = time.perf_counter()
            engine.ask(image, question)
            timings["ask_direct"].append(time.perf_counter() - t)
            t = time.perf_counter()
            client.post("/api/ask", headers=headers, json={"upload": upload, "question": question}).raise_for_status()
            timings["ask_http"].append(time.perf_counter() - t)
            t = time.perf_counter()
            engine.draft_report(image)
            timings["draft_direct"].append(time.perf_counter() - t)
            t = time.perf_counter()
            client.post("/api/draft", headers=headers, json={"upload": upload}).raise_for_status()
            timings["draft_http"].append(time.perf_counter() - t)

        edits_before = len(Changelog.load(onto / CHANGELOG_FILE).entries)

        def one(i: int) -> int:
            with httpx.Client(base_url=base, timeout=600) as c:
                c.get("/api/ontology")
                h = {"X-CSRF-Token": c.cookies["kgclip_csrf"]}
                if i % 2:
                    return c.post("/api/ask", headers=h, json={"upload": upload, "question": question}).status_code
                body = {"id": f"DOID:99{i:05d}", "name": f"bench concept {i}", "parents": ["DOID:4"],
                        "author": "bench", "reason": "burst"}
                return c.post("/api/ontology/doid/edit/add_concept", headers=h, json=body).status_code

        with ThreadPoolExecutor(args.burst) as pool:
            codes = list(pool.map(one, range(args.burst)))
        n_edits = sum(1 for i in range(args.burst) if i % 2 == 0)
        edits_after = len(Changelog.load(onto / CHANGELOG_FILE).entries)
        server.should_exit = True

        p50 = {k: statistics.median(v) for k, v in timings.items()}
        out = {
            "ask_p50_http_s": round(p50["ask_http"], 4), "ask_p95_http_s": round(_pct(timings["ask_http"], 0.95), 4),
            "ask_p50_direct_s": round(p50["ask_direct"], 4),
            "ask_p95_direct_s": round(_pct(timings["ask_direct"], 0.95), 4),
            "ask_overhead_ratio": round(p50["ask_http"] / p50["ask_direct"], 3),
            "draft_p50_http_s": round(p50["draft_http"], 4),
            "draft_p95_http_s": round(_pct(timings["draft_http"], 0.95), 4),
            "draft_p50_direct_s": round(p50["draft_direct"], 4),
            "draft_p95_direct_s": round(_pct(timings["draft_direct"], 0.95), 4),
            "draft_overhead_ratio": round(p50["draft_http"] / p50["draft_direct"], 3),
            "burst_requests": args.burst, "burst_errors": sum(c != 200 for c in codes),
            "burst_edits_lost": n_edits - (edits_after - edits_before), "repeats": args.repeats,
        }
        print(json.dumps(out))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
