"""The HTTP/1.1 Mist writes by hand (client/http_wire.py), without sockets: a request's bytes, and heads read back."""

from __future__ import annotations

import pytest

from client.http_wire import content_length, parse_head, request


def test_a_request_names_its_host_target_and_length_and_carries_its_body() -> None:
    sent = request("POST", "http://127.0.0.1:8700/seeder/fetch?x=1", {"Authorization": "Ticket t"}, b"body")
    assert sent == (b"POST /seeder/fetch?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8700\r\nAuthorization: Ticket t\r\n"
                    b"Content-Length: 4\r\n\r\nbody")
    assert request("GET", "http://example.org", {}, b"").startswith(b"GET / HTTP/1.1\r\nHost: example.org\r\n")


@pytest.mark.parametrize("value", ["t\r\nX-Evil: 1", "t\nX", "t\x00", "tické"])
def test_a_header_value_that_could_write_headers_of_its_own_is_never_written(value: str) -> None:
    assert request("POST", "http://127.0.0.1:1/run", {"Authorization": value}, b"") is None


def test_a_head_is_read_with_its_status_reason_and_headers_in_lower_case() -> None:
    head = parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\nX-A: 1\r\nx-a: 2\r\nBroken")
    assert (head.version, head.status, head.reason) == ("HTTP/1.1", 404, "Not Found")
    assert head.headers == {"content-length": "12", "x-a": "2", "broken": ""}


@pytest.mark.parametrize("first", [b"SSH-2.0-OpenSSH_9.2", b"HTTP/2 200", b"HTTP/1.1 2OO OK", b"HTTP/1.1 20 OK", b"",
                                   "HTTP/1.1 ２００ OK".encode()])
def test_a_first_line_that_is_not_an_http_1_status_line_has_status_0(first: bytes) -> None:
    assert parse_head(first).status == 0


@pytest.mark.parametrize(("value", "length"), [("12", 12), ("0", 0), ("", None), ("-1", None), ("1e3", None),
                                               (" 12", None), ("١٢", None)])
def test_a_content_length_counts_only_when_it_is_a_whole_number(value: str, length: int | None) -> None:
    assert content_length({"content-length": value}) == length
    assert content_length({}) is None
