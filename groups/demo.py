"""Demo groups for `make run` (called by community's load_demo)."""


def load_demo_groups() -> None:
    return None
