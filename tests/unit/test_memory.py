"""The allocator keeps each image's buffers for the next one."""

from __future__ import annotations

import platform
import sys

import pytest

from imagerec.core.memory import keep_freed_memory

pytestmark = [pytest.mark.unit]


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)
def test_glibc_takes_the_fixed_thresholds() -> None:
    # Given a glibc process / When the thresholds are set / Then mallopt accepts both
    assert keep_freed_memory() is True
    # and setting them again (every load_classifier does) is harmless
    assert keep_freed_memory() is True
