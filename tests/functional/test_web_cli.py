"""``nudgeflow web`` as an operator runs it: it serves /healthz and the one-click unsubscribe
until Ctrl-C, and a bad setting or a port in use is one line naming the setting."""

from __future__ import annotations

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

from delivery.tokens import make_unsubscribe_token
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
