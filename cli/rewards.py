"""``nudgeflow gifts`` (fulfilment export and shipping), ``nudgeflow stripe sync``
(redemptions and expiry) and ``nudgeflow ledger reconcile`` (our rewards against Stripe)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from cli.context import console, err_console, process_app
from cli.help_format import CommandApp
from night.reconcile import reconcile as compare
from night.rewards import sync_rewards_now
from nudgeflow.errors import NudgeflowError
from nudgeflow.userfiles import not_a_file
from providers.gifts import format_gifts, list_gifts, mark_shipped, read_shipping_file
from store import ledger

gifts_app = CommandApp(
    help="Gift fulfilment: export requests, record shipping.", no_args_is_help=True
)
stripe_app = CommandApp(help="Stripe: redemptions and expiry.", no_args_is_help=True)

STATUSES = ("pending", "shipped", "cancelled", "all")


@gifts_app.command("export")
def export_gifts(
    status: str = typer.Option(
        "pending", "--status", metavar="STATUS", help="pending, shipped, cancelled or all."
    ),
    fmt: str = typer.Option("csv", "--format", metavar="FORMAT", help="csv or json."),
    out: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="Write here instead of stdout."
    ),
) -> None:
    """List gift requests for the team that ships them (one row per gift, with the address)."""
    if status not in STATUSES:
        raise NudgeflowError(f"--status: expected one of {', '.join(STATUSES)}, got {status!r}")
    if fmt not in ("csv", "json"):
        raise NudgeflowError(f"--format: expected csv or json, got {fmt!r}")
    with process_app().engine.connect() as connection:
        rows = list_gifts(connection, None if status == "all" else status)
    text = format_gifts(rows, fmt)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise NudgeflowError(f"--out: cannot write {out}: {exc.strerror}") from None
    err_console.print(f"wrote {len(rows)} gifts to {out}", markup=False)


@gifts_app.command("mark-shipped")
def mark_shipped_command(
    targets: list[str] = typer.Argument(
        ...,
        metavar="FILE_OR_ID",
        help="A CSV file with an id column (and optionally tracking), or gift ids.",
    ),
) -> None:
    """Record gifts as shipped. Running it again changes nothing."""
    shipments: dict[int, str | None] = {}
    for target in targets:
        path = Path(target)
        if path.exists() or path.is_symlink():
            shipments.update(read_shipping_file(_shipping_text(path)))
            continue
        for part in filter(None, re.split(r"[,\s]+", target)):
            if not part.isdigit():
                raise NudgeflowError(f"{part!r} is neither a file nor a gift id")
            shipments.setdefault(int(part), None)
    app = process_app()
    with ledger.ledger_transaction(app.engine) as connection:
        result = mark_shipped(connection, shipments, app.clock())
    console.print(
        f"marked {len(result.shipped)} shipped, {len(result.already)} already shipped",
        markup=False,
    )
    for gift_id in result.cancelled:
        err_console.print(f"gift {gift_id}: cancelled, not shipped", markup=False)
    for gift_id in result.unknown:
        err_console.print(f"gift {gift_id}: no such gift", markup=False)
    if result.unknown or result.cancelled:
        raise typer.Exit(1)


def _shipping_text(path: Path) -> str:
    """The shipping file's text; a directory, a FIFO (which would wait for a writer) or bytes
    that are not UTF-8 are one line each."""
    problem = not_a_file(path)
    if problem is not None:
        raise NudgeflowError(f"{path}: {problem}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NudgeflowError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    except OSError as exc:
        raise NudgeflowError(f"{path}: cannot read: {exc.strerror or exc}") from None


@stripe_app.command("sync")
def sync() -> None:
    """Read Stripe events since the last sync: record redemptions (ledger, reward_redeemed
    events), then expire discounts nobody used in time."""
    app = process_app()
    api = app.stripe_api()
    try:
        synced = sync_rewards_now(app.engine, api, app.zone, now=app.clock())
    finally:
        api.close()
    result = synced.stripe
    console.print(
        f"read {result.events} events: {result.redeemed} redemptions recorded, "
        f"{result.linked} discounts linked; {len(synced.expired)} rewards expired",
        markup=False,
    )
    for problem in synced.problems:
        err_console.print(f"problem: {problem}", markup=False, soft_wrap=True)
    if synced.problems:
        raise typer.Exit(1)


def reconcile() -> None:
    """Compare issued Stripe rewards with Stripe: every reward exists with the same amount
    and customer, and every Stripe object carrying our metadata has a reward and a ledger
    entry. Lists every difference; exit 1 if there is any."""
    app = process_app()
    if app.settings.rewards.provider != "stripe" and app.settings.stripe.api_key is None:
        console.print("rewards are issued locally (no Stripe key): nothing to reconcile")
        return
    api = app.stripe_api()
    try:
        differences = compare(app.engine, api)
    finally:
        api.close()
    if not differences:
        console.print("reconciled: our Stripe rewards and Stripe agree", markup=False)
        return
    for difference in differences:
        console.print(f"difference: {difference}", markup=False, soft_wrap=True)
    err_console.print(f"{len(differences)} differences", markup=False)
    raise typer.Exit(1)
