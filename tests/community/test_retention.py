"""Retention: client IP addresses in session records are purged after ``IP_RETENTION_DAYS``
(90 by default) by a daily Celery job. The clock is frozen with time-machine: sessions are
recorded through real requests at chosen moments, then the job runs at a later one."""

import html
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from community.data_selectors import export_content
from community.services import PURGED_IP, purge_old_ip_addresses

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
OLD_IP, NEWER_IP = "203.0.113.57", "2001:db8:85a3::8a2e:370:7334"


def sessions():
    from allauth.usersessions.models import UserSession

    return UserSession.objects.order_by("created_at")


def signed_in_browser(user, *, ip: str) -> Client:
    """A browser that signed in as ``user`` and made one request now (recording its session,
    with ``ip``, through allauth.usersessions and our middleware)."""
    client = Client(REMOTE_ADDR=ip)
    client.force_login(user)
    assert client.get(reverse("profile")).status_code == 200
    return client


def long_lived(client: Client) -> Client:
    """``client`` with a session that outlives the test's months (Django's own expires after
    14 days without a request; the address's age is what the test is about)."""
    session = client.session  # a new object on each access: change and save this one
    session.set_expiry(200 * 24 * 60 * 60)
    session.save()
    return client


def test_the_default_period_is_ninety_days_and_the_job_runs_daily_on_beat():
    assert settings.IP_RETENTION_DAYS == 90
    entry = settings.CELERY_BEAT_SCHEDULE["purge-old-ip-addresses"]
    assert entry == {
        "task": "community.tasks.task_purge_old_ip_addresses",
        "schedule": 24 * 60 * 60,
    }


def test_an_address_older_than_the_period_is_purged_and_a_newer_one_kept(member):
    with time_machine.travel(START, tick=False):
        signed_in_browser(member, ip=OLD_IP)
    with time_machine.travel(START + timedelta(days=60), tick=False):
        signed_in_browser(member, ip=NEWER_IP)
    old, newer = sessions()
    assert (old.ip, newer.ip) == (OLD_IP, NEWER_IP)

    with time_machine.travel(START + timedelta(days=89, hours=23), tick=False):
        assert purge_old_ip_addresses() == 0  # not yet 90 days
    with time_machine.travel(START + timedelta(days=90, minutes=1), tick=False):
        assert purge_old_ip_addresses() == 1
        assert purge_old_ip_addresses() == 0  # run twice: nothing more changes
        from community.tasks import task_purge_old_ip_addresses

        assert task_purge_old_ip_addresses() == 0
    old, newer = sessions()
    assert old.ip == PURGED_IP
    assert newer.ip == NEWER_IP
    assert old.user_agent == newer.user_agent  # only the address goes; the record stays

    # 90 days after the newer one, it goes too.
    with time_machine.travel(START + timedelta(days=151), tick=False):
        assert purge_old_ip_addresses() == 1
    assert {s.ip for s in sessions()} == {PURGED_IP}


def test_the_period_is_configurable_and_now_can_be_given(member, settings):
    with time_machine.travel(START, tick=False):
        signed_in_browser(member, ip=OLD_IP)
    settings.IP_RETENTION_DAYS = 7
    assert purge_old_ip_addresses(now=START + timedelta(days=6)) == 0
    assert purge_old_ip_addresses(now=START + timedelta(days=8)) == 1
    assert sessions().get().ip == PURGED_IP


def test_a_session_still_in_use_records_its_address_again_and_keeps_it(member):
    with time_machine.travel(START, tick=False):
        browser = long_lived(signed_in_browser(member, ip=OLD_IP))
    with time_machine.travel(START + timedelta(days=91), tick=False):
        assert purge_old_ip_addresses() == 1
        browser.defaults["REMOTE_ADDR"] = NEWER_IP
        # The middleware records a session at most every 5 minutes, through a key with a TTL in
        # Redis, whose clock doesn't travel: 91 days later that key would long be gone.
        cache.clear()
        assert browser.get(reverse("profile")).status_code == 200  # a new request, a new address
        assert sessions().get().ip == NEWER_IP
        assert purge_old_ip_addresses() == 0


def test_a_purged_address_shows_nowhere_on_the_sessions_page_or_in_the_export(member):
    with time_machine.travel(START, tick=False):
        browser = long_lived(signed_in_browser(member, ip=OLD_IP))
    with time_machine.travel(START + timedelta(days=91), tick=False):
        assert purge_old_ip_addresses() == 1
        content = export_content(member)
        # Looking at the page records the address again, so read the export first.
        response = browser.get(reverse("my_sessions"))
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "Firefox" in page or "unknown browser" in page  # the session is listed
    assert "203.0.113" not in page and "::…" not in page
    (row,) = content["sections"]["sessions"]
    assert row["ip_address"] is None
    assert OLD_IP not in repr(content)


@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_purges_old_addresses_once(member):
    from allauth.usersessions.models import UserSession
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from community.celery import app
    from community.tasks import task_purge_old_ip_addresses

    signed_in_browser(member, ip=OLD_IP)
    signed_in_browser(member, ip=NEWER_IP)
    old, newer = sessions()
    # The older record last saw its browser 91 days ago (the worker runs on the real clock).
    UserSession.objects.filter(pk=old.pk).update(last_seen_at=timezone.now() - timedelta(days=91))

    results = []
    done = threading.Semaphore(0)

    def record(sender=None, retval=None, **extra):
        if getattr(sender, "name", None) == task_purge_old_ip_addresses.name:
            results.append(retval)
            done.release()

    app.control.purge()  # tasks other tests left in this run's broker
    task_postrun.connect(record, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            task_purge_old_ip_addresses.delay()
            task_purge_old_ip_addresses.delay()  # delivered twice, as a second beat would
            assert done.acquire(timeout=60) and done.acquire(timeout=60)
    finally:
        task_postrun.disconnect(record)
    assert sorted(results) == [0, 1]
    old.refresh_from_db()
    newer.refresh_from_db()
    assert (old.ip, newer.ip) == (PURGED_IP, NEWER_IP)
