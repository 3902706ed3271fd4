"""The demo-data generator: deterministic, importable formats, every persona and stage."""

from __future__ import annotations

import csv
import json
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from demo.demodata import EVENT_COLUMNS, MEMBER_COLUMNS, generate

END = date(2025, 6, 30)
END_EXCLUSIVE = datetime(2025, 7, 1, tzinfo=UTC)
ADVOCACY = {
    "review_posted",
    "referral_made",
    "case_study",
    "talk_given",
    "guest_post",
    "answer_posted",
}
KNOWN_TYPES = ADVOCACY | {
    "purchase",
    "login",
    "community_joined",
    "community_post",
    "referral_converted",
    "event_attended",
    "survey_completed",
    "email_delivered",
    "email_opened",
    "email_clicked",
    "email_bounced",
    "unsubscribed",
    "reward_redeemed",
}


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _instant(text: str) -> datetime:
    assert text.endswith("Z"), text
    moment = datetime.fromisoformat(text[:-1] + "+00:00")
    assert moment.tzinfo is not None
    return moment


class Community:
    """A generated run, read back."""

    def __init__(self, out: Path, members: int, days: int, seed: int) -> None:
        self.counts = generate(out, members, days, seed, END)
        self.member_columns, self.members = _read(out / "members.csv")
        self.event_columns, self.events = _read(out / "events.csv")
        self.by_member: dict[str, list[dict[str, str]]] = defaultdict(list)
        for event in self.events:
            self.by_member[event["member_id"]].append(event)

    def purchases(self, member_id: str) -> list[datetime]:
        return [
            _instant(e["occurred_at"]) for e in self.by_member[member_id] if e["type"] == "purchase"
        ]

    def count(self, member_id: str, types: set[str]) -> int:
        return sum(1 for e in self.by_member[member_id] if e["type"] in types)

    def stage(self, member_id: str) -> str:
        """The default retention ladder: the highest stage whose rule holds."""
        if self.count(member_id, ADVOCACY) >= 3:
            return "advocate"
        bought = self.purchases(member_id)
        recent = [t for t in bought if t >= END_EXCLUSIVE - timedelta(days=365)]
        if len(recent) >= 3:
            return "loyalist"
        return "adopter" if bought else "none"


@pytest.fixture(scope="module")
def community(tmp_path_factory: pytest.TempPathFactory) -> Community:
    return Community(tmp_path_factory.mktemp("demo"), members=2000, days=365, seed=7)


def test_same_arguments_give_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(tmp_path / name, 300, 120, seed, END)
        runs[name] = [(tmp_path / name / f).read_bytes() for f in ("members.csv", "events.csv")]
    assert runs["a"] == runs["b"]
    assert runs["a"][0] != runs["c"][0]
    assert runs["a"][1] != runs["c"][1]


def test_a_member_does_not_depend_on_how_many_are_generated(tmp_path: Path) -> None:
    generate(tmp_path / "small", 10, 365, 1, END)
    generate(tmp_path / "large", 50, 365, 1, END)
    small = (tmp_path / "small" / "events.csv").read_text(encoding="utf-8").splitlines()
    large = (tmp_path / "large" / "events.csv").read_text(encoding="utf-8").splitlines()
    assert large[: len(small)] == small


def test_counts_match_the_files(community: Community) -> None:
    assert community.counts == (len(community.members), len(community.events))
    assert community.counts[0] == 2000


def test_member_columns_and_formats(community: Community) -> None:
    assert community.member_columns == list(MEMBER_COLUMNS)
    ids = [m["member_id"] for m in community.members]
    assert ids[0] == "m000001"
    assert len(set(ids)) == len(ids)
    assert len({m["email"] for m in community.members}) == len(ids)
    birthdays: Counter[str] = Counter()
    zones_by_country: dict[str, set[str]] = defaultdict(set)
    for m in community.members:
        assert re.fullmatch(r"m\d{6}", m["member_id"])
        assert re.fullmatch(r"[a-z.0-9]+@example\.(com|org|net)", m["email"]), m["email"]
        assert m["first_name"]
        assert m["last_name"]
        assert _instant(m["joined_at"]) < END_EXCLUSIVE
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", m["birthday"]):
            date.fromisoformat(m["birthday"])
            birthdays["full"] += 1
        elif re.fullmatch(r"\d{2}-\d{2}", m["birthday"]):
            date.fromisoformat("2000-" + m["birthday"])
            birthdays["month-day"] += 1
        else:
            assert m["birthday"] == ""
            birthdays["empty"] += 1
        assert re.fullmatch(r"([A-Z]{2})?", m["country"])
        if m["timezone"]:
            ZoneInfo(m["timezone"])
        zones_by_country[m["country"]].add(m["timezone"])
        assert set(filter(None, m["tags"].split(";"))) <= {"staff", "press", "beta"}
        assert re.fullmatch(r"(cus_[A-Za-z0-9]{14})?", m["stripe_customer_id"])
        assert m["email_opt_in"] in {"true", "false"}
        assert m["plan"] in {"free", "pro", "team"}
    assert birthdays["full"] > birthdays["month-day"] > 0
    assert birthdays["empty"] > 0
    # Time zones follow the country.
    assert zones_by_country[""] == {""}
    assert zones_by_country["DE"] == {"Europe/Berlin"}
    assert zones_by_country["JP"] == {"Asia/Tokyo"}
    assert all(z.startswith("America/") for z in zones_by_country["US"])
    assert len(zones_by_country["US"]) > 1
    assert all(z.startswith("Australia/") for z in zones_by_country["AU"])
    assert len(zones_by_country) >= 12
    assert 0 < Counter(m["email_opt_in"] for m in community.members)["false"] < 200
    tags = Counter(t for m in community.members for t in m["tags"].split(";") if t)
    assert tags["beta"] > tags["staff"] > 0
    stripe = sum(1 for m in community.members if m["stripe_customer_id"])
    assert 0.8 * 2000 < stripe < 2000
    assert set(Counter(m["plan"] for m in community.members)) == {"free", "pro", "team"}


def test_event_columns_and_formats(community: Community) -> None:
    assert community.event_columns == list(EVENT_COLUMNS)
    ids = [e["event_id"] for e in community.events]
    assert len(set(ids)) == len(ids)
    joined = {m["member_id"]: _instant(m["joined_at"]) for m in community.members}
    currencies: Counter[str] = Counter()
    for e in community.events:
        assert e["type"] in KNOWN_TYPES
        moment = _instant(e["occurred_at"])
        assert joined[e["member_id"]] <= moment < END_EXCLUSIVE
        if e["type"] == "purchase":
            assert re.fullmatch(r"\d+\.\d{2}", e["amount"]), e["amount"]
            assert e["currency"] in {"USD", "EUR", "GBP"}
            currencies[e["currency"]] += 1
        else:
            assert e["amount"] == e["currency"] == ""
        if e["properties"]:
            assert isinstance(json.loads(e["properties"]), dict)
    assert currencies["USD"] > currencies["EUR"] + currencies["GBP"]
    assert currencies["EUR"] > 0
    assert currencies["GBP"] > 0
    assert set(Counter(e["type"] for e in community.events)) == KNOWN_TYPES


def test_events_of_a_member_are_in_time_order_with_numbered_ids(community: Community) -> None:
    for member_id, events in community.by_member.items():
        index = int(member_id[1:])
        assert [e["event_id"] for e in events] == [f"e{index}-{n}" for n in range(len(events))]
        times = [e["occurred_at"] for e in events]
        assert times == sorted(times)


def test_about_ten_events_per_member_over_a_year(community: Community) -> None:
    assert 8 <= len(community.events) / len(community.members) <= 13


def test_realistic_baskets(community: Community) -> None:
    amounts = [float(e["amount"]) for e in community.events if e["type"] == "purchase"]
    assert 40 <= statistics.median(amounts) <= 120
    assert min(amounts) >= 4.99


def test_every_stage_in_a_pyramid(community: Community) -> None:
    stages = Counter(community.stage(m["member_id"]) for m in community.members)
    assert stages["adopter"] > stages["loyalist"] > stages["advocate"] > 0
    assert stages["none"] > 0


def test_every_persona_shows_up(community: Community) -> None:
    ids = [m["member_id"] for m in community.members]
    six_months_ago = END_EXCLUSIVE - timedelta(days=180)
    one_year_ago = END_EXCLUSIVE - timedelta(days=365)

    def how_many(test: Callable[[str], bool]) -> int:
        return sum(1 for member_id in ids if test(member_id))

    never = how_many(lambda m: not community.purchases(m))
    one_time = how_many(lambda m: len(community.purchases(m)) == 1)
    loyal = how_many(lambda m: sum(t >= one_year_ago for t in community.purchases(m)) >= 8)
    lapsed = how_many(
        lambda m: len(community.purchases(m)) >= 3 and max(community.purchases(m)) < six_months_ago
    )
    community_active = how_many(
        lambda m: (
            community.count(m, {"login"}) >= 5
            and community.count(m, {"community_post"}) >= 2
            and community.count(m, {"answer_posted"}) >= 1
        )
    )
    advocates = how_many(lambda m: community.count(m, ADVOCACY) >= 3)
    assert never >= 40
    assert one_time >= 400
    assert loyal >= 50
    assert lapsed >= 50
    assert community_active >= 20
    assert advocates >= 50

    # Repeat buyers wait weeks to months between purchases, not minutes.
    gaps = []
    for member_id in ids:
        bought = sorted(community.purchases(member_id))
        gaps += [(b - a).total_seconds() / 86_400 for a, b in pairwise(bought)]
    assert 7 <= statistics.median(gaps) <= 90


def test_email_chains(community: Community) -> None:
    for events in community.by_member.values():
        seen: dict[str, set[str]] = defaultdict(set)
        for e in events:
            if e["type"].startswith("email_") or e["type"] == "unsubscribed":
                message = json.loads(e["properties"])["message_id"]
                if e["type"] == "email_opened":
                    assert "email_delivered" in seen[message]
                if e["type"] == "email_clicked":
                    assert "email_opened" in seen[message]
                seen[message].add(e["type"])
        types = [e["type"] for e in events]
        for final in ("email_bounced", "unsubscribed"):
            if final in types:  # nothing is e-mailed after a bounce or an opt-out
                assert "email_delivered" not in types[types.index(final) + 1 :]
    types = Counter(e["type"] for e in community.events)
    assert types["email_delivered"] > types["email_opened"] > types["email_clicked"] > 0


@pytest.mark.parametrize("days", [1, 30])
def test_short_windows_stay_inside_the_window(tmp_path: Path, days: int) -> None:
    run = Community(tmp_path, members=200, days=days, seed=2)
    start = END_EXCLUSIVE - timedelta(days=days)
    for e in run.events:
        assert start <= _instant(e["occurred_at"]) < END_EXCLUSIVE


@pytest.mark.parametrize(("members", "days"), [(0, 365), (10, 0)])
def test_rejects_empty_runs(tmp_path: Path, members: int, days: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        generate(tmp_path, members, days, 1, END)
    assert not list(tmp_path.iterdir())
