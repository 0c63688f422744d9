"""The server's commands, which a friend's install (`pip install mist`, without the `server` extra) also has.

The scripts come with every install of the distribution, but the services need
the `server` extra's libraries; without them a command says so and how to get
them instead of ending in an ImportError's traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

PRIVATE_UMASK = 0o077  # as tracker/private_data.py, which this module may not import (it runs before the check)

SERVER_ONLY = {"sqlalchemy", "alembic", "argon2", "jwt", "huey", "prometheus_client", "psycopg", "redis", "jinja2"}
COMMANDS = {
    "mist-server": "tracker.cli.mist_server",
    "mist-tracker": "tracker.cli.mist_tracker",
    "mist-seeder": "seeder.main",
    "mist-worker": "tracker.cli.mist_worker",
    "mist-admin": "tracker.cli.mist_admin",
}  # each module's `main` is the command


def _run(command: str) -> None:
    try:
        main = importlib.import_module(COMMANDS[command]).main
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in SERVER_ONLY:
            raise
        sys.exit(
            f"Error: {command} is part of Mist's server, and this install is the client alone ({exc.name} is "
            "missing); install the server with: pip install 'mist[server]' (from the source: pip install '.[server]')"
        )
    main()


def mist_server() -> None:
    _run("mist-server")


def mist_tracker() -> None:
    _run("mist-tracker")


def mist_seeder() -> None:
    _run("mist-seeder")


def mist_worker() -> None:
    _run("mist-worker")


def mist_admin() -> None:
    os.umask(PRIVATE_UMASK)  # what it writes (backups, restored data directories) holds keys and password hashes
    _run("mist-admin")
