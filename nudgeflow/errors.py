"""The one exception tree of nudgeflow.

::

    NudgeflowError                      anything nudgeflow raises on purpose
    ├── SettingsError                   a bad NUDGEFLOW_* variable or .env line
    ├── CampaignFileError               a bad campaign, lifecycle or policy file (all problems)
    ├── ImportFileError                 an import file that cannot be read (encoding, columns)
    ├── StoreError                      the database is unreachable or not migrated
    ├── NotFoundError                   a member, campaign or run that does not exist
    ├── DeliveryError                   email rendering or sending failed
    └── RewardError                     a reward could not be issued

User errors (settings, files, rows, unknown ids) are reported by the CLI as one line per
problem with a non-zero exit; they never print a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class NudgeflowError(Exception):
    """Base class: the CLI turns these into one-line messages and an exit code."""

    exit_code = 2


class SettingsError(NudgeflowError):
    """A setting has a value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class FileProblem:
    """One problem in a user file, located as precisely as we can."""

    path: str
    line: int
    column: int
    key: str
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        key = f" {self.key}:" if self.key else ""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}:{key} {prefix}{self.message}"


class CampaignFileError(NudgeflowError):
    """One or more problems in the marketer-owned files; ``problems`` lists them all."""

    exit_code = 1

    def __init__(self, problems: list[FileProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ImportFileError(NudgeflowError):
    """The import file cannot be read at all (not UTF-8, wrong columns, unknown format)."""


class StoreError(NudgeflowError):
    """The database cannot be used (unreachable, wrong schema, bad URL)."""


class NotFoundError(NudgeflowError):
    """A member, campaign or run named by the user does not exist."""

    exit_code = 1


class DeliveryError(NudgeflowError):
    """An email could not be rendered or sent."""


class RewardError(NudgeflowError):
    """A reward could not be issued."""
