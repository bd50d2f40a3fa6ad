"""A small demo community for `make run`: a moderator and a few members. Safe to run again."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from community.models import User
from community.services import create_member

DEMO_PASSWORD = "calm-harbour-demo"  # noqa: S105 -- demo only; the command refuses to run unless DEBUG

DEMO_PEOPLE = [
    # (email, display name, time zone, staff)
    ("moderator@demo.invalid", "River (moderator)", "Europe/London", True),
    ("facilitator@demo.invalid", "Maple", "America/New_York", False),
    ("alex@demo.invalid", "Wren", "Europe/Berlin", False),
    ("sam@demo.invalid", "Sol", "America/Chicago", False),
    ("kai@demo.invalid", "Juniper", "Australia/Sydney", False),
]


class Command(BaseCommand):
    help = "Load the demo community once (a moderator and some members). Only with DEBUG on."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Demo data is for local use only; DEBUG is off.")
        created = 0
        for email, name, zone, staff in DEMO_PEOPLE:
            if User.objects.filter(email=email).exists():
                continue
            create_member(
                email=email,
                password=DEMO_PASSWORD,
                display_name=name,
                time_zone=zone,
                is_staff=staff,
            )
            created += 1
        self.extend_demo()
        if created:
            self.stdout.write(f"Loaded the demo community ({created} people).")

    def extend_demo(self) -> None:
        """Other apps' demo data (groups, meetings) hook in here."""
        from django.apps import apps

        for config in apps.get_app_configs():
            loader = getattr(config, "load_demo", None)
            if loader is not None:
                loader()

    @staticmethod
    def logins() -> list[tuple[str, str, str]]:
        return [(email, name, DEMO_PASSWORD) for email, name, _zone, _staff in DEMO_PEOPLE]
