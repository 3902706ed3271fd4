"""``nudgeflow web`` as an operator runs it: it serves /healthz and the one-click unsubscribe
until Ctrl-C, and a bad setting or a port in use is one line naming the setting."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from delivery.tokens import make_unsubscribe_token
from tests.fakes.sendgrid_api import EventWebhookSigner
from tests.functional.runner import ROOT, SIGNING_KEY, Nudgeflow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_health(base: str, process: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the service exited early: {process.communicate()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the service did not answer /healthz in time")


@contextmanager
def running(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``process``, stopped with SIGINT (Ctrl-C) at the end, or killed if it hangs."""
    with process:  # closes its pipes at the end
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if not line.startswith("warning")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def test_it_serves_the_one_click_unsubscribe_until_ctrl_c(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    (tmp_path / "members.csv").write_text("member_id,email\nm1,ann@example.com\n")
    assert nudgeflow("members", "import", "members.csv").returncode == 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(nudgeflow.start("web", "--port", str(port))) as process:
        wait_for_health(base, process)
        token = make_unsubscribe_token(SIGNING_KEY, "m1", "loyalist-discount")
        answer = httpx.post(
            f"{base}/u/{token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 200
        assert not answer.is_redirect
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert f"serving {base} (Ctrl-C stops)" in stdout
    assert "links in emails point at https://shop.example" in stdout
    assert stdout.splitlines()[-1] == "stopped"
    assert "Traceback" not in stderr
    consent = nudgeflow("members", "consent", "m1")
    assert consent.stdout.startswith("m1: consent withdrawn"), consent.stdout


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"NUDGEFLOW_WEB__PORT": "abc"}, "error: NUDGEFLOW_WEB__PORT: "),
        ({"NUDGEFLOW_WEB__MAX_BODY_BYTES": "10"}, "error: NUDGEFLOW_WEB__MAX_BODY_BYTES: "),
        (
            {"NUDGEFLOW_SENDGRID__WEBHOOK_PUBLIC_KEY": "not-a-key"},
            "error: NUDGEFLOW_SENDGRID__WEBHOOK_PUBLIC_KEY: not a public key",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    nudgeflow: Nudgeflow, env: dict[str, str], named: str
) -> None:
    result = nudgeflow("web", "--port", str(free_port()), **env)
    assert result.returncode == 2
    assert _one_error_line(result).startswith(named)


def test_a_port_in_use_is_one_clear_line(nudgeflow: Nudgeflow) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = nudgeflow("web", "--port", str(port))
    assert result.returncode == 2
    line = _one_error_line(result)
    setting = "error: NUDGEFLOW_WEB__PORT / --port"
    assert line.startswith(f"{setting}: cannot listen on 127.0.0.1:{port}")
    assert "address already in use" in line


def _workers(parent: int) -> list[int]:
    """The inbox worker processes ``parent`` has spawned (multiprocessing's spawn)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in command:
            found.append(int(proc.name))
    return found


def _post_event(base: str, signer: EventWebhookSigner, kind: str) -> None:
    """Post one signed SendGrid event (of an action we do not know: worked, then skipped)."""
    body = json.dumps([signer.event(kind, "no-such-action")]).encode()
    headers = {**signer.sign(body, int(time.time())), "content-type": "application/json"}
    answer = httpx.post(f"{base}/webhooks/sendgrid", content=body, headers=headers)
    assert answer.status_code == 200, answer.text


def _inbox_states(db: Path) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text("SELECT state FROM inbox")).scalars())
    finally:
        engine.dispose()


def _posted_and_worked(base: str, signer: EventWebhookSigner, db: Path, kind: str) -> None:
    """Post one signed SendGrid event; wait until its inbox row is worked (done)."""
    _post_event(base, signer, kind)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        states = _inbox_states(db)
        if states and set(states) == {"done"}:
            return
        time.sleep(0.2)
    raise AssertionError(f"the inbox was not worked within 15 s: {states}")


@contextmanager
def _hooks_service(
    nudgeflow: Nudgeflow,
) -> Iterator[tuple[subprocess.Popen[str], str, EventWebhookSigner]]:
    """``nudgeflow web`` with a SendGrid key, answering: (the process, its URL, the signer)."""
    signer = EventWebhookSigner()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    key = {"NUDGEFLOW_SENDGRID__WEBHOOK_PUBLIC_KEY": signer.public_key}
    with running(nudgeflow.start("web", "--port", str(port), **key)) as process:
        wait_for_health(base, process)
        yield process, base, signer


def test_its_inbox_worker_is_a_process_of_its_own_that_comes_back(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    with _hooks_service(nudgeflow) as (process, base, signer):
        first = _workers(process.pid)
        assert len(first) == 1, first
        _posted_and_worked(base, signer, tmp_path / "nudgeflow.db", "open")
        # The worker dies: the service starts another, which works what comes next.
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _workers(process.pid) in ([], first):
            time.sleep(0.2)
        second = _workers(process.pid)
        assert len(second) == 1 and second != first, second
        _posted_and_worked(base, signer, tmp_path / "nudgeflow.db", "click")
        process.send_signal(signal.SIGINT)  # Ctrl-C: the service stops its worker, then itself
        stdout, stderr = process.communicate(timeout=40)
    assert process.returncode == 0, stderr
    assert stdout.splitlines()[-1] == "stopped"
    assert "the inbox worker process exited" in stderr
    assert "Traceback" not in stderr
    assert not _alive(second[0])


def test_sigterm_to_both_processes_works_the_last_request_then_stops(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    # systemd stops a service by sending SIGTERM to every process of it at once.
    db = tmp_path / "nudgeflow.db"
    with _hooks_service(nudgeflow) as (process, base, signer):
        (worker,) = _workers(process.pid)
        _posted_and_worked(base, signer, db, "open")  # the worker is at work (and set up)
        _post_event(base, signer, "click")
        for pid in (worker, process.pid):
            os.kill(pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=40)
    # uvicorn shuts down gracefully, then ends by the signal it caught, as systemd expects.
    assert process.returncode == -signal.SIGTERM, stderr
    assert "Application shutdown complete." in stderr
    assert "Traceback" not in stderr
    assert not _alive(worker)
    assert _inbox_states(db) == ["done", "done"]  # the last one too: the worker's last pass


def test_its_inbox_worker_stops_when_the_service_is_killed(nudgeflow: Nudgeflow) -> None:
    with _hooks_service(nudgeflow) as (process, _, _):
        (worker,) = _workers(process.pid)
        process.kill()  # no shutdown at all: the worker sees its pipe closed
        process.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(worker):
            time.sleep(0.2)
        assert not _alive(worker), "the worker outlived the service"


def _alive(pid: int) -> bool:
    """``pid`` runs (a zombie waiting for whoever adopted it to reap it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_web_asgi_app_is_servable_by_uvicorn(nudgeflow: Nudgeflow) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "uvicorn", "web.asgi:app", "--port", str(port)]
    process = subprocess.Popen(
        command,
        cwd=nudgeflow.cwd,
        env={**nudgeflow.env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with running(process):
        wait_for_health(base, process)
        page = httpx.get(f"{base}/u/forged")
        assert page.status_code == 400
        assert page.headers["x-frame-options"] == "DENY"
