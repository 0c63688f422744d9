"""deploy/nginx/mist.conf read as directives, and rendered to run on loopback with a test certificate."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "nginx" / "mist.conf"


@dataclass
class Directive:
    """One nginx directive: `name args...;` or `name args... { block }`."""

    name: str
    args: list[str]
    block: list["Directive"] | None = None

    def all(self, name: str) -> list["Directive"]:
        return [d for d in self.block or [] if d.name == name]

    def one(self, name: str) -> "Directive":
        found = self.all(name)
        assert len(found) == 1, f"expected one `{name}` in `{self.name} {' '.join(self.args)}`, found {len(found)}"
        return found[0]

    def location(self, *args: str) -> "Directive":
        found = [d for d in self.all("location") if d.args == list(args)]
        assert len(found) == 1, f"expected one `location {' '.join(args)}` in the server, found {len(found)}"
        return found[0]


def _tokenize(text: str) -> list[str]:
    tokens, i, word = [], 0, ""
    while i < len(text):
        c = text[i]
        if c == "#" and not word:
            while i < len(text) and text[i] != "\n":
                i += 1
        elif c in "\"'" and not word:
            end = text.index(c, i + 1)
            tokens.append(text[i + 1 : end])
            i = end
        elif c.isspace() or c in ";{}":
            if word:
                tokens.append(word)
                word = ""
            if c in ";{}":
                tokens.append(c)
        else:
            word += c
        i += 1
    assert not word, f"the configuration ends in the middle of {word!r}"
    return tokens


def _block(tokens: list[str], at: int, closing: bool) -> tuple[list[Directive], int]:
    out: list[Directive] = []
    while at < len(tokens):
        if tokens[at] == "}":
            assert closing, "a `}` closes nothing"
            return out, at + 1
        name, args, at = tokens[at], [], at + 1
        while tokens[at] not in (";", "{"):
            args.append(tokens[at])
            at += 1
        if tokens[at] == "{":
            inner, at = _block(tokens, at + 1, closing=True)
            out.append(Directive(name, args, inner))
        else:
            out.append(Directive(name, args))
            at += 1
    assert not closing, "a `{` is never closed"
    return out, at


def parse(text: str) -> Directive:
    """The whole file as the body of one top-level block (the http context it is included in)."""
    return Directive("http", [], _block(_tokenize(text), 0, closing=False)[0])


def https_server(conf: Directive) -> Directive:
    servers = [s for s in conf.all("server") if any("ssl" in d.args for d in s.all("listen"))]
    assert len(servers) == 1, f"expected one TLS server block, found {len(servers)}"
    return servers[0]


def size_bytes(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].lower() in units else int(value)


def seconds(value: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


def render(example: str, *, tracker: int, seeder: int, https: int, http: int, cert: Path, key: Path) -> str:
    """The example with loopback ports and a test certificate. Each replaced line must be found exactly where
    expected, so an edit to the example fails here loudly instead of testing something else."""
    replacements = [
        ("listen 80;", f"listen 127.0.0.1:{http};"),
        ("listen [::]:80;", ""),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;"),
        ("listen [::]:443 ssl;", ""),
        ("server 127.0.0.1:8700;", f"server 127.0.0.1:{tracker};"),
        ("server 127.0.0.1:8701;", f"server 127.0.0.1:{seeder};"),
        ("/etc/letsencrypt/live/mist.example.org/fullchain.pem;", f"{cert};"),
        ("/etc/letsencrypt/live/mist.example.org/privkey.pem;", f"{key};"),
    ]
    for old, new in replacements:
        count = example.count(old)
        assert count == 1, f"deploy/nginx/mist.conf should have `{old}` once (found {count}); update proxyconf.render"
        example = example.replace(old, new)
    return example


def main_conf(prefix: Path, site: Path) -> str:
    """A whole nginx.conf around the site: no daemon, everything under `prefix`, notices (readiness) on stderr."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the temp paths under a private tmp dir
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{user}worker_processes 1;
daemon off;
pid {prefix / 'nginx.pid'};
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
{temp}
    include {site};
}}
"""
