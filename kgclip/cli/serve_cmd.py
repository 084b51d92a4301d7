"""``kgclip serve``: the web app for radiologists and curators (needs the ``[serve]`` extra)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["register"]

_EPILOG = """examples:
  kgclip serve --workspace indexes/demo --ontology ontologies/doid      # http://127.0.0.1:8765
  kgclip serve --workspace indexes/demo --read-only                    # viewers: no accepts, no edits
  KGCLIP_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(24))') \\
      kgclip serve --workspace indexes/demo --host 0.0.0.0             # others open /login?token=...
"""


def _run(args: argparse.Namespace) -> int:
    from kgclip.errors import ConfigError
    from kgclip.serve.config import ServeConfig

    config = ServeConfig(workspace=Path(args.workspace) if args.workspace else None,
                         ontologies=tuple(Path(p) for p in args.ontology or ()), host=args.host, port=args.port,
                         token=args.token or os.environ.get("KGCLIP_TOKEN") or None, read_only=args.read_only)
    config.check_exposure()  # before importing the server stack or loading any model
    for directory in config.ontologies:
        if not (directory / "concepts.tsv").is_file():
            raise ConfigError(f"{directory} is not a kgclip graph directory (no concepts.tsv); create one with "
                              "`kgclip ontology import`")
    if config.workspace is not None and not (config.workspace / "engine_config.json").is_file():
        raise ConfigError(f"{config.workspace} is not an engine workspace; build one with `kgclip demo`")
    try:
        import uvicorn
    except ImportError:
        raise ConfigError('kgclip serve needs the server extra: pip install "kgclip[serve]"') from None
    from kgclip.serve.app import create_app

    app = create_app(config)
    print(f"kgclip: serving on http://{config.host}:{config.port} (Ctrl-C stops)")
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="web app: ask a scan, draft reports, search cases, curate ontologies",
                       description="Start the kgclip web app: upload a scan (DICOM/PNG/JPEG), ask questions, draft a "
                                   "report with citations and accept it into the archive; search cases; browse and "
                                   "edit ontologies. Binds 127.0.0.1 unless --host and --token are given.",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", metavar="DIR", help="engine workspace (from `kgclip demo`) for ask/draft/search")
    p.add_argument("--ontology", metavar="DIR", action="append", help="graph directory to curate (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --token)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--token", help="shared secret required off loopback (or set KGCLIP_TOKEN)")
    p.add_argument("--read-only", action="store_true", help="refuse every change (for viewers)")
    p.set_defaults(handler=_run)
