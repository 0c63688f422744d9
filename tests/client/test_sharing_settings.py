"""Sharing settings: rates and windows as users type them, the caps in force at a time of day, the settings file."""

from __future__ import annotations

import json
import os
from datetime import time
from pathlib import Path

import pytest

from client import sharing_settings as ss
from client.sharing_settings import Sharing, SettingsError, Window
from shared.errors import MistError

NIGHT = Window(time(23, 0), time(7, 0), None, 5_000_000)
LUNCH = Window(time(12, 0), time(13, 0), 100_000, 200_000)


@pytest.mark.parametrize("text, rate", [
    ("2MB", 2_000_000), ("500KB", 500_000), ("1.5 MB/s", 1_500_000), ("750k", 750_000), ("64000", 64_000),
    ("2MiB", 2 * 1024**2), ("64 KiB/s", 65_536), ("1GB", 10**9), ("1 gib", 1024**3), (" 3mb ", 3_000_000),
    ("100 B/s", 100), ("0.5KB", 500), ("unlimited", None), ("None", None), ("OFF", None),
])
def test_rates_read_as_typed(text: str, rate: int | None) -> None:
    assert ss.parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "-5MB", "5 TB", "5Mbps", "1e6", "2MB/h", "MB", "1,5MB", "2 M B", "nan"])
def test_malformed_rates_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(SettingsError, match="1.5MB/s.*'unlimited'"):
        ss.parse_rate(text)


@pytest.mark.parametrize("text", ["0", "0KB", "0.0001KB"])
def test_a_rate_below_one_byte_a_second_says_how_to_mean_no_cap(text: str) -> None:
    with pytest.raises(SettingsError, match="at least 1 byte.*'unlimited'.*sharing off"):
        ss.parse_rate(text)


def test_settings_errors_are_mist_errors() -> None:
    assert issubclass(SettingsError, MistError)


@pytest.mark.parametrize("rate, text", [
    (None, "unlimited"), (999, "999 B/s"), (1000, "1 KB/s"), (1_500_000, "1.5 MB/s"), (2_000_000, "2 MB/s"),
    (100_000_000, "100 MB/s"), (1_048_576, "1.048576 MB/s"), (3 * 10**9, "3 GB/s"),
])
def test_rates_format_for_people(rate: int | None, text: str) -> None:
    assert ss.format_rate(rate) == text


@pytest.mark.parametrize("rate", [1, 7, 999, 1000, 1001, 65_536, 123_456_789, 10**12 + 1, None])
def test_formatted_rates_read_back_exactly(rate: int | None) -> None:
    assert ss.parse_rate(ss.format_rate(rate)) == rate


def test_a_window_reads_with_both_keys_one_key_or_none() -> None:
    assert ss.parse_window("23:00-07:00 up=unlimited down=5MB") == NIGHT
    assert ss.parse_window("12:00-13:00 down=200KB up=100KB") == LUNCH
    assert ss.parse_window("09:30-17:45 up=1MiB") == Window(time(9, 30), time(17, 45), 1024**2, None)
    assert ss.parse_window("  00:00-06:00  ") == Window(time(0, 0), time(6, 0), None, None)


@pytest.mark.parametrize("text, says", [
    ("", "HH:MM-HH:MM"),
    ("23:00", "HH:MM-HH:MM"),
    ("23:00-07:00-09:00", "HH:MM-HH:MM"),
    ("23:00 - 07:00", "HH:MM-HH:MM"),
    ("24:00-07:00", "24-hour clock"),
    ("7:00-9:00", "24-hour clock"),
    ("23:60-07:00", "24-hour clock"),
    ("07:00-07:00", "for all day, set the base caps"),
    ("23:00-07:00 up=", "rate must be"),
    ("23:00-07:00 up=1.5 MB", "without spaces"),
    ("23:00-07:00 upload=1MB", "up=RATE and down=RATE"),
    ("23:00-07:00 up 1MB", "up=RATE and down=RATE"),
    ("23:00-07:00 up=1MB up=2MB", "once"),
    ("23:00-07:00 down=-1", "rate must be"),
])
def test_malformed_windows_are_refused_saying_what_to_write(text: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        ss.parse_window(text)


@pytest.mark.parametrize("at, covered", [
    (time(22, 59, 59), False), (time(23, 0), True), (time(23, 59, 59), True), (time(0, 0), True),
    (time(3, 0), True), (time(6, 59, 59), True), (time(7, 0), False), (time(12, 0), False),
])
def test_a_window_wraps_midnight(at: time, covered: bool) -> None:
    assert NIGHT.covers(at) is covered


@pytest.mark.parametrize("at, covered", [
    (time(11, 59), False), (time(12, 0), True), (time(12, 59), True), (time(13, 0), False), (time(0, 0), False),
])
def test_a_window_within_a_day_covers_start_but_not_end(at: time, covered: bool) -> None:
    assert LUNCH.covers(at) is covered


def test_caps_follow_the_schedule_and_fall_back_to_the_base_caps() -> None:
    s = Sharing(upload_cap=1_000_000, download_cap=10_000_000, schedule=(NIGHT, LUNCH))
    assert ss.caps_at(s, time(2, 0)) == (None, 5_000_000)
    assert ss.caps_at(s, time(12, 30)) == (100_000, 200_000)
    assert ss.caps_at(s, time(7, 0)) == (1_000_000, 10_000_000)
    assert ss.caps_at(Sharing(), time(2, 0)) == (Sharing().upload_cap, None)


def test_the_first_matching_window_wins() -> None:
    evening = Window(time(18, 0), time(0, 30), 42, 43)
    s = Sharing(schedule=(evening, NIGHT))
    assert ss.caps_at(s, time(0, 15)) == (42, 43)
    assert ss.caps_at(s, time(0, 30)) == (None, 5_000_000)
    assert ss.caps_at(Sharing(schedule=(NIGHT, evening)), time(0, 15)) == (None, 5_000_000)


def test_defaults_leave_a_home_connection_usable() -> None:
    s = Sharing()
    assert s.enabled and s.download_cap is None and s.schedule == ()
    assert s.upload_cap is not None and 0 < s.upload_cap <= 2_000_000
    assert 1 <= s.max_peers <= 16


@pytest.mark.parametrize("make, says", [
    (lambda: Sharing(upload_cap=0), "upload_cap must be a whole number"),
    (lambda: Sharing(download_cap=-5), "download_cap must be a whole number"),
    (lambda: Sharing(max_peers=0), "turn sharing off"),
    (lambda: Window(time(1, 0), time(2, 0), upload_cap=0), "upload_cap"),
])
def test_values_are_checked_however_they_are_made(make: object, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        make()  # type: ignore[operator]


def test_settings_round_trip_through_json_text() -> None:
    s = Sharing(enabled=False, upload_cap=None, download_cap=3_000_000, max_peers=3, schedule=(NIGHT, LUNCH))
    obj = ss.to_json(s)
    assert obj["schedule"] == [
        {"start": "23:00", "end": "07:00", "upload_cap": None, "download_cap": 5_000_000},
        {"start": "12:00", "end": "13:00", "upload_cap": 100_000, "download_cap": 200_000},
    ]
    assert ss.from_json(json.loads(json.dumps(obj))) == s
    assert ss.from_json(json.loads(json.dumps(ss.to_json(Sharing())))) == Sharing()


def test_keys_left_out_take_their_defaults() -> None:
    assert ss.from_json({}) == Sharing()
    assert ss.from_json({"max_peers": 2}) == Sharing(max_peers=2)
    assert ss.from_json({"schedule": [{"start": "01:00", "end": "02:00"}]}).schedule == (
        Window(time(1, 0), time(2, 0), None, None),)


@pytest.mark.parametrize("obj, says", [
    ([], "must be a JSON object"),
    ({"uplaod_cap": 5}, "unknown key 'uplaod_cap' in the sharing settings; the keys are enabled, upload_cap"),
    ({"enabled": "yes"}, "enabled must be true or false"),
    ({"enabled": 1}, "enabled must be true or false"),
    ({"upload_cap": "2MB"}, "upload_cap must be a whole number of bytes per second"),
    ({"upload_cap": 2e6}, "upload_cap must be a whole number"),
    ({"download_cap": True}, "download_cap must be a whole number"),
    ({"max_peers": True}, "max_peers must be a whole number"),
    ({"max_peers": -1}, "max_peers must be a whole number"),
    ({"schedule": {}}, "schedule must be a list"),
    ({"schedule": ["23:00-07:00"]}, "a schedule window must be a JSON object"),
    ({"schedule": [{"start": "23:00"}]}, r"\"HH:MM\".*got None"),
    ({"schedule": [{"start": 23, "end": "07:00"}]}, r"\"HH:MM\".*got 23"),
    ({"schedule": [{"start": "23:00", "end": "07:00", "up": 5}]}, "unknown key 'up' in a schedule window"),
    ({"schedule": [{"start": "23:00", "end": "07:00", "upload_cap": 0}]}, "upload_cap must be"),
])
def test_malformed_json_is_refused_saying_what_is_wrong(obj: object, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        ss.from_json(obj)


def test_a_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    assert ss.load(tmp_path / "absent" / "sharing.json") == Sharing()


def test_saved_settings_load_back(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "sharing.json"
    s = Sharing(upload_cap=250_000, max_peers=4, schedule=(NIGHT,))
    ss.save(path, s)
    assert ss.load(path) == s
    ss.save(path, Sharing())
    assert ss.load(path) == Sharing()
    assert sorted(p.name for p in path.parent.iterdir()) == ["sharing.json"]


@pytest.mark.parametrize("content, says", [
    (b"{not json", "Expecting"),
    (b"\xff\xfe", "codec"),
    (b'{"max_peers": 0}', "max_peers must be"),
])
def test_a_bad_file_names_itself_and_says_to_fix_or_delete_it(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "sharing.json"
    path.write_bytes(content)
    with pytest.raises(SettingsError) as caught:
        ss.load(path)
    message = str(caught.value)
    assert str(path) in message and says in message and "fix the file, or delete it" in message


def test_a_save_that_fails_before_the_swap_leaves_the_old_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sharing.json"
    old = Sharing(max_peers=5)
    ss.save(path, old)
    before = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        ss.save(path, Sharing(max_peers=6, upload_cap=None))
    assert path.read_bytes() == before
    assert ss.load(path) == old
