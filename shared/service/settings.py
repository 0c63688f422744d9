"""What the plumbing the tracker and the seeder share takes from the environment, read once at their start.

Logs (MIST_LOG_FORMAT), the /metrics token (MIST_METRICS_TOKEN), the proxies whose X-Forwarded-For is
believed (MIST_TRUSTED_PROXIES) and the free space under which /healthz warns (MIST_DISK_MIN_FREE).
Each service's settings object holds one of these (tracker/settings.py, seeder/settings.py) and passes
its values to the modules beside this one, which read no environment themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.environment import log_format, whole_number
from shared.errors import SettingsError
from shared.service.disk_space import DEFAULT_MIN_FREE, ENV as DISK_ENV
from shared.service.forwarded import ENV as PROXIES_ENV, TrustedProxies
from shared.service.metrics import TOKEN_ENV


@dataclass(frozen=True)
class ServiceSettings:
    """The shared plumbing's settings; the defaults are those of an unset environment."""

    log_format: str = ""  # `json` or `text`; "" for the service's own default (see `logs`)
    metrics_token: str = ""  # when set, GET /metrics wants `Authorization: Bearer <token>`
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    disk_min_free: int = DEFAULT_MIN_FREE

    def __repr__(self) -> str:  # the token is a secret: say only whether there is one
        return (
            f"ServiceSettings(log_format={self.log_format!r}, metrics_token={'set' if self.metrics_token else ''!r}, "
            f"trusted_proxies={self.trusted_proxies!r}, disk_min_free={self.disk_min_free})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ServiceSettings:
        """A wrong value raises SettingsError naming its variable (the service does not start)."""
        try:
            proxies = TrustedProxies.parse(env.get(PROXIES_ENV, ""))
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        return cls(
            log_format=log_format(env),
            metrics_token=env.get(TOKEN_ENV, ""),
            trusted_proxies=proxies,
            disk_min_free=whole_number(env, DISK_ENV, DEFAULT_MIN_FREE, "a number of bytes, like 1000000000"),
        )

    def logs(self, default: str) -> str:
        """The log format to use: MIST_LOG_FORMAT's, else the service's `default`."""
        return self.log_format or default
