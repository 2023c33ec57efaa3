#!/usr/bin/env python3
"""Peak memory of `kitt validate` on suites at kitt's input limits (docs/limits.md).

Generates suites that push each limit — a file at the value limit (one-digit scalars, the
densest YAML), a file of long strings at the size limit, a realistic large suite of many
nodes, and a file over each limit (refused) — runs `kitt validate` on each RUNS times and
prints the median peak RSS (from wait4's ru_maxrss), the median time, and the ratio of peak
memory to file size.

Usage: python3 examples/bench/suite-memory.py [KITT] [RUNS]
       (KITT defaults to target/release/kitt, RUNS to 3)
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

KITT = sys.argv[1] if len(sys.argv) > 1 else "target/release/kitt"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
HEAD = (
    "apiVersion: kitt/v1\nkind: Suite\nmetadata: {name: mem, version: 1.0.0}\n"
    "engines:\n  sim: {uses: simulator}\n"
)
NODE = "nodes:\n  - {id: a, benchmark: latency, engine: sim}\n"


def dense(values):
    """One flow sequence of `values` one-digit scalars under an extra key."""
    return HEAD + NODE + "x: [" + "1," * (values - 1) + "1]\n"


def strings(total_bytes):
    """4 KiB strings filling about `total_bytes`, as the stop list of the node's sampling."""
    item = "      - " + "s" * 4088 + "\n"
    node = "nodes:\n  - id: a\n    benchmark: latency\n    engine: sim\n    sampling:\n      stop:\n"
    return HEAD + node + item * (total_bytes // len(item))


def many_nodes(nodes):
    """A realistic large suite: nodes with params, sampling and a dependency chain."""
    stops = ", ".join('"stop-sequence-number-%03d"' % i for i in range(40))
    out = [HEAD, "nodes:\n"]
    for i in range(nodes):
        out.append(
            "  - id: n%d\n    benchmark: latency\n    engine: sim\n"
            "    params: {requests: %d, input_tokens: 128}\n"
            "    sampling: {max_tokens: 64, stop: [%s]}\n" % (i, 1 + i % 50, stops)
        )
        if i:
            out.append("    needs: [n%d]\n" % (i - 1))
    return "".join(out)


def measure(path):
    peaks, times, code = [], [], None
    for _ in range(RUNS):
        start = time.monotonic()
        proc = subprocess.Popen(
            [KITT, "validate", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.monotonic() - start)
        peaks.append(usage.ru_maxrss)  # KiB on Linux
        code = os.waitstatus_to_exitcode(status)
    return statistics.median(peaks), statistics.median(times), code


def main():
    cases = [
        ("tiny suite (baseline)", HEAD + NODE),
        ("249,900 values (at the value limit), 0.5 MB", dense(249_900)),
        ("8 MiB of 4 KiB strings (the size limit)", strings(8 * 1024 * 1024 - 8192)),
        ("4,000 nodes (208,000 values), 5 MB", many_nodes(4_000)),
        ("over the value limit: 3,000,000 values", dense(3_000_000)),
        ("over the size limit: 9 MiB", strings(9 * 1024 * 1024)),
    ]
    print("kitt:", KITT, "| runs:", RUNS, "| machine:", os.uname().machine, os.cpu_count(), "cores")
    print("%-44s %10s %10s %8s %10s %5s" % ("suite", "file MB", "peak MB", "ratio", "seconds", "exit"))
    with tempfile.TemporaryDirectory() as d:
        for name, text in cases:
            path = os.path.join(d, "s.yaml")
            with open(path, "w") as f:
                f.write(text)
            size = os.path.getsize(path)
            peak, secs, code = measure(path)
            print(
                "%-44s %10.2f %10.1f %8.1f %10.3f %5d"
                % (name, size / 1e6, peak / 1024, peak * 1024 / size, secs, code)
            )


if __name__ == "__main__":
    main()
