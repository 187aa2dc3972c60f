"""Fixtures for the stand-ins of Google's services (imported into tests/conftest.py).

fake_google_apis: FakeGoogleApis (tests/fakes/google_api.py), our stand-in for Google's REST APIs.
gcs_emulator: gcp-storage-emulator (a third-party GCS emulator, in-process) with
$STORAGE_EMULATOR_HOST pointing at it, which google-cloud-storage reads itself.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.fakes.google_api import FakeGoogleApis


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake_google_apis() -> Iterator[FakeGoogleApis]:
    """A fresh, empty FakeGoogleApis on a free 127.0.0.1 port (STAND-IN: Google is unreachable here)."""
    with FakeGoogleApis() as fake:
        yield fake


@pytest.fixture
def gcs_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """gcp-storage-emulator in memory on a free 127.0.0.1 port; yields its URL (STAND-IN for GCS)."""
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    try:
        yield url
    finally:
        server.stop()
