"""Demo data: a plausible community of members and their events, written as CSV.

``generate(out_dir, members, days, seed, end)`` writes ``members.csv`` and ``events.csv`` in
the formats the importer reads. Every member is given one *persona* that
drives their behaviour over the ``days`` days ending at ``end`` (UTC):

=============  ====================================================================
never          window shoppers: logins and newsletters, no purchase (no stage)
one_time       a single purchase soon after joining (adopter)
repeat         a few purchases weeks to months apart (adopter, sometimes loyalist)
loyal          frequent purchases (loyalist)
community      logins, posts, up to two answers, a purchase or two (adopter)
advocate       repeat buyers with at least three advocacy actions (advocate)
lapsed         many purchases, then nothing for at least six months (loyalist → adopter)
=============  ====================================================================

so the default retention ladder finds members in every stage, in a pyramid.
Only the advocate persona can reach three advocacy actions; the others stop at two, so the
top of the pyramid stays narrow and predictable.

Determinism and memory: each member has its own ``random.Random(f"{seed}:{index}")``, so a
member's row and events depend only on (seed, index, days, end), and rows are written member
by member. Output is byte-identical for the same arguments and memory does not grow with
``members``. Files are written under temporary names and renamed at the end, so an
interrupted run never leaves a half-written pair behind.
"""

from __future__ import annotations

import csv
import math
import os
import random
import unicodedata
from bisect import bisect_left, bisect_right
from calendar import isleap
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from pathlib import Path
from zoneinfo import ZoneInfo

from store.rows import MEMBER_COLUMNS as IMPORT_MEMBER_COLUMNS

DAY = 86_400
HOUR = 3_600
MAX_DAYS = 36_500
# Some members joined before the window opened (tenure), up to this many days before it.
PRE_WINDOW_DAYS = 3 * 365

# Plus custom attributes: the plan, and a postal address for gift rewards.
MEMBER_COLUMNS = (*IMPORT_MEMBER_COLUMNS, "plan", "address_line1", "city", "postal_code")
_STREETS = ("Market Street", "Station Road", "Harbour Lane", "Elm Avenue", "Mill Way")


def _address(index: int, country: str) -> list[str]:
    """A postal address for nine members in ten, derived from the index alone (so adding
    it left every other generated value unchanged)."""
    spread = (index * 2_654_435_761) % 4_294_967_296
    if spread % 10 == 0:
        return ["", "", ""]
    street = _STREETS[spread % len(_STREETS)]
    city = f"{country or 'Demo'} City {1 + spread % 7}"
    return [f"{1 + spread % 240} {street}", city, f"{10000 + spread % 89999}"]


EVENT_COLUMNS = ("event_id", "member_id", "type", "occurred_at", "amount", "currency", "properties")

ADVOCACY_TYPES = (
    "review_posted",
    "referral_made",
    "case_study",
    "talk_given",
    "guest_post",
    "answer_posted",
)

# --- personas ---------------------------------------------------------------------------

NEVER, ONE_TIME, REPEAT, LOYAL, COMMUNITY, ADVOCATE, LAPSED = range(7)
PERSONAS = ("never", "one_time", "repeat", "loyal", "community", "advocate", "lapsed")

# Per persona: weight (% of members), share who joined before the window, latest join as
# days before the end (long-history personas need room to show it), mean days between
# logins, newsletter inclusion, open and click probabilities, median basket, plan weights
# (free, pro, team), and the chance of joining the community forum.
_PERSONA_TABLE: tuple[
    tuple[
        float, float, float, float, float, float, float, float, tuple[float, float, float], float
    ],
    ...,
] = (
    (6.0, 0.20, 0.0, 150.0, 0.10, 0.15, 0.10, 0.0, (0.90, 0.10, 0.00), 0.15),
    (30.0, 0.20, 0.0, 365.0, 0.10, 0.20, 0.15, 45.0, (0.80, 0.18, 0.02), 0.05),
    (24.0, 0.35, 30.0, 150.0, 0.11, 0.30, 0.20, 60.0, (0.60, 0.33, 0.07), 0.12),
    (11.0, 0.50, 60.0, 75.0, 0.12, 0.45, 0.25, 75.0, (0.35, 0.50, 0.15), 0.30),
    (12.0, 0.40, 30.0, 25.0, 0.12, 0.50, 0.30, 55.0, (0.60, 0.30, 0.10), 1.00),
    (6.0, 0.70, 90.0, 35.0, 0.12, 0.60, 0.40, 90.0, (0.30, 0.45, 0.25), 1.00),
    (11.0, 0.70, 250.0, 90.0, 0.10, 0.12, 0.10, 70.0, (0.60, 0.30, 0.10), 0.10),
)
_PERSONA_CUM = list(accumulate(p[0] for p in _PERSONA_TABLE))

# Mean days between purchases (gamma, shape 2) and the chance to stop after each purchase.
_BUY_RHYTHM = {REPEAT: (60.0, 0.18), LOYAL: (21.0, 0.02), ADVOCATE: (35.0, 0.04)}
# Advocacy action mix for the advocate persona (weights follow ADVOCACY_TYPES).
_ADVOCACY_CUM = list(accumulate((30, 25, 7, 8, 10, 20)))
_MEETUPS = ("webinar-onboarding", "meetup-berlin", "meetup-nyc", "summit-2", "ama-product")
_P_MEETUP = {COMMUNITY: 0.35, ADVOCATE: 0.6, LOYAL: 0.1}
_NPS_RANGE = {
    NEVER: (3, 8),
    ONE_TIME: (4, 9),
    REPEAT: (6, 10),
    LOYAL: (7, 10),
    COMMUNITY: (6, 10),
    ADVOCATE: (9, 10),
    LAPSED: (2, 7),
}

# --- countries, names ---------------------------------------------------------------------

# (ISO code, weight, currency, name pool, IANA zones; a zone repeated weighs more).
# Eurozone and UK members pay in EUR / GBP; everyone else in USD (about two thirds).
_COUNTRIES: tuple[tuple[str, float, str, str, tuple[str, ...]], ...] = (
    (
        "US",
        36,
        "USD",
        "en",
        (
            "America/New_York",
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Los_Angeles",
            "America/Los_Angeles",
        ),
    ),
    ("CA", 5, "USD", "en", ("America/Toronto", "America/Toronto", "America/Vancouver")),
    ("GB", 9, "GBP", "en", ("Europe/London",)),
    ("IE", 2, "EUR", "en", ("Europe/Dublin",)),
    ("DE", 7, "EUR", "de", ("Europe/Berlin",)),
    ("FR", 5, "EUR", "fr", ("Europe/Paris",)),
    ("ES", 3, "EUR", "es", ("Europe/Madrid",)),
    ("IT", 3, "EUR", "it", ("Europe/Rome",)),
    ("NL", 3, "EUR", "nl", ("Europe/Amsterdam",)),
    ("SE", 2, "EUR", "sv", ("Europe/Stockholm",)),
    ("BR", 3, "USD", "pt", ("America/Sao_Paulo",)),
    ("MX", 3, "USD", "es", ("America/Mexico_City",)),
    ("IN", 5, "USD", "hi", ("Asia/Kolkata",)),
    ("JP", 3, "USD", "ja", ("Asia/Tokyo",)),
    ("AU", 4, "USD", "en", ("Australia/Sydney", "Australia/Melbourne", "Australia/Perth")),
    ("NZ", 1, "USD", "en", ("Pacific/Auckland",)),
    ("SG", 2, "USD", "zh", ("Asia/Singapore",)),
    ("ZA", 1, "USD", "af", ("Africa/Johannesburg",)),
)
_COUNTRY_CUM = list(accumulate(c[1] for c in _COUNTRIES))

_NAME_POOLS = {
    "en": (
        "James Mary Olivia Liam Emma Noah Ava Ethan Sophia Lucas Chloe Zoë Mason Harper",
        "Smith Johnson Williams Brown Jones Miller Davis Wilson Taylor Clark O'Brien Nguyen",
    ),
    "es": (
        "José María Lucía Javier Sofía Diego Carmen Pablo Valentina Mateo",
        "García Martínez López Hernández González Rodríguez Pérez Sánchez Ramírez Torres",
    ),
    "de": (
        "Lukas Anna Jonas Lea Felix Mia Leon Hannah Jürgen Sophie",
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schäfer Koch",
    ),
    "fr": (
        "Louis Camille Léa Hugo Chloé Gabriel Manon Jules Inès Arthur",
        "Martin Bernard Dubois Thomas Robert Richard Petit Durand Lefèvre Moreau",
    ),
    "it": (
        "Giulia Marco Francesca Luca Chiara Matteo Sara Alessandro Martina Lorenzo",
        "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco",
    ),
    "nl": (
        "Daan Emma Sem Julia Lucas Tess Finn Sanne Bram Fleur",
        "de_Jong Jansen de_Vries van_den_Berg Bakker Visser Smit Meijer de_Boer Mulder",
    ),
    "sv": (
        "Erik Astrid Lars Ingrid Oskar Elsa Nils Maja Anders Åsa",
        "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Öberg",
    ),
    "pt": (
        "João Ana Pedro Beatriz Lucas Mariana Gabriel Larissa Rafael Camila",
        "Silva Santos Oliveira Souza Lima Pereira Ferreira Costa Rodrigues Almeida",
    ),
    "ja": (
        "Haruto Yui Sota Hina Ren Sakura Yuto Aoi Daiki Mei",
        "Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato",
    ),
    "hi": (
        "Aarav Priya Vihaan Ananya Arjun Diya Rohan Isha Kabir Meera",
        "Sharma Patel Singh Kumar Gupta Reddy Iyer Nair Das Mehta",
    ),
    "zh": (
        "Wei Mei_Ling Jun Xin_Yi Hao Hui_Min Kai Li_Na",
        "Tan Lim Lee Ng Wong Goh Chua Teo",
    ),
    "af": (
        "Thabo Lerato Sipho Naledi Pieter Anika Johan Zanele",
        "Nkosi Dlamini van_der_Merwe Botha Mokoena Naidoo Pretorius Khumalo",
    ),
}
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")  # RFC 2606: never delivered
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_NEWSLETTERS = ("newsletter", "product-update", "tips", "community-digest")


def _slug(name: str) -> str:
    """ASCII letters only, for e-mail local parts (``Zoë O'Brien`` → ``zoe``, ``obrien``)."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalpha())


def _names(words: str) -> tuple[tuple[str, str], ...]:
    # Underscores stand for spaces inside one name ("van_den_Berg").
    return tuple((w.replace("_", " "), _slug(w)) for w in words.split())


_NAMES = {pool: (_names(first), _names(last)) for pool, (first, last) in _NAME_POOLS.items()}

_Event = tuple[int, str, str, str, str]  # instant, type, amount, currency, properties JSON


def _epoch(day: date) -> int:
    return int(datetime.combine(day, time(0), tzinfo=UTC).timestamp())


def _purchase_times(
    r: random.Random, persona: int, first_buy: int, active: int, end: int
) -> tuple[list[int], int]:
    """Raw purchase instants in time order, and when the member lapsed (``end`` if never)."""
    buys: list[int] = []
    lapse_at = end
    last_instant = end - 1
    span = end - active
    rand = r.random
    if persona in _BUY_RHYTHM:
        mean_gap, p_stop = _BUY_RHYTHM[persona]
        t = min(first_buy, last_instant)
        while t < end:
            buys.append(t)
            if rand() < p_stop:
                break
            t += int(r.gammavariate(2.0, mean_gap / 2) * DAY)
    elif persona == ONE_TIME:
        buys.append(first_buy)
    elif persona == COMMUNITY:
        t = first_buy
        buys.append(t)
        while rand() < 0.45:
            t += int(r.gammavariate(2.0, 45.0) * DAY)
            if t >= end:
                break
            buys.append(t)
    elif persona == LAPSED:
        # At least three purchases, the last one six months or more before the end; a
        # window shorter than that cannot show a full lapse, so it lapses after a third.
        room = max(0.0, span / DAY - 183 - 30)
        lapse_at = end - int((183 + rand() * min(150.0, room)) * DAY)
        if lapse_at <= active + DAY:
            lapse_at = active + span // 3
        count = 3 + int(r.expovariate(1 / 3))
        buys.extend(active + int(rand() * (lapse_at - active)) for _ in range(count))
        buys.sort()  # order ids follow time
    return buys, lapse_at


def _birthday(r: random.Random, end_year: int) -> str:
    """Mostly a full date (ages 18–75), some month-day only, some unknown."""
    rand = r.random
    kind = rand()
    if kind >= 0.9:
        return ""
    # Month-day birthdays are drawn from a leap year so that 02-29 can turn up.
    year = 2000 if kind >= 0.78 else end_year - 18 - int(rand() * 57)
    first_of_year = date(year, 1, 1).toordinal()
    born = date.fromordinal(first_of_year + int(rand() * (366 if isleap(year) else 365)))
    return born.isoformat() if kind < 0.78 else born.isoformat()[5:]


class _Community:
    """Tables shared by all members of one run, and the per-member generator."""

    def __init__(self, days: int, end: date) -> None:
        self.end = _epoch(end + timedelta(days=1))  # exclusive: nothing at or after this
        self.start = self.end - days * DAY
        self.base = self.start - PRE_WINDOW_DAYS * DAY
        self.end_year = end.year
        first_day = end + timedelta(days=1 - days - PRE_WINDOW_DAYS)
        # An instant's ISO text is a day prefix plus a time-of-day suffix, both precomputed:
        # far cheaper than datetime.isoformat() ten million times.
        self.day_prefix = [
            (first_day + timedelta(days=k)).isoformat() + "T" for k in range(days + PRE_WINDOW_DAYS)
        ]
        self.time_suffix = [
            f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)
        ]
        # Offsets at the end date only place events in members' waking hours; ignoring DST
        # shifts inside the window costs at most an hour of realism.
        noon = datetime.combine(end, time(12), tzinfo=UTC)
        self.offsets: dict[str, int] = {}
        for country in _COUNTRIES:
            for zone in country[4]:
                offset = noon.astimezone(ZoneInfo(zone)).utcoffset()
                self.offsets[zone] = int(offset.total_seconds()) if offset else 0
        # Newsletters go out every 14 days at 14:00 UTC; each member gets a share of them.
        self.sends: list[int] = []
        self.send_props: list[str] = []
        send = self.start + DAY + 14 * HOUR
        while send < self.end:
            name = _NEWSLETTERS[len(self.sends) % len(_NEWSLETTERS)]
            on = datetime.fromtimestamp(send, tz=UTC).date().isoformat()
            self.sends.append(send)
            self.send_props.append(f'{{"campaign":"{name}-{on}","message_id":"msg-')
            send += 14 * DAY

    def iso(self, instant: int) -> str:
        day, second = divmod(instant - self.base, DAY)
        return self.day_prefix[day] + self.time_suffix[second]

    def member(self, index: int, seed: int) -> tuple[list[str], list[_Event]]:
        """One member's row and events (unsorted), from their own random stream."""
        r = random.Random(f"{seed}:{index}")
        rand = r.random
        persona = bisect_right(_PERSONA_CUM, rand() * _PERSONA_CUM[-1])
        (
            _,
            pre_share,
            tail_days,
            login_gap,
            p_receive,
            p_open,
            p_click,
            basket,
            plan_weights,
            p_forum,
        ) = _PERSONA_TABLE[persona]
        code, _, currency, pool, zones = _COUNTRIES[
            bisect_right(_COUNTRY_CUM, rand() * _COUNTRY_CUM[-1])
        ]
        zone = zones[int(rand() * len(zones))]
        offset = self.offsets[zone]
        if rand() < 0.01:  # a few profiles without location, as real exports have
            code = zone = ""
            offset = 0
        firsts, lasts = _NAMES[pool]
        first, first_slug = firsts[int(rand() * len(firsts))]
        last, last_slug = lasts[int(rand() * len(lasts))]
        shape = rand()
        local = (
            f"{first_slug}.{last_slug}"
            if shape < 0.5
            else f"{first_slug[0]}{last_slug}"
            if shape < 0.8
            else first_slug
        )
        email = f"{local}.{index}@{_EMAIL_DOMAINS[int(rand() * 3)]}"
        plan_pick = rand()
        plan = (
            "free"
            if plan_pick < plan_weights[0]
            else "pro"
            if plan_pick < plan_weights[0] + plan_weights[1]
            else "team"
        )

        end, start = self.end, self.start
        last_instant = end - 1
        if rand() < pre_share:
            joined = start - int(rand() * PRE_WINDOW_DAYS * DAY)
        else:
            latest = max(start, min(end - int(tail_days * DAY), end - HOUR))
            joined = start + int(rand() * (latest - start))
        active = max(joined, start)
        span = end - active

        def at(instant: float) -> int:
            # Same local day, waking hours (07:00–23:00 local), inside [active, end).
            local_time = int(instant) + offset
            t = local_time - local_time % DAY + 25_200 + int(rand() * 57_600) - offset
            return active if t < active else last_instant if t > last_instant else t

        events: list[_Event] = []
        add = events.append

        # Purchases: raw instants first, then amounts.
        first_buy = (
            active + int(r.expovariate(1 / 14) * DAY)
            if joined >= start
            else active + int(rand() * span)
        )
        buys, lapse_at = _purchase_times(r, persona, first_buy, active, end)
        if buys:
            order_prefix = f"o{index}-"
            # Team plans buy for several people: bigger baskets.
            mu = math.log(basket * (1.8 if plan == "team" else 1.0))
            redeem = len(buys) >= 2 and rand() < 0.05
            for n, raw in enumerate(buys):
                t = at(raw)
                amount = max(4.99, r.lognormvariate(mu, 0.55))
                items = 1 + int(r.expovariate(0.9))
                props = f'{{"order_id":"{order_prefix}{n}","items":{items}}}'
                add((t, "purchase", f"{amount:.2f}", currency, props))
                if redeem and n == 1:
                    code_text = "".join(r.choices(_ALNUM[10:36], k=6))
                    add((t, "reward_redeemed", "", "", f'{{"code":"THANKS-{code_text}"}}'))
            if rand() < 0.06:  # a satisfaction survey some time after the first purchase
                low, high = _NPS_RANGE[persona]
                t = buys[0] + int(r.expovariate(1 / 10) * DAY)
                if t < end:
                    score = r.randint(low, high)
                    add((at(t), "survey_completed", "", "", f'{{"survey":"nps","score":{score}}}'))

        # Logins: a Poisson process at the persona's pace; lapsed members drift away too.
        stop = min(end, lapse_at + 14 * DAY)
        rate = 1 / (login_gap * DAY)
        t = active + int(r.expovariate(rate))
        while t < stop:
            add((at(t), "login", "", "", ""))
            t += int(r.expovariate(rate))

        # The community forum.
        if rand() < p_forum:
            joined_forum = active + int(r.expovariate(1 / 30) * DAY)
            if persona in (COMMUNITY, ADVOCATE) or joined_forum < end:
                joined_forum = at(min(joined_forum, last_instant))
                add((joined_forum, "community_joined", "", "", ""))
                post_gap = 70.0 if persona in (COMMUNITY, ADVOCATE) else 150.0
                rate = 1 / (post_gap * DAY)
                t = joined_forum + int(r.expovariate(rate))
                while t < stop:
                    add((at(t), "community_post", "", "", '{"channel":"general"}'))
                    t += int(r.expovariate(rate))
                if persona == COMMUNITY:  # at most two answers: helpful, not yet advocates
                    answers = bisect_right((0.4, 0.75), rand())
                    for _ in range(answers):
                        t = joined_forum + int(rand() * (end - joined_forum))
                        add((at(t), "answer_posted", "", "", ""))
        if rand() < _P_MEETUP.get(persona, 0.03):
            for _ in range(1 + (rand() < 0.3)):
                meetup = f'{{"event":"{_MEETUPS[int(rand() * len(_MEETUPS))]}"}}'
                add((at(active + rand() * span), "event_attended", "", "", meetup))

        # Advocacy: three or more actions for advocates, at most two for anyone else.
        actions: list[str] = []
        if persona == ADVOCATE:
            for _ in range(3 + min(9, int(r.expovariate(1 / 2)))):
                pick = bisect_right(_ADVOCACY_CUM, rand() * _ADVOCACY_CUM[-1])
                actions.append(ADVOCACY_TYPES[pick])
        elif persona in (REPEAT, LOYAL):
            if rand() < 0.08:
                actions.append("review_posted")
            if persona == LOYAL and rand() < 0.05:
                actions.append("referral_made")
        for n, kind in enumerate(actions):
            t = at(active + span // 10 + rand() * (span - span // 10))
            if kind == "review_posted":
                props = f'{{"rating":{r.randint(4, 5)}}}'
            elif kind == "referral_made":
                props = f'{{"referral_id":"r{index}-{n}"}}'
                converted = t + int((1 + rand() * 29) * DAY)
                if rand() < 0.4 and converted < end:
                    add((at(converted), "referral_converted", "", "", props))
            elif kind == "talk_given":
                props = f'{{"event":"{_MEETUPS[int(rand() * len(_MEETUPS))]}"}}'
            else:
                props = ""
            add((t, kind, "", "", props))

        # Newsletters: delivered → opened → clicked chains, with rare bounces and opt-outs.
        opt_in = rand() >= (0.08 if persona == NEVER else 0.03)
        bounces = rand() < 0.004
        unsubscribes = rand() < 0.015
        if opt_in:
            self._newsletters(
                r, events, index, active, p_receive, p_open, p_click, bounces, unsubscribes
            )

        # The rest of the member row.
        birthday = _birthday(r, self.end_year)
        tags = []
        if rand() < 0.004:
            tags.append("staff")
        if rand() < 0.003:
            tags.append("press")
        if rand() < (0.15 if persona == ADVOCATE else 0.05):
            tags.append("beta")
        has_stripe = rand() < (0.25 if persona == NEVER else 0.96)
        stripe = "cus_" + "".join(r.choices(_ALNUM, k=14)) if has_stripe else ""
        row = [
            f"m{index:06d}",
            email,
            first,
            last,
            self.iso(joined),
            birthday,
            code,
            zone,
            ";".join(tags),
            stripe,
            "true" if opt_in else "false",
            plan,
            *_address(index, code),
        ]
        return row, events

    def _newsletters(
        self,
        r: random.Random,
        events: list[_Event],
        index: int,
        active: int,
        p_receive: float,
        p_open: float,
        p_click: float,
        bounces: bool,
        unsubscribes: bool,
    ) -> None:
        """Delivered → opened → clicked chains sharing a message id; stop on bounce/opt-out."""
        rand, add, end = r.random, events.append, self.end
        sends, send_props = self.sends, self.send_props
        for k in range(bisect_left(sends, active), len(sends)):
            if rand() >= p_receive:
                continue
            t = sends[k] + int(rand() * 2_700)  # a batch takes up to 45 minutes
            if t >= end:
                break
            props = f'{send_props[k]}{index}-{k}"}}'
            if bounces:
                add((t, "email_bounced", "", "", props))
                break
            add((t, "email_delivered", "", "", props))
            if rand() >= p_open:
                continue
            t += 60 + int(r.expovariate(1 / (5 * HOUR)))
            if t >= end:
                continue
            add((t, "email_opened", "", "", props))
            if unsubscribes and rand() < 0.5:
                left = min(t + 30 + int(rand() * 600), end - 1)
                add((left, "unsubscribed", "", "", props))
                break
            if rand() < p_click:
                t += 5 + int(r.expovariate(1 / 120))
                if t < end:
                    add((t, "email_clicked", "", "", props))


def generate(out_dir: Path, members: int, days: int, seed: int, end: date) -> tuple[int, int]:
    """Write ``members.csv`` and ``events.csv`` into ``out_dir``; return (members, events).

    Events cover the ``days`` days ending with ``end`` (UTC): nothing happens at or after
    midnight UTC starting the day after ``end``. The same arguments give the same bytes.
    """
    if members < 1:
        raise ValueError(f"members must be at least 1, got {members}")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, got {days}")
    community = _Community(days, end)
    base, prefix, suffix = community.base, community.day_prefix, community.time_suffix
    out_dir.mkdir(parents=True, exist_ok=True)
    members_path, events_path = out_dir / "members.csv", out_dir / "events.csv"
    members_tmp = members_path.with_name(members_path.name + ".part")
    events_tmp = events_path.with_name(events_path.name + ".part")
    event_count = 0
    try:
        with (
            members_tmp.open("w", encoding="utf-8", newline="", buffering=1 << 20) as mf,
            events_tmp.open("w", encoding="utf-8", newline="", buffering=1 << 20) as ef,
        ):
            member_writer = csv.writer(mf, lineterminator="\n")
            event_writer = csv.writer(ef, lineterminator="\n")
            member_writer.writerow(MEMBER_COLUMNS)
            event_writer.writerow(EVENT_COLUMNS)
            for index in range(1, members + 1):
                row, events = community.member(index, seed)
                member_writer.writerow(row)
                # Sorting a member's handful of events makes ids follow time within a member.
                events.sort()
                member_id = row[0]
                id_prefix = f"e{index}-"
                rows = []
                for n, (instant, kind, amount, currency, props) in enumerate(events):
                    day, second = divmod(instant - base, DAY)
                    rows.append(
                        (
                            f"{id_prefix}{n}",
                            member_id,
                            kind,
                            prefix[day] + suffix[second],
                            amount,
                            currency,
                            props,
                        )
                    )
                event_writer.writerows(rows)
                event_count += len(rows)
        os.replace(members_tmp, members_path)
        os.replace(events_tmp, events_path)
    finally:
        members_tmp.unlink(missing_ok=True)
        events_tmp.unlink(missing_ok=True)
    return members, event_count
