"""Where a login's tokens go: Windows' Credential Manager takes at most 2560 bytes of UTF-16 a secret."""

from __future__ import annotations

from client.credentials import WINDOWS_SECRET_BYTES, fits_keychain


def test_a_secret_over_windows_limit_stays_out_of_its_keychain_only() -> None:
    fits = "x" * (WINDOWS_SECRET_BYTES // 2)
    assert fits_keychain(fits, "win32")
    assert not fits_keychain(fits + "x", "win32")
    assert fits_keychain(fits + "x" * 10_000, "darwin") and fits_keychain(fits + "x", "linux")
