"""The community one demo run generates: its calendar, and each member's row and events.

``Community`` holds what all members of a run share (the window, the newsletter schedule,
time-zone offsets, precomputed timestamp text) and generates one member at a time from their
own ``random.Random(f"{seed}:{index}")``, so a member depends only on (seed, index, days, end).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from demo.personas import (
    ADVOCACY_CUMULATIVE,
    ADVOCACY_TYPES,
    ADVOCATE,
    BUY_RHYTHM,
    COMMUNITY,
    LAPSED,
    LOYAL,
    MEETUP_CHANCE,
    MEETUPS,
    NEVER,
    NPS_RANGE,
    ONE_TIME,
    PERSONA_CUMULATIVE,
    PERSONA_TRAITS,
    REPEAT,
)
from demo.population import (
    ALNUM,
    COUNTRIES,
    COUNTRY_CUMULATIVE,
    EMAIL_DOMAINS,
    NAMES,
    derive_address,
    draw_birthday,
)

DAY = 86_400
HOUR = 3_600
# Some members joined before the window opened (tenure), up to this many days before it.
PRE_WINDOW_DAYS = 3 * 365
_NEWSLETTERS = ("newsletter", "product-update", "tips", "community-digest")

Event = tuple[int, str, str, str, str]  # instant, type, amount, currency, properties JSON


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
    if persona in BUY_RHYTHM:
        mean_gap, p_stop = BUY_RHYTHM[persona]
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


class Community:
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
        for country in COUNTRIES:
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

    def first_purchase(self, index: int, seed: int) -> int | None:
        """The instant of member ``index``'s first purchase (``None``: they buy nothing)."""
        _, events = self.member(index, seed, referrals=False)
        return min((e[0] for e in events if e[1] == "purchase"), default=None)

    def member(
        self, index: int, seed: int, *, referrals: bool = True
    ) -> tuple[list[str], list[Event]]:
        """One member's row and events (unsorted), from their own random stream.

        A converted referral names the friend it brought (a later member); ``referrals``
        false leaves conversions out, for looking a friend up without looking up theirs.
        The friend of the last members may be past the community's end: nudgeflow then
        knows no such member and refuses the conversion, as it would any unknown one.
        """
        r = random.Random(f"{seed}:{index}")
        rand = r.random
        persona = bisect_right(PERSONA_CUMULATIVE, rand() * PERSONA_CUMULATIVE[-1])
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
        ) = PERSONA_TRAITS[persona]
        code, _, currency, pool, zones = COUNTRIES[
            bisect_right(COUNTRY_CUMULATIVE, rand() * COUNTRY_CUMULATIVE[-1])
        ]
        zone = zones[int(rand() * len(zones))]
        offset = self.offsets[zone]
        if rand() < 0.01:  # a few profiles without location, as real exports have
            code = zone = ""
            offset = 0
        firsts, lasts = NAMES[pool]
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
        email = f"{local}.{index}@{EMAIL_DOMAINS[int(rand() * 3)]}"
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

        events: list[Event] = []
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
                    code_text = "".join(r.choices(ALNUM[10:36], k=6))
                    add((t, "reward_redeemed", "", "", f'{{"code":"THANKS-{code_text}"}}'))
            if rand() < 0.06:  # a satisfaction survey some time after the first purchase
                low, high = NPS_RANGE[persona]
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
        if rand() < MEETUP_CHANCE.get(persona, 0.03):
            for _ in range(1 + (rand() < 0.3)):
                meetup = f'{{"event":"{MEETUPS[int(rand() * len(MEETUPS))]}"}}'
                add((at(active + rand() * span), "event_attended", "", "", meetup))

        # Advocacy: three or more actions for advocates, at most two for anyone else.
        actions: list[str] = []
        if persona == ADVOCATE:
            for _ in range(3 + min(9, int(r.expovariate(1 / 2)))):
                pick = bisect_right(ADVOCACY_CUMULATIVE, rand() * ADVOCACY_CUMULATIVE[-1])
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
                if rand() < 0.4 and converted < end and referrals:
                    # The friend is a later member of the community; the referral converts
                    # with their first purchase, if that came after it (a member who had
                    # bought before is no referral: the guards would refuse it).
                    friend = index + 1 + n
                    bought = self.first_purchase(friend, seed)
                    if bought is not None and t < bought < end:
                        converted_props = (
                            f'{{"referral_id":"r{index}-{n}","referred_member_id":"m{friend:06d}"}}'
                        )
                        converted_at = min(bought + HOUR, last_instant)
                        add((converted_at, "referral_converted", "", "", converted_props))
            elif kind == "talk_given":
                props = f'{{"event":"{MEETUPS[int(rand() * len(MEETUPS))]}"}}'
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
        birthday = draw_birthday(r, self.end_year)
        tags = []
        if rand() < 0.004:
            tags.append("staff")
        if rand() < 0.003:
            tags.append("press")
        if rand() < (0.15 if persona == ADVOCATE else 0.05):
            tags.append("beta")
        has_stripe = rand() < (0.25 if persona == NEVER else 0.96)
        stripe = "cus_" + "".join(r.choices(ALNUM, k=14)) if has_stripe else ""
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
            *derive_address(index, code),
        ]
        return row, events

    def _newsletters(
        self,
        r: random.Random,
        events: list[Event],
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
