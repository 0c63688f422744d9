"""The error tree as drawn is the error tree as defined: every exception class of the packages is a MistError
drawn under its own base (in shared/errors.py or its part's errors module), nothing is drawn that does not
exist, and no two classes share a name, so a new error cannot slip in beside the drawing."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Mapping
from types import ModuleType

from shared.errors import ChunkError, MistError

PACKAGES = ("shared", "client", "tracker", "seeder", "mistpipe")
DRAWINGS = ("shared.errors", "client.errors", "tracker.errors", "mistpipe.errors")
OUTSIDE = {"ObjectChanged"}  # shared/errors.py says why these are not MistErrors
NODE = re.compile(r"(?P<lead>[│ ]*)[├└]── (?P<name>[A-Z]\w*)")


def modules() -> list[ModuleType]:
    found = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        found.append(package)
        found += [importlib.import_module(info.name) for info in pkgutil.walk_packages(package.__path__, f"{name}.")]
    return found


def defined(among: list[ModuleType]) -> dict[str, type[BaseException]]:
    """Every exception class these modules define, by name (two of one name fail here: one concept, one class)."""
    classes: dict[str, type[BaseException]] = {}
    for module in among:
        for cls in vars(module).values():
            if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                other = classes.setdefault(cls.__name__, cls)
                assert other is cls, f"two errors are called {cls.__name__}: {other.__module__} and {cls.__module__}"
    return classes


def drawn(docstring: str) -> set[tuple[str, str]]:
    """(base, class) for every line of a docstring's tree drawing: each name under the nearest name one level up."""
    lines = docstring.splitlines()
    root = next(i for i, line in enumerate(lines) if NODE.match(line.lstrip(" "))) - 1  # the line above the first branch
    indent = len(lines[root]) - len(lines[root].lstrip())
    path = [lines[root].split()[0]]
    edges = set()
    for line in lines[root + 1:]:
        match = NODE.match(line[indent:]) if line.startswith(" " * indent) else None
        if match is None:
            break  # the drawing ends at the first line that is not a branch of it
        depth = len(match["lead"]) // 4 + 1
        del path[depth:]
        edges.add((path[depth - 1], match["name"]))
        path.append(match["name"])
    return edges


def disagreements(classes: Mapping[str, type[BaseException]], drawing: set[tuple[str, str]]) -> list[str]:
    """What the drawing and the classes disagree on, in words; empty when they match."""
    said = [f"{name} is not a MistError (make it one, and draw it)" for name, cls in sorted(classes.items())
            if not issubclass(cls, MistError) and name not in OUTSIDE]
    actual = {(base.__name__, name) for name, cls in classes.items() if issubclass(cls, MistError) and cls is not MistError
              for base in cls.__bases__ if issubclass(base, MistError)}
    said += [f"{name} is a {base} but is not drawn under it" for base, name in sorted(actual - drawing)]
    said += [f"{name} is drawn under {base} but is not one" for base, name in sorted(drawing - actual)]
    return said


def test_every_error_is_drawn_under_its_base_and_every_drawn_error_exists() -> None:
    drawing: set[tuple[str, str]] = set()
    for name in DRAWINGS:
        drawing |= drawn(importlib.import_module(name).__doc__ or "")
    assert disagreements(defined(modules()), drawing) == []


def test_drawings_are_read_line_by_line() -> None:
    drawing = """Errors.

    Root
    ├── A          words (Aside) after a name are ignored
    │   ├── B
    │   │   └── C
    │   └── E
    │       └── F
    └── D

    Prose after the drawing is not part of it: G
    """
    assert drawn(drawing) == {("Root", "A"), ("A", "B"), ("B", "C"), ("A", "E"), ("E", "F"), ("Root", "D")}


def test_a_class_missing_misplaced_or_outside_the_drawing_is_named() -> None:
    """The check above is only worth having if it fails on what it is for."""

    class Undrawn(ChunkError):
        pass

    class Stray(ValueError):
        pass

    drawing = {("MistError", "ChunkError"), ("MistError", "Undrawn"), ("MistError", "Ghost")}
    said = disagreements({"ChunkError": ChunkError, "Undrawn": Undrawn, "Stray": Stray}, drawing)
    assert said == ["Stray is not a MistError (make it one, and draw it)", "Undrawn is a ChunkError but is not drawn under it",
                    "Ghost is drawn under MistError but is not one", "Undrawn is drawn under MistError but is not one"]
