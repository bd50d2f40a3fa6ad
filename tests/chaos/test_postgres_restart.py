"""PostgreSQL restarted under load: the page loads and chat sends in flight fail cleanly (an
error page, an ``unavailable`` frame that the client answers by sending again), every process's
connection pool recovers by itself, and no uvicorn or Celery worker is restarted."""

import asyncio
import time

import pytest
from django.db import close_old_connections

from community.models import Notification, NotificationKind
from community.services import notify
from groups.models import Message
from tests.chaos.clients import ChatClient, PageLoads, settle
from tests.chaos.services import CeleryProcess
from tests.factories import make_session_key
from tests.servers import UvicornServer
from tests.servers import test_database_url as database_url

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = ["/", "/groups/", "/groups/evening-circle/", "/notifications/"]
OUTAGE_SECONDS = 20


def wait_emailed(notification_id, timeout=60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        close_old_connections()
        if Notification.objects.filter(pk=notification_id, emailed_at__isnull=False).exists():
            return True
        time.sleep(0.2)
    return False


def test_a_postgresql_restart_fails_requests_in_flight_cleanly_and_every_pool_recovers(
    postgres, production_env, tmp_path, group, member, facilitator
):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    env = {**production_env, "EMAIL_URL": f"filemail:///{outbox}", "DATABASE_URL": database_url()}
    server = UvicornServer(workers=2, env=env, log=tmp_path / "uvicorn.log").start()
    worker = CeleryProcess("worker", env=server.env, log=tmp_path / "worker.log").start()
    session = make_session_key(member)
    try:
        worker.wait_ready()
        while len(server.worker_pids()) < 2:
            time.sleep(0.1)
        web_before, pool_before = server.worker_pids(), worker.pool_processes()
        first = notify(member, kind=NotificationKind.MEETING_REMINDER, title="Before")
        assert wait_emailed(first.pk), worker.output()

        async def scenario():
            chat = ChatClient(server, session, "evening-circle").start()
            await asyncio.wait_for(chat.opened.wait(), 10)
            for n in range(3):
                await chat.say(f"before {n}")
            # Concurrent page loads fill each worker's pool with connections, and PostgreSQL
            # stops under them (a restart ends every session at once).
            during = PageLoads(server.port, PAGES, session_key=session, concurrency=6).start()
            await asyncio.sleep(2)
            stopping = time.monotonic()
            await asyncio.to_thread(postgres.stop)
            await asyncio.to_thread(during.stop)
            # Down long enough for each pool's reconnect attempts to back off past the pool's
            # wait (psycopg_pool doubles the delay each time), with pages still asked for.
            outage = PageLoads(server.port, PAGES, session_key=session, concurrency=1).start()
            for n in range(3):
                await chat.say(f"while down {n}")  # answered "unavailable", kept, sent again
                await asyncio.sleep(0.3)
            await asyncio.sleep(OUTAGE_SECONDS - (time.monotonic() - stopping))
            await asyncio.to_thread(outage.stop)
            await asyncio.to_thread(postgres.start)
            after = PageLoads(server.port, PAGES, session_key=session, concurrency=6).start()
            await asyncio.sleep(3)
            await asyncio.to_thread(after.stop)
            for n in range(3):
                await chat.say(f"after {n}")
            stored = await settle({group.pk: [chat]})
            await chat.stop()
            return chat, stored[group.pk], during.results + outage.results, after.results, stopping

        chat, stored, during, after, stopping = asyncio.run(scenario())
        close_old_connections()

        failed = [load for load in during if load.status != 200]
        assert failed, "some page loads were in flight when PostgreSQL stopped"
        assert all(load.ended >= stopping for load in failed), "only loads in flight failed"
        assert {load.status for load in failed} <= {500}, [(f.status, f.error) for f in failed]
        assert chat.refusals.get("unavailable"), "sends during the outage were told to retry"
        # Recovered: every page loads, on the same worker processes.
        assert after and all(load.status == 200 for load in after), {
            (load.status, load.error) for load in after
        }
        assert not chat.pending, "every send was stored and acked in the end"
        assert stored == list(range(1, 10)) == chat.seqs
        assert Message.objects.filter(group=group).count() == 9

        second = notify(member, kind=NotificationKind.MEETING_REMINDER, title="After")
        assert wait_emailed(second.pk), worker.output()
        assert server.worker_pids() == web_before, "no uvicorn worker was restarted"
        assert worker.pool_processes() == pool_before, "no Celery worker process was restarted"
    finally:
        worker.stop()
        server.stop()
        if not postgres.ready():
            postgres.start()
