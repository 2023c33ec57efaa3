#!/usr/bin/env python3
"""How much a long leg's telemetry adds to the results store.

Builds a real store with `kitt apply` (a short simulator load leg, so the schema and the
rows around it are kitt's own), then adds to that leg the series a one-hour leg sampled at
the default 1 s interval records — the four gauges, GPU power and utilisation: 6 series x
3,600 points of varying values, written as kitt writes them (one row per point in
`telemetry_points`, WITHOUT ROWID, keyed by series and time) — and reports the file's growth
after VACUUM, per point and per leg-hour. Usage: telemetry-store.py [--kitt PATH] [--hours H]
"""

import argparse
import math
import os
import random
import sqlite3
import subprocess
import tempfile

SUITE = """apiVersion: kitt/v1
kind: Suite
metadata: {name: store-size, version: 1.0.0}
engines:
  sim: {uses: simulator, config: {ttft: 5ms, itl: 1ms}}
nodes:
  - id: load
    benchmark: load
    engine: sim
    params: {concurrency: 2, requests: 20, output_tokens: 4}
"""
SERIES = [("server_running_requests", "requests"), ("server_waiting_requests", "requests"),
          ("kv_cache_usage", "ratio"), ("client_in_flight_requests", "requests"),
          ("gpu_power_w", "W"), ("gpu_utilization_pct", "%")]


def settle(db):
    """VACUUM, then move the WAL into the file, so its size is the store's."""
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kitt", default="target/release/kitt")
    ap.add_argument("--hours", type=float, default=1.0)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kitt-store-")
    suite = os.path.join(tmp, "suite.yaml")
    with open(suite, "w") as f:
        f.write(SUITE)
    store = os.path.join(tmp, "kitt.db")
    env = dict(os.environ, KITT_STORE=store, KITT_DATA_DIR=os.path.join(tmp, "data"))
    subprocess.run([args.kitt, "apply", suite], env=env, check=True, capture_output=True)
    db = sqlite3.connect(store)
    settle(db)
    before = os.path.getsize(store)
    run_id, leg = db.execute("SELECT run_id, leg FROM nodes LIMIT 1").fetchone()
    kept = db.execute("SELECT count(*) FROM telemetry_points").fetchone()[0]
    db.execute("DELETE FROM telemetry_series WHERE run_id = ? AND leg = ?", (run_id, leg))
    points = int(3600 * args.hours)
    rng = random.Random(1)
    for name, unit in SERIES:
        cur = db.execute("INSERT INTO telemetry_series (run_id, leg, name, unit) VALUES (?, ?, ?, ?)",
                         (run_id, leg, name, unit))
        sid = cur.lastrowid
        rows = []
        for i in range(points):
            t = i * 1.0 + rng.uniform(0, 0.003)  # a sampler's clock: about every second
            v = {"requests": float(rng.randint(0, 64)), "ratio": rng.random(),
                 "W": 300 + 100 * math.sin(i / 60) + rng.random(), "%": rng.uniform(0, 100)}[unit]
            rows.append((sid, t, v))
        db.executemany("INSERT INTO telemetry_points (series, t, value) VALUES (?, ?, ?)", rows)
    db.commit()
    settle(db)
    after = os.path.getsize(store)
    total = points * len(SERIES)
    grown = after - before
    print(f"store before: {before} bytes ({kept} points of the real leg, then replaced)")
    print(f"added: {len(SERIES)} series x {points} points = {total} points over {args.hours:g} h at 1 s")
    print(f"store after VACUUM: {after} bytes; grew {grown} bytes = {grown / total:.1f} bytes a point, "
          f"{grown / 2**20 / args.hours:.2f} MiB per leg-hour")


if __name__ == "__main__":
    main()
