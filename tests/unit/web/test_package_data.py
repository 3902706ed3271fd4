"""An installed nudgeflow has its pages: every template in web/templates is package data."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_every_page_template_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["web"]
    shipped = {p for pattern in patterns for p in (ROOT / "web").glob(pattern)}
    templates = set((ROOT / "web" / "templates").iterdir())
    assert templates
    assert templates <= shipped
