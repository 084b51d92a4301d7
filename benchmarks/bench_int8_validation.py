"""How close the int8 text tower stays to the float32 one on texts that are neither its calibration texts nor the
concept texts ``bench_text_encode.py`` reports on: the validation set the int8 recipe was chosen on.

Protocol (printed as ``protocol``):

- Texts, read at run time from the development data (``$KGCLIP_SHARED_DATA`` or ``../shared/data``; nothing is
  copied into the project): every VQA-RAD question and answer outside its test split, and from the IU X-ray reports
  every MeSH term and every sentence of the findings, impression and indication fields; deduplicated, less any text
  that is a shipped concept's text (those are ``bench_text_encode.py``'s). About 13k texts, 2k of them three words
  or fewer ("Yes", "Not sure.", "Thanks.").
- Towers: ``minilm`` as kgclip's float32 ``HFTextEncoder`` and as ``OnnxTextEncoder`` (int8, the default
  ``QuantRecipe``, exported into the usual cache on first use), batch size 64.
- Figures: the lowest cosine between a text's int8 and float32 vectors (``min_cosine``), its 0.1 % quantile and
  mean, and the five texts with the lowest cosine.

Recorded in ``QuantRecipe``'s comment: v3 0.9921, v2 0.9918 (v2 measured with the ONNX float32 graph as the
reference; the torch tower is the same model).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys


def validation_texts(data) -> list[str]:
    """VQA-RAD non-test questions and answers, IU X-ray MeSH terms and report sentences, less the concept texts
    ``bench_text_encode.py`` reports on."""
    from bench_text_encode import concept_texts  # this script's own folder is on sys.path

    texts: list[str] = []
    for row in json.loads((data / "vqa-rad" / "VQA_RAD_Dataset_Public.json").read_text(encoding="utf-8")):
        if not str(row.get("phrase_type", "")).startswith("test"):
            texts += [str(row["question"]), str(row["answer"])]
    with open(data / "iu-xray" / "indiana_reports.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            texts += re.split(r"[;/]", row["MeSH"] or "")
            for field in ("findings", "impression", "indication"):
                texts += re.split(r"(?<=\.)\s+", row[field] or "")
    texts = list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))
    concepts = set(concept_texts(None, 0))
    return [t for t in texts if t not in concepts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)

    from kgclip.config import shared_data_dir
    from kgclip.text.encoders import HFTextEncoder, default_text_model_dir
    from kgclip.text.onnx_encoder import OnnxTextEncoder, onnx_available

    data = shared_data_dir()
    if data is None or not (data / "vqa-rad").is_dir() or not (data / "iu-xray").is_dir():
        print("needs the development data (VQA-RAD and IU X-ray) in ../shared/data or $KGCLIP_SHARED_DATA",
              file=sys.stderr)
        return 2
    if not onnx_available():
        print("needs onnxruntime and onnx: pip install kgclip[fast]", file=sys.stderr)
        return 2
    texts = validation_texts(data)
    fp32 = HFTextEncoder(default_text_model_dir(), device="cpu")
    int8 = OnnxTextEncoder(fp32)
    cosine = (int8._encode_uncached(texts, args.batch_size, True)
              * fp32._encode_uncached(texts, args.batch_size, True)).sum(-1)
    worst = cosine.argsort()[:5].tolist()
    print(json.dumps({
        "protocol": "VQA-RAD non-test questions and answers + IU X-ray MeSH terms and report sentences, less concept "
                    "texts; minilm int8 (OnnxTextEncoder, default recipe) vs kgclip float32; cosine per text",
        "texts": len(texts), "short_texts": sum(len(t.split()) <= 3 for t in texts), "int8_recipe": int8.recipe.key,
        "min_cosine": round(float(cosine.min()), 5), "q001_cosine": round(float(cosine.quantile(0.001)), 5),
        "mean_cosine": round(float(cosine.mean()), 5), "lowest": [[texts[i], round(float(cosine[i]), 5)]
                                                                    for i in worst],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
