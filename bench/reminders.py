"""10,000 meeting reminders due in the same minute: how long until all are sent, how late, and
how many duplicates (measured here, never asserted in tests).

Builds a throw-away test database (SQLite by default, PostgreSQL with DATABASE_URL): 500 groups of
20 members, one meeting each, starts spread over one minute so each member's 1-hour reminder
falls due in the coming minute; the rows are made by the real ``sync_meeting_reminders``. Then
"beat" fires every 30 seconds, *twice* per tick (two beat processes by mistake), into a pool of
worker threads that each run the real ``send_due_reminders``; emails are sent in-process
(Celery eager, locmem outbox) so every delivery can be counted.

Prints: the time from the first reminder falling due until the last is sent, lateness
(sent - due) p50 / p99 / max, and duplicates among notifications and emails.

Run: .venv/bin/python bench/reminders.py [--count 10000] [--workers 2] [--max-seconds S] [--json F]
(bench/run.py runs it as (g), giving up 75 s after the first is due)
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import statistics
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "community.settings")

import django  # noqa: E402

django.setup()

from django.core import mail  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test.utils import setup_test_environment, teardown_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

GROUP_SIZE = 20
TICK_SECONDS = 30  # CELERY_BEAT_SCHEDULE["send-due-reminders"]
BEATS = 2  # two beat processes running by mistake: every run is sent twice


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


def run(count: int, workers: int, max_seconds: float | None = None) -> dict:
    """Build, send until all are sent (or ``max_seconds`` after the first fell due), report."""
    from community.celery import app
    from community.models import Notification
    from groups.models import Reminder, ReminderStatus
    from groups.services.reminders import send_due_reminders

    app.conf.task_always_eager = True  # emails go to the locmem outbox in-process
    started = time.perf_counter()
    first_due, last_due = build(count)
    connection.close()
    print(f"built {count} reminders in {time.perf_counter() - started:.1f} s", flush=True)

    runs: queue.Queue = queue.Queue()
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        while not stop.is_set():
            try:
                runs.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                send_due_reminders()
            except BaseException as error:  # reported below
                errors.append(error)
            finally:
                connections.close_all()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()

    def remaining() -> int:
        n = Reminder.objects.exclude(status=ReminderStatus.SENT).count()
        connection.close()
        return n

    give_up = first_due + max_seconds if max_seconds else None
    while True:  # beat
        if give_up is not None and time.time() > give_up:
            break
        for _ in range(BEATS):
            runs.put("tick")
        deadline = time.monotonic() + TICK_SECONDS
        while time.monotonic() < deadline and remaining():
            if give_up is not None and time.time() > give_up:
                break
            time.sleep(0.5)
        if not remaining() and runs.empty():
            break
    stop.set()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]

    sent = list(Reminder.objects.filter(sent_at__isnull=False).values_list("due_at", "sent_at"))
    last_sent = max(s for _d, s in sent).timestamp()
    lateness = [(s - d).total_seconds() for d, s in sent]
    keys = Counter(Notification.objects.values_list("dedupe_key", flat=True))
    emails = Counter((m.to[0], m.subject) for m in mail.outbox)
    print(
        f"\nreminders: {count}, due over {last_due - first_due:.0f} s; "
        f"{workers} worker threads, beat every {TICK_SECONDS} s x{BEATS}; "
        f"{connection.vendor}"
    )
    print(f"{'first due -> last sent':<34} {last_sent - first_due:>8.1f} s")
    print(f"{'last due -> last sent':<34} {last_sent - last_due:>8.1f} s")
    print(
        f"{'lateness p50 / p99 / max':<34} {statistics.median(lateness):>8.1f} / "
        f"{percentile(lateness, 0.99):.1f} / {max(lateness):.1f} s"
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
    print(f"{'sent within 60 s of due / sent':<34} {on_time:>8} / {len(sent)} of {count}")
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
        "duplicates": sum(n - 1 for n in keys.values()) + sum(n - 1 for n in emails.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
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
