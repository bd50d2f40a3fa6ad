from django.apps import AppConfig


class CompanionConfig(AppConfig):
    name = "companion"
    verbose_name = "Practice companion"

    def ready(self) -> None:
        from companion import receivers  # noqa: F401 -- connects the new-message receiver
