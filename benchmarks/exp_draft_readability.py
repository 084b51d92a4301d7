"""Session-13 experiment: changes for drafts a radiologist can read, switched off and on over the same MedPix *val*
drafts.

    python benchmarks/exp_draft_readability.py [--seeds 0,1,2] [--medpix DIR]

The changes (a radiologist's reading of 14 drafts found 27 of 57 findings sentences repeated verbatim across drafts,
16 pointing at what was not drafted, and an appendicitis impression under "Normal appendix."):

- ``pointing``: a sentence naming a lesion as already known ("The mass has ...", "The lesion abuts ...") or one of
  several ("The largest measures ...", "The remainder of ..."), or pointing at the images ("All confirm ...", "More
  lateral FSE ...") is not drafted (``sections._DANGLING``), and a figure label ("Figure 1: Axial CT ...") is a
  sentence break (``sections._FIGURE_LABEL``);
- ``technique`` (measured, not kept): technique and side words (axial coronal sagittal oblique transverse contrast
  noncontrast intravenous oral enhanced weighted sequence(s) view(s) scan(s) study studies exam examination obtained
  performed acquired radiograph(s) film(s) mri left right side sided) left out of the words the similar cases agree
  on. It changes nothing at ``word_weight`` 0 (``kgclip eval report``'s drafter); with the Engine's
  ``word_weight`` 1 (before this session), concept F1 +0.0014 [-0.0044, 0.0064], ROUGE-L 0.139 -> 0.127, repeated
  share 0.752 -> 0.751;
- ``normal``: the impression never names a disease of an organ a drafted sentence calls normal
  (``impression._of_normal_organ``).

Measured (session 13, ``benchmarks/results/exp_draft_readability_val_s13.json``): ``pointing`` 0.18 -> 0 such
sentences per draft, concept F1 0.1338 -> 0.1342, +0.0004 [-0.0012, 0.002], 43 drafts changed; ``normal`` changes no
val draft at these settings (with the Engine's old defaults, ``--draft engine`` before they became ``ENGINE_DRAFT``:
1 -> 0 drafts naming a disease of an organ called normal). ``repeated_share`` is 0.85 either way: most drafted
sentences recur across drafts, the drafter's real fault (image similarity that does not follow the finding).

"Off" restores the earlier behaviour in this process only. Each variant drafts every val query of each carve seed
with the engine's defaults (as ``kgclip eval report --split val --no-select``). Figures: findings concept F1 (exact
linking; paired bootstrap 95 % CI against ``old``), ROUGE-L, the impression's diagnosis hits (lead / any line, summed
over seeds), ``repeated_share`` (drafted findings sentences whose text is drafted for >= 3 queries of the same seed),
``pointing_per_report`` (drafted sentences the new ``_DANGLING`` flags), ``normal_organ_dx`` (drafts whose
impression names a disease of an organ their findings call normal) and sentences per draft. MedPix dev is never
read. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kgclip.config import dataset_dir  # noqa: E402 - after the sys.path insert above

VARIANTS = {"old": (), "pointing": ("pointing",), "normal": ("normal",), "new": ("pointing", "normal")}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="val carve-out seeds (comma-separated)")
    parser.add_argument("--medpix", default=None, help="MedPix 2.0 folder (default: the shared data)")
    parser.add_argument("--draft", choices=("eval", "engine"), default="eval",
                        help="eval: kgclip eval report's drafter (kgclip.eval.report.ENGINE_DRAFT); engine: the "
                             "Engine's default DraftConfig()")
    args = parser.parse_args(argv)

    from kgclip.data import sections as S
    from kgclip.engine.config import EngineConfig
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
    new = {"pointing": (S._DANGLING, S._FIGURE_LABEL), "normal": IMP._of_normal_organ}
    off = {"pointing": (re.compile(r"(?i)^(?:it|its|they|their|them|these|those|this)\b"), re.compile("(?!x)x")),
           "normal": lambda expander, cid, normal: False}

    def switch(on: tuple[str, ...]) -> None:
        pick = {k: (new if k in on else off)[k] for k in new}
        S._DANGLING, S._FIGURE_LABEL = pick["pointing"]
        IMP._of_normal_organ = pick["normal"]
        RS._sentences_of.cache_clear()  # memoised sentence splits were made with the other hooks

    keys = ("f1", "rouge", "pointing", "normal_dx", "n_sent")
    res = {v: {**{k: [] for k in keys}, "dx_lead": 0.0, "dx_any": 0.0, "repeated": 0, "drafted": 0} for v in VARIANTS}
    seeds = [int(s) for s in args.seeds.split(",")]
    expander3 = GraphExpander(graph, IMP.NEGATION_HOPS)
    try:
        for seed in seeds:
            data, val, priors, scorer = R.carved_val(medpix, seed, tagger, graph)
            for name, on in VARIANTS.items():
                switch(on)
                cfg = R.ENGINE_DRAFT if args.draft == "eval" else EngineConfig().draft
                reps = draft_reports(data, val, R.ENGINE_RETRIEVAL, cfg, tagger=tagger, graph=graph,
                                     expander=GraphExpander(graph, cfg.graph_hops), regions=BodyRegions(graph),
                                     priors=priors)
                fig = R.draft_figures(data, val, reps, scorer, tagger, graph)
                res[name]["f1"] += fig["concept_f1"]
                res[name]["rouge"] += fig["rouge_l"]
                res[name]["dx_lead"] += fig["dx_lead"]
                res[name]["dx_any"] += fig["dx_any"]
                switch(tuple(new))  # every variant's drafts judged by the new detectors
                drafted = Counter(" ".join(s.text.lower().split()) for r in reps for s in r.findings)
                for r in reps:
                    res[name]["n_sent"].append(len(r.findings))
                    res[name]["pointing"].append(sum(bool(S._DANGLING.match(s.text)) for s in r.findings))
                    normal = IMP._called_normal(r.findings, expander3)
                    res[name]["normal_dx"].append(any(IMP._of_normal_organ(expander3, x.concepts[0], normal)
                                                      for x in r.impression if x.concepts))
                    res[name]["repeated"] += sum(drafted[" ".join(s.text.lower().split())] >= 3 for s in r.findings)
                    res[name]["drafted"] += len(r.findings)
    finally:
        switch(tuple(new))
    base = np.array(res["old"]["f1"])
    out: dict = {"split": "val", "seeds": seeds, "n": len(base), "draft": args.draft}
    for name in VARIANTS:
        f1 = np.array(res[name]["f1"])
        r = res[name]
        out[name] = {"concept_f1": round(float(f1.mean()), 4), "minus_old_ci": bootstrap_ci(f1 - base, seed=0),
                     "changed": int((f1 != base).sum()), "rouge_l": round(float(np.mean(r["rouge"])), 4),
                     "dx_lead": round(r["dx_lead"]), "dx_any": round(r["dx_any"]),
                     "repeated_share": round(r["repeated"] / max(r["drafted"], 1), 4),
                     "pointing_per_report": round(float(np.mean(r["pointing"])), 4),
                     "normal_organ_dx": int(sum(r["normal_dx"])),
                     "sentences_per_report": round(float(np.mean(r["n_sent"])), 3)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
