#!/usr/bin/env python3
"""What kitt's load generator (its HTTP client) costs, measured against a zero-latency server.

Two nginx instances on 127.0.0.1, both pinned to core 0, answer every POST with the same
canned chat-completion SSE stream (64 content chunks, a usage chunk, [DONE]): the "fast"
one at full speed, the "slow" one at 2 KB/s so a stream stays open for about 5-6 s.
kitt runs `test run load` against them with `--engine openai`, pinned to core 1, and this
script reads its JSON result and samples its VmRSS/VmHWM from /proc every 50 ms:

  throughput      closed loop, 64 in flight: requests/s and client CPU ms per request
  open loop       arrival=constant at 1000, 2000, 4000 requests/s: how far the achieved rate
                  lies from the target, and send lag (late start of a scheduled request)
  one stream      concurrency=1: TTFT p50 against a server that answers at once, so an
                  upper bound on what the client adds
  memory/stream   closed loop at 1, 64, 1024, 10000 streams on the slow server:
                  (steady RSS at N - steady RSS at 1) / (N - 1), steady = the median
                  VmRSS while every stream is open; judged only where N x 8 KB exceeds
                  the allocator's ~4 MB run-to-run noise (so not at 64), plus the slope
                  between the two largest N
  flat memory     64 in flight for 1,000,000 requests: RSS growth from 10 % of the run
                  to its end
  telemetry       closed loop, 64 in flight, with the mock's /metrics page (vLLM names,
                  METRIC_SERIES series, as a vLLM server's page has a few hundred) scraped
                  every second (`--metrics vllm`, the default 1 s interval) against the same
                  run with `--no-telemetry`: the change in client CPU per request, runs
                  interleaved so drift hits both alike

Each figure but flat memory is repeated --runs times (default 3) and reported as the
median. `--quick` shortens everything about tenfold and runs once, for trying it out.
It prints each figure next to its target with PASS/MISS and exits 0 even when a target is
missed (a benchmark, not a test); nonzero only when something could not be measured.
Run it through examples/bench/loadgen.sh, which installs nginx and builds kitt.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

CHUNKS = 64
SLOW_RATE = "2k"
SAMPLE_S = 0.05
TTFT_LABEL = ("client-added TTFT p50: kitt's TTFT against a zero-latency server; "
              "includes nginx and loopback, so an upper bound")
NOFILE_NEEDED = 10_100
# Steady RSS of the same run moves by up to ~3 MB when mimalloc returns freed start-up
# memory; a per-stream figure is judged only when 8 KB per stream exceeds this.
NOISE_KB = 4096


class Abort(Exception):
    """Something could not be measured: stop with this message and a nonzero exit."""


# ---------------------------------------------------------------- the canned response


def sse_body():
    def chunk(delta, finish=None, usage=None):
        c = {
            "id": "chatcmpl-kitt",
            "object": "chat.completion.chunk",
            "created": 1764172800,
            "model": "mock",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage is not None:
            c["usage"] = usage
        return "data: " + json.dumps(c, separators=(",", ":")) + "\n\n"

    parts = []
    for i in range(CHUNKS):
        delta = {"role": "assistant", "content": f" tok{i}"} if i == 0 else {"content": f" tok{i}"}
        parts.append(chunk(delta))
    parts.append(chunk({}, "length", {"prompt_tokens": 32, "completion_tokens": 64, "total_tokens": 96}))
    parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()


def metrics_page():
    """A vLLM-named Prometheus page of the size a real one has: the gauges and counters
    kitt maps, the histograms with vLLM's bucket bounds, each under two model labels."""
    lines = []
    latency = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
               5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]
    tokens = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
    models = ['model_name="mock",engine="0"', 'model_name="mock-lora",engine="0"']
    for name, kind, value in [
        ("vllm:num_requests_running", "gauge", 64), ("vllm:num_requests_waiting", "gauge", 0),
        ("vllm:kv_cache_usage_perc", "gauge", 0.42), ("vllm:num_preemptions_total", "counter", 0),
        ("vllm:prompt_tokens_total", "counter", 123456), ("vllm:generation_tokens_total", "counter", 654321),
        ("vllm:prefix_cache_queries_total", "counter", 99999), ("vllm:prefix_cache_hits_total", "counter", 4242),
        ("vllm:request_success_total", "counter", 5000),
    ]:
        lines.append(f"# HELP {name} mock\n# TYPE {name} {kind}")
        lines += [f"{name}{{{m}}} {value}" for m in models]
    for name, bounds in [
        ("vllm:time_to_first_token_seconds", latency), ("vllm:inter_token_latency_seconds", latency),
        ("vllm:e2e_request_latency_seconds", latency), ("vllm:request_queue_time_seconds", latency),
        ("vllm:request_prefill_time_seconds", latency), ("vllm:request_decode_time_seconds", latency),
        ("vllm:request_prompt_tokens", tokens), ("vllm:request_generation_tokens", tokens),
    ]:
        lines.append(f"# HELP {name} mock\n# TYPE {name} histogram")
        for m in models:
            for i, b in enumerate(bounds):
                lines.append(f'{name}_bucket{{{m},le="{b}"}} {100 * (i + 1)}')
            lines.append(f'{name}_bucket{{{m},le="+Inf"}} {100 * (len(bounds) + 1)}')
            lines.append(f"{name}_sum{{{m}}} 1234.5")
            lines.append(f"{name}_count{{{m}}} {100 * (len(bounds) + 1)}")
    return "\n".join(lines) + "\n"


FIGURES = ["throughput", "telemetry", "open_loop", "one_stream", "memory", "flat"]
METRIC_SERIES = sum(1 for l in metrics_page().splitlines() if not l.startswith("#"))


# ---------------------------------------------------------------- nginx


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """One daemonized nginx with its own config, pid file and error log under `tmp`."""

    def __init__(self, tmp, name, limit_rate=None):
        self.tmp, self.name = tmp, name
        self.port = free_port()
        self.conf = os.path.join(tmp, f"{name}.conf")
        self.pid_file = os.path.join(tmp, f"{name}.pid")
        self.error_log = os.path.join(tmp, f"{name}.error.log")
        self.pid = None
        temp = os.path.join(tmp, f"{name}-temp")
        os.mkdir(temp)
        os.chmod(temp, 0o777)
        limit = f"limit_rate {limit_rate}; " if limit_rate else ""
        text = f"""# {name} mock server for examples/bench/loadgen.py
daemon on;
pid {self.pid_file};
error_log {self.error_log} warn;
worker_processes 1;
worker_cpu_affinity 01;
worker_rlimit_nofile 65536;
events {{ worker_connections 32768; multi_accept on; }}
http {{
  access_log off;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  open_file_cache max=16;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
  server {{
    listen 127.0.0.1:{self.port} backlog=65535;
    root {tmp};
    location = /metrics {{ default_type text/plain; }}
    location / {{ rewrite ^ /body.sse last; }}
    location = /body.sse {{ default_type text/event-stream; {limit}error_page 405 =200 $uri; }}
  }}
}}
"""
        with open(self.conf, "w") as f:
            f.write(text)
        os.chmod(self.conf, 0o644)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n=20):
        try:
            with open(self.error_log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no error log)\n"

    def start(self):
        cmd = ["nginx", "-p", self.tmp + "/", "-e", self.error_log, "-c", self.conf]
        p = subprocess.run(cmd, capture_output=True, text=True)
        self._read_pid()
        if p.returncode != 0:
            raise Abort(
                f"nginx ({self.name}) did not start: {p.stderr.strip()}\n"
                f"--- {self.error_log} ---\n{self.log_tail()}"
            )
        deadline = time.monotonic() + 5
        last = None
        while time.monotonic() < deadline:
            try:
                req = urllib.request.Request(self.url + "/v1/chat/completions", data=b"{}", method="POST")
                with urllib.request.urlopen(req, timeout=1) as r:
                    if r.status == 200:
                        self._read_pid()
                        return
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise Abort(
            f"nginx ({self.name}) on port {self.port} did not answer a POST within 5 s ({last})\n"
            f"--- {self.error_log} ---\n{self.log_tail()}"
        )

    def _read_pid(self):
        for _ in range(20):
            try:
                with open(self.pid_file) as f:
                    self.pid = int(f.read().strip())
                    return
            except (OSError, ValueError):
                time.sleep(0.01)

    def stop(self):
        if self.pid is None:
            self._read_pid()
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        workers = children(pid)
        # SIGTERM is nginx's fast shutdown: it does not wait for open (slow) streams.
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if wait_gone(pid, wait):
                break
        for w in workers:
            if alive(w):
                try:
                    os.kill(w, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                wait_gone(w, 2.0)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def reap(pid):
    """Collects a daemonized nginx that became our child (see become_subreaper)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_gone(pid, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reap(pid)
        if not alive(pid):
            return True
        time.sleep(0.02)
    return not alive(pid)


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


# ---------------------------------------------------------------- running kitt


def read_mem(pid):
    """(VmRSS, VmHWM) of a process in KB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    vals = {}
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            vals[line.split(":")[0]] = int(line.split()[1])
    if "VmRSS" not in vals:
        return None  # a zombie has no memory lines
    return vals["VmRSS"], vals.get("VmHWM", vals["VmRSS"])


class Run:
    """One finished kitt run: its metrics, its result JSON and the memory samples."""

    def __init__(self, result, samples, hwm, wall):
        self.result = result
        self.metrics = {m["name"]: m["value"] for m in result.get("metrics", [])}
        self.samples = samples  # [(seconds since start, VmRSS KB)]
        self.hwm = hwm  # last VmHWM seen, KB
        self.wall = wall

    def __getitem__(self, name):
        if name not in self.metrics:
            raise Abort(f"kitt's result has no metric `{name}`")
        return self.metrics[name]

    @property
    def errors(self):
        return int(self.metrics.get("errors", 0))

    def error_text(self):
        lines = self.result.get("errors") or [f"{self.errors} errors (no examples in the result)"]
        return "; ".join(str(e) for e in lines[:5])

    @property
    def peak_kb(self):
        return max([self.hwm] + [rss for _, rss in self.samples])

    def steady_kb(self, seconds):
        """Median VmRSS between 30 % and 90 % of a run meant to last `seconds`: every stream
        is open then, and start-up's transient allocations are gone."""
        window = [rss for t, rss in self.samples if 0.3 * seconds <= t <= 0.9 * seconds]
        if not window:
            raise Abort(f"no RSS sample between {0.3 * seconds:.1f} and {0.9 * seconds:.1f} s")
        return statistics.median(window)


class Kitt:
    def __init__(self, binary, tmp):
        self.binary = binary
        self.tmp = tmp
        self.proc = None
        self.count = 0
        self.commands = []

    def run(self, url, label, flags=(), **params):
        self.count += 1
        cmd = ["taskset", "-c", "1", self.binary, "test", "run", "load", "--engine", "openai",
               "--url", url, "--model", "mock", *flags]
        for k, v in params.items():
            cmd += ["-p", f"{k}={v}"]
        cmd.append("--json")
        self.commands.append(cmd)
        out_path = os.path.join(self.tmp, f"kitt-{self.count}.json")
        log_path = os.path.join(self.tmp, f"kitt-{self.count}.log")
        print(f"    {label} ...", end="", flush=True)
        samples, hwm = [], 0
        with open(out_path, "w") as out, open(log_path, "w") as log:
            start = time.monotonic()
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=log, stdin=subprocess.DEVNULL)
            pid = self.proc.pid  # taskset execs kitt, so this is kitt's own pid
            while self.proc.poll() is None:
                m = read_mem(pid)
                if m is not None:
                    samples.append((time.monotonic() - start, m[0]))
                    hwm = max(hwm, m[1])
                time.sleep(SAMPLE_S)
            wall = time.monotonic() - start
            rc = self.proc.returncode
            self.proc = None
        if rc != 0:
            raise Abort(
                f"kitt exited with status {rc} ({label}):\n  {shlex.join(cmd)}\n"
                f"--- stderr tail ---\n{tail(log_path)}--- stdout tail ---\n{tail(out_path)}"
            )
        try:
            with open(out_path) as f:
                result = json.load(f)
        except (OSError, ValueError) as e:
            raise Abort(f"kitt's stdout is not one JSON document ({e}) ({label})\n"
                        f"--- stderr tail ---\n{tail(log_path)}")
        run = Run(result, samples, hwm, wall)
        print(f" {wall:.1f} s" + (f", {run.errors} errors" if run.errors else ""), flush=True)
        return run

    def kill(self):
        p = self.proc
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(none)\n"


# ---------------------------------------------------------------- figures


class Row:
    def __init__(self, figure, measured, target, ok, shown):
        self.figure, self.measured, self.target, self.ok, self.shown = figure, measured, target, ok, shown

    @property
    def verdict(self):
        if isinstance(self.ok, str):
            return self.ok
        if self.ok is None:
            return "NOT MEASURED"
        return "PASS" if self.ok else "MISS"


def fmt_runs(vals, f):
    return ", ".join(f % v for v in vals)


class Bench:
    def __init__(self, args, kitt, fast, slow):
        self.args, self.kitt, self.fast, self.slow = args, kitt, fast, slow
        self.rows = []
        self.unmeasured = False
        q = args.quick
        self.closed_duration, self.closed_warmup = ("2s", "500ms") if q else ("20s", "2s")
        self.open_duration, self.open_warmup = ("1s", "200ms") if q else ("10s", "1s")
        self.one_requests = 2000 if q else 20000
        self.mem_seconds = 4 if q else 8
        self.mem_duration = f"{self.mem_seconds}s"
        self.mem_streams = [64, 1024] if q else [64, 1024, 10000]
        self.flat_requests = 100_000 if q else 1_000_000

    def add(self, figure, values, fmt, unit, target_text, check, info=""):
        """One figure from per-run values: prints the runs and the median, records a row."""
        med = statistics.median(values)
        ok = check(med)
        shown = (fmt % med) + unit + (f" ({info})" if info else "")
        print(f"  {figure}: median {shown}   [runs: {fmt_runs(values, fmt)}]   "
              f"target {target_text}: {'PASS' if ok else 'MISS'}")
        self.rows.append(Row(figure, fmt % med + unit, target_text, ok, shown))

    def unresolved(self, figure, values, target_text, why):
        """A figure measured but smaller than the measurement's noise: shown, not judged."""
        med = statistics.median(values)
        print(f"  {figure}: median {med:.1f} KB   [runs: {fmt_runs(values, '%.1f')}]   "
              f"unresolved: {why}")
        self.rows.append(Row(figure, f"{med:.1f} KB", target_text, "UNRESOLVED", why))

    def missing(self, figure, target_text, why):
        print(f"  {figure}: not measured: {why}")
        self.rows.append(Row(figure, f"not measured: {why}", target_text, None, ""))
        self.unmeasured = True

    def clean(self, runs, figures, target):
        """False (and marks the figures unmeasured) when any run had errors."""
        bad = [r for r in runs if r.errors]
        if not bad:
            return True
        for fig in figures:
            self.missing(fig, target, f"{bad[0].errors} request errors: {bad[0].error_text()}")
        return False

    def throughput(self):
        print(f"\nclosed loop, 64 in flight, {self.closed_duration} (warmup {self.closed_warmup}), fast server")
        runs = [self.kitt.run(self.fast.url, f"run {i + 1}", concurrency=64, duration=self.closed_duration,
                              warmup=self.closed_warmup, input_tokens=32, output_tokens=64)
                for i in range(self.args.runs)]
        figs = ["closed-64 requests/s", "closed-64 client CPU per request"]
        if not self.clean(runs, figs, ">= 6000 / <= 0.10 ms"):
            return
        self.add(figs[0], [r["requests_per_s"] for r in runs], "%.0f", "/s", ">= 6000/s", lambda v: v >= 6000)
        self.add(figs[1], [r["client_cpu_ms_per_request"] for r in runs], "%.4f", " ms", "<= 0.10 ms",
                 lambda v: v <= 0.10)

    def telemetry(self):
        print(f"\ntelemetry overhead: closed loop, 64 in flight, {self.closed_duration}, fast server, "
              f"/metrics of {METRIC_SERIES} series scraped every {self.args.telemetry_interval} vs not")
        on, off = [], []
        common = dict(concurrency=64, duration=self.closed_duration, warmup=self.closed_warmup,
                      input_tokens=32, output_tokens=64)
        for i in range(self.args.runs):
            off.append(self.kitt.run(self.fast.url, f"run {i + 1} --no-telemetry", ["--no-telemetry"], **common))
            on.append(self.kitt.run(self.fast.url, f"run {i + 1} --metrics vllm", ["--metrics", "vllm",
                                    "--telemetry-interval", self.args.telemetry_interval], **common))
        fig = "telemetry: change in client CPU per request"
        if not self.clean(on + off, [fig], "<= +1 %"):
            return
        for r in on:
            if r["telemetry_scrape_failures"] != 0 or r["telemetry_scrapes"] < 2:
                self.missing(fig, "<= +1 %", f"scrapes failed: {r.result.get('details', {}).get('telemetry')}")
                return
        change = [(a["client_cpu_ms_per_request"] / b["client_cpu_ms_per_request"] - 1) * 100
                  for a, b in zip(on, off)]
        print("  client CPU ms per request without: " + fmt_runs([r["client_cpu_ms_per_request"] for r in off], "%.4f")
              + "; with: " + fmt_runs([r["client_cpu_ms_per_request"] for r in on], "%.4f"))
        cpu = statistics.median(r["client_cpu_ms_per_request"] for r in off)
        scrapes = statistics.median(r["telemetry_scrapes"] for r in on)
        # The closed loop's own run-to-run spread; a change smaller than it is not resolved.
        base = [r["client_cpu_ms_per_request"] for r in off]
        spread = (max(base) - min(base)) / cpu * 100
        med = statistics.median(change)
        if len(base) > 1 and spread > 1.0:
            why = f"runs without telemetry alone spread {spread:.1f} %"
            print(f"  {fig}: median {med:+.2f} %   [runs: {fmt_runs(change, '%+.2f')}]   unresolved: {why}")
            self.rows.append(Row(fig, f"{med:+.2f} %", "<= +1 %", "UNRESOLVED", why))
        else:
            self.add(fig, change, "%+.2f", " %", "<= +1 %", lambda v: v <= 1.0,
                     f"{cpu:.4f} ms without; {scrapes:.0f} scrapes per run")
        # What one scrape costs, where nothing else does: one stream held open on the slow
        # server, telemetry every 100 ms against none. Its CPU at the default 1 s interval,
        # over the CPU the closed loop above spends in a second, is the overhead that loop
        # would show without its run-to-run noise.
        print(f"\n  CPU per scrape: one stream on the slow server, {self.closed_duration}, "
              "/metrics every 100ms vs --no-telemetry")
        idle = dict(concurrency=1, duration=self.closed_duration, input_tokens=32, output_tokens=64)
        quiet_on, quiet_off = [], []
        for i in range(self.args.runs):
            quiet_off.append(self.kitt.run(self.slow.url, f"run {i + 1} --no-telemetry", ["--no-telemetry"], **idle))
            quiet_on.append(self.kitt.run(self.slow.url, f"run {i + 1} every 100ms",
                                          ["--metrics", "vllm", "--telemetry-interval", "100ms"], **idle))
        total = lambda r: r["client_cpu_ms_per_request"] * r["requests"]
        per_scrape = ((statistics.median(total(r) for r in quiet_on) - statistics.median(total(r) for r in quiet_off))
                      / statistics.median(r["telemetry_scrapes"] for r in quiet_on))
        loop_cpu_per_s = statistics.median(r["client_cpu_ms_per_request"] * r["requests_per_s"] for r in off)
        implied = per_scrape / loop_cpu_per_s * 100
        print(f"  client CPU totals without: " + fmt_runs([total(r) for r in quiet_off], "%.1f")
              + " ms; with: " + fmt_runs([total(r) for r in quiet_on], "%.1f") + " ms")
        self.add("telemetry: client CPU per scrape", [per_scrape], "%.3f", " ms",
                 "(informational)", lambda v: True, f"page of {METRIC_SERIES} series")
        self.add("telemetry: implied overhead at 1 s", [implied], "%.3f", " %", "<= 1 %",
                 lambda v: v <= 1.0, f"{per_scrape:.3f} ms a second over {loop_cpu_per_s:.0f} ms of closed-64 CPU a second")

    def open_loop(self):
        for rate in (1000, 2000, 4000):
            print(f"\nopen loop, arrival=constant at {rate}/s, {self.open_duration} (warmup {self.open_warmup}), fast server")
            runs = [self.kitt.run(self.fast.url, f"run {i + 1}", rate=rate, arrival="constant",
                                  duration=self.open_duration, warmup=self.open_warmup,
                                  input_tokens=32, output_tokens=64)
                    for i in range(self.args.runs)]
            figs = [f"open {rate}/s send-rate error", f"open {rate}/s send lag p99"]
            if not self.clean(runs, figs, "<= 1 % / <= 1 ms"):
                continue
            # `send_rate` (kitt before 0.2: `achieved_rate`): sends per second over the sends.
            sent = [r["send_rate"] if "send_rate" in r.metrics else r["achieved_rate"] for r in runs]
            self.add(figs[0], [abs(s / rate - 1) * 100 for s in sent], "%.2f", " %",
                     "<= 1 %", lambda v: v <= 1.0)
            p50 = statistics.median(r["send_lag_p50_ms"] for r in runs)
            mx = statistics.median(r["send_lag_max_ms"] for r in runs)
            self.add(figs[1], [r["send_lag_p99_ms"] for r in runs], "%.3f", " ms", "<= 1 ms",
                     lambda v: v <= 1.0, info=f"p50 {p50:.3f} ms, max {mx:.2f} ms")

    def one_stream(self):
        print(f"\none stream, {self.one_requests} requests, fast server")
        runs = [self.kitt.run(self.fast.url, f"run {i + 1}", concurrency=1, requests=self.one_requests,
                              input_tokens=32, output_tokens=64)
                for i in range(self.args.runs)]
        fig = "client-added TTFT p50 (*)"
        print(f"  (*) {TTFT_LABEL}")
        if not self.clean(runs, [fig], "<= 150 us"):
            return
        self.add(fig, [r["ttft_p50_ms"] * 1000 for r in runs], "%.0f", " us", "<= 150 us", lambda v: v <= 150)

    def memory(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        streams = list(self.mem_streams)
        skipped_nofile = None
        if 10000 in streams and soft < NOFILE_NEEDED:
            skipped_nofile = soft
            streams.remove(10000)
        print(f"\nmemory per in-flight stream, closed loop at 1, {', '.join(map(str, streams))}, "
              f"{self.mem_duration} each, slow server ({SLOW_RATE}B/s per stream)")
        per = {n: [] for n in streams}
        steady = {n: [] for n in streams}
        bad = {}
        for i in range(self.args.runs):
            base = self.kitt.run(self.slow.url, f"run {i + 1}: 1 stream", concurrency=1,
                                 duration=self.mem_duration, input_tokens=32, output_tokens=64)
            for n in streams:
                r = self.kitt.run(self.slow.url, f"run {i + 1}: {n} streams", concurrency=n,
                                  duration=self.mem_duration, input_tokens=32, output_tokens=64)
                if r.errors or base.errors:
                    bad.setdefault(n, r if r.errors else base)
                    continue
                cmax = int(r.metrics.get("concurrency_max", -1))
                if cmax != n:
                    print(f"      note: concurrency_max was {cmax}, not {n}")
                seconds = self.mem_seconds
                at_n, at_1 = r.steady_kb(seconds), base.steady_kb(seconds)
                per[n].append((at_n - at_1) / (n - 1))
                steady[n].append(at_n)
                print(f"      steady RSS {at_n / 1024:.2f} MB vs {at_1 / 1024:.2f} MB at 1 stream "
                      f"(peaks {r.peak_kb / 1024:.1f} and {base.peak_kb / 1024:.1f} MB)")
        for n in self.mem_streams:
            fig = f"memory per stream at {n}"
            if n not in per:
                self.missing(fig, "<= 8 KB", f"nofile limit {skipped_nofile}")
            elif n in bad:
                self.missing(fig, "<= 8 KB", f"{bad[n].errors} request errors: {bad[n].error_text()}")
            elif (n - 1) * 8 < NOISE_KB:
                self.unresolved(fig, per[n], "<= 8 KB",
                                f"{n - 1} streams x 8 KB is below the allocator's "
                                f"{NOISE_KB // 1024} MB run-to-run RSS noise")
            else:
                self.add(fig, per[n], "%.1f", " KB", "<= 8 KB", lambda v: v <= 8)
        big = [n for n in self.mem_streams if n in per and n not in bad and (n - 1) * 8 >= NOISE_KB]
        if len(big) >= 2:
            lo, hi = big[0], big[-1]
            slopes = [(b - a) / (hi - lo) for a, b in zip(steady[lo], steady[hi])]
            self.add(f"memory per added stream, {lo} -> {hi}", slopes, "%.1f", " KB",
                     "<= 8 KB", lambda v: v <= 8)

    def flat(self):
        print(f"\nflat memory, closed loop 64 in flight, {self.flat_requests} requests, fast server (once)")
        r = self.kitt.run(self.fast.url, "run", concurrency=64, requests=self.flat_requests,
                          input_tokens=32, output_tokens=64)
        fig = "flat memory (RSS growth from 10 % of the run to its end)"
        if r.errors:
            self.missing(fig, "<= 1 MB", f"{r.errors} request errors: {r.error_text()}")
            return
        if len(r.samples) < 10:
            self.missing(fig, "<= 1 MB", f"only {len(r.samples)} RSS samples")
            return
        t0, t1 = r.samples[0][0], r.samples[-1][0]
        at = t0 + 0.1 * (t1 - t0)
        early = min(r.samples, key=lambda s: abs(s[0] - at))[1]
        end = r.samples[-1][1]
        peak = r.peak_kb
        growth = (end - early) / 1024
        print(f"      RSS {early / 1024:.1f} MB at {at:.1f} s, {end / 1024:.1f} MB at the end ({t1:.1f} s), "
              f"peak {peak / 1024:.1f} MB; {len(r.samples)} samples")
        self.add(fig, [growth], "%+.2f", " MB", "<= 1 MB", lambda v: v <= 1.0,
                 info=f"{early / 1024:.1f} -> {end / 1024:.1f} MB, peak {peak / 1024:.1f} MB")


# ---------------------------------------------------------------- main


def machine(kitt_bin):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    kv = subprocess.run([kitt_bin, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"cpu:    {cpu}")
    print(f"cores:  {os.cpu_count()}")
    print(f"kernel: {platform.release()}")
    print(f"nginx:  {nginx.replace('nginx version: ', '')}")
    print(f"kitt:   {kv}  ({kitt_bin})")
    print(f"date:   {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < NOFILE_NEEDED:
        print(f"note: the open-files limit is {soft} (hard {hard}); 10,000 streams need about "
              f"{NOFILE_NEEDED}, so that figure is skipped (raise it with `ulimit -Hn` as root)")


def become_subreaper():
    """Daemonized nginx masters then reparent to this process instead of init, so they are
    reaped here when stopped and leave no <defunct> entries behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def on_signal(signum, _frame):
    raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="repeats per figure, median reported (default 3)")
    ap.add_argument("--quick", action="store_true", help="about a tenth of the durations, one run")
    ap.add_argument("--kitt", default="target/release/kitt", help="the kitt binary")
    ap.add_argument("--only", choices=FIGURES, help="measure this figure alone")
    ap.add_argument("--telemetry-interval", default="1s",
                    help="the sampling interval of the telemetry figure (default 1s, kitt's default)")
    args = ap.parse_args()
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    kitt_bin = os.path.abspath(args.kitt)

    for tool in ("nginx", "taskset"):
        if shutil.which(tool) is None:
            print(f"error: `{tool}` is not on PATH", file=sys.stderr)
            return 2
    if not os.access(kitt_bin, os.X_OK):
        print(f"error: no kitt binary at {kitt_bin}", file=sys.stderr)
        return 2
    if not {0, 1} <= os.sched_getaffinity(0):
        print("error: needs cores 0 (nginx) and 1 (kitt)", file=sys.stderr)
        return 2

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    become_subreaper()
    machine(kitt_bin)
    raise_nofile()
    mode = "quick" if args.quick else "full"
    print(f"mode:   {mode}, {args.runs} run(s) per figure, median reported")

    tmp = tempfile.mkdtemp(prefix="kitt-loadgen-")
    servers = []
    kitt = Kitt(kitt_bin, tmp)
    try:
        os.chmod(tmp, 0o755)
        body = os.path.join(tmp, "body.sse")
        with open(body, "wb") as f:
            f.write(sse_body())
        os.chmod(body, 0o644)
        page = os.path.join(tmp, "metrics")
        with open(page, "w") as f:
            f.write(metrics_page())
        os.chmod(page, 0o644)
        fast = Nginx(tmp, "fast")
        slow = Nginx(tmp, "slow", limit_rate=SLOW_RATE)
        for s in (fast, slow):
            servers.append(s)
            s.start()
        size = os.path.getsize(body)
        print(f"mock:   fast nginx {fast.url}, slow nginx {slow.url} ({SLOW_RATE}B/s); "
              f"body {size} bytes, {CHUNKS} chunks + usage + [DONE]")

        bench = Bench(args, kitt, fast, slow)
        for figure in [args.only] if args.only else FIGURES:
            getattr(bench, figure)()

        print("\nsummary (" + mode + f", median of {args.runs}):")
        w = max(len(r.figure) for r in bench.rows)
        wm = max(len(r.measured) for r in bench.rows)
        wt = max(len(r.target) for r in bench.rows)
        print(f"  {'figure':<{w}} | {'measured':<{wm}} | {'target':<{wt}} | result")
        print(f"  {'-' * w}-+-{'-' * wm}-+-{'-' * wt}-+-------")
        for r in bench.rows:
            print(f"  {r.figure:<{w}} | {r.measured:<{wm}} | {r.target:<{wt}} | {r.verdict}")
        passed = sum(r.ok is True for r in bench.rows)
        print(f"  {passed} of {len(bench.rows)} targets met")
        print(f"  (*) {TTFT_LABEL}")
        repro = "examples/bench/loadgen.sh" + (" --quick" if args.quick else "")
        if args.runs != (1 if args.quick else 3):
            repro += f" --runs {args.runs}"
        if args.only:
            repro += f" --only {args.only}"
        if args.telemetry_interval != "1s":
            repro += f" --telemetry-interval {args.telemetry_interval}"
        print(f"\nreproduce: {repro}")
        return 1 if bench.unmeasured else 0
    except Abort as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; stopping nginx", file=sys.stderr)
        return 130
    except SystemExit:
        print("\nterminated; stopping nginx", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        kitt.kill()
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
