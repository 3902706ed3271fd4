"""The pages in a real browser: Debian's headless Chromium, driven by Playwright, against the
service under uvicorn on a free port over a temporary SQLite database. A member opens the
unsubscribe link an email carries, presses the button and sees the confirmation; another
leaves a category on the preference page; the database shows both, and the browser reports
no blocked resource or script error (the pages need neither scripts nor anything remote).

Needs /usr/bin/chromium (`apt-get install -y chromium`; .ci/run installs it): without it the
test is skipped, except under CI=true, where it fails."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, expect, sync_playwright

from delivery.message import list_unsubscribe_headers
from delivery.tokens import member_links
from providers.invites import InvitePayload, sign_invite
from store.engine import create_store_engine
from store.migrate import upgrade
from tests.integration.community import Person, insert_people
from tests.integration.web.service import KEY, NOW, Clock, events_of, make_app, opted_in
from web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")


@dataclass(frozen=True)
class Service:
    base: str
    engine: sa.Engine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    url = f"sqlite:///{tmp_path / 'nudgeflow.db'}"
    engine = create_store_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        insert_people(connection, [Person("ada", None), Person("bob", None)])
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app = make_app(url, Clock(), public_base_url=base)
    config = uvicorn.Config(create_app(lambda: app), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Service(base, engine)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        app.engine.dispose()
        engine.dispose()


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


def test_unsubscribe_and_preferences_in_a_browser(service: Service, browser: Browser) -> None:
    problems: list[str] = []

    def noted(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(message.text)

    page = browser.new_page()
    page.on("console", noted)

    # The one-click URL of ada's email, as the List-Unsubscribe header carries it.
    links = member_links(service.base, KEY, "ada", "loyalist-discount")
    header = list_unsubscribe_headers(links["unsubscribe"], None)["List-Unsubscribe"]
    page.goto(header.strip("<>"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Unsubscribe from our emails?")
    assert opted_in(service.engine, "ada")  # opening the page changed nothing
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    expect(page.get_by_role("status")).to_have_text("Done: we will not send you any more emails.")
    assert not opted_in(service.engine, "ada")
    assert events_of(service.engine, "unsubscribed") == [
        ("ada", {"campaign_id": "loyalist-discount", "source": "link"})
    ]

    # bob's footer link to the preference centre: leave the surveys, save, see it kept.
    page.goto(member_links(service.base, KEY, "bob", "loyalist-survey")["preferences"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Your email preferences")
    surveys = page.get_by_label("Surveys")
    expect(surveys).to_be_checked()
    surveys.uncheck()
    page.get_by_role("button", name="Save my choices").click()
    expect(page.get_by_role("status")).to_have_text("Your choices are saved.")
    expect(page.get_by_label("Surveys")).not_to_be_checked()
    expect(page.get_by_label("Rewards")).to_be_checked()
    assert [p["category"] for _, p in events_of(service.engine, "category_unsubscribed")] == [
        "surveys"
    ]
    assert opted_in(service.engine, "bob")

    # bob's VIP invite: accept it.
    invite = InvitePayload("bob", "vip-inner-circle", "the Inner Circle", "a1", NOW.replace(2027))
    page.goto(f"{service.base}/vip/{sign_invite(invite, KEY)}")
    page.get_by_role("button", name="Accept the invitation").click()
    expect(page.get_by_role("status")).to_contain_text("you have accepted your invitation")
    assert len(events_of(service.engine, "vip_invite_accepted")) == 1

    assert problems == []
