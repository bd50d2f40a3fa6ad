from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("groups", "0002_chat"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="rev",
            field=models.PositiveBigIntegerField(
                default=0,
                help_text=(
                    "The group's change number of this message's latest edit, deletion, hide "
                    "or reaction change (0: never changed). Lets readers catch up on changes "
                    "they missed."
                ),
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["group", "rev"], name="message_group_rev"),
        ),
    ]
