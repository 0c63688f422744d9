"""The tracker's settings come from the environment once, and a value it cannot use stops the start, named."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.service.settings import ServiceSettings
from tracker.settings import (DEFAULT_FLOOR, DEFAULT_SHARE, GRACE_SECONDS, ICE_ENV, SHARE_ENV, Settings,
                              SettingsError)


def test_an_empty_environment_gives_the_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path, {})
    assert settings == Settings(tmp_path, clock=settings.clock)
    assert (settings.seeder_share, settings.peer_floor, settings.gc_grace) == (DEFAULT_SHARE, DEFAULT_FLOOR, GRACE_SECONDS)
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path / 'tracker.db'}" and settings.queue_name == "mist"


def test_every_variable_reaches_its_field_and_options_win(tmp_path: Path) -> None:
    env = {"MIST_DATABASE_URL": "postgresql+psycopg://m@db/mist", "MIST_REDIS_URL": "redis://q:6379/0",
           "MIST_QUEUE_NAME": "q1", "MIST_ADMIN_PASSWORD": "pw-123456", ICE_ENV: '[{"urls": ["stun:h:3478"]}]',
           SHARE_ENV: "0.5", "MIST_PEER_FLOOR": "0", "MIST_GC_GRACE_SECONDS": "0", "MIST_NEWS_PATCH_WAIT": "2",
           "MIST_ACTIVITY_DAYS": "7", "MIST_STEAM_URL": "http://steam.test/", "MIST_STEAM_TIMEOUT": "3",
           "MIST_DISCORD_WEBHOOK_URL": "https://discord.test/hook", "MIST_STORE_URL": "s3://bucket/p",
           "MIST_LOG_FORMAT": "Text", "MIST_METRICS_TOKEN": "t0ken", "MIST_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
           "MIST_DISK_MIN_FREE": "5000", "MIST_PASSWORD_HASH_COST": "cheapest"}
    settings = Settings.from_env(tmp_path, env, seeder_url="http://s/seeder", queue_name="given")
    assert settings.database_url == env["MIST_DATABASE_URL"] and settings.redis_url == env["MIST_REDIS_URL"]
    assert settings.queue_name == "given" and settings.admin_password == "pw-123456"
    assert settings.ice_servers == [{"urls": ["stun:h:3478"], "username": "", "credential": ""}]
    assert (settings.seeder_share, settings.peer_floor, settings.gc_grace, settings.patch_wait) == (0.5, 0, 0.0, 2.0)
    assert (settings.activity_days, settings.steam_url, settings.steam_timeout) == (7.0, "http://steam.test", 3.0)
    assert settings.discord_webhook_url.endswith("/hook") and settings.store.url == "s3://bucket/p"
    assert settings.seeder_url == "http://s/seeder" and settings.password_hash_cost == "cheapest"
    service = settings.service
    assert (service.log_format, service.logs("json"), service.metrics_token, service.disk_min_free) == ("text", "text",
                                                                                                       "t0ken", 5000)
    assert service.trusted_proxies.trusts("10.1.2.3") and not service.trusted_proxies.trusts("192.168.1.1")
    assert "t0ken" not in repr(settings)  # a secret is not logged with the settings


def test_the_plumbing_defaults_leave_each_service_its_log_format(tmp_path: Path) -> None:
    service = Settings.from_env(tmp_path, {}).service
    assert service == ServiceSettings() and (service.logs("json"), service.logs("text")) == ("json", "text")
    assert not service.trusted_proxies.networks and service.metrics_token == ""


@pytest.mark.parametrize("name, value, said", [
    (ICE_ENV, '{"urls": "stun:h"}', "be a JSON list"), (ICE_ENV, "not json", "be a JSON list"),
    (SHARE_ENV, "2", "between 0.05 and 1.0"), ("MIST_PEER_FLOOR", "-1", "bytes per second"),
    ("MIST_ACTIVITY_DAYS", "0", "number of days"), ("MIST_STEAM_TIMEOUT", "soon", "number of seconds"),
    ("MIST_LOG_FORMAT", "xml", "'json' or 'text'"), ("MIST_DISK_MIN_FREE", "1GB", "a number of bytes"),
    ("MIST_TRUSTED_PROXIES", "127.0.0.1, nginx", "list addresses or networks"),
    ("MIST_PASSWORD_HASH_COST", "fast", "one of standard, cheapest"),
])
def test_a_value_it_cannot_use_stops_the_start_naming_the_variable(tmp_path: Path, name: str, value: str, said: str) -> None:
    with pytest.raises(SettingsError, match=f"{name} must .*{said}"):
        Settings.from_env(tmp_path, {name: value})


def test_an_option_that_is_no_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="no such setting: sedeer_url"):
        Settings.from_env(tmp_path, {}, sedeer_url="x")
