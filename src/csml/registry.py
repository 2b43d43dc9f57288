"""Named registries: the one mechanism behind every part csml looks up by a name from a config or the CLI.

:class:`Registry` says how entries are added (decorator, call, lazy ``"module:Attr"`` reference, entry
point of another distribution) and lists csml's registries with their entry-point groups; :func:`resolve`
imports a ``"module:Attr"`` reference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from importlib import import_module
from typing import Any, TypeVar, overload

T = TypeVar("T")
E = TypeVar("E")


class UnknownNameError(KeyError, ValueError):
    """A name no entry of a registry has; the message names the closest known names and lists them all.

    A ``KeyError`` because a registry is a mapping, and a ``ValueError`` because the name is a bad value of a
    config: callers catch whichever they expect.
    """

    def __str__(self) -> str:  # KeyError's own would show the message quoted
        return str(self.args[0])


def resolve(reference: str) -> Any:
    """Imports and returns what a ``"package.module:Attr"`` reference names (``Attr`` may be dotted).

    Raises:
        ValueError: ``reference`` is not of that form.
        ImportError, AttributeError: the module or attribute does not exist.
    """
    module, colon, attr = reference.partition(":")
    if not (module and colon and attr):
        raise ValueError(f"{reference!r} is not a 'package.module:Attr' reference")
    found: Any = import_module(module)
    for part in attr.split("."):
        found = getattr(found, part)
    return found


class Registry(Mapping[str, T]):
    """Named entries of one kind (classes, functions, small records), read like a mapping.

    ``METRICS["groundedness"]``, ``"knn" in OOS_SCORERS``, ``sorted(METRICS)``; a name nobody registered
    raises :class:`UnknownNameError` naming the closest known names. Entries come in three ways:

    - a decorator: ``@OOS_SCORERS.register()`` (under the class's ``name``) or
      ``@PERTURBATIONS.register("number")``;
    - a call, ``BUILDERS.register("truthfulqa", build_truthfulqa)``, where the entry may be a lazy
      ``"package.module:Attr"`` reference, imported on its first lookup;
    - a Python entry point of another distribution, in the group ``csml.<name>``: the group is read on the
      first lookup of a name the registry does not know, or the first time it is listed, and each entry point
      is imported like a lazy reference when looked up. A distribution ``my-metrics`` declares in its
      ``pyproject.toml``::

          [project.entry-points."csml.audit_metrics"]
          polite_tone = "my_metrics.tone:PoliteTone"

    csml's registries that take plugins, by entry-point group:

    - ``csml.audit_metrics``: :data:`csml.audit.metrics.METRICS`, :class:`csml.audit.metrics.Metric`
      subclasses that suites name in ``metrics:``.
    - ``csml.question_builders``: :data:`csml.audit.questions.BUILDERS`, functions that build a suite's
      questions at audit time (``{build: <name>, params: {...}}``).
    - ``csml.oos_scorers``: :data:`csml.models.components.oos_scorers.OOS_SCORERS`,
      :class:`~csml.models.components.oos_scorers.OOSScorer` subclasses that ``evaluation.oos_score`` names.

    :data:`csml.cli.COMMANDS` takes none (``csml --help`` stays fast, and a command composes csml's own
    ``conf/``), nor do :data:`csml.audit.questions.BUNDLED` (the question files csml ships) and
    :data:`csml.judge.perturb.PERTURBATIONS` (the judge's training data must not change with what is
    installed).

    An entry with a ``name`` attribute of its own (metric and OOS scorer classes, whose name goes into
    scorecards and model cards) must be registered under that name. Registering a name twice is an error,
    unless the same object registers it again (a lazy reference's module registering what it names when
    imported). A string entry is always a lazy reference, never a value.

    Args:
        name: The registry's name; plugins register in the entry-point group ``csml.<name>``.
        kind: What one entry is called in messages (``"audit metric"``).
        base: When given, each entry must be a subclass of it (an entry that is a class) or an instance of it
            (any other entry); checked when the entry is registered, or imported for a lazy one.
        plugins: Whether entry points of the group ``csml.<name>`` add entries.
    """

    def __init__(self, name: str, kind: str, base: type | None = None, plugins: bool = True) -> None:
        self.name = name
        self.kind = kind
        self.base = base
        self.group = f"csml.{name}" if plugins else None
        self._entries: dict[str, Any] = {}  # an object, or its "module:Attr" reference until looked up
        self._origins: dict[str, str] = {}  # "module:Attr" of each registrant, for duplicate errors
        self._plugins_loaded = not plugins

    @overload
    def register(self, name: str | None = None) -> Callable[[E], E]: ...

    @overload
    def register(self, name: str, entry: E) -> E: ...

    def register(self, name: str | None = None, entry: Any = None) -> Any:
        """Adds ``entry`` under ``name``, or returns a decorator that adds what it decorates.

        Args:
            name: The entry's name; by default the decorated object's ``name`` attribute.
            entry: The object, or a lazy ``"package.module:Attr"`` reference to it.

        Raises:
            ValueError: ``name`` is taken by another registrant.
            TypeError: no name to register under, an entry that is not a ``base``, or one whose own ``name``
                differs.
        """
        if entry is None:

            def decorator(obj: E) -> E:
                self._add(name, obj)
                return obj

            return decorator
        self._add(name, entry)
        return entry

    def names(self) -> list[str]:
        """Every name, sorted (plugins included)."""
        return sorted(self)

    def __getitem__(self, name: str) -> T:
        if name not in self:
            raise UnknownNameError(self._unknown(name))
        entry = self._entries[name]
        if isinstance(entry, str):
            try:
                entry = resolve(entry)
            except (ImportError, AttributeError) as error:
                raise ImportError(f"{self.kind} {name!r}: cannot import {entry} ({error})") from error
            self._check(name, entry)
            self._entries[name] = entry
        return entry

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._load_plugins()
        return iter(list(self._entries))  # a copy: a lazy entry's import may register more

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._entries)

    def _add(self, name: str | None, entry: Any) -> None:
        origin = entry if isinstance(entry, str) else _reference(entry)
        if name is None:
            name = getattr(entry, "name", None)
            if not (isinstance(name, str) and name):
                raise TypeError(f"{origin} has no name to register it as a {self.kind} under: register(name)")
        if name in self._entries and self._origins[name] != origin:
            raise ValueError(
                f"{self.kind} {name!r} is registered twice: by {self._origins[name]} and by {origin}"
            )
        if not isinstance(entry, str):
            self._check(name, entry)
        self._entries[name] = entry
        self._origins[name] = origin

    def _check(self, name: str, entry: Any) -> None:
        if self.base is not None:
            is_class = isinstance(entry, type)
            if not (issubclass(entry, self.base) if is_class else isinstance(entry, self.base)):
                what = "a subclass" if is_class else "an instance"
                raise TypeError(
                    f"{self.kind} {name!r}: {_reference(entry)} is not {what} of {_reference(self.base)}"
                )
        own = getattr(entry, "name", name)
        if isinstance(own, str) and own != name:
            raise TypeError(f"{self.kind} {name!r}: {_reference(entry)} is named {own!r}, not {name!r}")

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        from importlib.metadata import entry_points

        for point in entry_points(group=self.group):
            self._add(point.name, f"{point.module}:{point.attr}")
        self._plugins_loaded = True

    def _unknown(self, name: object) -> str:
        import difflib

        known = sorted(self._entries)
        close = difflib.get_close_matches(str(name), known, n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(known) or 'none'}"


def _reference(obj: Any) -> str:
    """``module:qualname`` of a class or function; ``module:repr`` of anything else."""
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{module}:{getattr(obj, '__qualname__', None) or repr(obj)}"
