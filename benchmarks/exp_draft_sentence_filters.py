"""Session-11 experiment: three draft sentence filters, each switched off and on over the same MedPix *val* drafts.

    python benchmarks/exp_draft_sentence_filters.py [--seeds 0,1,2] [--medpix DIR]

The filters (figures in :mod:`kgclip.rag.report`'s docstring and ``benchmarks/results/exp_draft_fixes_val_s11.json``):

- ``dangling``: a findings sentence opening by pointing back ("It measures 8 mm.", "These findings are consistent
  with ...") votes but is not drafted (:attr:`kgclip.data.sections.SectionSentence.dangling`);
- ``seen``: a sentence naming, anywhere, the study its finding was seen on ("... seen on CXR.") carries that
  modality, so a draft of another modality leaves it out (``sections._MODALITY_SEEN``);
- ``ruled``: the impression never names a disease under a finding the draft negates
  (:func:`kgclip.rag.impression._ruled_out`).

"Off" restores the earlier behaviour by replacing those three hooks in this process only. Each variant drafts every
val query of each carve seed with the engine's defaults (as ``kgclip eval report --split val --no-select``), and
every variant's drafts are judged with the new detectors: ``mod_viol_per_report`` (drafted sentences naming another
modality), ``dangling_per_report``, findings concept F1 (exact linking, paired bootstrap 95 % CI against ``old``),
and the impression's diagnosis hits (lead / any line names the case's diagnosis, summed over seeds). MedPix dev is
never read. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kgclip.config import dataset_dir  # noqa: E402 - after the sys.path insert above

VARIANTS = {"old": (), "dangling": ("dangling",), "seen": ("seen",), "new": ("dangling", "seen", "ruled")}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="val carve-out seeds (comma-separated)")
    parser.add_argument("--medpix", default=None, help="MedPix 2.0 folder (default: the shared data)")
    args = parser.parse_args(argv)

    from kgclip.data import sections as S
    from kgclip.eval import report as R
    from kgclip.eval.report_select import MemoTagger, draft_reports
    from kgclip.ontology.store import load_ontologies
    from kgclip.rag import impression as IMP
    from kgclip.rag import report_scope as RS
    from kgclip.rag.concepts import ConceptTagger
    from kgclip.rag.consensus import GraphExpander
    from kgclip.rag.regions import BodyRegions
    from kgclip.stats import bootstrap_ci

    medpix = dataset_dir(args.medpix, "medpix-2.0")
    graph = load_ontologies()
    tagger = MemoTagger(ConceptTagger(graph))
    new = {"dangling": S.SectionSentence.dangling, "seen": S._MODALITY_SEEN, "ruled": IMP._ruled_out}
    off = {"dangling": property(lambda self: False), "seen": re.compile("(?!x)x"),
           "ruled": lambda expander, cid, negated: cid in negated}

    def switch(on: tuple[str, ...]) -> None:
        pick = {k: (new if k in on else off)[k] for k in new}
        S.SectionSentence.dangling = pick["dangling"]
        S._MODALITY_SEEN = pick["seen"]
        IMP._ruled_out = pick["ruled"]
        RS._sentences_of.cache_clear()  # memoised sentence splits were made with the other hooks

    res = {v: {"f1": [], "dx_lead": 0.0, "dx_any": 0.0, "mod_viol": [], "dangling": []} for v in VARIANTS}
    seeds = [int(s) for s in args.seeds.split(",")]
    try:
        for seed in seeds:
            data, val, priors, scorer = R.carved_val(medpix, seed, tagger, graph)
            for name, on in VARIANTS.items():
                switch(on)
                cfg = R.ENGINE_DRAFT
                reps = draft_reports(data, val, R.ENGINE_RETRIEVAL, cfg, tagger=tagger, graph=graph,
                                     expander=GraphExpander(graph, cfg.graph_hops), regions=BodyRegions(graph),
                                     priors=priors)
                fig = R.draft_figures(data, val, reps, scorer, tagger, graph)
                res[name]["f1"] += fig["concept_f1"]
                res[name]["dx_lead"] += fig["dx_lead"]
                res[name]["dx_any"] += fig["dx_any"]
                switch(tuple(new))  # every variant's drafts judged by the new detectors
                for r in reps:
                    res[name]["mod_viol"].append(sum(RS.other_modality(x.modality, r.modality or "")
                                                     for s in r.findings for x in S.report_sentences(s.text)))
                    res[name]["dangling"].append(sum(bool(S._DANGLING.match(s.text)) for s in r.findings))
    finally:
        switch(tuple(new))
    base = np.array(res["old"]["f1"])
    out: dict = {"split": "val", "seeds": seeds, "n": len(base)}
    for name in VARIANTS:
        f1 = np.array(res[name]["f1"])
        out[name] = {"concept_f1": round(float(f1.mean()), 4), "minus_old_ci": bootstrap_ci(f1 - base, seed=0),
                     "changed": int((f1 != base).sum()), "dx_lead": round(res[name]["dx_lead"]),
                     "dx_any": round(res[name]["dx_any"]),
                     "mod_viol_per_report": round(float(np.mean(res[name]["mod_viol"])), 4),
                     "dangling_per_report": round(float(np.mean(res[name]["dangling"])), 4)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
