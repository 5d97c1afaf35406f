"""Unit tests never touch the network: every socket is refused."""

from __future__ import annotations

from collections.abc import Iterator

# The X-Ray SDK makes its UDP emitter socket when first imported. Off Lambda tracing is
# disabled and that socket never sends; it is made here, before sockets are refused.
import aws_xray_sdk.core  # noqa: F401
import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_sockets() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
