"""Hostile input for the property tests: what an outsider can put in bytes, text or JSON, and a memory check.

Outside input reaches Mist's parsers as bytes or as decoded JSON. These strategies make both, with the
oddities that break parsers: nesting deep enough to exhaust the stack, numbers past every limit (2^64,
4,000-digit integers, infinity), values of the wrong type, and characters that hide or reorder text
(U+202E, U+200B, U+FEFF, U+00A0), lone surrogates (a JSON escape can carry one) and path separators.
`mutations` damages a valid document in one place, so a property reaches the checks deep inside a parser
rather than being refused at the first key.
"""

from __future__ import annotations

import json
import re
import tracemalloc
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

INVISIBLE = ("\u202e", "\u200b", "\ufeff", "\u00a0")  # reorder or hide text: a path may hold none of them (17.10)
ODD_CHARACTERS = ("\u202e", "\u200b", "\ufeff", "\u00a0", "\u0301", "\ud800", "\x00", "\x7f", "\n", "\\", "/", ":",
                  ".", "..", "é", "ß", "İ", "日", "\U0001f3ae")
# Most dangerous first: Hypothesis draws the first elements of a list more often.
BIG_NUMBERS = (float("inf"), float("nan"), float("-inf"), 10**300, -(10**4000), 2**64, 2**63, -(2**63), 2**32, 2**31,
               -1, 0, 1e308, -0.0, 0.5)

odd_text = st.lists(st.sampled_from(ODD_CHARACTERS) | st.characters() | st.sampled_from("ab1-_ "),
                    max_size=12).map("".join)
numbers = st.integers() | st.sampled_from(BIG_NUMBERS) | st.floats()
_DEEP = "\x00deep:"


@st.composite
def deeply_nested(draw: st.DrawFn) -> str:
    """A stand-in for a list or object nested a few thousand levels (`[[[[...`), written out by `as_json_bytes`:
    built as Python objects, a test's own copying would hit the recursion limit first."""
    depth = draw(st.sampled_from([50, 500, 900, 990, 1000, 3000, 100_000]))
    return f"{_DEEP}{depth}:{draw(st.sampled_from('[{'))}"


_HUGE = "\x00digits:"
# More digits than Python's decoder converts (4,300): only JSON text can carry it, so it stands in until written.
huge_integers = st.integers(min_value=4301, max_value=20_000).map(lambda n: f"{_HUGE}{n}")
scalars = st.none() | st.booleans() | numbers | odd_text | huge_integers | deeply_nested()
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4), max_leaves=12
)


def _deep_text(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "[" else '{"a":' * depth + "null" + "}" * depth


def _positions(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document: each key of each object and each index of each list."""
    places = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            places += _positions(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            places += _positions(item, path + (index,))
    return places


def _replace(value: Any, path: tuple[Any, ...], change: Callable[[Any, Any], Any]) -> Any:
    """A copy of `value` with `change(container, key)` applied at `path` (the copy shares nothing mutable)."""
    if not path:
        return change(None, None)
    copy = json.loads(json.dumps(value, allow_nan=True))
    container = copy
    for key in path[:-1]:
        container = container[key]
    change(container, path[-1])
    return copy


@st.composite
def mutations(draw: st.DrawFn, document: Any) -> Any:
    """`document` (decoded JSON) with one place replaced by a hostile value, removed, or given an extra key."""
    path = draw(st.sampled_from(_positions(document)))
    how = draw(st.sampled_from(["replace", "remove", "add", "nest"]))
    if how == "replace" or not path:
        hostile = draw(json_values)
        if not path:
            return hostile

        def put(container: Any, key: Any) -> None:
            container[key] = hostile
        return _replace(document, path, put)
    if how == "nest":
        deep = draw(deeply_nested())

        def put_deep(container: Any, key: Any) -> None:
            container[key] = deep
        return _replace(document, path, put_deep)
    if how == "remove":
        def remove(container: Any, key: Any) -> None:
            del container[key]
        return _replace(document, path, remove)
    extra_key, extra = draw(odd_text), draw(json_values)

    def add(container: Any, key: Any) -> None:
        target = container[key]
        if isinstance(target, dict):
            target[extra_key] = extra
        elif isinstance(target, list):
            target.append(extra)
        else:
            container[key] = [target, extra]
    return _replace(document, path, add)


def as_json_bytes(value: Any, ascii_only: bool = True) -> bytes:
    """`value` as a sender could encode it: NaN and infinities as JavaScript writes them, lone surrogates kept
    as escapes (ASCII) or as the invalid UTF-8 a careless encoder emits, deep stand-ins written out."""
    text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)
    text = re.sub(r'"\\u0000deep:(\d+):(.)"', lambda m: _deep_text(int(m[1]), m[2]), text)
    text = re.sub(r'"\\u0000digits:(\d+)"', lambda m: "9" * int(m[1]), text)
    return text.encode("utf-8", "surrogatepass")


def decoded(value: Any) -> Any:
    """`value` as the JSON decoder hands it to a parser, or REFUSED when the decoder itself refuses it (too deep,
    invalid UTF-8): what a `from_json` can be given is only what came through `json.loads`."""
    try:
        return json.loads(as_json_bytes(value, ascii_only=True))
    except (ValueError, RecursionError):
        return REFUSED


REFUSED = object()


def allocation_peak(call: Callable[[], object], refusals: tuple[type[BaseException], ...]) -> int:
    """The most memory Python allocated at once while `call` ran, in bytes; `refusals` are the errors it may raise.

    The call runs once untraced first, so what a first call sets up once (a cache, a lazy import) is not
    counted: only what every call allocates, which is what an input's claims could drive.
    """
    for traced in (False, True):
        if traced:
            tracemalloc.start()
        try:
            call()
        except refusals:
            pass
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            if traced:
                tracemalloc.stop()
    return peak
