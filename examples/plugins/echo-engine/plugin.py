#!/usr/bin/env python3
"""echo-engine: a kitt engine plugin (JSON-RPC 2.0 on stdin/stdout).

`start` launches an HTTP server on the offered port, in one of two modes:
- echo (default): /v1/chat/completions and /v1/completions stream the prompt's words back,
  one per chunk, `delay_ms` apart, with a usage chunk and [DONE];
- proxy (`config.upstream` set): every request is forwarded to the upstream server and its
  answer streamed back unchanged.
`stop` shuts the server down. Standard library only.
"""
import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONFIG = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("echo-engine: " + (fmt % args) + "\n")

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        upstream = CONFIG.get("upstream")
        if upstream:
            return self._proxy("GET", None)
        if self.path == "/v1/models":
            return self._json(200, {"object": "list", "data": [{"id": "echo", "object": "model"}]})
        self._json(404, {"error": {"message": "no route " + self.path}})

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        if CONFIG.get("upstream"):
            return self._proxy("POST", body)
        request = json.loads(body or b"{}")
        chat = self.path.endswith("/chat/completions")
        if chat:
            prompt = " ".join(m.get("content") or "" for m in request.get("messages", []))
        else:
            prompt = request.get("prompt", "")
        words = prompt.split() or ["..."]
        limit = request.get("max_tokens") or len(words)
        words = (words * (limit // len(words) + 1))[:limit] if request.get("ignore_eos") else words[:limit]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def event(payload):
            data = ("data: %s\n\n" % payload).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        delay = float(CONFIG.get("delay_ms", 5)) / 1000.0
        for word in words:
            time.sleep(delay)
            piece = " " + word
            choice = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
            event(json.dumps({"choices": [choice]}))
        done = {"index": 0, "delta": {}, "finish_reason": "length"} if chat else {"index": 0, "text": "", "finish_reason": "length"}
        event(json.dumps({"choices": [done]}))
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(words),
                 "total_tokens": len(prompt.split()) + len(words)}
        event(json.dumps({"choices": [], "usage": usage}))
        event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _proxy(self, method, body):
        url = CONFIG["upstream"].rstrip("/") + self.path
        request = urllib.request.Request(url, data=body, method=method,
                                         headers={"content-type": "application/json"})
        try:
            upstream = urllib.request.urlopen(request, timeout=600)
        except urllib.error.HTTPError as e:
            upstream = e
        self.send_response(upstream.status)
        self.send_header("content-type", upstream.headers.get("content-type", "application/json"))
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        while True:
            chunk = upstream.read1(65536) if hasattr(upstream, "read1") else upstream.read(65536)
            if not chunk:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


SERVER = None


def reply(request_id, result=None, error=None):
    message = {"jsonrpc": "2.0", "id": request_id}
    if error is None:
        message["result"] = result
    else:
        message["error"] = error
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main():
    global SERVER
    for line in sys.stdin:
        message = json.loads(line)
        method, request_id = message.get("method"), message.get("id")
        params = message.get("params") or {}
        if method == "initialize":
            reply(request_id, {"protocol_version": 1, "features": ["start", "stop"]})
        elif method == "describe":
            reply(request_id, {"engine": "echo-engine"})
        elif method == "start":
            CONFIG.update(params.get("config") or {})
            SERVER = ThreadingHTTPServer(("127.0.0.1", params["port"]), Handler)
            threading.Thread(target=SERVER.serve_forever, daemon=True).start()
            mode = "proxy to " + CONFIG["upstream"] if CONFIG.get("upstream") else "echo"
            sys.stderr.write("echo-engine: serving on port %d (%s)\n" % (params["port"], mode))
            reply(request_id, {"base_url": "http://127.0.0.1:%d" % params["port"],
                               "model": params.get("model") or "echo"})
        elif method == "stop":
            if SERVER is not None:
                SERVER.shutdown()
            reply(request_id, {})
        elif method == "shutdown":
            return
        elif request_id is not None:
            reply(request_id, error={"code": -32601, "message": "no method %s" % method,
                                     "data": {"kind": "plugin", "retryable": False}})


if __name__ == "__main__":
    main()
