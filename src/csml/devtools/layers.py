"""Structure check: no import circles, and no top-level package importing a higher layer.

    python -m csml.devtools.layers        # exit 0: clean; 1: names every problem and its import lines

Every ``import`` statement of every module under ``src/csml`` counts: at module level, inside functions
(the lazy imports that keep the CLI fast) and under ``if TYPE_CHECKING:``. Two rules:

- **No circles** between modules (``a`` imports ``b``, ``b`` imports ``a``, at any distance), nor between
  top-level units (the packages and modules directly under ``csml``).
- **Layers**: a top-level unit imports only units of lower layers in :data:`LAYERS`. Units of one layer are
  peers and import none of each other; that keeps the auditor apart from the bot it audits, and the
  pipelines apart from each other. Every top-level unit belongs to exactly one layer.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence, Set
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # The package root (version), locating and composing conf/, the shared record schema, named registries.
    ("foundations", ("csml", "config", "records", "registry")),
    # Datasets, knowledge bases, metric functions, networks (encoders, OOS scorers), the types of a
    # conversation with a bot: each knows only the foundations.
    ("building blocks", ("customer_records", "data", "knowledge", "metrics", "models", "schemas")),
    # Evaluating a classifier's predictions (metrics, thresholds, decision rules).
    ("evaluation", ("evaluation",)),
    # Scoring a saved classifier the one way eval, promote and the pyfunc share.
    ("scoring", ("scoring",)),
    # MLflow runs, registry, descriptions and pyfunc flavours.
    ("tracking", ("tracking",)),
    # The toolkit the pipelines are built from: opening and resuming runs, provenance, fitting, logging
    # evaluations and models.
    ("training toolkit", ("pipeline",)),
    # Pipelines built on the toolkit: the classifier, scoring a model, the judge, response models.
    ("pipelines", ("eval_model", "judge", "response", "train")),
    # The reference bot, the auditor (which must not share code with the bot it audits), promotion, and
    # sweeps (Optuna studies whose trials run the classifier pipeline).
    ("applications", ("audit", "bot", "promote", "sweep")),
    # The command line, the team stack, these checks.
    ("entry points", ("cli", "devtools", "team")),
    ("python -m csml", ("__main__",)),
)
"""Top-level units of ``csml`` by layer, bottom first: (layer name, units)."""


@dataclass(frozen=True)
class Import:
    """One import of a csml module by another, where it is written.

    Attributes:
        importer: Dotted name of the importing module (``csml.bot.engine``).
        imported: Dotted name of the module it resolves to (the submodule for ``from pkg import submodule``).
        path: File of the importing module.
        line: Line of the statement.
        statement: The statement's source, on one line.
    """

    importer: str
    imported: str
    path: Path
    line: int
    statement: str

    def where(self) -> str:
        """``path:line: statement``."""
        return f"{_shown(self.path)}:{self.line}: {self.statement}"


def module_name(path: Path, package_dir: Path) -> str:
    """Dotted name of the module in ``path`` (``csml/bot/__init__.py`` -> ``csml.bot``)."""
    parts = (package_dir.name, *path.relative_to(package_dir).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    """Top-level unit of a module: ``csml.bot.engine`` -> ``bot``; the package root ``csml`` -> ``csml``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def find_imports(package_dir: Path = PACKAGE_DIR) -> tuple[list[str], list[Import]]:
    """Every module under ``package_dir`` and every import of one of them by another.

    Returns:
        The modules' dotted names, and the imports (one per imported module of each statement; a module
        importing itself, as ``import csml.x`` inside ``csml.x`` would, is left out).
    """
    files = {module_name(path, package_dir): path for path in sorted(package_dir.rglob("*.py"))}
    known = set(files)
    imports = []
    for importer, path in files.items():
        source = path.read_text(encoding="utf-8")
        package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        for node in ast.walk(ast.parse(source, filename=str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            statement = " ".join((ast.get_source_segment(source, node) or "").split())
            for imported in _resolve(node, package, known):
                if imported != importer:
                    imports.append(Import(importer, imported, path, node.lineno, statement))
    return list(files), imports


def _resolve(node: ast.Import | ast.ImportFrom, package: str, known: Set[str]) -> list[str]:
    """Modules of ``known`` that an import statement in ``package`` loads, in the statement's order.

    ``from pkg import name`` loads the submodule ``pkg.name`` when there is one, else ``pkg``; a name
    outside ``known`` (another library) resolves to its longest known prefix, or to nothing.
    """
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
    resolved = []
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name not in resolved:
            resolved.append(name)
    return resolved


def circles(edges: dict[str, dict[str, Import]]) -> list[list[Import]]:
    """One circle of imports per group of nodes that all reach each other in the graph ``importer -> imported``.

    Args:
        edges: ``edges[a][b]`` is an import of ``b`` by ``a`` (the one reported).

    Returns:
        For each such group, the shortest circle through its first node by name, as the imports along it.
    """
    reach = {node: _reachable(edges, node) for node in edges}
    found: list[list[Import]] = []
    covered: set[str] = set()
    for start in sorted(edges):
        if start in covered or start not in reach[start]:
            continue
        group = {node for node in reach[start] if start in reach.get(node, ())}
        covered |= group
        paths: dict[str, list[Import]] = {start: []}  # breadth first: the shortest way to each node
        queue = [start]
        circle = None
        while circle is None:
            node = queue.pop(0)
            for target, edge in sorted(edges.get(node, {}).items()):
                if target == start:
                    circle = [*paths[node], edge]
                    break
                if target in group and target not in paths:
                    paths[target] = [*paths[node], edge]
                    queue.append(target)
        found.append(circle)
    return found


def _reachable(edges: dict[str, dict[str, Import]], start: str) -> set[str]:
    """Nodes reached from ``start`` by one import or more."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in edges.get(todo.pop(), {}):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def check(package_dir: Path = PACKAGE_DIR, layers: Sequence[tuple[str, Sequence[str]]] = LAYERS) -> list[str]:
    """Problems of the package's imports: circles, units outside ``layers``, upward and peer imports.

    Each problem is a paragraph: a line naming it, then the import statements at fault, one per line.
    """
    modules, imports = find_imports(package_dir)

    def named(name: str) -> str:  # a unit's dotted name: csml.bot; the package root stays csml
        return name if name == package_dir.name else f"{package_dir.name}.{name}"

    module_edges: dict[str, dict[str, Import]] = {}
    unit_edges: dict[str, dict[str, Import]] = {}
    for found in imports:
        module_edges.setdefault(found.importer, {}).setdefault(found.imported, found)
        if unit(found.importer) != unit(found.imported):
            unit_edges.setdefault(unit(found.importer), {}).setdefault(unit(found.imported), found)

    problems = []
    for circle in circles(module_edges):
        names = [circle[0].importer, *(edge.imported for edge in circle)]
        problems.append(_paragraph(f"import circle between modules: {' -> '.join(names)}", circle))
    for circle in circles(unit_edges):
        names = [unit(circle[0].importer), *(unit(edge.imported) for edge in circle)]
        head = f"import circle between top-level packages: {' -> '.join(map(named, names))}"
        problems.append(_paragraph(head, circle))

    layer_of = {name: i for i, (_, members) in enumerate(layers) for name in members}
    units = sorted({unit(module) for module in modules})
    problems += [
        f"{named(name)} is in no layer of LAYERS: add it where it belongs"
        for name in units
        if name not in layer_of
    ]
    problems += [
        f"LAYERS names {named(name)}, which does not exist" for name in layer_of if name not in units
    ]

    by_pair: dict[tuple[str, str], list[Import]] = {}
    for found in imports:
        importer, imported = unit(found.importer), unit(found.imported)
        known = importer in layer_of and imported in layer_of
        if known and importer != imported and layer_of[importer] <= layer_of[imported]:
            by_pair.setdefault((importer, imported), []).append(found)
    for (importer, imported), found in sorted(by_pair.items()):
        here, there = layer_of[importer], layer_of[imported]
        what = "upward import" if there > here else "import between peers"
        head = (
            f"{what}: {named(importer)} (layer {here}, {layers[here][0]}) imports "
            f"{named(imported)} (layer {there}, {layers[there][0]})"
        )
        problems.append(_paragraph(head, found))
    return problems


def _paragraph(head: str, imports: Sequence[Import]) -> str:
    return "\n".join([head, *(f"  {found.where()}" for found in imports)])


def main(argv: list[str] | None = None) -> int:
    """Prints the problems (exit status 1) or a one-line summary (exit status 0)."""
    parser = argparse.ArgumentParser(
        prog="python -m csml.devtools.layers", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "package_dir", nargs="?", type=Path, default=PACKAGE_DIR, help="the package to check (default: csml)"
    )
    args = parser.parse_args(argv)
    problems = check(args.package_dir)
    if problems:
        print("\n\n".join(problems), file=sys.stderr)
        print(
            f"\n{len(problems)} problem(s); the layers are LAYERS in {_shown(Path(__file__))}",
            file=sys.stderr,
        )
        return 1
    order = " < ".join("/".join(members) for _, members in LAYERS)
    print(f"{_shown(args.package_dir)}: no import circles, no upward imports ({order})")
    return 0


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


if __name__ == "__main__":
    sys.exit(main())
