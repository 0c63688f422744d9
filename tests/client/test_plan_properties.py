"""Properties of reading the tracker's plan answer (`parse_routes`): the routes the tracker's planner chose come
back as chosen, and an answer in any shape, which nothing signs, never breaks an update: a file it mentions
oddly is fetched by chunks, and only a SHA-256 ever names a patch object (it becomes a file name)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, strategies as st

from client.plan import CHUNKS, PATCH, PatchRef, Route, Routes, parse_routes
from shared.plan_wire import MAX_STEPS
from shared.pack import MAX_RECORD
from tests.hostile import BIG_NUMBERS, REFUSED, decoded, json_values, mutations
from tests.shared.strategies import build_paths, sha256_hex
from tracker.planner import Choice, PatchOption, UpdatePlan

pytestmark = pytest.mark.same_on_every_backend  # pure: an answer in, routes out

_SHA256 = re.compile(r"[0-9a-f]{64}")
sizes = st.integers(min_value=0, max_value=2**40)
patch_options = st.builds(PatchOption, sha256_hex, sha256_hex, sha256_hex, st.integers(1, MAX_RECORD), sizes,
                          st.sampled_from(["hdiff", "zstd"]))


@st.composite
def patch_routes(draw: st.DrawFn) -> tuple[PatchOption, ...]:
    """One patch, or a chain of them (each step starting from the content the one before makes)."""
    steps = draw(st.lists(patch_options, min_size=1, max_size=MAX_STEPS))
    chained = [steps[0]]
    for step in steps[1:]:
        chained.append(PatchOption(chained[-1].target, step.target, step.object_sha, step.object_size,
                                   step.stored_size, step.algorithm))
    return tuple(chained)


def _ref(option: PatchOption) -> PatchRef:
    return PatchRef(option.object_sha, option.source, option.object_size, option.stored_size, option.algorithm,
                    option.target)


@st.composite
def answers(draw: st.DrawFn) -> tuple[dict[str, object], list[str], UpdatePlan, list[str]]:
    """A plan answer as the tracker sends it (its planner's own JSON), the files the client asked about,
    the plan, and the files whose better patches are coming."""
    write = draw(st.lists(build_paths, min_size=1, max_size=6, unique=True))
    chosen = draw(st.lists(st.sampled_from(write), unique=True))
    choices = []
    for path in chosen:
        steps = draw(st.just(()) | patch_routes())
        choices.append(Choice(path, PATCH if steps else CHUNKS, draw(sizes), draw(sizes), steps))
    plan = UpdatePlan(tuple(choices))
    coming = draw(st.lists(st.sampled_from(write)))
    answer = {"held": [], **plan.to_json(), "coming": [{"path": p, "job": "j1"} for p in coming]}
    return json.loads(json.dumps(answer)), write, plan, coming


@given(answers())
def test_the_planner_s_choices_come_back_as_chosen(
    found: tuple[dict[str, object], list[str], UpdatePlan, list[str]]
) -> None:
    answer, write, plan, coming = found
    routes = parse_routes(answer, write)
    expected = {
        c.path: Route(c.source, c.bytes, c.chunk_bytes, c.file_bytes, _ref(c.patch) if c.patch else None,
                      tuple(_ref(step) for step in c.steps[1:]))
        for c in plan.choices
    }
    assert dict(routes.by_path) == expected
    assert routes.coming == tuple(sorted(set(coming)))
    assert routes.bytes_by_source() == plan.bytes_by_source()


def _check(routes: Routes, write: list[str]) -> None:
    assert set(routes.by_path) <= set(write)
    for route in routes.by_path.values():
        assert route.source in (CHUNKS, PATCH) and (route.patch is not None) == (route.source == PATCH)
        assert all(type(n) is int for n in (route.bytes, route.chunk_bytes, route.file_bytes))
        assert len(route.steps) <= MAX_STEPS
        for step in route.steps:
            assert _SHA256.fullmatch(step.object) and _SHA256.fullmatch(step.source)
            assert 0 < step.size <= MAX_RECORD
        for before, after in zip(route.steps, route.steps[1:]):
            assert before.target == after.source  # a chain that does not hold together is never followed
    assert all(isinstance(path, str) for path in routes.coming)


@given(answers().flatmap(lambda found: st.tuples(mutations(found[0]), st.just(found[1]))))
def test_a_damaged_answer_leaves_every_file_a_way_to_come(damaged: tuple[object, list[str]]) -> None:
    document, write = damaged
    answer = decoded(document)  # what the client's HTTP library hands over: decoded JSON
    if answer is not REFUSED:
        _check(parse_routes(answer, write), write)


@given(json_values, st.lists(st.sampled_from(["a", "b/c", "0", ""]), max_size=3))
def test_an_answer_of_any_shape_leaves_every_file_a_way_to_come(document: object, write: list[str]) -> None:
    answer = decoded(document)
    if answer is not REFUSED:
        _check(parse_routes(answer, write), write)


@given(st.lists(st.sampled_from(["a", "b/c"]), min_size=1, max_size=2), st.lists(json_values, max_size=2),
       st.sampled_from(BIG_NUMBERS) | json_values)
def test_a_list_of_files_with_any_entries_leaves_every_file_a_way_to_come(asked: list[str], others: list[object],
                                                                        entry: object) -> None:
    """Entries shaped nearly right: the paths asked about (and others), with any value in any field."""
    paths = [*asked, *others]
    offer = {"object": entry, "from": entry, "to": entry, "size": entry, "stored_size": entry, "algorithm": entry}
    files = [{"path": p, "source": "patch", "bytes": entry, "chunk_bytes": entry, "file_bytes": entry, "patch": offer,
              "chain": [offer, offer] if n % 2 else entry} for n, p in enumerate(paths)]
    answer = decoded({"files": files, "coming": [{"path": entry}]})
    if answer is not REFUSED:
        _check(parse_routes(answer, ["a", "b/c"]), ["a", "b/c"])


def test_an_answer_that_is_not_an_object_or_says_infinity_plans_chunks() -> None:
    """Found by the properties above: a list or null answer raised AttributeError, and Infinity (which Python's
    JSON decoder accepts) in a size raised OverflowError, so an update failed with a traceback."""
    assert parse_routes([], ["a"]) == parse_routes(None, ["a"]) == Routes({})
    answer = json.loads('{"files": [{"path": "a", "source": "chunks", "bytes": 1, "chunk_bytes": Infinity}]}')
    assert parse_routes(answer, ["a"]).get("a") == Route(CHUNKS, 0, 0, 0)


def test_a_chain_that_does_not_hold_together_is_fetched_by_chunks() -> None:
    """Each step must start from what the one before makes, and the first step must be the offered patch."""
    a, b, c, obj = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
    first = {"object": obj, "from": a, "to": b, "size": 10, "stored_size": 5, "algorithm": "hdiff"}
    second = {"object": obj, "from": b, "to": c, "size": 10, "stored_size": 5, "algorithm": "hdiff"}
    item = {"path": "x", "source": "patch", "bytes": 10, "chunk_bytes": 99, "patch": first}
    assert parse_routes({"files": [{**item, "chain": [first, second]}]}, ["x"]).get("x").steps[1].source == b
    for chain in ([first, {**second, "from": c}], [second, first], [first], [first] + [second] * MAX_STEPS,
                  [{**first, "to": ""}, second]):
        assert parse_routes({"files": [{**item, "chain": chain}]}, ["x"]).get("x") == Route(CHUNKS, 99, 99, 0), chain
