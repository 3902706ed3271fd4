"""What an import reports: ``ImportResult`` (its counts and the first problems to show) and
``<file>.rejects.csv``, where each rejected row is written with its line and the reason (its
cells neutralised for spreadsheets: ``nudgeflow.spreadsheet``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from nudgeflow.errors import ImportFileError
from nudgeflow.spreadsheet import csv_writer
from store.rows import Kind, RowError, RowProblem

SHOWN_PROBLEMS = 50


@dataclass
class ImportResult:
    """What one import did; ``problems`` keeps the first ``SHOWN_PROBLEMS`` to show."""

    kind: Kind
    path: Path
    import_id: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    warnings: int = 0
    # Rows saying email_opt_in=true for members whose consent is withdrawn: it stays withdrawn.
    consent_kept: int = 0
    # Forgotten members an import with --allow-returning took back (store.importer.forgotten).
    returned: int = 0
    # Forgotten references made with another signing key: they cannot be checked.
    unchecked_forgotten: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    rejects_path: Path | None = None

    @property
    def more_problems(self) -> int:
        return self.rejected + self.warnings - len(self.problems)

    def summary(self) -> str:
        text = f"imported {self.imported}, updated {self.updated}, rejected {self.rejected}"
        text += f"; unchanged {self.unchanged}"
        if self.consent_kept:
            text += (
                f"; consent kept withdrawn for {self.consent_kept} "
                "(rows with email_opt_in=true; an import never restores consent, "
                "see nudgeflow members consent)"
            )
        if self.returned:
            text += f"; {self.returned} forgotten members taken back (--allow-returning)"
        if self.unchecked_forgotten:
            text += (
                f"; {self.unchecked_forgotten} references of forgotten members were made with "
                "another signing key and could not be checked"
            )
        if self.rejects_path is not None:
            text += f"; rejected rows written to {self.rejects_path}"
        return text

    def note(self, problem: RowProblem) -> None:
        if problem.warning:
            self.warnings += 1
        else:
            self.rejected += 1
        if len(self.problems) < SHOWN_PROBLEMS:
            self.problems.append(problem)


class Rejects:
    """``<file>.rejects.csv``, opened on the first reject; a stale one is removed."""

    def __init__(self, source: Path, columns: Sequence[str]) -> None:
        self.path = source.with_name(source.name + ".rejects.csv")
        self.written = False
        self._columns = ["line", "reason", *columns]
        self._file: IO[str] | None = None
        self._writer: Any = None

    def __enter__(self) -> Rejects:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
        elif self.path.exists():
            self.path.unlink()

    def add(self, line: int, reason: str, original: list[str]) -> None:
        if self._writer is None:
            try:
                self._file = self.path.open("w", encoding="utf-8", newline="")
            except OSError as exc:
                raise ImportFileError(f"{self.path}: cannot write: {exc.strerror}") from None
            self._writer = csv_writer(self._file)
            self._writer.writerow(self._columns)
            self.written = True
        self._writer.writerow([line, reason, *original])


def note_bad_rows(
    bad: list[tuple[int, RowError, list[str]]],
    warnings: list[RowProblem],
    rejects: Rejects,
    result: ImportResult,
) -> None:
    """Write a chunk's rejected rows and note its problems, in line order."""
    bad.sort(key=lambda item: item[0])
    path = str(result.path)
    for line, error, original in bad:
        rejects.add(line, str(error), original)
    problems = [RowProblem(path, line, error.field, error.reason) for line, error, _ in bad]
    for problem in sorted(problems + warnings, key=lambda problem: problem.line):
        result.note(problem)
