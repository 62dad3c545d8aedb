"""A tiny stand-in for the Kubernetes API that records every write it receives.

GETs answer empty lists (watches are held open briefly, then end empty); POST,
PUT, PATCH and DELETE are recorded and answered with the object sent.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class KubeRecorder:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.writes: list[tuple[str, str, object]] = []
        self.gets: list[str] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                with recorder._lock:
                    recorder.gets.append(self.path)
                if query.get("watch", [""])[0].lower() in ("true", "1"):
                    time.sleep(min(float(query.get("timeoutSeconds", ["2"])[0]), 2.0))
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._reply(
                    200,
                    {
                        "kind": "List",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": "1"},
                        "items": [],
                    },
                )

            def _write(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: object = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with recorder._lock:
                    recorder.writes.append((self.command, urlsplit(self.path).path, body))
                if self.command == "DELETE":
                    self._reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
                    return
                reply = body if isinstance(body, dict) else {}
                reply.setdefault("metadata", {}).setdefault("resourceVersion", "2")
                self._reply(201, reply)

            do_POST = do_PUT = do_PATCH = do_DELETE = _write

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> KubeRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self) -> list[tuple[str, str, object]]:
        with self._lock:
            return list(self.writes)

    def write_kubeconfig(self, path: str) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "recorder", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
            "contexts": [
                {"name": "recorder", "context": {"cluster": "recorder", "user": "tester"}}
            ],
            "current-context": "recorder",
        }
        with open(path, "w") as f:
            json.dump(config, f)
