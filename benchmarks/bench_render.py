"""Rendering throughput: the shipped templates, many members, one core.

    python benchmarks/bench_render.py [--emails 20000] [--workdir DIR]

Each email is what the dispatcher renders per action: the member's context with freshly
signed unsubscribe and preferences links, subject + HTML + text from the cached compiled
templates, CSS inlined with css-inline, and the outgoing message with its headers built.
The process is pinned to one CPU. The limit is 5,000 emails/s (issue 5). Next to it, the
same loop without CSS inlining and the bare Jinja2 render, to show where the time goes.
``--workdir`` is accepted for ``benchmarks/run.py`` and unused (nothing is written).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from delivery.message import build_message, display_name  # noqa: E402
from delivery.render import EmailRenderer  # noqa: E402
from delivery.template_context import member_email_context, sample_context  # noqa: E402
from planning.campaign_files import load_campaign_set  # noqa: E402

LIMIT = 5_000.0
AS_OF = date(2026, 11, 21)
FIRST = ["Ada", "Grace", "Alan", "Édith", "O'Brien", "Zoë", "<Sam>", "Li"]


def _pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def _members(n: int) -> list[dict[str, Any]]:
    return [
        {
            "member_id": f"m{i:07d}",
            "email": f"member{i}@example.com",
            "first_name": FIRST[i % len(FIRST)],
            "last_name": "Lovelace",
            "country": "GB",
            "timezone": "Europe/London",
            "attributes": {},
            "stage": "loyalist",
            "score": float(i % 100),
        }
        for i in range(n)
    ]


def _rate(loop: Callable[[int], None], count: int) -> float:
    loop(min(count, 200))  # warm up: compile the templates, fill caches
    start = time.perf_counter()
    loop(count)
    return count / (time.perf_counter() - start)


def run(emails: int = 20_000) -> dict[str, float]:
    """Emails per second for the full per-email path and two narrower loops."""
    _pin_one_core()
    campaigns = load_campaign_set(ROOT / "campaigns").campaigns
    templates = ROOT / "templates" / "email"
    inlining = EmailRenderer(templates)
    plain = EmailRenderer(templates, inline_css=False)
    rewards = {c.id: sample_context(c, AS_OF)["reward"] for c in campaigns}
    members = _members(1_000)

    def full(renderer: EmailRenderer) -> Callable[[int], None]:
        def loop(count: int) -> None:
            for i in range(count):
                campaign = campaigns[i % len(campaigns)]
                member = members[i % len(members)]
                context = member_email_context(
                    member=member,
                    campaign=campaign,
                    reward=rewards[campaign.id],
                    now=AS_OF,
                    base_url="https://shop.example",
                    signing_key="bench-key",
                )
                rendered = renderer.render_campaign(campaign, context)
                build_message(
                    rendered=rendered,
                    action_id=f"a{i}",
                    campaign_id=campaign.id,
                    member_id=member["member_id"],
                    as_of=AS_OF,
                    to_email=member["email"],
                    to_name=display_name(member["first_name"], member["last_name"]),
                    from_address="Shop <hello@shop.example>",
                    unsubscribe_url=context["links"]["unsubscribe"],
                )

        return loop

    contexts = [sample_context(c, AS_OF) for c in campaigns]

    def bare(count: int) -> None:
        for i in range(count):
            index = i % len(campaigns)
            plain.render_campaign(campaigns[index], contexts[index])

    return {
        "emails": float(emails),
        "templates": float(len(campaigns)),
        "emails_per_second": _rate(full(inlining), emails),
        "emails_per_second_without_inlining": _rate(full(plain), emails),
        "bare_render_per_second": _rate(bare, emails),
        "limit_emails_per_second": LIMIT,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--emails", type=int, default=20_000)
    parser.add_argument("--workdir", default=None, help="unused; accepted for run.py")
    args = parser.parse_args()
    figures = run(args.emails)
    for name, value in figures.items():
        print(f"{name}: {value:,.0f}")
    verdict = "ok" if figures["emails_per_second"] >= LIMIT else "UNDER THE LIMIT"
    print(f"render throughput vs limit: {figures['emails_per_second'] / LIMIT:.2f}x ({verdict})")


if __name__ == "__main__":
    main()
