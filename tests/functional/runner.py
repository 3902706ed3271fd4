"""How functional tests run ``nudgeflow``: the real console script in a child process, as a
user would, with one set of settings (``functional_env``) that keeps the developer's own
settings out and puts everything the command writes under the test's temporary folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIGNING_KEY = "functional-test-key"


def find_script() -> str:
    """The console script installed beside the interpreter running the tests, else PATH's."""
    beside = Path(sys.executable).parent / "nudgeflow"
    if beside.exists():
        return str(beside)
    found = shutil.which("nudgeflow")
    if found is None:
        raise RuntimeError("no nudgeflow console script: run `pip install -e '.[dev]'` first")
    return found


SCRIPT = find_script()


# Children start with SIGINT at its default, as from a terminal, so a test's Ctrl-C reaches
# them even when the tests themselves were started in the background: a shell without job
# control (as CI may be) starts background jobs with SIGINT ignored, and an ignored signal
# stays ignored across exec, while a handled one is reset to its default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def functional_env(home: Path) -> dict[str, str]:
    """The environment of every functional test's ``nudgeflow``.

    The test process's variables pass through (PATH, HOME, locale…) except every
    ``NUDGEFLOW_*`` and ``PREFECT_*`` one, so a developer's settings, Prefect profile or
    server never leak in. This checkout comes first on ``PYTHONPATH``, so the script runs the
    code under test even when the virtualenv was installed from another worktree. Then:

    - the database is ``home/nudgeflow.db`` (SQLite), the outbox ``home/outbox``;
    - campaigns and email templates are the shipped ones (``campaigns/``,
      ``templates/email/``), the business time zone is UTC;
    - links are signed with ``SIGNING_KEY`` and point at ``https://shop.example``, emails come
      from ``Shop <hello@shop.example>``;
    - Prefect keeps its home in ``home/prefect``, sends no analytics and no logs to the API,
      and has no ``PREFECT_API_URL`` (``nudgeflow run`` starts a temporary server unless a
      test passes the session's, ``prefect_api_url``);
    - Rich tables are 200 columns wide.
    """
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("NUDGEFLOW_", "PREFECT_"))
    }
    paths = [str(ROOT), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return inherited | {
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(path for path in paths if path)),
        "NUDGEFLOW_DATABASE_URL": f"sqlite:///{home / 'nudgeflow.db'}",
        "NUDGEFLOW_CAMPAIGNS_DIR": str(ROOT / "campaigns"),
        "NUDGEFLOW_TEMPLATES_DIR": str(ROOT / "templates" / "email"),
        "NUDGEFLOW_TIMEZONE": "UTC",
        "NUDGEFLOW_SIGNING_KEY": SIGNING_KEY,
        "NUDGEFLOW_PUBLIC_BASE_URL": "https://shop.example",
        "NUDGEFLOW_EMAIL__FROM_ADDRESS": "Shop <hello@shop.example>",
        "NUDGEFLOW_EMAIL__OUTBOX_DIR": str(home / "outbox"),
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "COLUMNS": "200",
    }


@dataclass(frozen=True)
class Nudgeflow:
    """The ``nudgeflow`` console script run in ``cwd`` with ``env``: call it with a
    command's arguments, as ``nudgeflow("members", "import", "members.csv")``."""

    cwd: Path
    env: Mapping[str, str]
    timeout: float = 120

    def configure(
        self, *, cwd: Path | None = None, timeout: float | None = None, **env: str
    ) -> Nudgeflow:
        """A copy that runs in ``cwd``, waits up to ``timeout`` seconds, with ``env`` added
        to (or replacing) its settings."""
        return Nudgeflow(
            cwd if cwd is not None else self.cwd,
            {**self.env, **env},
            timeout if timeout is not None else self.timeout,
        )

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run ``nudgeflow ARGS`` to its end and capture stdout and stderr as text; ``env``
        adds settings for this run only. A non-zero exit is returned, not raised."""
        return subprocess.run(
            [SCRIPT, *args],
            cwd=self.cwd,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
        )

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        """Start ``nudgeflow ARGS`` without waiting; stdout and stderr are text pipes."""
        return subprocess.Popen(
            [SCRIPT, *args],
            cwd=self.cwd,
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
