from django.db import migrations

RESOURCES = [
    {
        "name": "Emergency services",
        "region": "Everywhere",
        "description": "If you or someone else is in immediate danger, call your local emergency number (for example 911 in the US and Canada, 999 in the UK, 112 across the EU).",
        "phone": "",
        "text": "",
        "url": "",
        "position": 0,
    },
    {
        "name": "988 Suicide & Crisis Lifeline",
        "region": "United States",
        "description": "Free, confidential support, any time of day.",
        "phone": "988",
        "text": "Text 988",
        "url": "https://988lifeline.org",
        "position": 10,
    },
    {
        "name": "Samaritans",
        "region": "UK and Ireland",
        "description": "Someone to listen, day or night.",
        "phone": "116 123",
        "text": "",
        "url": "https://www.samaritans.org",
        "position": 20,
    },
    {
        "name": "Find a Helpline",
        "region": "International",
        "description": "Free, confidential helplines in many countries, searchable by what you need.",
        "phone": "",
        "text": "",
        "url": "https://findahelpline.com",
        "position": 30,
    },
]


def add_resources(apps, schema_editor):
    CrisisResource = apps.get_model("community", "CrisisResource")
    if CrisisResource.objects.exists():
        return
    CrisisResource.objects.bulk_create(CrisisResource(**r) for r in RESOURCES)


class Migration(migrations.Migration):
    dependencies = [("community", "0001_initial")]
    operations = [migrations.RunPython(add_resources, migrations.RunPython.noop)]
