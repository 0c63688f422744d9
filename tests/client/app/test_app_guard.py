"""Who may talk to the daemon's local server: the Host and Origin rules, and one-time codes (no sockets)."""

from __future__ import annotations

from client.app import guard
from tests.clock import Clock

PORT = 4711


def test_only_the_daemons_own_host_and_origin_pass() -> None:
    assert guard.refusal(f"127.0.0.1:{PORT}", None, None, PORT) is None
    assert guard.refusal(f"localhost:{PORT}", f"http://localhost:{PORT}", "same-origin", PORT) is None
    assert guard.refusal(f"127.0.0.1:{PORT}", f"http://127.0.0.1:{PORT}", "none", PORT) is None
    rebound = guard.refusal(f"attacker.example:{PORT}", None, None, PORT)
    assert rebound is not None and "127.0.0.1" in rebound  # DNS rebinding: the page's own name arrives as Host
    for host in (f"127.0.0.1:{PORT + 1}", "127.0.0.1", f"127.0.0.2:{PORT}", ""):
        assert guard.refusal(host, None, None, PORT) is not None, host
    for origin in ("http://attacker.example", f"https://127.0.0.1:{PORT}", f"http://127.0.0.1:{PORT + 1}", "null"):
        assert "other sites" in str(guard.refusal(f"127.0.0.1:{PORT}", origin, None, PORT)), origin
    assert guard.refusal(f"127.0.0.1:{PORT}", None, "cross-site", PORT) is not None  # a link or image from elsewhere


def test_a_code_opens_one_session_once_and_not_after_it_expires() -> None:
    clock = Clock()
    sessions = guard.Sessions(clock)
    code = sessions.new_code()
    session = sessions.redeem(code)
    assert session is not None and sessions.valid(session)
    assert sessions.redeem(code) is None  # once only
    late = sessions.new_code()
    clock.now += guard.CODE_LIFETIME + 1
    assert sessions.redeem(late) is None
    assert not sessions.valid("made-up") and not sessions.valid(None)
    sessions.end(session)
    assert not sessions.valid(session)


def test_sessions_are_bounded_and_the_token_is_compared_whole() -> None:
    sessions = guard.Sessions(Clock())
    opened = [sessions.redeem(sessions.new_code()) for _ in range(guard.SESSIONS_KEPT + 5)]
    assert len(sessions.sessions) == guard.SESSIONS_KEPT and not sessions.valid(opened[0]) and sessions.valid(opened[-1])
    assert guard.token_matches("Bearer abc", "abc")
    assert not guard.token_matches("Bearer abcd", "abc") and not guard.token_matches(None, "abc")
    assert not guard.token_matches("abc", "abc")


def test_the_cookie_and_the_page_headers_are_strict() -> None:
    cookie = guard.cookie_header("s3cret")
    assert cookie.startswith("mist_session=s3cret;") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    policy = guard.SECURITY_HEADERS["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy
