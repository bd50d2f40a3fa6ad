"""A small local server that speaks the OpenAI-compatible chat-completions protocol, started by
a test in a thread: it can answer, be slow, answer garbage, an error or an unsafe reply, and it
records every request it received (to show what a model is given)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeModel:
    """``mode``: "ok" (answers ``reply``), "slow" (waits until ``release()``, then answers),
    "garbage" (not JSON), "empty" (JSON without a reply), "error" (HTTP 500)."""

    def __init__(self, *, reply: str = "Thank you for telling me. What would help right now?"):
        self.reply = reply
        self.mode = "ok"
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.received = threading.Event()
        self._released = threading.Event()
        model = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                model.requests.append({"path": self.path, **body})
                model.headers.append(dict(self.headers))
                model.received.set()
                if model.mode == "slow":
                    model._released.wait(timeout=30)
                if model.mode == "error":
                    self._send(500, b'{"error": {"message": "overloaded"}}')
                    return
                if model.mode == "garbage":
                    self._send(200, b"<html>not a chat completion</html>")
                    return
                answer = {"id": "cmpl-test", "object": "chat.completion", "choices": []}
                if model.mode != "empty":
                    answer["choices"] = [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": model.reply},
                            "finish_reason": "stop",
                        }
                    ]
                self._send(200, json.dumps(answer).encode())

            def _send(self, status, payload: bytes):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeModel:
        self.thread.start()
        return self

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
