"""``nudgeflow preview`` (look at an email before a member does) and ``nudgeflow unsubscribe``.

``preview`` renders a campaign's email exactly as the sender would get it (CSS inlined, the
member's real signed unsubscribe link, the List-Unsubscribe headers) and writes three files:
``.html``, ``.txt`` and ``.headers``. A real member has no reward until the nightly run issues
one, so the reward shown is a sample (marked in the headers file).
"""

from __future__ import annotations

import difflib
import re
import webbrowser
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import Connection, select

from cli.context import console, err_console, process_app
from cli.options import AsOf, default_as_of
from delivery.message import build_message, display_name
from delivery.render import EmailRenderer
from delivery.sendwindow import SendWindow, send_at_for
from delivery.template_context import member_email_context, sample_context
from delivery.tokens import read_unsubscribe_token
from delivery.unsubscribe import apply_unsubscribe
from domain.campaign import Campaign
from nudgeflow.errors import NotFoundError, NudgeflowError
from providers.file_outbox import to_mime
from store.schema import members, profiles

PREVIEW_ACTION = "preview"


def _campaign(campaigns: tuple[Campaign, ...], campaign_id: str) -> Campaign:
    for campaign in campaigns:
        if campaign.id == campaign_id:
            return campaign
    known = [c.id for c in campaigns]
    close = difflib.get_close_matches(campaign_id, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise NotFoundError(f"no campaign with id {campaign_id!r}{hint}")


def _member(connection: Connection, member_id: str) -> dict[str, Any]:
    row = (
        connection.execute(
            select(
                members.c.member_id,
                members.c.email,
                members.c.first_name,
                members.c.last_name,
                members.c.country,
                members.c.timezone,
                members.c.attributes,
                profiles.c.stage,
                profiles.c.score,
            )
            .select_from(members.outerjoin(profiles, profiles.c.member_pk == members.c.id))
            .where(members.c.member_id == member_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(f"no member with member_id {member_id!r}")
    return dict(row)


def _file_stem(campaign_id: str, member_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{campaign_id}.{member_id}")


def preview(
    campaign_id: str = typer.Argument(..., metavar="CAMPAIGN_ID", help="The campaign id."),
    member_id: str | None = typer.Option(
        None, "--member", metavar="MEMBER_ID", help="Render for this member."
    ),
    sample: bool = typer.Option(False, "--sample", help="Render for a sample member instead."),
    out: Path = typer.Option(
        Path("var/preview"), "--out", metavar="DIR", help="Directory for the files."
    ),
    open_browser: bool = typer.Option(False, "--open", help="Open the HTML in a browser."),
    as_of: AsOf = None,
) -> None:
    """Render a campaign's email for a member (or a sample one) as it would go out on the
    night --as-of: HTML, text and headers."""
    if (member_id is None) == (not sample):
        raise typer.BadParameter("give either --member ID or --sample", param_hint="--member")
    app = process_app()
    settings = app.settings
    warning = app.signing_key_warning()
    if warning is not None:
        err_console.print(warning, markup=False, soft_wrap=True)
    night = default_as_of(as_of, app)
    found = app.load_campaigns()
    campaign = _campaign(found.campaigns, campaign_id)
    base_url = settings.public_base_url
    example = sample_context(campaign, night, base_url.rstrip("/"))
    if member_id is not None:
        with app.engine.connect() as connection:
            member = _member(connection, member_id)
    else:
        member = dict(example["member"])
    context = member_email_context(
        member=member,
        campaign=campaign,
        reward=example["reward"],  # a real reward is issued by the nightly run
        now=night,
        base_url=base_url,
        signing_key=settings.signing_key,
    )
    rendered = EmailRenderer(settings.templates_dir).render_campaign(campaign, context)
    now = app.clock()
    message = build_message(
        rendered=rendered,
        action_id=PREVIEW_ACTION,
        campaign_id=campaign.id,
        member_id=str(member["member_id"]),
        as_of=night,
        to_email=str(member["email"]),
        to_name=display_name(member.get("first_name"), member.get("last_name")),
        from_address=settings.email.from_address,
        unsubscribe_url=context["links"]["unsubscribe"],
        send_at=send_at_for(
            SendWindow.from_policy(found.policy), now, member.get("timezone"), settings.zone
        ),
    )
    mime = to_mime(message, now)
    stem = _file_stem(campaign.id, str(member["member_id"]))
    html_path = out / f"{stem}.html"
    text_path = out / f"{stem}.txt"
    headers_path = out / f"{stem}.headers"
    lines = [f"{name}: {value}" for name, value in mime.items() if name != "Content-Type"]
    if campaign.reward is not None:
        lines.append("X-Nudgeflow-Preview: the reward shown is a sample")
    try:
        out.mkdir(parents=True, exist_ok=True)
        html_path.write_text(message.html, encoding="utf-8")
        text_path.write_text(message.text, encoding="utf-8")
        headers_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        where = exc.filename or out
        raise NudgeflowError(f"--out: cannot write {where}: {exc.strerror or exc}") from None
    console.print(f"subject: {message.subject}", markup=False)
    for path in (html_path, text_path, headers_path):
        console.print(f"wrote {path}", markup=False)
    if open_browser:
        webbrowser.open(html_path.resolve().as_uri())


def unsubscribe(
    token: str = typer.Argument(
        ..., metavar="TOKEN", help="The token from an unsubscribe link (or the link)."
    ),
) -> None:
    """Apply an unsubscribe token: the member is never emailed again."""
    app = process_app()
    warning = app.signing_key_warning()
    if warning is not None:
        err_console.print(warning, markup=False, soft_wrap=True)
    parsed = read_unsubscribe_token(token, app.settings.signing_key)
    with app.engine.begin() as connection:
        outcome = apply_unsubscribe(connection, parsed, at=app.clock(), source="cli")
    if outcome.already:
        console.print(f"member {outcome.member_id} was already unsubscribed", markup=False)
    else:
        console.print(
            f"unsubscribed member {outcome.member_id} (from campaign {outcome.campaign_id})",
            markup=False,
        )
