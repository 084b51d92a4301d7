"""The wheel carries every package and the shipped ontologies; default paths never point into the source tree."""

from __future__ import annotations

import tomllib
from pathlib import Path

from kgclip.cli.main import main
from kgclip.config import shipped_ontologies_dir
from kgclip.ontology.store import shipped_ontology_dirs


def test_pyproject_lists_every_package(repo_root: Path) -> None:
    setuptools = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    on_disk = {".".join(p.parent.relative_to(repo_root).parts) for p in (repo_root / "kgclip").rglob("__init__.py")}
    assert on_disk - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == {"kgclip.shipped_ontologies"}
    assert setuptools["package-dir"]["kgclip.shipped_ontologies"] == "ontologies"


def test_shipped_ontologies_are_found_and_loadable() -> None:
    root = shipped_ontologies_dir()
    assert root is not None and (root / "doid" / "concepts.tsv").is_file()
    assert [d.name for d in shipped_ontology_dirs()] == ["radlex", "doid"]


def test_version_flag(capsys) -> None:  # noqa: ANN001 - pytest fixture
    import kgclip

    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"kgclip {kgclip.__version__}"
