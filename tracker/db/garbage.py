"""Queries of the garbage collector: what the remaining builds and the patch table hold, and forgetting swept patches."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tracker.db.models import Build, Patch

IN_BATCH = 500


def build_ids(session: Session) -> list[int]:
    """Every build still in the catalog (each manifest is then read on its own: a large game's is tens of MB)."""
    return list(session.scalars(select(Build.id).order_by(Build.id)))


def build_manifest(session: Session, build_id: int) -> tuple[str, bytes] | None:
    """(manifest digest, manifest bytes) of one build, or None if it was removed meanwhile."""
    row = session.execute(select(Build.manifest_digest, Build.manifest).where(Build.id == build_id)).first()
    return (row[0], row[1]) if row else None


def patch_rows(session: Session) -> list[tuple[int, str | None, str, datetime]]:
    """(id, object or None, target content, created) of every patch row, made or found not worth it."""
    rows = session.execute(select(Patch.id, Patch.object_sha, Patch.target_sha, Patch.created_at))
    return [(i, o, t, c) for i, o, t, c in rows]


def forget_patches(session: Session, ids: Iterable[int]) -> int:
    """Delete these patch rows; how many there were."""
    removed = 0
    items = sorted(set(ids))
    for i in range(0, len(items), IN_BATCH):
        result = session.execute(delete(Patch).where(Patch.id.in_(items[i : i + IN_BATCH])))
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed
