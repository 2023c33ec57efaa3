#!/usr/bin/env python3
"""webhook-summary: a kitt reporter plugin speaking JSON-RPC 2.0 over stdin/stdout.

On `report` it builds a short summary of the run (suite, verdict, counts, failed asserts,
a few metrics per node), POSTs it as JSON to the webhook and answers with a receipt: the
URL, the HTTP status and what was sent. A webhook that cannot be reached or answers with an
error status is an `infra` error (kitt reports it; the run's results are already stored).
"""
import json
import os
import sys
import urllib.error
import urllib.request

DEFAULT_METRICS = ["requests_per_s", "ttft_p50_ms", "ttft_p99_ms", "accuracy"]


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def error(request_id, message, kind, retryable=False):
    send({"jsonrpc": "2.0", "id": request_id,
          "error": {"code": -32000, "message": message,
                    "data": {"kind": kind, "retryable": retryable}}})


def summary(report, wanted):
    nodes = []
    for node in report["nodes"]:
        values = {m["name"]: m["value"] for m in node["metrics"] if m["name"] in wanted}
        nodes.append({"node": node["id"], "status": node["status"], "metrics": values})
    return {
        "text": "kitt: suite %s %s %s (%d of %d nodes succeeded)" % (
            report["suite"]["name"], report["suite"]["version"], report["verdict"],
            report["counts"]["succeeded"], report["counts"]["nodes"]),
        "suite": report["suite"]["name"],
        "run": report["run"]["id"],
        "verdict": report["verdict"],
        "failed_asserts": [a["message"] for a in report["failed_asserts"]],
        "nodes": nodes,
    }


def report(request_id, params):
    settings = params.get("params") or {}
    url = settings.get("url") or os.environ.get("KITT_WEBHOOK_URL")
    if not url:
        return error(request_id, "no webhook URL: set the report's params.url or KITT_WEBHOOK_URL", "user")
    body = summary(params["report"], settings.get("metrics") or DEFAULT_METRICS)
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=settings.get("timeout_s", 10)) as answer:
            status = answer.status
    except urllib.error.HTTPError as e:
        return error(request_id, "the webhook answered HTTP %d" % e.code, "infra", e.code >= 500)
    except (urllib.error.URLError, OSError) as e:
        return error(request_id, "cannot reach the webhook: %s" % getattr(e, "reason", e), "infra", True)
    sys.stderr.write("posted %d bytes to %s: HTTP %d\n" % (len(data), url, status))
    receipt = {"url": url, "status": status, "sent": body}
    send({"jsonrpc": "2.0", "id": request_id, "result": {"text": json.dumps(receipt, indent=2) + "\n"}})


def main():
    for line in sys.stdin:
        message = json.loads(line)
        method, request_id = message.get("method"), message.get("id")
        if method == "initialize":
            if 1 not in message["params"]["protocol_versions"]:
                return error(request_id, "this plugin speaks protocol 1", "plugin")
            send({"jsonrpc": "2.0", "id": request_id,
                  "result": {"protocol_version": 1, "features": ["describe", "report"]}})
        elif method == "describe":
            send({"jsonrpc": "2.0", "id": request_id, "result": {}})
        elif method == "report":
            report(request_id, message["params"])
        elif method == "shutdown":
            return
        elif request_id is not None:
            send({"jsonrpc": "2.0", "id": request_id,
                  "error": {"code": -32601, "message": "no method %s" % method,
                            "data": {"kind": "plugin", "retryable": False}}})


if __name__ == "__main__":
    main()
