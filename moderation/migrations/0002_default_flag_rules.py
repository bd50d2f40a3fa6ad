"""The default flag rules (moderation/default_rules.py): contact details held, crisis language
queued (never held), hostile phrasing and spam queued. Moderators edit them in the admin."""

from django.db import migrations
from django.utils import timezone


def install(apps, schema_editor):
    from moderation.default_rules import install_default_rules

    install_default_rules(apps.get_model("moderation", "FlagRule"), now=timezone.now())


def remove(apps, schema_editor):
    from moderation.default_rules import DEFAULT_RULES

    FlagRule = apps.get_model("moderation", "FlagRule")
    FlagRule.objects.filter(name__in=[rule["name"] for rule in DEFAULT_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("moderation", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]
