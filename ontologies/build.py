"""Rebuild the shipped ontologies (``ontologies/radlex`` and ``ontologies/doid``) from the public source files.

Usage::

    python ontologies/build.py [--data ../shared/data] [--only radlex|doid]

The recipe (which source files, which filters) is :mod:`kgclip.ontology.shipped`, the same one training and the
demo use through ``shipped_graph()``. The output is reproducible: the same inputs give byte-identical files (sorted
lines, no timestamps; the changelog starts empty, provenance is in ``meta.json``). What goes into each graph is
listed in its README.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from kgclip.config import shared_data_dir
from kgclip.ontology.shipped import SHIPPED, build_shipped

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="the shared data folder")
    parser.add_argument("--only", choices=SHIPPED)
    parser.add_argument("--out", type=Path, default=HERE, help="where radlex/ and doid/ are written")
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("no data folder found; pass --data PATH "
                     "(the folder holding ontologies/radlex and ontologies/doid)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a skipped row would make the build depend on reader leniency: fail instead
        for name, graph in build_shipped(args.data, args.out, only=args.only).items():
            print(f"{name}: {graph!r}; {graph.validate().summary()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
