"""A friend's daemon stops serving a download whose login session the admin ended (the tracker says which)."""

from __future__ import annotations

from client.ratelimit import TokenBucket
from client.sharing import UploadView, Uploads


class Link:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


async def test_links_of_ended_sessions_close_and_their_tickets_stay_refused() -> None:
    uploads = Uploads(TokenBucket(None, 1024))
    links = {}
    for key, session in (("a", "ended-1"), ("b", "still-on"), ("c", "")):
        uploads.sessions[key] = UploadView("friend", "hollow", 0.0, ticket_session=session)
        links[key] = uploads.links[key] = Link()  # type: ignore[assignment]
    await uploads.end(["ended-1", "ended-2"])
    assert [k for k, link in links.items() if link.closed] == ["a"]
    assert {"ended-1", "ended-2"} <= uploads.ended  # a later ticket of either is refused when it says hello
