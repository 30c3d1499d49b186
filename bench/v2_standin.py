"""A stand-in v2 chat server for the bench's v2 row, until the emulator serves v2 itself.

HTTP/1.1 over TLS on 127.0.0.1 (a throwaway trustme CA, as bench/server.py;
``--plain``: HTTP), keep-alive, one chunk per event, the framing of
the recorded v2 stream (tests/data/cassettes/test_primary_chat_stream_simple.yaml):
``event: response.message.delta\\ndata: {...}\\n\\n`` per piece, then
``event: response.message.done`` with the finish reason and usage, no [DONE].
``"x*N"`` as the last user text streams N one-character events. Any bearer
token is accepted. Prints one JSON line (``{"config": {...}}``) once
listening, then answers ``quit`` on stdin like bench/server.py.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict

MODEL = "GigaChat-3-Ultra:bench"


def _event(name: str, payload: Dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _count(body: Dict[str, Any]) -> int:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            text = "".join(part.get("text", "") for part in message.get("content") or [] if isinstance(part, dict))
            return int(text[2:]) if text.startswith("x*") else 1
    return 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        count = _count(body)
        done = _event("response.message.done", {
            "model": MODEL, "created_at": 1780321864, "finish_reason": "stop",
            "usage": {"input_tokens": 19, "input_tokens_details": {"prompt_tokens": 19, "cached_tokens": 0},
                      "output_tokens": count, "total_tokens": 19 + count}})
        if not body.get("stream"):
            reply = {"model": MODEL, "created_at": 1780321864,
                     "messages": [{"role": "assistant", "content": [{"text": "x" * count}]}], "finish_reason": "stop"}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        piece = _event("response.message.delta", {
            "model": MODEL, "created_at": 1780321864, "messages": [{"role": "assistant", "content": [{"text": "x"}]}]})
        chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
        write = self.wfile.write
        for _ in range(count):
            write(chunk)
        write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
        self.wfile.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plain", action="store_true", help="plain HTTP instead of TLS")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    config = {"access_token": "bench", "api_version": "v2"}
    scheme = "http"
    if not args.plain:
        import trustme  # the bench extra, as for bench/server.py's emulator

        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        bundle = os.path.join(tempfile.mkdtemp(prefix="gigachat-v2-bench-"), "ca.pem")
        ca.cert_pem.write_to_path(bundle)
        config["ca_bundle"] = bundle
        scheme = "https"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config["base_url"] = "%s://127.0.0.1:%d/api/v1" % (scheme, server.server_address[1])
    print(json.dumps({"config": config}), flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        print("?", flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
