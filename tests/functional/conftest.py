"""The fixture every functional test runs the CLI through (see ``runner.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.functional.runner import Nudgeflow, functional_env


@pytest.fixture
def nudgeflow(tmp_path: Path) -> Nudgeflow:
    """The ``nudgeflow`` console script in ``tmp_path`` with the functional settings; a test
    module that needs other settings overrides this fixture with ``nudgeflow.configure``."""
    return Nudgeflow(tmp_path, functional_env(tmp_path))
