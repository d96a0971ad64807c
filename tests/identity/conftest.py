"""The `slapd` fixture: a real OpenLDAP server (tests/identity/slapd.py) holding the test module's
`directory_ldif()`, stopped after the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.identity.slapd import Slapd, running_slapd


@pytest.fixture
def slapd(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Slapd]:
    with running_slapd(tmp_path, request.module.directory_ldif()) as server:
        yield server
