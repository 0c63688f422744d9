"""The standalone seeder's settings: its command line's options (each with its MIST_* variable, which click
reads at the command line) and the shared plumbing's (shared/service/settings.py), read once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.service.settings import ServiceSettings


@dataclass(frozen=True)
class SeederSettings:
    """Everything `mist-seeder` was told; every process it starts serves from one of these."""

    store: str  # MIST_STORE_URL: a folder, file:///PATH or s3://BUCKET/PREFIX
    public_key: str = ""  # MIST_TRACKER_PUBLIC_KEY (or asked of the tracker)
    tracker_url: str = ""  # MIST_TRACKER_URL: its key hand-overs are followed, its ended sessions refused
    s3_endpoint_url: str = ""  # MIST_S3_ENDPOINT_URL
    host: str = "127.0.0.1"
    port: int = 8701
    metrics_dir: Path | None = None  # MIST_METRICS_DIR (None: a temporary directory)
    processes: int = 1  # MIST_SEEDER_PROCESSES
    accel_redirect: str = ""  # MIST_SEEDER_ACCEL_REDIRECT, ending in "/" when set
    link_seconds: int = 0  # MIST_SEEDER_LINK_SECONDS
    service: ServiceSettings = field(default_factory=ServiceSettings)

    @classmethod
    def from_env(cls, options: Mapping[str, Any], env: Mapping[str, str] = os.environ) -> SeederSettings:
        """The command line's `options` with the plumbing's variables from `env` (a wrong one raises SettingsError)."""
        return cls(**options, service=ServiceSettings.from_env(env))
