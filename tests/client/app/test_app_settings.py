"""The app's own settings file and the friends list's rows (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.app import preferences
from client.app.friends import Friends, Totals, friend_rows
from client.sharing_settings import SettingsError


def test_preferences_round_trip_and_refuse_what_they_do_not_know(tmp_path: Path) -> None:
    assert preferences.load(tmp_path) == preferences.Preferences()
    preferences.save(tmp_path, preferences.Preferences(notifications=False, autostart=True))
    assert preferences.load(tmp_path) == preferences.Preferences(False, True)
    (tmp_path / preferences.PREFERENCES_FILE).write_text('{"notifications": "yes"}')
    with pytest.raises(SettingsError, match="true or false"):
        preferences.load(tmp_path)
    (tmp_path / preferences.PREFERENCES_FILE).write_text('{"colour": "blue"}')
    with pytest.raises(SettingsError, match="fix the file"):
        preferences.load(tmp_path)


def test_friend_totals_add_up_across_restarts_and_rows_put_the_online_first(tmp_path: Path) -> None:
    friends = Friends(tmp_path)
    assert friends.given_now({"bob": 100}) and not friends.given_now({"bob": 100})
    friends.given_now({"bob": 150})
    friends.received_now({"bob": 30, "seeder": 999, "carol": 5})
    again = Friends(tmp_path)
    assert again.totals == {"bob": Totals(150, 30), "carol": Totals(0, 5)}
    rows = friend_rows([{"user": "dave", "sharing": True, "games": ["hollow"]}, {"user": "me", "sharing": True}],
                       "me", again.totals, [{"user": "carol", "game": "celeste"}], {"dave": 42})
    assert [(r["user"], r["online"]) for r in rows] == [("dave", True), ("bob", False), ("carol", False)]
    assert rows[0]["sending_you_now"] == 42 and rows[2]["downloading_from_you"] == ["celeste"]
