"""Programs some tests run beside flagctl (Debian's ``prometheus``, ``chromium``): without
one, a test is skipped on a developer's machine, and fails under CI (``CI`` set), which
installs them first (``make prometheus``, ``make chromium``)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(hint: str) -> NoReturn:
    """Skip the test, saying what to install; under CI, fail it."""
    if os.environ.get("CI"):
        pytest.fail(hint + "; CI installs it before the tests, so its absence is a failure", pytrace=False)
    pytest.skip(hint)
