"""The registry mechanism: decorator and call registration, base-class and name checks, duplicate names,
"did you mean" errors, lazy references and entry-point plugins; and the csml registries built on it."""

from __future__ import annotations

import collections
import importlib.metadata
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from csml.audit.errors import AuditConfigError
from csml.audit.metrics import METRICS
from csml.audit.questions import BUILDERS, BUNDLED, run_builder
from csml.cli import COMMAND_ENV, COMMANDS, main
from csml.judge.perturb import PERTURBATIONS
from csml.models.components.oos_scorers import OOS_SCORERS
from csml.registry import Registry, UnknownNameError, resolve

PLUGIN = "csml_test_plugin"


class Shape:
    name = ""


class Circle(Shape):
    name = "circle"


SHAPES: Registry[type[Shape]]
"""The registry the plugin module registers into when imported (a fresh one per test, see ``shapes``)."""


@pytest.fixture
def shapes(monkeypatch: pytest.MonkeyPatch) -> Registry[type[Shape]]:
    """A registry of shapes taking plugins from the group ``csml.shapes``, holding ``circle``."""
    registry: Registry[type[Shape]] = Registry("shapes", "shape", base=Shape)
    registry.register()(Circle)
    monkeypatch.setattr(sys.modules[__name__], "SHAPES", registry, raising=False)
    return registry


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module of another distribution, importable but not imported; it defines ``Hexagon`` and registers it
    in ``SHAPES`` when imported, as plugin modules that decorate their classes do."""
    source = f"""
from {__name__} import SHAPES, Shape


@SHAPES.register()
class Hexagon(Shape):
    name = "hexagon"


class Unnamed(Shape):
    pass
"""
    (tmp_path / f"{PLUGIN}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield PLUGIN
    sys.modules.pop(PLUGIN, None)


@pytest.fixture
def fake_entry_points(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[importlib.metadata.EntryPoint]]:
    """Installed entry points by group, as :func:`importlib.metadata.entry_points` reports them; the groups
    asked for are recorded under ``"asked"``."""
    installed: dict[str, list] = {"asked": []}

    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        installed["asked"].append(group)
        return installed.get(group, [])

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return installed


def test_entries_register_by_decorator_and_by_call_and_read_as_a_mapping(shapes: Registry) -> None:
    @shapes.register("square")
    class Square(Shape):
        name = "square"

    def area() -> float:
        return 1.0

    functions: Registry = Registry("functions", "function", plugins=False)
    assert functions.register("area", area) is area and functions["area"] is area

    assert list(shapes) == ["circle", "square"] and len(shapes) == 2
    assert shapes["square"] is Square and dict(shapes.items()) == {"circle": Circle, "square": Square}
    assert "circle" in shapes and "triangle" not in shapes and shapes.get("triangle") is None
    assert shapes.names() == ["circle", "square"]


def test_an_entry_of_the_wrong_kind_or_name_is_refused_naming_it(shapes: Registry) -> None:
    with pytest.raises(TypeError, match=r"shape 'int': builtins:int is not a subclass of .*:Shape$"):
        shapes.register("int", int)
    with pytest.raises(TypeError, match=r"shape 'three': builtins:3 is not an instance of .*:Shape$"):
        shapes.register("three", 3)
    with pytest.raises(TypeError, match=r"shape 'round': .*:Circle is named 'circle', not 'round'$"):
        shapes.register("round", Circle)
    with pytest.raises(TypeError, match=r".*:Shape has no name to register it as a shape under"):
        shapes.register()(Shape)
    assert shapes.names() == ["circle"]


def test_a_name_taken_by_another_registrant_is_refused_naming_both(shapes: Registry) -> None:
    class Disc(Shape):
        name = "circle"

    with pytest.raises(
        ValueError, match=r"shape 'circle' is registered twice: by .*:Circle and by .*\.Disc$"
    ):
        shapes.register()(Disc)
    shapes.register()(Circle)  # the same class again (a module imported twice) is no conflict
    assert shapes["circle"] is Circle


def test_an_unknown_name_is_one_error_naming_the_closest_names_and_every_known_one(shapes: Registry) -> None:
    shapes.register("square", type("Square", (Shape,), {"name": "square"}))
    with pytest.raises(UnknownNameError) as caught:
        shapes["cirle"]
    assert str(caught.value) == "unknown shape 'cirle'. Did you mean 'circle'? Known: circle, square"
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, ValueError)
    with pytest.raises(UnknownNameError, match=r"^unknown shape 'hexagon'. Known: circle, square$"):
        shapes["hexagon"]


def test_a_lazy_reference_is_imported_on_first_lookup_and_checked_then(
    shapes: Registry, plugin_module: str
) -> None:
    shapes.register("hexagon", f"{plugin_module}:Hexagon")
    shapes.register("unnamed", f"{plugin_module}:Unnamed")
    assert "hexagon" in shapes and shapes.names() == ["circle", "hexagon", "unnamed"]
    assert plugin_module not in sys.modules

    hexagon = shapes["hexagon"]  # its module registers Hexagon again when imported: the same registrant
    assert plugin_module in sys.modules and hexagon is sys.modules[plugin_module].Hexagon
    assert shapes["hexagon"] is hexagon
    with pytest.raises(
        TypeError, match=r"shape 'unnamed': csml_test_plugin:Unnamed is named '', not 'unnamed'$"
    ):
        shapes["unnamed"]
    shapes.register("octagon", f"{plugin_module}:Octagon")
    with pytest.raises(
        ImportError, match=r"shape 'octagon': cannot import csml_test_plugin:Octagon \(module"
    ):
        shapes["octagon"]
    shapes.register("join", "os.path:join")
    with pytest.raises(TypeError, match=r"shape 'join': .*:join is not an instance of .*:Shape$"):
        shapes["join"]


def test_plugins_come_from_entry_points_on_an_unknown_name_or_a_listing_once(
    shapes: Registry, plugin_module: str, fake_entry_points: dict
) -> None:
    group = "csml.shapes"
    fake_entry_points[group] = [importlib.metadata.EntryPoint("hexagon", f"{plugin_module}:Hexagon", group)]
    assert shapes["circle"] is Circle and fake_entry_points["asked"] == []  # a known name looks no further

    assert shapes.names() == ["circle", "hexagon"] and plugin_module not in sys.modules
    assert shapes["hexagon"] is sys.modules[plugin_module].Hexagon
    with pytest.raises(UnknownNameError, match=r"Known: circle, hexagon$"):
        shapes["octagon"]
    assert fake_entry_points["asked"] == [group]

    closed: Registry = Registry("shapes", "shape", base=Shape, plugins=False)
    assert "hexagon" not in closed and list(closed) == [] and fake_entry_points["asked"] == [group]


def test_a_plugin_taking_a_shipped_name_is_refused_naming_both(
    shapes: Registry, plugin_module: str, fake_entry_points: dict
) -> None:
    group = "csml.shapes"
    fake_entry_points[group] = [importlib.metadata.EntryPoint("circle", f"{plugin_module}:Hexagon", group)]
    with pytest.raises(
        ValueError, match=r"shape 'circle' is registered twice: by .*:Circle and by csml_test_plugin:Hexagon"
    ):
        shapes.names()


def test_resolve_imports_module_attribute_references() -> None:
    assert resolve("os.path:join") is os.path.join
    assert resolve("collections:OrderedDict.fromkeys") == collections.OrderedDict.fromkeys
    with pytest.raises(ValueError, match=r"not a 'package\.module:Attr' reference"):
        resolve("os.path.join")
    with pytest.raises(ModuleNotFoundError):
        resolve("csml_no_such_module:thing")


@pytest.mark.parametrize(
    ("registry", "typo", "closest"),
    [
        (COMMANDS, "trian", "train"),
        (METRICS, "groundednes", "groundedness"),
        (BUILDERS, "truthful_qa", "truthfulqa"),
        (BUNDLED, "rag_abdc", "rag_abcd"),
        (OOS_SCORERS, "knn_", "knn"),
        (PERTURBATIONS, "negate", "negation"),
    ],
)
def test_every_csml_registry_names_the_closest_name(registry: Registry, typo: str, closest: str) -> None:
    assert isinstance(registry, Registry) and closest in registry
    with pytest.raises(UnknownNameError, match=f"Did you mean '{closest}'"):
        registry[typo]


def test_consumers_report_unknown_names_in_their_own_terms(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(COMMAND_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["trian"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "csml: unknown command 'trian'. Did you mean 'train'? Known: audit, audit compare, audit init, calibrate-judge"
    )
    assert "usage: csml <command>" in err
    with pytest.raises(
        AuditConfigError, match=r"unknown question builder 'truthful_qa'\. Did you mean 'truthfulqa'"
    ):
        run_builder("truthful_qa", {}, {"external_data_dir": tmp_path})
