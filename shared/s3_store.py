"""The chunk store in an S3-compatible bucket (AWS S3, MinIO, Garage, Cloudflare R2, Backblaze B2): boto3 lives
only here.

`MIST_STORE_URL=s3://BUCKET/PREFIX`; credentials and region come the usual way (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, a profile), and `MIST_S3_ENDPOINT_URL` names a server that is not
AWS. Objects are `PREFIX/ab/cd/<sha256>` as in the directory store; the quarantine is `PREFIX/quarantine/`.

Last use is the object's LastModified: `touch` copies an object onto itself (new metadata, same bytes), which
renews it. A bucket has no atomic rename, so the collector and a touch meet through a tombstone
`PREFIX/gc/<sha256>` (see `remove_if_unused` and `touch`): an object a touch reports present is never removed
by a collection running at the same time.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.chunkstore import PROBE, QUARANTINE, Stored, check_name, is_name
from shared.errors import ChunkMissing, StoreError

T = TypeVar("T")
R = TypeVar("R")
THREADS = 16  # requests at once for many objects (missing, sizes, touch): each is a round trip
TOMBSTONES = "gc"
HEALTH = "healthz"
TOMBSTONE_LIFE = 3600.0  # seconds: a tombstone older than this was left by a collector that died; it counts no more
_OBJECT_KEY = re.compile(r"(?:^|/)([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\Z")
_ABSENT = {"404", "NoSuchKey", "NotFound"}


def _absent(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _ABSENT


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, prefix ending in '/' or empty) from s3://BUCKET/PREFIX; a clear StoreError for anything else."""
    match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(.*))?", url.strip())
    if not match:
        raise StoreError(
            f"MIST_STORE_URL must be s3://BUCKET or s3://BUCKET/PREFIX with a valid bucket name "
            f"(3 to 63 lowercase letters, digits, dots and hyphens; got {url!r})"
        )
    prefix = (match.group(2) or "").strip("/")
    return match.group(1), f"{prefix}/" if prefix else ""


class S3ChunkStore:
    files = None

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str = "", client: Any = None) -> None:
        self.bucket, self.prefix = bucket, prefix
        self.where = f"s3://{bucket}/{prefix}"
        self._endpoint = endpoint_url
        self._s3 = client or boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            # SigV4 for signed links too (boto3 would sign them V2, which R2, B2 and newer AWS regions refuse)
            config=Config(
                signature_version="s3v4",
                max_pool_connections=THREADS * 2,
                retries={"max_attempts": 4, "mode": "standard"},
                s3={"addressing_style": "path"} if endpoint_url else {},
            ),
        )
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="s3-store")

    @classmethod
    def from_url(cls, url: str, endpoint_url: str = "") -> S3ChunkStore:
        bucket, prefix = parse_url(url)
        return cls(bucket, prefix, endpoint_url)

    def __repr__(self) -> str:
        return f"S3ChunkStore({self.where!r}, endpoint={self._endpoint or 'AWS'!r})"

    @property
    def links(self) -> S3ChunkStore:
        return self

    # keys and errors

    def key(self, sha256: str) -> str:
        check_name(sha256)
        return f"{self.prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def _tombstone(self, sha256: str) -> str:
        return f"{self.prefix}{TOMBSTONES}/{sha256}"

    def _failed(self, doing: str, exc: Exception) -> StoreError:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            why = f"{error.get('Code', '?')}: {error.get('Message', '')}".strip()
        else:
            why = f"{exc.__class__.__name__}: {exc}"
        return StoreError(
            f"chunk store {self.where} could not {doing} ({why}); check MIST_STORE_URL, "
            "MIST_S3_ENDPOINT_URL and the AWS_* credentials, and that the bucket exists"
        )

    def _call(self, doing: str, fn: Callable[..., R], **kwargs: Any) -> R:
        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(doing, exc) from exc

    def _each(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        if len(items) <= 1:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self._s3.head_object(Bucket=self.bucket, Key=key)
            return head
        except ClientError as exc:
            if _absent(exc):
                return None
            raise self._failed(f"look up {key}", exc) from exc
        except BotoCoreError as exc:
            raise self._failed(f"look up {key}", exc) from exc

    # the interface

    def has(self, sha256: str) -> bool:
        return self._head(self.key(sha256)) is not None

    def missing(self, hashes: Iterable[str]) -> list[str]:
        wanted = list(hashes)
        present = self._each(lambda h: is_name(h) and self._head(self.key(h)) is not None, wanted)
        return [h for h, here in zip(wanted, present) if not here]

    def sizes(self, hashes: Iterable[str]) -> dict[str, int]:
        wanted = [h for h in hashes if is_name(h)]
        heads = self._each(lambda h: self._head(self.key(h)), wanted)
        return {h: int(head["ContentLength"]) for h, head in zip(wanted, heads) if head is not None}

    def get(self, sha256: str) -> bytes:
        key = self.key(sha256)
        try:
            body: bytes = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return body
        except ClientError as exc:
            if _absent(exc):
                raise ChunkMissing(f"chunk {sha256[:12]} is not in the store", sha256) from exc
            raise self._failed(f"read {sha256[:12]}", exc) from exc
        except BotoCoreError as exc:
            raise self._failed(f"read {sha256[:12]}", exc) from exc

    def put(self, sha256: str, compressed: bytes | memoryview) -> None:
        self._call(f"write {sha256[:12]}", self._s3.put_object, Bucket=self.bucket, Key=self.key(sha256), Body=bytes(compressed))

    def _renew(self, sha256: str) -> bool:
        """Copy the object onto itself with new metadata, which renews its LastModified; False if it is absent."""
        key = self.key(sha256)
        try:
            self._s3.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                Metadata={"used": f"{time.time():.3f}"},
                MetadataDirective="REPLACE",
            )
            return True
        except ClientError as exc:
            if _absent(exc):
                return False
            raise self._failed(f"mark {sha256[:12]} as used", exc) from exc
        except BotoCoreError as exc:
            raise self._failed(f"mark {sha256[:12]} as used", exc) from exc

    def _live_tombstones(self) -> set[str]:
        """Objects a collector is removing now (tombstones younger than TOMBSTONE_LIFE by the bucket's clock)."""
        found: set[str] = set()
        for page, now in self._pages(f"{self.prefix}{TOMBSTONES}/"):
            for item in page.get("Contents", []):
                if (now - item["LastModified"]).total_seconds() < TOMBSTONE_LIFE:
                    found.add(item["Key"].rsplit("/", 1)[-1])
        return found

    def touch(self, hashes: Iterable[str]) -> list[str]:
        """Renew each object (C), then look for collectors' tombstones (K), then check each renewed object is
        still there (E). Reported present, an object was renewed before any collector looked at its time (it is
        kept) or after one finished with it (E saw it there); an object a collector is removing is reported absent."""
        wanted = list(hashes)
        valid = [h for h in wanted if is_name(h)]
        renewed = dict(zip(valid, self._each(self._renew, valid)))
        doomed = self._live_tombstones() if any(renewed.values()) else set()
        kept = [h for h in valid if renewed[h] and h not in doomed]
        there = dict(zip(kept, self._each(lambda h: self._head(self.key(h)) is not None, kept)))
        return [h for h in wanted if not there.get(h, False)]

    def _pages(self, prefix: str) -> Iterator[tuple[dict[str, Any], datetime]]:
        """Each page of a listing, with the bucket's own time of the answer (for ages without clock skew)."""
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                date = page.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
                yield page, parsedate_to_datetime(date) if date else datetime.now().astimezone()
        except (ClientError, BotoCoreError) as exc:
            raise self._failed("list its objects", exc) from exc

    def listing(self) -> Iterator[Stored]:
        skip = (f"{self.prefix}{QUARANTINE}/", f"{self.prefix}{TOMBSTONES}/", f"{self.prefix}{HEALTH}/")
        for page, _now in self._pages(self.prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.startswith(skip):
                    continue
                match = _OBJECT_KEY.search(key)
                if match and key == f"{self.prefix}{match.group(1)}/{match.group(2)}/{match.group(3)}":
                    yield Stored(match.group(3), int(item["Size"]), item["LastModified"].timestamp())

    def names(self) -> Iterator[str]:
        return (stored.name for stored in self.listing())

    def remove(self, sha256: str) -> None:
        self._call(f"remove {sha256[:12]}", self._s3.delete_object, Bucket=self.bucket, Key=self.key(sha256))

    def remove_if_unused(self, sha256: str, cutoff: float) -> int | None:
        """Tombstone (P), look at the object's time (H), remove it (D), lift the tombstone (R). A touch renews
        before it looks for tombstones: renewed before H, the object is kept; renewed between H and D, the
        touch sees the tombstone (or, after R, that the object is gone) and reports it absent."""
        key, tombstone = self.key(sha256), self._tombstone(sha256)
        self._call("mark an object for removal", self._s3.put_object, Bucket=self.bucket, Key=tombstone, Body=b"")
        try:
            head = self._head(key)
            if head is None or head["LastModified"].timestamp() >= cutoff:
                return None
            self._call(f"remove {sha256[:12]}", self._s3.delete_object, Bucket=self.bucket, Key=key)
            return int(head["ContentLength"])
        finally:
            self._call("unmark an object", self._s3.delete_object, Bucket=self.bucket, Key=tombstone)

    def quarantine(self, sha256: str) -> None:
        key = self.key(sha256)
        try:
            self._s3.copy_object(
                Bucket=self.bucket, Key=f"{self.prefix}{QUARANTINE}/{sha256}", CopySource={"Bucket": self.bucket, "Key": key}
            )
        except ClientError as exc:
            if _absent(exc):
                return
            raise self._failed(f"set {sha256[:12]} aside", exc) from exc
        self._call(f"set {sha256[:12]} aside", self._s3.delete_object, Bucket=self.bucket, Key=key)

    def quarantined(self) -> Iterator[str]:
        where = f"{self.prefix}{QUARANTINE}/"
        for page, _now in self._pages(where):
            for item in page.get("Contents", []):
                name = item["Key"].removeprefix(where)
                if is_name(name):
                    yield name

    def sweep_temporary(self, older_than: float) -> int:
        """Tombstones and health probes a dead process left (a bucket has no half-written objects)."""
        removed = 0
        for where in (TOMBSTONES, HEALTH):
            for page, _now in self._pages(f"{self.prefix}{where}/"):
                for item in page.get("Contents", []):
                    if item["LastModified"].timestamp() < older_than:
                        self._call("sweep", self._s3.delete_object, Bucket=self.bucket, Key=item["Key"])
                        removed += 1
        return removed

    def probe(self) -> None:
        key = f"{self.prefix}{HEALTH}/{uuid.uuid4().hex}"
        self._call("write a health probe", self._s3.put_object, Bucket=self.bucket, Key=key, Body=PROBE)
        try:
            body = self._call("read a health probe", self._s3.get_object, Bucket=self.bucket, Key=key)["Body"].read()
            if body != PROBE:
                raise StoreError(f"chunk store {self.where} gave back other bytes than were written")
        finally:
            self._call("remove a health probe", self._s3.delete_object, Bucket=self.bucket, Key=key)

    def url(self, sha256: str, seconds: int) -> str:
        """A presigned GET of the object, good for `seconds`."""
        try:
            url: str = self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self.key(sha256)}, ExpiresIn=seconds
            )
            return url
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(f"sign a link to {sha256[:12]}", exc) from exc
