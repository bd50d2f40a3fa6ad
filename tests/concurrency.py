"""Racing real threads, each with its own database connection, for the PostgreSQL-only tests."""

import threading

from django.db import connection

from community.errors import DomainError


def race(*calls):
    """Run each call in its own thread, released together by a barrier.

    Returns their outcomes in order: a call's result, or the ``DomainError`` it was refused with.
    Any other error a thread hit is raised here.
    """
    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)
    errors = []

    def run(index, call):
        try:
            barrier.wait(timeout=30)
            outcomes[index] = call()
        except DomainError as refusal:
            outcomes[index] = refusal
        except Exception as error:  # handed back to the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racing thread did not finish"
    if errors:
        raise errors[0]
    return outcomes
