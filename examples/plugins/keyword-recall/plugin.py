#!/usr/bin/env python3
"""keyword-recall: a kitt benchmark plugin speaking JSON-RPC 2.0 over stdin/stdout.

For each item it asks the host to `generate` on the node's engine (kitt measures the
request), checks whether the keyword appears in the answer, and reports recall, the item
count and the mean time to first token that kitt measured.
"""
import json
import sys

_next_id = 0


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def notify(method, params):
    send({"jsonrpc": "2.0", "method": method, "params": params})


def call_host(method, params):
    global _next_id
    _next_id += 1
    request_id = "p%d" % _next_id
    send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
    while True:
        line = sys.stdin.readline()
        if not line:
            raise SystemExit("kitt closed the connection")
        reply = json.loads(line)
        if reply.get("id") == request_id:
            if "error" in reply:
                raise RuntimeError(reply["error"]["message"])
            return reply["result"]


def run(params):
    items = params["items"]
    found, ttfts, errors = 0, [], []
    for done, item in enumerate(items, 1):
        try:
            answer = call_host("generate", {"prompt": item["prompt"],
                                            "max_tokens": params.get("max_tokens", 32)})
        except RuntimeError as e:
            errors.append("item %d: %s" % (done, e))
            continue
        if item["keyword"].lower() in answer["text"].lower():
            found += 1
        if answer.get("ttft_ms") is not None:
            ttfts.append(answer["ttft_ms"])
            notify("sample", {"name": "ttft_ms", "value": answer["ttft_ms"]})
        notify("progress", {"done": done, "total": len(items)})
    scored = len(items) - len(errors)
    notify("log", {"level": "info", "message": "%d of %d answers mention their keyword" % (found, scored)})
    recall = found / scored if scored else 0.0
    metrics = {"recall": recall, "items": float(len(items))}
    if ttfts:
        metrics["ttft_mean_ms"] = sum(ttfts) / len(ttfts)
    return {"passed": scored > 0, "metrics": metrics, "outputs": {"recall": recall},
            "errors": errors}


def main():
    for line in sys.stdin:
        message = json.loads(line)
        method, request_id = message.get("method"), message.get("id")
        if method == "initialize":
            if 1 not in message["params"]["protocol_versions"]:
                send({"jsonrpc": "2.0", "id": request_id,
                      "error": {"code": -32000, "message": "this plugin speaks protocol 1"}})
                return
            send({"jsonrpc": "2.0", "id": request_id,
                  "result": {"protocol_version": 1, "features": ["describe", "run"]}})
        elif method == "describe":
            send({"jsonrpc": "2.0", "id": request_id, "result": {"metrics": {
                "recall": {"unit": "ratio", "direction": "higher"},
                "items": {"unit": "count", "direction": "higher"},
                "ttft_mean_ms": {"unit": "ms", "direction": "lower"}}}})
        elif method == "run":
            send({"jsonrpc": "2.0", "id": request_id, "result": run(message["params"]["params"])})
        elif method == "shutdown":
            return
        elif request_id is not None:
            send({"jsonrpc": "2.0", "id": request_id,
                  "error": {"code": -32601, "message": "no method %s" % method,
                            "data": {"kind": "plugin", "retryable": False}}})


if __name__ == "__main__":
    main()
