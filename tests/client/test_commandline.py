"""How a command's failure reaches the user: one line that says what to do, never a traceback."""

from __future__ import annotations

import asyncio
import errno

import click
import pytest

from client.commandline import run
from client.errors import DownloadFailed


def failing(exc: BaseException):
    async def go() -> None:
        raise exc

    return go


def message(exc: BaseException) -> str:
    with pytest.raises(click.ClickException) as caught:
        run(failing(exc))
    return caught.value.message


def test_a_full_disk_says_to_free_space_and_resume() -> None:
    text = message(OSError(errno.ENOSPC, "No space left on device", "/games/x/.mist/staging/a"))
    assert text.startswith("the disk is full (/games/x/.mist/staging/a)") and "resume" in text


def test_a_read_only_folder_says_to_choose_another() -> None:
    assert "choose a folder you can write to" in message(OSError(errno.EROFS, "Read-only file system", "/mnt/ro"))


def test_a_domain_error_inside_concurrent_tasks_is_reported_alone() -> None:
    async def go() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(failing(DownloadFailed("the seeder does not have chunk ab12; ask the admin"))())

    with pytest.raises(click.ClickException) as caught:
        run(go)
    assert caught.value.message == "the seeder does not have chunk ab12; ask the admin"


def test_a_full_disk_inside_concurrent_tasks_is_reported_alone() -> None:
    async def go() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(failing(OSError(errno.ENOSPC, "No space left on device", "/g/f"))())

    with pytest.raises(click.ClickException) as caught:
        run(go)
    assert caught.value.message.startswith("the disk is full (/g/f)")


@pytest.mark.parametrize(("typed", "url", "noted"), [
    ("http://127.0.0.1:8700", "http://127.0.0.1:8700", ""),
    ("https://mist.example.org/", "https://mist.example.org", ""),
    ("127.0.0.1:8700", "http://127.0.0.1:8700", "no scheme"),
    ("192.168.1.20:8700", "http://192.168.1.20:8700", "no scheme"),
    ("mist.example.org", "https://mist.example.org", "no scheme"),
    ("localhost:8700", "http://localhost:8700", "no scheme"),
    ("http://127.0.0.1:8700/admin", "http://127.0.0.1:8700", "its origin"),
    ("HTTPS://Mist.Example.org/get/", "https://Mist.Example.org", "its origin"),
])
def test_a_tracker_address_is_taken_as_people_type_it(typed: str, url: str, noted: str) -> None:
    from client.commandline import tracker_url

    got, note = tracker_url(typed)
    assert got == url and (noted in note if noted else note == "")


@pytest.mark.parametrize("typed", ["ftp://x", "http://", "://x", "http:///path"])
def test_what_is_not_a_tracker_address_says_how_one_looks(typed: str) -> None:
    from client.commandline import tracker_url

    with pytest.raises(click.ClickException, match="is not a tracker address; give one like"):
        tracker_url(typed)
