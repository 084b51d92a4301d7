"""Session-15 check: are open questions that ask for a finding answered with one? On a ``kgclip eval vqa-rad --dump``.

    kgclip eval vqa-rad DATA --split val --acquisition-medpix MEDPIX --dump rows.jsonl --json
    python benchmarks/exp_answer_kinds.py rows.jsonl [more.jsonl ...]

For each dump (one row per scored question: question, gold, predicted answer, source, abstained), over the open
questions that ask for a finding or disease (``kgclip.rag.grounding.asks_for_finding``: "What does the blunting of
the costophrenic angles indicate?", "What is the pathology?"): how many, how many were answered with a finding or
disease (the answer links to a concept ``kgclip.rag.consensus.is_finding`` accepts), how many abstained, how many
were right. Compare dumps of two versions run on the same split to see what a change did. Prints one JSON line last.

Session 15 (VQA-RAD ``--split val``, 99 such questions; ``results/eval_vqa_rad_val_s15.json`` is the second run):
before the answers from the similar cases' words were kept to findings, 5 were answered with a finding or disease
(the others with "abdomen", "lung", "coronal", ...), 27 abstained, none right; after, 72, 27 and 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dumps", nargs="+", help="JSONL files written by kgclip eval vqa-rad --dump")
    args = parser.parse_args(argv)

    from kgclip.ontology.store import load_ontologies
    from kgclip.rag.concepts import ConceptTagger
    from kgclip.rag.consensus import is_finding
    from kgclip.rag.grounding import asks_for_finding

    graph = load_ontologies()
    tagger = ConceptTagger(graph)
    out: dict = {"dumps": {}}
    for path in args.dumps:
        rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        asked = [r for r in rows if not r["closed"] and asks_for_finding(r["question"])]
        out["dumps"][path] = {
            "finding_questions": len(asked),
            "answered_with_finding": sum(any(is_finding(graph, m.concept_id) for m in tagger.link(r["predicted"]))
                                         for r in asked),
            "abstained": sum(bool(r["abstained"]) for r in asked),
            "right": sum(bool(r["hit"]) for r in asked),
        }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
