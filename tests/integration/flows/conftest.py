"""Every night run by these tests writes its HTML report into the test's folder, never into
the checkout's var/reports."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def reports_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGEFLOW_REPORTS_DIR", str(tmp_path / "reports"))
