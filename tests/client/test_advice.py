"""A tracker's refusal reaches the user with the next step in the words of the tool they ran (the tracker does not
know which tool asked), said once."""

from __future__ import annotations

from client.api import Api
from client.credentials import Credentials
from client.errors import ServerRefused


async def test_a_refusal_gets_the_tools_own_next_step_once() -> None:
    creds = Credentials("http://mist.example:8700", "bob", "user", "t", 2**40, "r", "k")
    async with Api(creds, lambda c: None, tool="mistpipe") as api:
        ended = api.advise(ServerRefused(401, "your session has expired or was ended; log in again"))
        assert str(ended) == ("your session has expired or was ended; "
                              "run `mistpipe login http://mist.example:8700 --user bob` again")
        expired = api.advise(ServerRefused(401, "access token has expired; refresh it or log in again"))
        assert str(expired).count("again") == 1 and str(expired).startswith("access token has expired; run `mistpipe")
        game = api.advise(ServerRefused(404, "no game 'hollw'", {"missing": "game"}))
        assert str(game) == "no game 'hollw'; `mistpipe ls` lists the games you can see"
        version = api.advise(ServerRefused(404, "no version 9 of hollow", {"missing": "version", "game": "hollow"}))
        assert str(version).endswith("`mistpipe ls hollow` lists its versions") and version.status == 404
        other = ServerRefused(409, "the build exists")
        assert api.advise(other) is other
