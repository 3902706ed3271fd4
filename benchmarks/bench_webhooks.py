"""Webhook intake: SendGrid events accepted per second on loopback, against a bare baseline.

    python benchmarks/bench_webhooks.py [--duration 15] [--rounds 3] [--connections 8]
                                        [--workdir DIR] [--database-url URL]

``nudgeflow web`` serves a database of N members with one sent action each, and ``wrk``
(``apt-get install wrk``), a real load generator in its own process, posts correctly
signed SendGrid Event Webhook requests to it: single events, then batches of 100 events
(singles first, so that no backlog of batches is being worked meanwhile). Every request body
the prepared bodies run out; then they are posted again, which is SendGrid redelivering.
In the same run, the same uvicorn serves a bare Starlette handler that reads the body and
answers 200: the single-event figure is quoted as a ratio to it, in requests per second and
in the server process's CPU time per request (threads included), which is what the ratio
would be on a machine where nothing else competes for the cores. Single events run in
``--rounds`` rounds, each the bare handler then nudgeflow, each round with bodies of its
own, and the figures are the medians of the rounds' ratios (a shared machine's speed drifts
from minute to minute). Before each bare round the service's inbox is worked to the end,
so its worker takes nothing from the bare handler; nudgeflow's CPU in a round is counted
until its worker has worked the round's requests.

Afterwards the inbox is verified: every request answered 2xx is a stored inbox row (nothing
lost), and once the service's worker has worked the inbox, every distinct ``sg_event_id``
in the stored requests is exactly one member event (nothing doubled). The targets (issue
#12): ≥ 1,000 events/s in batches of 100, and single events at ≥ 50 % of the bare
baseline's requests/s.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BIN = Path(sys.executable).parent
CAMPAIGN = "bench-campaign"
KINDS = ("delivered", "open", "click")
BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route


async def hook(request):
    await request.body()
    return Response(status_code=200)


async def healthz(request):
    return Response(status_code=200)


app = Starlette(
    routes=[
        Route("/webhooks/sendgrid", hook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
)
"""
BARE_SERVE = """
import sys, uvicorn
sys.path.insert(0, sys.argv[2])
from bare import app
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info",
            proxy_headers=True, server_header=False)
"""
# wrk posts the prepared requests in turn: one per line, "signature<TAB>timestamp<TAB>body".
WRK_SCRIPT = """
local requests = {}
for line in io.lines("%(file)s") do
  local signature, timestamp, body = line:match("^([^\\t]*)\\t([^\\t]*)\\t(.*)$")
  requests[#requests + 1] = wrk.format("POST", "/webhooks/sendgrid", {
    ["Host"] = "127.0.0.1",
    ["Content-Type"] = "application/json",
    ["X-Twilio-Email-Event-Webhook-Signature"] = signature,
    ["X-Twilio-Email-Event-Webhook-Timestamp"] = timestamp,
  }, body)
end
local n = 0
request = function()
  n = n + 1
  return requests[(n - 1) %% #requests + 1]
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(url: str, members: int) -> list[str]:
    """N members with one sent action each; returns the action ids."""
    from datetime import date

    import sqlalchemy as sa

    from store.engine import create_store_engine
    from store.migrate import upgrade
    from store.schema import actions
    from store.schema import members as members_table

    engine = create_store_engine(url)
    upgrade(engine)
    now = datetime(2026, 11, 20)
    ids = [f"{n:032x}" for n in range(members)]
    with engine.begin() as connection:
        connection.execute(
            sa.insert(members_table),
            [
                {
                    "id": n + 1,
                    "member_id": f"b{n:07d}",
                    "email": f"member{n}@example.com",
                    "first_name": "Ada",
                    "timezone": "Europe/Paris",
                    "email_opt_in": True,
                    "attributes": {},
                    "row_hash": "x",
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(members)
            ],
        )
        connection.execute(
            sa.insert(actions),
            [
                {
                    "action_id": action_id,
                    "campaign_id": CAMPAIGN,
                    "member_pk": n + 1,
                    "occurrence": "2026-11-20",
                    "as_of": date(2026, 11, 20),
                    "state": "sent",
                    "holdout": False,
                    "template": "tenure_courtesy_discount",
                    "cost_minor": 0,
                    "currency": "USD",
                    "response_types": ["email_clicked"],
                    "response_from": 0,
                    "response_until": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, action_id in enumerate(ids)
            ],
        )
    engine.dispose()
    return ids


def signed_requests(
    key: ec.EllipticCurvePrivateKey, action_ids: list[str], count: int, per_body: int, tag: str
) -> list[str]:
    """``count`` signed request lines, each a JSON array of ``per_body`` distinct events."""
    timestamp = str(int(time.time()))
    lines = []
    serial = 0
    for _ in range(count):
        events = []
        for _ in range(per_body):
            action_id = action_ids[serial % len(action_ids)]
            kind = KINDS[serial % len(KINDS)]
            event: dict[str, Any] = {
                "email": "member@example.com",
                "timestamp": int(timestamp) - 60,
                "event": kind,
                "sg_event_id": f"{tag}-{serial}",
                "sg_message_id": f"msg-{serial}",
                "action_id": action_id,
                "campaign_id": CAMPAIGN,
            }
            if kind == "click":
                event["url"] = "https://example.com/shop"
            events.append(event)
            serial += 1
        body = json.dumps(events, separators=(",", ":"))
        signature = key.sign((timestamp + body).encode(), ec.ECDSA(hashes.SHA256()))
        lines.append(f"{base64.b64encode(signature).decode()}\t{timestamp}\t{body}")
    return lines


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int, log: Path) -> Any:
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            # Ready when /healthz answers: the socket may accept connections before the
            # application has finished starting (imports, migrations), whose CPU time
            # must not be counted as the requests'.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    with urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    if process.poll() is not None:
                        raise SystemExit(f"the server stopped: see {log}") from None
                    time.sleep(0.2)
            yield process
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far (Linux ``/proc``) of a process, its threads and its
    live child processes (``nudgeflow web``'s inbox worker runs in one)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(proc.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_wrk(
    name: str,
    port: int,
    lines: list[str],
    workdir: Path,
    args: argparse.Namespace,
    server: subprocess.Popen[bytes],
    settled: Any = None,
) -> dict[str, float]:
    """One wrk run; the server's CPU is counted until ``settled()`` returns, if given (the
    inbox worked to the end), else until wrk stops."""
    data = workdir / f"requests-{name}.txt"
    data.write_text("\n".join(lines) + "\n")
    script = workdir / f"post-{name}.lua"
    script.write_text(WRK_SCRIPT % {"file": data})
    cpu_before = cpu_seconds(server.pid)
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{args.connections}",
            f"-d{args.duration}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/webhooks/sendgrid",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if settled is not None:
        settled()
    cpu = cpu_seconds(server.pid) - cpu_before
    done = re.search(r"(\d+) requests in ([\d.]+)s", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    assert done and rate, output
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "requests": float(done.group(1)),
        "seconds": float(done.group(2)),
        "requests_per_second": float(rate.group(1)),
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "cpu_us_per_request": cpu / max(float(done.group(1)), 1.0) * 1e6,
    }


def drained(url: str, timeout: float = 120.0, poll: float = 0.25) -> None:
    """Wait until the inbox has no pending row and has stopped growing (requests in flight
    when wrk stopped are still being stored)."""
    import sqlalchemy as sa

    from store.engine import create_store_engine

    engine = create_store_engine(url)
    started = time.monotonic()
    seen = -1
    with engine.connect() as connection:
        while time.monotonic() - started < timeout:
            rows, pending = connection.execute(
                sa.text("SELECT count(*), count(*) FILTER (WHERE state = 'pending') FROM inbox")
            ).one()
            connection.rollback()
            if pending == 0 and rows == seen:
                break
            seen = rows
            time.sleep(poll)
    engine.dispose()


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def verify(url: str, answered: float, timeout: float = 120.0) -> dict[str, float]:
    """Wait for the worker to finish the inbox, then check it against the events."""
    import sqlalchemy as sa

    from store.engine import create_store_engine

    started = time.monotonic()
    drained(url, timeout, poll=1.0)
    waited = time.monotonic() - started
    engine = create_store_engine(url)
    with engine.connect() as connection:
        stored = connection.execute(
            sa.text("SELECT count(*) FROM inbox WHERE kind = 'sendgrid'")
        ).scalar_one()
        failed = connection.execute(
            sa.text("SELECT count(*) FROM inbox WHERE state <> 'done'")
        ).scalar_one()
        sent_ids: set[str] = set()
        for (body,) in connection.execute(
            sa.text("SELECT body FROM inbox WHERE kind = 'sendgrid'")
        ):
            sent_ids.update(event["sg_event_id"] for event in json.loads(body))
        recorded = connection.execute(
            sa.text("SELECT count(*) FROM events WHERE event_id LIKE 'sendgrid:%'")
        ).scalar_one()
    engine.dispose()
    return {
        "inbox_rows": float(stored),
        "answered_2xx": answered,
        "not_done": float(failed),
        "distinct_events_sent": float(len(sent_ids)),
        "events_recorded": float(recorded),
        "drain_seconds": waited,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of single events")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--database-url", default=None, help="default: SQLite in the workdir")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk, the HTTP load generator: apt-get install wrk")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nudgeflow_bench_web_"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    action_ids = prepare(url, args.members)

    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    env = {
        **os.environ,
        "NUDGEFLOW_DATABASE_URL": url,
        "NUDGEFLOW_SENDGRID__WEBHOOK_PUBLIC_KEY": base64.b64encode(public).decode(),
        "NUDGEFLOW_SIGNING_KEY": "bench-only-not-a-secret",
        "NUDGEFLOW_CAMPAIGNS_DIR": str(ROOT / "campaigns"),
        "NUDGEFLOW_TEMPLATES_DIR": str(ROOT / "templates" / "email"),
    }
    # Enough distinct bodies for a round at several thousand requests/s; wrk then repeats
    # them (SendGrid redelivering).
    per_round = max(10_000, args.duration * 8_000)
    batches = signed_requests(key, action_ids, 2_000, 100, "batch")
    singles = signed_requests(key, action_ids, per_round * args.rounds, 1, "single")
    (workdir / "bare.py").write_text(BARE_APP)

    figures: dict[str, float] = {}
    bare_port, port = free_port(), free_port()
    bare = [sys.executable, "-c", BARE_SERVE, str(bare_port), str(workdir)]
    web = [str(BIN / "nudgeflow"), "web", "--port", str(port)]
    rounds: list[tuple[dict[str, float], dict[str, float]]] = []
    with (
        serving(bare, env, bare_port, workdir / "bare.log") as bare_server,
        serving(web, env | {"PYTHONUNBUFFERED": "1"}, port, workdir / "web.log") as server,
    ):
        for number in range(args.rounds):
            bodies = singles[number * per_round : (number + 1) * per_round]
            drained(url)
            alone = run_wrk(f"bare-{number}", bare_port, bodies, workdir, args, bare_server)
            ours = run_wrk(
                f"single-{number}", port, bodies, workdir, args, server, lambda: drained(url)
            )
            rounds.append((alone, ours))
            print(
                f"round {number + 1}: bare {alone['requests_per_second']:,.0f} req/s "
                f"({alone['cpu_us_per_request']:,.0f} µs CPU each), nudgeflow "
                f"{ours['requests_per_second']:,.0f} req/s "
                f"({ours['cpu_us_per_request']:,.0f} µs CPU each, its worker's included)",
                flush=True,
            )
        batch = run_wrk("batch", port, batches, workdir, args, server)
        answered = batch["requests"] - batch["non_2xx"]
        answered += sum(ours["requests"] - ours["non_2xx"] for _, ours in rounds)
        checked = verify(url, answered)

    def middle(side: int, name: str) -> float:
        return median([pair[side][name] for pair in rounds])

    figures["bare_single_requests_per_second"] = middle(0, "requests_per_second")
    figures["batch_requests_per_second"] = batch["requests_per_second"]
    figures["batch_events_per_second"] = batch["requests_per_second"] * 100
    figures["batch_p99_ms"] = batch["p99_ms"]
    figures["single_requests_per_second"] = middle(1, "requests_per_second")
    figures["single_p99_ms"] = middle(1, "p99_ms")
    figures["single_over_bare"] = median(
        [
            ours["requests_per_second"] / max(alone["requests_per_second"], 1e-9)
            for alone, ours in rounds
        ]
    )
    # CPU per request in the server process (its threads included, the worker's work on
    # the round's requests too): what the ratio would be on a machine where nothing else
    # competes for the cores.
    figures["bare_cpu_us_per_request"] = middle(0, "cpu_us_per_request")
    figures["single_cpu_us_per_request"] = middle(1, "cpu_us_per_request")
    figures["batch_cpu_us_per_event"] = batch["cpu_us_per_request"] / 100
    figures["single_cpu_ratio"] = median(
        [
            alone["cpu_us_per_request"] / max(ours["cpu_us_per_request"], 1e-9)
            for alone, ours in rounds
        ]
    )
    figures["non_2xx"] = batch["non_2xx"] + sum(
        alone["non_2xx"] + ours["non_2xx"] for alone, ours in rounds
    )
    figures.update(checked)
    for name, value in figures.items():
        print(f"{name}: {value:,.3f}")
    lost = checked["inbox_rows"] < answered
    doubled = checked["events_recorded"] != checked["distinct_events_sent"]
    print(f"nothing lost: {not lost}; nothing doubled: {not doubled}")
    if lost or doubled or checked["not_done"]:
        raise SystemExit("the inbox does not match what was answered")


if __name__ == "__main__":
    main()
