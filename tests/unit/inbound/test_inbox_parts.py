"""``inbound.inbox.by_size``: the inbox worker's transactions are bounded by the size of the
request bodies, not only by a number of rows."""

from __future__ import annotations

from inbound.inbox import by_size
from store.inbox import InboxRow


def _row(row_id: int, size: int) -> InboxRow:
    return InboxRow(row_id, "sendgrid", 0, "x" * size, 0)


def test_small_rows_share_a_part_up_to_the_limit() -> None:
    rows = [_row(n, 10) for n in range(7)]
    parts = [[row.id for row in part] for part in by_size(rows, 30)]
    assert parts == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_row_over_the_limit_is_a_part_alone_and_order_is_kept() -> None:
    rows = [_row(0, 5), _row(1, 100), _row(2, 5), _row(3, 5)]
    parts = [[row.id for row in part] for part in by_size(rows, 20)]
    assert parts == [[0], [1], [2, 3]]


def test_no_rows_no_parts() -> None:
    assert list(by_size([], 10)) == []
