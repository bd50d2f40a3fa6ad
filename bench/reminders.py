"""10,000 meeting reminders due in the same minute: how long until all are sent, how late, and
how many duplicates (measured here, never asserted in tests).

Builds a throw-away test database (SQLite by default, PostgreSQL with DATABASE_URL): 500 groups of
20 members, one meeting each, starts spread over one minute so each member's 1-hour reminder
falls due in the coming minute; the rows are made by the real ``sync_meeting_reminders``.

Then the real system runs on it, as the Procfile runs it: a ``celery -A community worker``
process (prefork, ``--workers`` processes, DEBUG=false) on the Redis broker, sending email
through Django's file backend into a temporary directory so every delivery can be counted.
This process is beat: from when the first reminder falls due (or the build ends, if later),
every 30 seconds it sends the ``send-due-reminders`` entry of ``CELERY_BEAT_SCHEDULE`` (with its
options), *twice* per tick (two beat processes by mistake).
Whatever those runs queue (emails, batches) goes through the broker to the same worker, as in
production.

Beat stops when all are sent and emailed, or ``--max-seconds`` after the first fell due; the
worker then has until a minute after the last fell due to send the emails it was given.

Prints: the time from the first reminder falling due until the last is sent, lateness
(sent - due) p50 / p99 / max of the reminders (the in-app notification, committed with the
"sent" mark) and of their emails (the claim committed with the send), and duplicates among
notifications and emails.

Run: .venv/bin/python bench/reminders.py [--count 10000] [--workers 2] [--max-seconds S] [--json F]
(bench/run.py runs it as (g), giving up 75 s after the first is due)
"""

from __future__ import annotations

import argparse
import email
import email.policy
import logging
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "community.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test.utils import setup_test_environment, teardown_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

GROUP_SIZE = 20
BEAT_ENTRY = "send-due-reminders"
BEATS = 2  # two beat processes running by mistake: every run is sent twice
# Django's file backend ends each message with this line.
FILE_SEPARATOR = b"\n" + b"-" * 79 + b"\n"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def build(count: int, lead: int = 60) -> tuple[float, float]:
    """Members, groups, meetings and their reminder rows. Returns (first, last) due as epoch."""
    from django.contrib.auth.hashers import make_password

    from community.models import NotificationPreference, User
    from groups.models import Group, Meeting, Membership, Occurrence, Reminder
    from groups.services.reminders import sync_meeting_reminders

    groups = count // GROUP_SIZE
    unusable = make_password(None)  # nobody signs in as these synthetic members
    users = User.objects.bulk_create(
        User(email=f"bench{i}@example.test", display_name=f"Bench {i}", password=unusable)
        for i in range(groups * GROUP_SIZE)
    )
    NotificationPreference.objects.bulk_create(
        NotificationPreference(user=u, reminder_lead_minutes=[lead]) for u in users
    )
    group_rows = Group.objects.bulk_create(
        Group(
            name=f"Bench circle {g}",
            slug=f"bench-{g}",
            topic="relational",
            description="Synthetic.",
            agreement="Synthetic.",
            capacity=GROUP_SIZE,
        )
        for g in range(groups)
    )
    Membership.objects.bulk_create(
        Membership(group=group_rows[i // GROUP_SIZE], user=u, agreement_version=1)
        for i, u in enumerate(users)
    )
    # Due times spread over the coming minute, the first a few seconds from now.
    base = timezone.now() + timedelta(minutes=lead, seconds=5)
    meetings = Meeting.objects.bulk_create(
        Meeting(group=g, title="Bench sitting", starts_at=base, time_zone="Europe/London")
        for g in group_rows
    )
    Occurrence.objects.bulk_create(
        Occurrence(
            meeting=m,
            original_start=base + timedelta(seconds=i * 60 / len(meetings)),
            starts_at=base + timedelta(seconds=i * 60 / len(meetings)),
            ends_at=base + timedelta(seconds=i * 60 / len(meetings), hours=1),
        )
        for i, m in enumerate(meetings)
    )
    for m in meetings:
        sync_meeting_reminders(m)
    made = Reminder.objects.count()
    assert made == groups * GROUP_SIZE, made
    first = Reminder.objects.order_by("due_at").first().due_at.timestamp()
    last = Reminder.objects.order_by("-due_at").first().due_at.timestamp()
    return first, last


def database_url() -> str:
    """The test database, for the worker process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(workers: int, *, mail_dir: Path, log: Path) -> subprocess.Popen:
    """The Procfile's worker line, in production mode, on the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "EMAIL_URL": f"filemail:///{mail_dir}",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),  # production mode refuses the development key
        "ALLOWED_HOSTS": "localhost",
        "SECURE_SSL_REDIRECT": "false",
        "PYTHONUNBUFFERED": "1",
    }
    with open(log, "ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "community", "worker", "--loglevel", "INFO",
             "--concurrency", str(workers), "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while b"ready." not in log.read_bytes():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"celery worker did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)
    return worker


def stop_worker(worker: subprocess.Popen) -> None:
    """A warm shutdown (it finishes the tasks it holds), then SIGKILL if it lingers."""
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def delivered(mail_dir: Path) -> list[tuple[str, str]]:
    """(recipient, subject) of every email the worker wrote."""
    found = []
    for path in mail_dir.iterdir():
        for raw in path.read_bytes().split(FILE_SEPARATOR):
            if raw.strip():
                message = email.message_from_bytes(raw, policy=email.policy.default)
                found.append((str(message["To"]), str(message["Subject"])))
    return found


def run(count: int, workers: int, max_seconds: float | None = None) -> dict:
    """Build, send until all are sent and emailed (or ``max_seconds`` after the first fell
    due), report."""
    from community.celery import app
    from community.models import Notification
    from groups.models import Reminder, ReminderStatus

    entry = settings.CELERY_BEAT_SCHEDULE[BEAT_ENTRY]
    tick_seconds = float(entry["schedule"])
    work = Path(tempfile.mkdtemp(prefix="bench-reminders-"))
    mail_dir, log = work / "mail", work / "worker.log"
    mail_dir.mkdir()
    app.control.purge()  # what an earlier run left in this broker
    worker = start_worker(workers, mail_dir=mail_dir, log=log)
    try:
        started = time.perf_counter()
        first_due, last_due = build(count)
        connection.close()
        print(f"built {count} reminders in {time.perf_counter() - started:.1f} s", flush=True)

        def remaining() -> int:
            """Reminders not sent, and emails of sent ones still to go."""
            n = Reminder.objects.exclude(status=ReminderStatus.SENT).count()
            n += Notification.objects.filter(email_pending=True).count()
            connection.close()
            return n

        give_up = first_due + max_seconds if max_seconds else None
        # Beat's first tick when the first reminder falls due (at once if building took longer),
        # then every 30 s: whatever falls due just after a tick waits the whole interval.
        time.sleep(max(0.0, first_due - time.time()))
        while True:  # beat
            if give_up is not None and time.time() > give_up:
                break
            for _ in range(BEATS):
                app.send_task(entry["task"], **entry.get("options", {}))
            deadline = time.monotonic() + tick_seconds
            while time.monotonic() < deadline and remaining():
                if give_up is not None and time.time() > give_up:
                    break
                time.sleep(0.5)
            if not remaining():
                break
        # Beat stops there; the emails already queued may still arrive on time until a minute
        # after the last reminder fell due.
        while Notification.objects.filter(email_pending=True).exists() and (
            time.time() < last_due + 60
        ):
            connection.close()
            time.sleep(0.5)
        connection.close()
    finally:
        stop_worker(worker)
    errors = [line for line in log.read_text(errors="replace").splitlines() if " ERROR " in line]

    sent = list(
        Reminder.objects.filter(sent_at__isnull=False).values_list("pk", "due_at", "sent_at")
    )
    due_of = {f"reminder:{pk}": due for pk, due, _s in sent}
    last_sent = max(s for _pk, _d, s in sent).timestamp()
    lateness = [(s - d).total_seconds() for _pk, d, s in sent]
    emailed = [
        (emailed_at - due_of[key]).total_seconds()
        for key, emailed_at in Notification.objects.filter(emailed_at__isnull=False).values_list(
            "dedupe_key", "emailed_at"
        )
        if key in due_of
    ]
    keys = Counter(Notification.objects.values_list("dedupe_key", flat=True))
    emails = Counter(delivered(mail_dir))
    if os.environ.get("BENCH_KEEP"):
        print(f"worker log and emails kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\nreminders: {count}, due over {last_due - first_due:.0f} s; worker with {workers} "
        f"processes, beat every {tick_seconds:.0f} s x{BEATS}; {connection.vendor}"
    )
    print(f"{'first due -> last sent':<34} {last_sent - first_due:>8.1f} s")
    print(f"{'last due -> last sent':<34} {last_sent - last_due:>8.1f} s")
    print(
        f"{'lateness p50 / p99 / max':<34} {statistics.median(lateness):>8.1f} / "
        f"{percentile(lateness, 0.99):.1f} / {max(lateness):.1f} s"
    )
    if emailed:
        print(
            f"{'email lateness p50 / p99 / max':<34} {statistics.median(emailed):>8.1f} / "
            f"{percentile(emailed, 0.99):.1f} / {max(emailed):.1f} s"
        )
    print(
        f"{'notifications / duplicates':<34} {sum(keys.values()):>8} / "
        f"{sum(n - 1 for n in keys.values())}"
    )
    print(
        f"{'emails / duplicates':<34} {sum(emails.values()):>8} / "
        f"{sum(n - 1 for n in emails.values())}"
    )
    on_time = sum(1 for late in lateness if late <= 60)
    emails_on_time = sum(1 for late in emailed if late <= 60)
    print(f"{'sent within 60 s of due / sent':<34} {on_time:>8} / {len(sent)} of {count}")
    print(
        f"{'emailed within 60 s of due / sent':<34} {emails_on_time:>8} / {len(emailed)} "
        f"of {len(sent)} reminders"
    )
    print(f"{'worker log errors':<34} {len(errors):>8}")
    return {
        "count": count,
        "workers": workers,
        "database": connection.vendor,
        "sent": len(sent),
        "on_time": on_time,
        "gave_up_after_seconds": max_seconds if len(sent) < count else None,
        "first_due_to_last_sent": last_sent - first_due,
        "lateness_p50": statistics.median(lateness),
        "lateness_p99": percentile(lateness, 0.99),
        "lateness_max": max(lateness),
        "per_second": len(sent) / max(last_sent - first_due, 1e-9),
        "emailed": len(emailed),
        "emails_on_time": emails_on_time,
        "email_lateness_max": max(emailed) if emailed else None,
        "duplicates": sum(n - 1 for n in keys.values()) + sum(n - 1 for n in emails.values()),
        "worker_errors": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (Procfile: 2)")
    parser.add_argument(
        "--max-seconds", type=float, help="stop this long after the first is due (bench/run.py)"
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here (bench/run.py)")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # one line per email otherwise
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        numbers = run(args.count, args.workers, args.max_seconds)
        if args.json:
            import json

            args.json.write_text(json.dumps(numbers))
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


if __name__ == "__main__":
    main()
