"""`make run`: migrate, load the demo once, then run web, Celery worker and Celery beat together.

The embedded Redis (when REDIS_URL is unset) was started when settings loaded in this process and
exported to the children through REDIS_URL; it stops when this command exits.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from community.management.commands.load_demo import Command as LoadDemo


class Command(BaseCommand):
    help = "Run the whole community locally: uvicorn, a Celery worker and Celery beat."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-demo", action="store_true", help="Skip the demo community.")

    def handle(self, *args, host, port, no_demo, **options):
        with socket.socket() as probe:
            if probe.connect_ex((host, port)) == 0:
                raise CommandError(
                    f"Port {port} is already in use. Stop what is using it, or run PORT=8001 make run."
                )
        call_command("migrate", interactive=False, verbosity=0)
        if not no_demo and settings.DEBUG:
            call_command("load_demo")

        python = sys.executable
        commands = {
            "web": [python, "-m", "uvicorn", "community.asgi:application", "--host", host,
                    "--port", str(port), "--log-level", "warning"],
            "worker": [python, "-m", "celery", "-A", "community", "worker", "--loglevel", "INFO",
                       "--concurrency", "2"],
            "beat": [python, "-m", "celery", "-A", "community", "beat", "--loglevel", "INFO"],
        }  # fmt: skip
        processes = {
            name: subprocess.Popen(command, env=os.environ.copy())  # noqa: S603 -- our own argv
            for name, command in commands.items()
        }

        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

        url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}/"  # noqa: S104 -- only compared
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"{settings.SITE_NAME} is running at {url}"))
        self.stdout.write(
            f"Redis: {settings.REDIS_URL}   Database: {settings.DATABASES['default']['NAME']}"
        )
        if not no_demo and settings.DEBUG:
            self.stdout.write("Demo logins (password for all shown once per line):")
            for email, name, password in LoadDemo.logins():
                self.stdout.write(f"  {email:28} {name:20} {password}")
            self.stdout.write(
                "The moderator is asked to set up an authenticator app on the first visit to /admin/."
            )
        self.stdout.write("Emails (sign-up verification) are printed below. Press Ctrl-C to stop.")

        exit_code = 0
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(
                        f"The {name} process stopped (exit {process.returncode}); stopping the rest."
                    )
                    exit_code = 1
                    stopping = True
            time.sleep(0.5)

        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        self.stdout.write("Stopped.")
        if exit_code:
            raise SystemExit(exit_code)
