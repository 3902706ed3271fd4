"""``nudgeflow members consent``: a member's email consent and why, and the one explicit way
to give withdrawn consent back (``--restore``). An import never restores it
(``store.consent``)."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Annotated, Any

import typer

from cli.context import console, process_app
from store.consent import OPTED_OUT, Consent, restore_consent
from store.consent import consent_of as read_consent

_WHAT = {
    "unsubscribed": "unsubscribed",
    "email_bounced": "an email bounced",
    "email_spam_report": "reported an email as spam",
}


def _stamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _withdrawn(state: Consent) -> str:
    """Why consent is withdrawn, in words."""
    if state.withdrawal is not None:
        kind, at = state.withdrawal
        return f"{_WHAT.get(kind, kind)} on {_stamp(at)}"
    return "email_opt_in is false"


def _account() -> str:
    """The account running the command, recorded as who restored consent by default."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):  # no pwd (Windows), or a uid without an entry
        return "unknown"


def _document(state: Consent) -> dict[str, Any]:
    restored = state.restored
    return {
        "member_id": state.member_id,
        "consent": "given" if state.given else "withdrawn",
        "withdrawn_by": state.withdrawn_by,
        "withdrawn_at": None if state.withdrawal is None else state.withdrawal[1].isoformat(),
        "email_opt_in": state.opted_in,
        "last_restore": None
        if restored is None
        else {
            "at": restored.at.isoformat(),
            "by": restored.by,
            "reason": restored.reason,
            "source": restored.source,
        },
    }


def consent(
    member_id: Annotated[str, typer.Argument(metavar="MEMBER_ID", help="The member's member_id.")],
    restore: bool = typer.Option(
        False,
        "--restore",
        help="Give the member their email consent back, only because they asked for it "
        "(needs --reason). Recorded as a consent_restored event.",
    ),
    reason: str | None = typer.Option(
        None,
        "--reason",
        metavar="TEXT",
        help="Why consent is restored (recorded), e.g. the member's request.",
    ),
    by: str | None = typer.Option(
        None,
        "--by",
        metavar="NAME",
        help="Who restores it (recorded). Default: the account running this.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show whether a member may be emailed and why; with --restore, give withdrawn consent
    back. Imports never restore consent that an unsubscribe, a bounce, a spam report or an
    email_opt_in=false withdrew: only this command (or, later, the member's preference
    centre) does, and it records who and why."""
    if not restore and (reason is not None or by is not None):
        raise typer.BadParameter("--reason and --by go with --restore", param_hint="--restore")
    if restore and not (reason or "").strip():
        raise typer.BadParameter(
            "--restore needs --reason: say why (the member's request), it is recorded",
            param_hint="--reason",
        )
    if by is not None and not by.strip():
        raise typer.BadParameter("--by is empty", param_hint="--by")
    app = process_app()
    if not restore:
        with app.engine.connect() as connection:
            state = read_consent(connection, member_id)
        _show(state, as_json)
        return
    assert reason is not None
    with app.engine.begin() as connection:
        before, restored = restore_consent(
            connection,
            member_id,
            at=app.clock(),
            by=by or _account(),
            reason=reason,
            source="cli",
        )
        after = read_consent(connection, member_id)
    if as_json:
        document = _document(after) | {"restored": restored}
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
    elif not restored:
        console.print(f"{member_id}: consent is given; nothing to restore", markup=False)
    else:
        assert after.restored is not None
        console.print(
            f"{member_id}: consent restored (it was withdrawn: {_withdrawn(before)}); "
            f"recorded as restored by {after.restored.by}: {after.restored.reason}",
            markup=False,
            soft_wrap=True,
        )


def _show(state: Consent, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_document(state), indent=2, ensure_ascii=False))
        return
    if state.given:
        console.print(f"{state.member_id}: consent given", markup=False)
    else:
        console.print(
            f"{state.member_id}: consent withdrawn: {_withdrawn(state)}",
            markup=False,
            soft_wrap=True,
        )
        if state.withdrawn_by != OPTED_OUT and not state.opted_in:
            console.print("  and email_opt_in is false", markup=False)
    if state.restored is not None:
        restored = state.restored
        console.print(
            f"  last restored on {_stamp(restored.at)} by {restored.by} "
            f"({restored.source}): {restored.reason}",
            markup=False,
            soft_wrap=True,
        )
    if not state.given:
        console.print(
            f"  only if the member asked for it: nudgeflow members consent {state.member_id} "
            "--restore --reason TEXT",
            markup=False,
            soft_wrap=True,
        )
