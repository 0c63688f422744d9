"""A real S3 protocol server on loopback (moto's standalone server), and a fresh bucket per test.

One server per test process (`s3_server`, session-scoped): it starts in about a second and its buckets are
independent, so each test or module makes a bucket of its own. The environment a Mist service needs to use
it (`env`) is what an admin sets for MinIO or R2: MIST_STORE_URL, MIST_S3_ENDPOINT_URL and the AWS_* keys.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3

from tests.waiting import wait_until

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "mist-test", "AWS_SECRET_ACCESS_KEY": "mist-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]

    def client(self) -> Any:
        return boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"], aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"]).client("s3", endpoint_url=self.endpoint)

    def bucket(self) -> str:
        name = f"mist-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket: str, prefix: str = "store") -> dict[str, str]:
        return {**CREDENTIALS, "MIST_STORE_URL": f"s3://{bucket}/{prefix}", "MIST_S3_ENDPOINT_URL": self.endpoint}


def start() -> S3Server:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening() -> bool:  # it prints nothing we could wait on instead
        assert process.poll() is None, "moto's server exited before it listened"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_until(listening, "moto's S3 server to listen", timeout=60)
    return S3Server(f"http://127.0.0.1:{port}", process)


def serving() -> Iterator[S3Server]:
    """A server for the length of a test session (tests/conftest.py's `s3_server`)."""
    server = start()
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)  # boto3 in this process (the contract suite) finds the keys as a service would
    yield server
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.process.terminate()
    server.process.wait(timeout=30)
