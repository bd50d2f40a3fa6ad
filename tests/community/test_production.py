"""The production configuration, started the way docs/deploy.md runs it: honcho runs the
Procfile (two uvicorn workers, a Celery worker and one beat) with DEBUG=false on the test
database and Redis, static files collected into a STATIC_ROOT and served by WhiteNoise. Two
newcomers sign up over plain HTTP (allauth's forms, CSRF, the emailed confirmation link), join
a group and talk over the room's WebSocket; then honcho stops every process it started.

Requests carry ``X-Forwarded-Proto: https`` as nginx sends it (deploy/nginx.conf), so the SSL
redirect, secure cookies and HTTPS CSRF checks stay on, as in production.
"""

import asyncio
import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from groups.models import Membership, Message
from tests.servers import RoomSocket, Visitor, free_port
from tests.servers import test_database_url as database_url

ROOT = Path(__file__).resolve().parents[2]
HONCHO = Path(sys.executable).with_name("honcho")
SLUG = "evening-circle"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


# --- Processes --------------------------------------------------------------------------------


def _process_table() -> list[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process on the machine, from /proc."""
    table = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # it ended while we looked
        # The command name (field 2) may hold spaces and parentheses; fields after it don't.
        fields = stat[stat.rindex(")") + 2 :].split()
        table.append((int(entry), int(fields[1]), int(fields[2])))
    return table


def _alive(pid: int) -> bool:
    """Running and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class Honcho:
    """``honcho start`` on the Procfile, in its own session; each Procfile line is a process
    group of its own (honcho starts them so), which is how they are found and stopped."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log = env, log
        self.process: subprocess.Popen | None = None
        self.groups: set[int] = set()  # process groups of the Procfile's lines

    def start(self) -> None:
        empty_env_file = self.log.with_name("honcho.env")
        empty_env_file.touch()  # never pick up a developer's own .env
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [str(HONCHO), "start", "--no-colour", "-f", str(ROOT / "Procfile"),
                 "-d", str(ROOT), "-e", str(empty_env_file)],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def note_children(self) -> None:
        """Remember the process group of every descendant (honcho forks a helper per line,
        which starts that line's command in a new session)."""
        table = _process_table()
        family = {self.process.pid}
        while True:
            more = {pid for pid, ppid, _pgid in table if ppid in family} - family
            if not more:
                break
            family |= more
        self.groups |= {pgid for pid, _ppid, pgid in table if pid in family}

    def survivors(self) -> list[int]:
        """Processes still running in the Procfile's process groups or honcho's own."""
        groups = self.groups | {self.process.pid}
        return [pid for pid, _ppid, pgid in _process_table() if pgid in groups and _alive(pid)]

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM to honcho, as systemd or Ctrl-C would; it passes it on to each process and
        waits for them. Returns honcho's exit status, or None if it did not exit in time."""
        if self.process.poll() is None:
            self.note_children()
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_everything(self) -> None:
        """The safety net for a failed test: SIGKILL each group honcho started, and honcho."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.note_children()
        for pgid in self.groups | {self.process.pid}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


# What nginx adds in front of the application (docs/deploy.md).
HTTPS_PROXY = {"X-Forwarded-Proto": "https"}


# --- The production configuration -------------------------------------------------------------


@pytest.fixture
def production(tmp_path, group):
    """The Procfile under honcho in production mode, answering on ``production.port``."""
    if not HONCHO.exists():
        reason = "honcho is not installed in this environment (it is in the test extras: pip install '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    port = free_port()
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    static_root = tmp_path / "static"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "false",
        "SECRET_KEY": "production-test-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "localhost",
        "STATIC_ROOT": str(static_root),
        "EMAIL_URL": f"filemail:///{outbox}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        # The Procfile says `python`, as a server's PATH (or the systemd units) would give it.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the servers keep Django's async safety
    env.pop("WEB_CONCURRENCY", None)  # the Procfile's default of two workers

    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert collected.returncode == 0, collected.stderr
    assert (static_root / "staticfiles.json").exists()

    from community.celery import app

    app.control.purge()  # tasks other tests left in this run's broker are not this test's
    honcho = Honcho(env, tmp_path / "honcho.log")
    honcho.port, honcho.outbox = port, outbox
    honcho.start()
    try:
        _wait_until_ready(honcho)
        yield honcho
    finally:
        honcho.stop(timeout=15)
        honcho.kill_everything()


def _wait_until_ready(honcho: Honcho, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    visitor = Visitor(honcho.port, scheme="https", proxy=HTTPS_PROXY)
    web = False
    while time.monotonic() < deadline:
        if honcho.process.poll() is not None:
            pytest.fail(f"honcho stopped (exit {honcho.process.returncode}):\n{honcho.output()}")
        if not web:
            with contextlib.suppress(OSError):
                web = visitor.get("/help/")[0] == 200
        log = honcho.output()
        # Celery's own start-up lines: the worker is consuming, beat has started its scheduler.
        worker = re.search(r"worker\.1 +\|.*celery@\S+ ready\.", log)
        beat = re.search(r"beat\.1 +\|.*beat: Starting", log)
        if web and worker and beat:
            honcho.note_children()
            return
        time.sleep(0.2)
    pytest.fail(
        f"the production processes were not all ready within {timeout} s:\n{honcho.output()}"
    )


# --- Members ----------------------------------------------------------------------------------


def _confirmation_path(outbox: Path, email: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for file in outbox.iterdir():
            text = file.read_text(errors="replace")
            if f"To: {email}" in text:
                link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", text).group(0)
                return urlparse(link).path
        time.sleep(0.1)
    raise AssertionError(f"no confirmation email reached {email}")


def sign_up_and_join(production, *, email: str, name: str) -> Visitor:
    """A newcomer's whole way in over HTTP: sign up, confirm the emailed link (which signs them
    in), accept the group's agreement. Returns their signed-in browser."""
    visitor = Visitor(production.port, scheme="https", proxy=HTTPS_PROXY)
    status, headers, _ = visitor.submit(
        "/accounts/signup/",
        {
            "email": email,
            "display_name": name,
            "time_zone": "Europe/Lisbon",
            "password1": "the tide comes in slowly",
            "password2": "the tide comes in slowly",
        },
    )
    assert (status, headers["Location"]) == (302, "/accounts/confirm-email/")

    status, headers, _ = visitor.submit(_confirmation_path(production.outbox, email), {})
    assert status == 302, "confirming the address signs the newcomer in"
    assert "sessionid" in visitor.cookies

    status, _headers, page = visitor.get(f"/groups/{SLUG}/join/")
    assert status == 200
    version = re.search(r'name="agreement_version" value="(\d+)"', page).group(1)
    status, headers, _ = visitor.request(
        "POST",
        f"/groups/{SLUG}/join/",
        {
            "csrfmiddlewaretoken": re.search(
                r'name="csrfmiddlewaretoken" value="([^"]+)"', page
            ).group(1),
            "agreement_version": version,
            "accept": "on",
        },
    )
    assert (status, headers["Location"]) == (302, f"/groups/{SLUG}/")
    return visitor


class Member(RoomSocket):
    """A room tab: resumes from the start on connect, keeps every message and ack it gets."""

    def __init__(self, port: int, session_key: str):
        super().__init__(type("Server", (), {"port": port})(), session_key, SLUG)
        self.messages: list[dict] = []
        self.acks: dict[str, int] = {}
        self.opened = asyncio.Event()

    async def on_open(self, ws) -> None:
        await ws.send(json.dumps({"type": "resume", "after": 0}))
        self.opened.set()

    def on_close(self) -> None:
        self.opened.clear()

    async def handle(self, frame: dict) -> None:
        if frame["type"] == "message":
            self.messages.append(frame)
        elif frame["type"] == "ack":
            self.acks[frame["client_id"]] = frame["seq"]

    async def say(self, body: str) -> str:
        await asyncio.wait_for(self.opened.wait(), 10)
        while self.ws is None:  # set just after on_open returns
            await asyncio.sleep(0.01)
        client_id = str(uuid.uuid4())
        await self.ws.send(json.dumps({"type": "send", "client_id": client_id, "body": body}))
        return client_id


async def _until(condition, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def converse(port: int, first_key: str, second_key: str) -> tuple[list, list]:
    first, second = Member(port, first_key).start(), Member(port, second_key).start()
    try:
        hello = await first.say("Hello, I'm new here. Glad to find this circle.")
        await _until(lambda: hello in first.acks and len(second.messages) == 1)
        reply = await second.say("Welcome. Take your time; listening is fine too.")
        await _until(lambda: reply in second.acks and len(first.messages) == 2)
        await _until(lambda: len(second.messages) == 2)
        return first.messages, second.messages
    finally:
        await first.stop()
        await second.stop()


# --- The test ---------------------------------------------------------------------------------


def test_the_procfile_serves_signup_joining_and_chat_in_production_mode_and_stops_cleanly(
    production, group
):
    # Two uvicorn workers under one supervisor, as the Procfile asks.
    spawned = [
        pid
        for pid, _ppid, pgid in _process_table()
        if pgid in production.groups and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(spawned) == 2, production.output()

    visitor = Visitor(production.port, scheme="https", proxy=HTTPS_PROXY)
    status, headers, page = visitor.get("/")
    assert status == 200
    assert "max-age=" in headers["Strict-Transport-Security"]
    # Static files come from the collected STATIC_ROOT with hashed names (WhiteNoise).
    stylesheet = re.search(r'href="(/static/css/[^"]+\.[0-9a-f]{12}\.css)"', page).group(1)
    status, headers, _ = visitor.get(stylesheet)
    assert status == 200
    assert "immutable" in headers["Cache-Control"]
    # Without the proxy's header a request is sent to HTTPS.
    plain = http.client.HTTPConnection("localhost", production.port, timeout=10)
    plain.request("GET", "/")
    assert plain.getresponse().status == 301
    plain.close()

    brook = sign_up_and_join(production, email="brook@example.test", name="Brook")
    fern = sign_up_and_join(production, email="fern@example.test", name="Fern")
    assert (
        Membership.objects.filter(group=group, user__display_name__in=["Brook", "Fern"]).count()
        == 2
    )

    first_seen, second_seen = asyncio.run(
        converse(production.port, brook.cookies["sessionid"], fern.cookies["sessionid"])
    )
    expected = [
        (1, "Brook", "Hello, I'm new here. Glad to find this circle."),
        (2, "Fern", "Welcome. Take your time; listening is fine too."),
    ]
    for seen in (first_seen, second_seen):
        assert [(m["seq"], m["author"]["name"], m["body"]) for m in seen] == expected
    assert list(
        Message.objects.filter(group=group).order_by("seq").values_list("seq", flat=True)
    ) == [1, 2]

    status = production.stop()
    assert status is not None, "honcho did not stop within 20 s of SIGTERM"
    assert production.survivors() == [], "every process honcho started has ended"
    assert "Traceback" not in production.output(), production.output()
