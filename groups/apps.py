from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "groups"
    verbose_name = "Groups"

    def ready(self) -> None:
        from groups import notifications  # noqa: F401 -- connects the signal receivers

    def load_demo(self) -> None:
        from groups.demo import load_demo_groups

        load_demo_groups()
