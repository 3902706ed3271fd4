"""Options several commands share, defined once so that they read and behave the same
everywhere: the business date ``--as-of``, and the other dates (``--from``, ``--to``,
``--end``).

Every date is a ``DATE`` written YYYY-MM-DD, from 1970-01-01 to a year from today
(``nudgeflow.timeutil.check_business_date``); anything else is one line, ``error: --as-of:
…``, and exit status 2, whichever command it was given to. Where ``--as-of`` may be left
out and a night is meant, it means the same night everywhere: the previous business day, the
one ``nudgeflow run`` would work on now (``default_as_of``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

import typer

from bootstrap.app import App
from nudgeflow.errors import NudgeflowError
from nudgeflow.timeutil import check_business_date, previous_business_day, system_clock

DATE_METAVAR = "DATE"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
AS_OF_HELP = "Business date, YYYY-MM-DD, from 1970-01-01 to a year from today"
AS_OF_DEFAULT = "default: the previous business day, the night nudgeflow run works on"


def parse_date(option: str, text: str, today: date) -> date:
    """``text`` as a date in the accepted range, or ``NudgeflowError`` naming ``option``."""
    expected = f"{option}: expected a date as YYYY-MM-DD, got {text!r}"
    if not _ISO_DATE.fullmatch(text.strip()):  # fromisoformat also takes 20261121, 2026-W47
        raise NudgeflowError(expected)
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise NudgeflowError(f"{expected} (no such day)") from None
    try:
        return check_business_date(day, today)
    except ValueError as exc:
        raise NudgeflowError(f"{option}: {exc}") from None


def _date_parser(option: str) -> Callable[[str], date]:
    def parse(text: str) -> date:
        # An entry point may read the clock: the range only needs today's date, in UTC.
        return parse_date(option, text, system_clock().date())

    return parse


def date_option(option: str, help: str) -> Any:
    """A ``DATE`` option parsed and range-checked like every other date of the CLI, for
    ``Annotated[date | None, date_option(...)]`` (the default goes after the ``=``)."""
    return typer.Option(
        option, metavar=DATE_METAVAR, parser=_date_parser(option), help=help, show_default=False
    )


def _as_of(tail: str) -> Any:
    return date_option("--as-of", f"{AS_OF_HELP}{tail}.")


# --as-of, three ways: with the shared default night, required, or as a filter.
AsOf = Annotated[date | None, _as_of(f"; {AS_OF_DEFAULT}")]
RequiredAsOf = Annotated[date, _as_of("")]
AsOfFilter = Annotated[date | None, _as_of(": only the actions planned for that night")]


def default_as_of(as_of: date | None, app: App) -> date:
    """``as_of``, or the previous business day in the business time zone."""
    return as_of if as_of is not None else previous_business_day(app.clock(), app.zone)
