"""Debian's Chromium for the browser tests: its path, or a skip (a failure when CI=true)."""

from __future__ import annotations

import os
import shutil

import pytest


def chromium() -> str:
    """The Chromium executable; with CI=true a missing one fails the test, elsewhere it skips."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed and CI=true requires it", pytrace=False)
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found
