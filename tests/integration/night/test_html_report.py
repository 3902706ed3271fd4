"""The HTML report on SQLite and PostgreSQL over a world with every section filled: a
pathway community with stage history, a campaign with a known effect (30 % of the nudged
respond, 10 % of the held out) and a ledger with two months of rewards. Its tables carry the
figures of the use cases; in headless Chromium it renders with no console error and no
request but its own file, and a screenshot is kept (test-artifacts/report.png)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, ConsoleMessage, Request, sync_playwright

from night.html_report import Report, build_report, write_report
from planning.campaign_files import load_campaign_set
from tests.integration import pathway_community
from tests.integration.night.test_impact import world
from tests.integration.store.test_ledger_statement import two_months

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"  # ignored by git; CI keeps it
START, END = date(2026, 2, 25), date(2026, 11, 30)


def built(engine: sa.Engine) -> Report:
    pathway_community.build(engine)
    world(engine, "loyalist-discount", treated=300, held_out=300, rates=(0.3, 0.1), seed=3)
    two_months(engine)
    return build_report(
        engine,
        load_campaign_set(ROOT / "campaigns"),
        start=START,
        end=END,
        zone=pathway_community.ZONE,
        currency="USD",
        now=datetime(2026, 12, 1, 6, tzinfo=UTC),
    )


def rows(report: Report, section_id: str) -> dict[str, tuple[str, ...]]:
    (section,) = [s for p in report.parts for s in p.sections if s.id == section_id]
    assert section.chart is not None  # every chart here has its table, and this one a chart
    return {row[0]: row[1:] for row in section.table.rows}


def test_the_report_carries_the_figures_of_each_section(engine: sa.Engine) -> None:
    report = built(engine)
    funnel = rows(report, "stage-funnel")
    # At the end of 30 November: m1, m2, m5 loyalist; m3 advocate; m4, m6 adopter.
    assert {stage: cells[1] for stage, cells in funnel.items()} == {
        "adopter": "2",
        "loyalist": "3",
        "advocate": "1",
    }
    moves = rows(report, "stage-moves")
    assert moves["2026-04-01"] == ("0", "0", "1")  # m3 became an advocate
    assert moves["2026-07-05"] == ("0", "1", "0")  # m5 a loyalist
    nights = rows(report, "nights")
    assert nights["2026-03-02"][:1] == ("300",) and nights["2026-03-02"][3] == "300"
    spend = rows(report, "spend-usd")
    assert spend["c"] == ("100.00", "19.50", "10.00", "0.00", "70.50", "19.5 %")  # November's close
    uplift = rows(report, "uplift")
    treated, held_out = uplift["loyalist-discount"][:2]
    assert (treated, held_out) == ("300", "300")
    low, high = re.findall(r"[+-]\d+\.\d", uplift["loyalist-discount"][5])
    assert 0 < float(low) < 20 < float(high)  # the true uplift, 20 points, inside; 0 outside
    assert [p.id for p in report.parts] == ["stages", "pathways", "sends", "spend", "impact"]
    assert rows(report, "pathway-retention-to-advocacy")["started"][0] != "0"
    html = report.html
    assert html.count("<svg") == html.count("<title id=") == html.count("<desc id=")
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<script" not in html and "<link" not in html


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (.ci/run installs it)")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium refuses to sandbox as root, which CI containers are.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


def test_the_report_renders_offline_in_a_browser(
    engine: sa.Engine, browser: Browser, tmp_path: Path
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the browser sees the same file from either database: once is enough")
    out = write_report(built(engine), tmp_path / "report.html")
    problems: list[str] = []
    requests: list[str] = []

    def noted(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(message.text)

    def asked(request: Request) -> None:
        requests.append(request.url)

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.on("console", noted)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", asked)
    page.goto(out.as_uri())
    page.wait_for_load_state("networkidle")
    assert page.title() == f"nudgeflow report {START.isoformat()} to {END.isoformat()}"
    assert page.get_by_role("heading", level=1).inner_text() == "nudgeflow report"
    headings = page.get_by_role("heading", level=2).all_inner_texts()
    assert headings == [
        "Lifecycle stages",
        "Pathways",
        "Sends and responses",
        "Spend against budget",
        "Impact",
    ]
    charts = page.get_by_role("img")
    assert charts.count() == 6  # funnel, moves, the pathway, nights, spend, uplift
    for index in range(charts.count()):
        assert charts.nth(index).get_attribute("aria-labelledby")
        box = charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 30
    assert page.locator("table").count() == charts.count()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    page.close()
    assert problems == []
    assert requests == [out.as_uri()]  # nothing but the file itself
