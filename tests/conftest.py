"""Fixtures shared by every tier: the sample photos, the event files, a Lambda context."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import matplotlib.cbook
import pytest
import skimage

from imagerec.http.events import LocalContext, load_event

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
SKIMAGE_DATA = Path(skimage.__file__).parent / "data"

# Real photos that ship inside packages, with the reference network's top-1 on each.
PHOTOS: dict[str, tuple[Path, str]] = {
    "chelsea": (SKIMAGE_DATA / "chelsea.png", "tiger cat"),
    "coffee": (SKIMAGE_DATA / "coffee.png", "espresso"),
    "rocket": (SKIMAGE_DATA / "rocket.jpg", "missile"),
    "grace_hopper": (
        Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
        "military uniform",
    ),
}


def photo_bytes(name: str) -> bytes:
    return PHOTOS[name][0].read_bytes()


def event(name: str) -> dict[str, Any]:
    """One of events/*.json, the same files `sam local invoke -e` takes."""
    return load_event(EVENTS / f"{name}.json")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, for a server a test is about to start."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def lambda_context() -> LocalContext:
    return LocalContext(function_name="imagerec-test")
