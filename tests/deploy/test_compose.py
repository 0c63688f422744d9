"""compose.yaml, deploy/Dockerfile and deploy/systemd/ checked against the code they run.

There is no container engine here, so the stack is read, not started: every command line is parsed by the
click command it names (a renamed or removed option fails here, not on the admin's VM), every variable the
server code reads must be provided, the volumes must put the keys and the store where the code looks for
them, and no secret may be committed. The systemd units get the same checks, and `systemd-analyze verify`.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.deploy.proxyconf import EXAMPLE as NGINX_EXAMPLE, parse as parse_nginx
from tracker.cli import entrypoints
from tracker.config import Settings

pytestmark = pytest.mark.same_on_every_backend  # static files: compose, the image, the units

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
MIST_SERVICES = ("tracker", "seeder", "worker")
ENV_FILE = "deploy/mist.env"
ENV_EXAMPLE = ROOT / "deploy" / "mist.env.example"
UNITS = ROOT / "deploy" / "systemd"
VENV = "/opt/mist/venv"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPTS: dict[str, str] = PYPROJECT["project"]["scripts"]
# Variables the server code reads that an installation does not set, and why.
NOT_FOR_INSTALLS = {
    "MIST_STEAM_URL": "the tests point the tracker at a fake Steam store with it",
    "MIST_TRACKER_PUBLIC_KEY": "the seeder asks the tracker for its key (--tracker-url) instead",
    "MIST_PASSWORD": "a password typed for one admin command (mist-admin reset-password), never a setting",
    "MIST_PASSWORD_HASH_COST": "the tests hash passwords at argon2's cheapest cost with it; an install keeps the standard",
}
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|WEBHOOK|PRIVATE", re.I)


# ---- helpers ------------------------------------------------------------------------------------------------

def env_example() -> tuple[dict[str, str], set[str]]:
    """(variables set, variables only mentioned in a commented-out line) in mist.env.example."""
    values, mentioned = {}, set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line):
            values[match[1]] = match[2].strip("'\"")
        elif match := re.fullmatch(r"#\s*([A-Z][A-Z0-9_]*)=.*", line):
            mentioned.add(match[1])
    return values, mentioned


def click_command(program: str) -> click.Command:
    assert program in SCRIPTS, f"{program!r} is not a console script in pyproject.toml ({sorted(SCRIPTS)})"
    module, _, attr = SCRIPTS[program].partition(":")
    if module == "tracker.cli.entrypoints":  # the server's commands, behind the check for the server extra
        module, attr = entrypoints.COMMANDS[program], "main"
    command = getattr(importlib.import_module(module), attr)
    assert isinstance(command, click.Command), f"{SCRIPTS[program]} is not a click command"
    return command


def parse_command(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The values click gives the command for this command line in this environment (its callback is not run).
    Unknown options, missing required ones and malformed values fail as they would at start."""
    program = Path(argv[0]).name
    command = click_command(program)
    for name in [n for n in os.environ if n.startswith("MIST_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        with command.make_context(program, list(argv[1:])) as context:
            return dict(context.params)
    except click.ClickException as exc:
        raise AssertionError(f"`{shlex.join(argv)}` would not start: {exc.format_message()}") from None


def given_envvars(argv: list[str]) -> set[str]:
    """Variables whose option the command line gives explicitly (so the variable is not needed)."""
    command = click_command(Path(argv[0]).name)
    flags = {a.split("=", 1)[0] for a in argv[1:] if a.startswith("--")}
    return {str(p.envvar) for p in command.params if p.envvar and flags & set(p.opts)}


def service_env(name: str) -> dict[str, str]:
    """What the service's process sees: mist.env (as the example fills it) under compose's `environment`."""
    service = SERVICES[name]
    env = dict(env_example()[0]) if service.get("env_file") else {}
    env.update({k: str(v) for k, v in (service.get("environment") or {}).items()})
    return env


def mounts(name: str) -> dict[str, str]:
    """Named volume -> path in the container."""
    out = {}
    for spec in SERVICES[name].get("volumes", []):
        source, target = spec.split(":")[:2]
        out[source] = target
    return out


def server_variables() -> set[str]:
    """Every MIST_* variable named in the server's code (tracker, seeder, shared)."""
    found = set()
    for package in ("tracker", "seeder", "shared"):
        for path in (ROOT / package).rglob("*.py"):
            found |= set(re.findall(r"[\"'](MIST_[A-Z0-9_]+)[\"']", path.read_text()))
    return found


def read_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit as section -> [(key, value)] (keys may repeat; continuation lines are joined)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current, pending = "", ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        else:
            key, _, value = line.partition("=")
            sections[current].append((key.strip(), value.strip()))
    return sections


def unit_values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    out, pending = [], ""
    for raw in (ROOT / "deploy" / "Dockerfile").read_text().splitlines():
        if raw.strip().startswith("#"):
            continue
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line:
            instruction, _, args = line.partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


# ---- compose.yaml -------------------------------------------------------------------------------------------

def test_the_stack_is_the_three_services_postgres_and_redis() -> None:
    assert set(SERVICES) == {"tracker", "seeder", "worker", "postgres", "redis"}
    assert SERVICES["postgres"]["image"] == "postgres:16" and SERVICES["redis"]["image"] == "redis:7"


def test_tracker_seeder_and_worker_run_one_image_built_from_deploy_dockerfile() -> None:
    builds = {json.dumps([SERVICES[s].get("build"), SERVICES[s].get("image")], sort_keys=True) for s in MIST_SERVICES}
    assert len(builds) == 1, f"the three services must share one build and image: {builds}"
    build = SERVICES["tracker"]["build"]
    assert (ROOT / build["context"]).resolve() == ROOT and build["dockerfile"] == "deploy/Dockerfile"
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()


@pytest.mark.parametrize("name", MIST_SERVICES)
def test_each_command_starts_as_its_click_command_parses_it(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    parse_command(SERVICES[name]["command"], service_env(name), monkeypatch)


def test_the_keys_and_the_store_are_on_named_volumes_where_the_code_looks(monkeypatch: pytest.MonkeyPatch) -> None:
    params = {s: parse_command(SERVICES[s]["command"], service_env(s), monkeypatch) for s in MIST_SERVICES}
    data = params["tracker"]["data"]
    assert params["worker"]["data"] == data, "the worker must use the tracker's data directory (keys, queue)"
    for name in ("tracker", "worker"):
        assert mounts(name) == {"mist-data": str(data), "mist-store": str(Settings(data=data).store_root)}, name
    # The seeder gets the store, read-write (pushes upload to it), and nothing of the data volume (no keys).
    assert mounts("seeder") == {"mist-store": str(params["seeder"]["store"])}
    assert mounts("postgres") == {"postgres-data": "/var/lib/postgresql/data"}
    assert mounts("redis") == {"redis-data": "/data"}
    used = {v for s in SERVICES for v in mounts(s)}
    assert used == set(COMPOSE["volumes"]), "every named volume used must be declared, and every declared one used"


def test_only_the_tracker_and_the_seeder_listen_on_the_host_and_only_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("tracker", "seeder"):
        params = parse_command(SERVICES[name]["command"], service_env(name), monkeypatch)
        assert params["host"] == "0.0.0.0", f"the {name} must listen on the container's network"
        assert SERVICES[name]["ports"] == [f"127.0.0.1:{params['port']}:{params['port']}"], name
    for name in ("worker", "postgres", "redis"):
        assert "ports" not in SERVICES[name], f"{name} must not be reachable from outside the stack"


def test_the_proxy_upstreams_are_where_compose_and_the_units_listen(monkeypatch: pytest.MonkeyPatch) -> None:
    upstreams = {u.args[0]: u.one("server").args[0] for u in parse_nginx(NGINX_EXAMPLE.read_text()).all("upstream")}
    for name in ("tracker", "seeder"):
        port = parse_command(SERVICES[name]["command"], service_env(name), monkeypatch)["port"]
        exec_start = shlex.split(unit_values(read_unit(UNITS / f"mist-{name}.service"), "Service", "ExecStart")[0])
        unit = parse_command(exec_start, env_example()[0], monkeypatch)
        assert upstreams[f"mist_{name}"] == f"127.0.0.1:{port}" == f"{unit['host']}:{unit['port']}", name


def test_every_service_has_a_health_check_and_a_restart_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, service in SERVICES.items():
        assert service.get("restart") in ("always", "unless-stopped"), f"{name} is not restarted"
        test = service.get("healthcheck", {}).get("test")
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name} has no health check"
        for dependency, how in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES and how == {"condition": "service_healthy"}, (name, dependency)
    for name in ("tracker", "seeder"):
        port = parse_command(SERVICES[name]["command"], service_env(name), monkeypatch)["port"]
        assert f"'http://127.0.0.1:{port}/healthz'" in SERVICES[name]["healthcheck"]["test"][-1], name
    assert SERVICES["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    assert SERVICES["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]


def test_the_worker_health_check_asks_the_worker_s_own_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run it for real: healthy with the queue in a data directory, unhealthy when the queue cannot be opened."""
    data = str(parse_command(SERVICES["worker"]["command"], service_env("worker"), monkeypatch)["data"])
    check = SERVICES["worker"]["healthcheck"]["test"]
    assert check[:2] == ["CMD", "python"] and f"'{data}'" in check[-1], check
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIST_")}

    runs = [  # both at once: each pays for importing the tracker
        subprocess.Popen([sys.executable, *[a.replace(f"'{data}'", f"'{folder}'") for a in check[2:]]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for folder in (tmp_path, tmp_path / "missing")]
    (_, healthy_err), _ = (run.communicate(timeout=60) for run in runs)
    assert runs[0].returncode == 0, healthy_err
    assert runs[1].returncode != 0, "the check passed with no queue to reach"


def test_secrets_come_only_from_the_ignored_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "compose.yaml").read_text()
    assert not re.search(r"(?<!\$)\$\{?[A-Za-z_]", text), (
        "compose.yaml must not interpolate ${...}: compose reads those from the shell or .env, not from env_file")
    example, _ = env_example()
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            assert not SECRET_WORDS.search(key), f"{name}: {key} belongs in {ENV_FILE}, not in compose.yaml"
            assert urlsplit(str(value)).password is None, f"{name}: {key} carries a password"
            assert str(value) not in {v for k, v in example.items() if SECRET_WORDS.search(k)}
    for name in ("tracker", "worker", "postgres"):
        assert SERVICES[name].get("env_file") == ENV_FILE, f"{name} must read {ENV_FILE}"
    assert "env_file" not in SERVICES["seeder"], "the seeder needs no secret; it must not get them all"
    ignored = subprocess.run(["git", "check-ignore", "-q", ENV_FILE], cwd=ROOT)
    assert ignored.returncode == 0, f"{ENV_FILE} must be in .gitignore"
    assert ENV_FILE in (ROOT / ".dockerignore").read_text().split(), f"{ENV_FILE} must not reach the image builder"
    for key, value in example.items():
        if SECRET_WORDS.search(key) or urlsplit(value).password:
            assert "CHANGE_ME" in value, f"mist.env.example must hold placeholders only ({key})"


def test_the_env_example_provides_every_variable_the_server_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    example, commented = env_example()
    provided = set(example) | commented
    for name in MIST_SERVICES:
        provided |= set(SERVICES[name].get("environment") or {}) | given_envvars(SERVICES[name]["command"])
        parse_command(SERVICES[name]["command"], service_env(name), monkeypatch)  # required ones are set
    missing = server_variables() - provided - set(NOT_FOR_INSTALLS)
    assert not missing, f"the server reads {sorted(missing)}: add them to deploy/mist.env.example (or compose.yaml)"
    assert not set(example) & set(NOT_FOR_INSTALLS)


def test_the_database_and_redis_urls_point_at_the_stack_s_own_services() -> None:
    example, _ = env_example()
    postgres = SERVICES["postgres"]["environment"]
    url = make_url(example["MIST_DATABASE_URL"])
    assert url.drivername == "postgresql+psycopg" and url.host == "postgres" and url.port == 5432
    assert (url.username, url.database) == (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"])
    assert url.password == example["POSTGRES_PASSWORD"], "one placeholder, so one sed fills both with one password"
    url.get_dialect().import_dbapi()  # the driver is installed with the server extra
    assert "psycopg[binary]>=3.1" in PYPROJECT["project"]["optional-dependencies"]["server"]
    for name in ("tracker", "worker"):
        redis = urlsplit(service_env(name)["MIST_REDIS_URL"])
        assert redis.scheme == "redis" and redis.hostname == "redis" and redis.port == 6379, name


# ---- deploy/Dockerfile --------------------------------------------------------------------------------------

def test_the_image_installs_the_project_and_runs_as_a_user(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert re.search(r"pip install (--\S+ )*'\.\[server\]'", runs), "the image must pip install '.[server]'"
    copied = {shlex.split(args)[0] for op, args in steps if op == "COPY"}
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert {"pyproject.toml", *packages} <= copied, f"copy every package: {sorted(packages - copied)} missing"
    user = [args for op, args in steps if op == "USER"][-1]
    assert user not in ("root", "0") and re.search(rf"useradd .*\b{user}$|useradd .*\b{user} ", runs)
    # The volumes' mount points exist in the image, owned by that user, so fresh volumes start out owned by it.
    for path in {target for s in MIST_SERVICES for target in mounts(s).values()}:
        assert re.search(rf"mkdir -p \S*{re.escape(path)}", runs) or any(
            p.startswith(path + "/") for p in re.findall(r"mkdir -p (\S+)", runs)), f"{path} is not made"
        assert any(path == o or path.startswith(o + "/") for o in re.findall(rf"chown -R {user}:\S+ (\S+)", runs))
    cmd = [args for op, args in steps if op == "CMD"][-1]
    parse_command(json.loads(cmd), {}, monkeypatch)


# ---- deploy/systemd -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MIST_SERVICES)
def test_the_systemd_unit_runs_the_service_from_the_venv_hardened(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    unit = read_unit(UNITS / f"mist-{name}.service")
    service = dict(unit["Service"])
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).parent == Path(VENV) / "bin", argv[0]
    env_files = unit_values(unit, "Service", "EnvironmentFile")
    params = parse_command(argv, env_example()[0] if env_files else {}, monkeypatch)
    assert env_files == ([] if name == "seeder" else ["/etc/mist/mist.env"])
    assert service["User"] == "mist" and service["Restart"] == "on-failure"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectHome": "yes"}.items():
        assert service.get(key) == value, f"mist-{name}.service needs {key}={value}"
    writable = set(" ".join(unit_values(unit, "Service", "ReadWritePaths") + unit_values(unit, "Service", "BindPaths")).split())
    wanted = params.get("data") or params["store"]
    assert str(wanted) in writable, f"mist-{name}.service must be able to write {wanted}"
    assert unit_values(unit, "Install", "WantedBy") == ["mist.target"] and unit_values(unit, "Unit", "PartOf") == ["mist.target"]
    if name == "seeder":  # sees the store only, and asks the tracker unit for its key
        assert service["TemporaryFileSystem"] == "/var/lib/mist:ro"
        tracker = shlex.split(dict(read_unit(UNITS / "mist-tracker.service")["Service"])["ExecStart"])
        tracker_port = parse_command(tracker, env_example()[0], monkeypatch)["port"]
        assert params["tracker_url"] == f"http://127.0.0.1:{tracker_port}"


def test_mist_target_starts_all_three() -> None:
    target = read_unit(UNITS / "mist.target")
    assert set(" ".join(unit_values(target, "Unit", "Wants")).split()) == {f"mist-{s}.service" for s in MIST_SERVICES}
    assert unit_values(target, "Install", "WantedBy") == ["multi-user.target"]


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    """With the venv path pointed at this one (verify checks that each program exists); any warning fails."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (the structural checks above still ran)")
    for unit in UNITS.iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace(VENV, sys.prefix))
    result = subprocess.run([analyze, "verify", *sorted(str(p) for p in tmp_path.iterdir())],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
