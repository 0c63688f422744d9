"""Ordering build versions as people read them: 1.10 after 1.9, 2.0-beta before 2.0 (pure).

The catalog orders builds by when they were pushed; once a build is removed, only its version string is
left to say whether moving from it is an update or a downgrade.
"""

from __future__ import annotations

import re

_PARTS = re.compile(r"(\d+)|([A-Za-z]+)")
_PRE = {"dev": -4, "a": -3, "alpha": -3, "b": -2, "beta": -2, "pre": -1, "rc": -1}


def _key(version: str) -> tuple[tuple[int, int, str], ...]:
    """Numbers compare as numbers; a pre-release word (alpha, beta, rc) sorts before the release it precedes."""
    key = []
    for number, word in _PARTS.findall(version):
        if number:
            key.append((0, int(number), ""))
        else:
            lowered = word.lower()
            key.append((_PRE.get(lowered, 1) if lowered in _PRE else 1, 0, lowered))
    return tuple(key)


def newer(a: str, b: str) -> bool:
    """Whether version `a` comes after version `b`."""
    ka, kb = _key(a), _key(b)
    width = max(len(ka), len(kb))
    pad = (0, 0, "")
    return ka + (pad,) * (width - len(ka)) > kb + (pad,) * (width - len(kb))
