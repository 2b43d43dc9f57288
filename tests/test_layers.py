"""The structure check: csml has no import circles and no upward imports, and the check finds both; the
auditor imports nothing of the bot it audits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from csml.devtools.layers import check, find_imports

LAYERS = (("low", ("pkg", "records")), ("middle", ("data", "models")), ("high", ("cli",)))


def write_package(root: Path, files: dict[str, str]) -> Path:
    """A package ``pkg`` under ``root`` with ``files`` (path inside the package -> source)."""
    package = root / "pkg"
    for name, source in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return package


def test_csml_has_no_import_circles_and_no_upward_imports() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "csml.devtools.layers"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "no import circles, no upward imports" in done.stdout


def test_a_clean_package_passes(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "records.py": "import json\n",
            "data/__init__.py": "from pkg.records import x\n",
            "data/load.py": "from . import helpers\nfrom .helpers import y\n",
            "data/helpers.py": "from pkg import records\n",
            "models.py": "import pkg.records\n",
            "cli.py": "def main():\n    from pkg.data.load import z\n    from pkg.models import m\n",
        },
    )
    assert check(package, LAYERS) == []


def test_a_circle_between_modules_names_both_import_lines(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "records.py": "",
            "data/__init__.py": "",
            "data/a.py": "from pkg.data.b import f\n",
            # a lazy import inside a function closes the circle
            "data/b.py": "def f():\n    from pkg.data import a\n",
            "models.py": "",
            "cli.py": "",
        },
    )
    [problem] = check(package, LAYERS)
    lines = problem.splitlines()
    assert lines[0] == "import circle between modules: pkg.data.a -> pkg.data.b -> pkg.data.a"
    assert lines[1].endswith("pkg/data/a.py:1: from pkg.data.b import f")
    assert lines[2].endswith("pkg/data/b.py:2: from pkg.data import a")


def test_upward_peer_and_type_checking_imports_are_reported(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "records.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.data import Thing\n",
            "data.py": "from .models import net\n",  # relative, to a peer
            "models.py": "",
            "cli.py": "",
        },
    )
    problems = check(package, LAYERS)
    assert problems == [
        "import between peers: pkg.data (layer 1, middle) imports pkg.models (layer 1, middle)\n"
        f"  {package / 'data.py'}:1: from .models import net",
        "upward import: pkg.records (layer 0, low) imports pkg.data (layer 1, middle)\n"
        f"  {package / 'records.py'}:3: from pkg.data import Thing",
    ]


def test_a_circle_between_top_level_packages_is_reported(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "records.py": "",
            "data/__init__.py": "",
            "data/read.py": "from pkg.models import net\n",
            "models/__init__.py": "",
            "models/net.py": "from pkg.data.read import rows\n",
            "cli.py": "",
        },
    )
    problems = check(package, LAYERS)
    assert problems[0].splitlines()[0] == (
        "import circle between modules: pkg.data.read -> pkg.models.net -> pkg.data.read"
    )
    assert problems[1].splitlines()[0] == (
        "import circle between top-level packages: pkg.data -> pkg.models -> pkg.data"
    )
    assert [p.splitlines()[0] for p in problems[2:]] == [
        "import between peers: pkg.data (layer 1, middle) imports pkg.models (layer 1, middle)",
        "import between peers: pkg.models (layer 1, middle) imports pkg.data (layer 1, middle)",
    ]


def test_every_top_level_unit_must_be_in_exactly_the_declared_layers(tmp_path: Path) -> None:
    package = write_package(tmp_path, {"records.py": "", "data.py": "", "extra.py": "", "cli.py": ""})
    assert check(package, LAYERS) == [
        "pkg.extra is in no layer of LAYERS: add it where it belongs",
        "LAYERS names pkg.models, which does not exist",
    ]


def importers_of(packages: tuple[str, ...], forbidden: str) -> list[str]:
    """``importer imports imported`` for every import of ``forbidden`` (or below) by a module of ``packages``."""
    _, imports = find_imports()
    return [
        f"{i.importer} imports {i.imported}"
        for i in imports
        if any(i.importer == p or i.importer.startswith(p + ".") for p in packages)
        and (i.imported == forbidden or i.imported.startswith(forbidden + "."))
    ]


def test_the_audit_never_imports_the_bot_it_audits() -> None:
    assert importers_of(("csml.audit",), "csml.bot") == []


def test_what_audit_and_bot_share_imports_neither() -> None:
    shared = ("csml.schemas", "csml.knowledge", "csml.models.encoder")
    assert importers_of(shared, "csml.bot") + importers_of(shared, "csml.audit") == []


def test_question_builders_do_not_import_the_suites_that_run_them() -> None:
    assert importers_of(("csml.audit.questions",), "csml.audit.suite") == []
