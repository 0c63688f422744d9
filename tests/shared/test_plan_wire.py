"""The plan's wire types: what the tracker writes, the client reads back as the same routes."""

from __future__ import annotations

import json

from client.plan import parse_routes
from shared.plan_wire import CHUNKS, PATCH, PatchOffer, Route
from tracker.planner import Choice, PatchOption, UpdatePlan

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_the_trackers_plan_reads_back_as_the_routes_it_chose() -> None:
    patch = PatchOption(source=A, target=B, object_sha=C, object_size=900, stored_size=400, algorithm="hdiffpatch")
    plan = UpdatePlan((Choice("game.bin", PATCH, 5000, 8000, (patch,)), Choice("data/x.pak", CHUNKS, 1200, 3000)))
    answer = json.loads(json.dumps(plan.to_json()))  # through JSON, as on the wire
    routes = parse_routes(answer, ["game.bin", "data/x.pak"])
    assert routes.get("game.bin") == Route(PATCH, 400, 5000, 8000, PatchOffer(C, A, 900, 400, "hdiffpatch", B))
    assert routes.get("data/x.pak") == Route(CHUNKS, 1200, 1200, 3000)
    assert routes.bytes_by_source() == plan.bytes_by_source() == {CHUNKS: 1200, PATCH: 400}


def test_an_offer_whose_object_is_no_sha256_is_fetched_by_chunks() -> None:
    entry = Route(PATCH, 400, 5000, 8000, PatchOffer("../../evil", A, 900, 400, "hdiffpatch")).to_json("game.bin")
    assert Route.from_json(entry) == ("game.bin", Route(CHUNKS, 5000, 5000, 8000))
