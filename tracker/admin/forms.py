"""A posted form read field by field; each problem is kept beside its field, for the page to show there."""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiohttp import web

MAX_FIELD = 20_000


class Form:
    """The fields of one POST, what was typed (to show it again) and the error of each field that is wrong."""

    def __init__(self, data: Mapping[str, object]) -> None:
        self.values = {k: v if isinstance(v, str) else "" for k, v in data.items()}
        self.errors: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Form(fields={sorted(self.values)}, errors={sorted(self.errors)})"

    @classmethod
    async def read(cls, request: web.Request) -> "Form":
        return cls(await request.post())

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def raw(self, name: str) -> str:
        return self.values.get(name, "")

    def text(
        self,
        name: str,
        label: str,
        *,
        required: bool = True,
        max_length: int = 200,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
        strip: bool = True,
        multiline: bool = False,
    ) -> str:
        value = self.raw(name)
        value = value.strip() if strip else value
        if not value:
            if required:
                self.error(name, f"{label} is required")
            return ""
        if len(value) > max_length:
            self.error(name, f"{label} must be at most {max_length} characters (this has {len(value)})")
        elif not multiline and re.search(r"[\x00-\x1f\x7f]", value):
            self.error(name, f"{label} must be printable characters on one line")
        elif pattern is not None and not pattern.match(value):
            self.error(name, f"{label} {hint}")
        return value

    def password(self, name: str, minimum: int) -> str:
        value = self.raw(name)
        if len(value) < minimum:
            self.error(name, f"the password must have at least {minimum} characters")
        elif len(value) > 1024:
            self.error(name, "the password must have at most 1024 characters")
        return value

    def flag(self, name: str) -> bool:
        return self.raw(name) in ("on", "1", "true", "yes")

    def number(self, name: str, label: str, low: int, high: int, required: bool = False) -> int | None:
        value = self.raw(name).strip()
        if not value:
            if required:
                self.error(name, f"{label} is required")
            return None
        if not value.isdigit() or not low <= int(value) <= high:
            self.error(name, f"{label} must be a whole number from {low} to {high} (got {value[:20]!r})")
            return None
        return int(value)
