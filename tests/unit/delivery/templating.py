"""A one-email template folder and a render context, shared by the delivery unit tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path

LAYOUT_HTML = (
    "<html><head><style>p { color: red }</style></head><body>"
    "{% block content %}{% endblock %}"
    '<a href="{{ links.unsubscribe }}">Unsubscribe</a></body></html>\n'
)
LAYOUT_TEXT = "{% block content %}{% endblock %}\nUnsubscribe: {{ links.unsubscribe }}\n"


def write_templates(
    folder: Path,
    html: str,
    text: str = "Hi {{ member.first_name }}\n",
    layout_html: str = LAYOUT_HTML,
) -> Path:
    """``hello.html.j2`` and ``hello.txt.j2`` extending the shared layouts, in ``folder``."""
    (folder / "_layout.html.j2").write_text(layout_html)
    (folder / "_layout.txt.j2").write_text(LAYOUT_TEXT)
    (folder / "hello.html.j2").write_text(
        '{% extends "_layout.html.j2" %}{% block content %}' + html + "{% endblock %}"
    )
    (folder / "hello.txt.j2").write_text(
        '{% extends "_layout.txt.j2" %}{% block content %}' + text + "{% endblock %}"
    )
    return folder


def render_context(**member: object) -> dict[str, object]:
    return {
        "member": {"first_name": "Ada", "last_name": "L", "email": "ada@example.com", **member},
        "campaign": {"id": "hello", "name": "Hello"},
        "reward": None,
        "links": {"unsubscribe": "https://x.test/u/1", "preferences": "https://x.test/p/1"},
        "now": date(2026, 11, 21),
    }
