from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "groups"
    verbose_name = "Groups"

    def load_demo(self) -> None:
        from groups.demo import load_demo_groups

        load_demo_groups()
