"""Seeded generator of the Zstd benchmark's synthetic corpora.

* ``telemetry.jsonl``: JSON telemetry lines (about 1 KB each) of four event
  types with different schemas (``http_request``, ``db_query``,
  ``cache_stats``, ``error``), the ``event`` field naming the record type;
* numeric columns, little-endian, one raw file each: ``counter_u32.bin``
  (monotonic request counter), ``timestamp_i64.bin`` (milliseconds with
  jitter), ``gauge_i32.bin`` (bounded random walk), ``category_i32.bin``
  (few distinct values, runs), ``sensor_f64.bin`` (random walk rounded to 0.01)
  and ``columns.npz`` holding all five.

Nothing here is shipped or downloaded; the files are written outside the repo.

Command::

    python benchmarks/gen_zstd_data.py --out /tmp/precodec-zstd-data --records 20000 --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

SERVICES = ["checkout", "catalog", "search", "auth", "payments", "inventory", "shipping", "reviews"]
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1"]
PATHS = ["/api/v1/cart/{}", "/api/v1/items/{}", "/api/v2/search?q={}", "/api/v1/users/{}/orders",
         "/health", "/api/v1/checkout/{}/confirm", "/static/img/{}.webp"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
          "okhttp/4.12.0", "python-requests/2.32.3", "curl/8.8.0"]
TABLES = ["orders", "order_items", "users", "sessions", "inventory", "prices"]
ERRORS = ["TimeoutError: upstream request timed out after 3000 ms",
          "KeyError: 'customer_id'", "ConnectionResetError: [Errno 104] Connection reset by peer",
          "ValueError: invalid literal for int() with base 10: 'null'"]


def _hex(rng: np.random.Generator, n: int) -> str:
    return rng.bytes(n).hex()


def telemetry_records(n: int, *, seed: int = 1) -> list[bytes]:
    """``n`` JSON lines (bytes, newline included), seeded."""
    rng = np.random.default_rng(seed)
    t0 = 1_714_560_000_000
    out = []
    ts = t0
    for i in range(n):
        ts += int(rng.exponential(40))
        kind = rng.choice(["http_request", "db_query", "cache_stats", "error"], p=[0.6, 0.25, 0.1, 0.05])
        svc = SERVICES[int(rng.integers(len(SERVICES)))]
        base = {
            "ts": f"2024-05-01T{(ts // 3_600_000) % 24:02d}:{(ts // 60_000) % 60:02d}:{(ts // 1000) % 60:02d}."
                  f"{ts % 1000:03d}Z",
            "event": str(kind),
            "service": svc,
            "host": f"{svc}-{int(rng.integers(1, 24)):02d}.prod.internal",
            "region": REGIONS[int(rng.integers(len(REGIONS)))],
            "version": f"2.{int(rng.integers(3, 6))}.{int(rng.integers(0, 12))}",
            "trace_id": _hex(rng, 16),
            "span_id": _hex(rng, 8),
        }
        if kind == "http_request":
            path = PATHS[int(rng.integers(len(PATHS)))].format(int(rng.integers(1, 100000)))
            base.update({
                "method": ["GET", "GET", "GET", "POST", "PUT", "DELETE"][int(rng.integers(6))],
                "path": path,
                "status": int(rng.choice([200, 200, 200, 200, 201, 204, 301, 304, 400, 404, 500])),
                "latency_ms": round(float(rng.lognormal(3, 0.8)), 2),
                "bytes_out": int(rng.lognormal(8, 1.2)),
                "user_agent": AGENTS[int(rng.integers(len(AGENTS)))],
                "client_ip": f"10.{int(rng.integers(256))}.{int(rng.integers(256))}.{int(rng.integers(256))}",
                "user_id": f"u_{int(rng.integers(1, 500000)):07d}",
                "headers": {"accept": "application/json", "accept-encoding": "gzip, br, zstd",
                            "x-request-id": _hex(rng, 12), "cache-control": "no-cache"},
                "metrics": {"db_calls": int(rng.poisson(3)), "cache_hits": int(rng.poisson(5)),
                            "cache_misses": int(rng.poisson(1)), "cpu_ms": round(float(rng.gamma(2, 3)), 3)},
            })
        elif kind == "db_query":
            tbl = TABLES[int(rng.integers(len(TABLES)))]
            base.update({
                "db": "postgres", "cluster": f"pg-{int(rng.integers(1, 4))}",
                "statement": f"SELECT id, status, created_at, updated_at FROM {tbl} WHERE customer_id = $1 "
                             f"AND created_at > $2 ORDER BY created_at DESC LIMIT {int(rng.choice([10, 50, 100]))}",
                "rows": int(rng.poisson(20)), "duration_ms": round(float(rng.lognormal(1.5, 1)), 3),
                "pool": {"size": 32, "in_use": int(rng.integers(0, 32)), "waiting": int(rng.poisson(0.3))},
            })
        elif kind == "cache_stats":
            base.update({
                "cache": "redis", "node": f"redis-{int(rng.integers(1, 7))}",
                "stats": {k: int(rng.integers(0, 10**6)) for k in
                          ("hits", "misses", "evictions", "expired", "keys", "used_memory_kb", "connected_clients")},
                "hit_rate": round(float(rng.beta(20, 2)), 4),
            })
        else:
            err = ERRORS[int(rng.integers(len(ERRORS)))]
            base.update({
                "level": "ERROR", "message": err,
                "stack": [f'File "/srv/app/{svc}/handlers.py", line {int(rng.integers(10, 900))}, in handle',
                          f'File "/srv/app/lib/http/client.py", line {int(rng.integers(10, 400))}, in request',
                          f'File "/usr/lib/python3.11/socket.py", line {int(rng.integers(10, 900))}, in recv_into'],
                "retry": int(rng.integers(0, 4)),
            })
        out.append(json.dumps(base, separators=(",", ":")).encode() + b"\n")
    return out


def numeric_columns(rows: int, *, seed: int = 2) -> dict[str, np.ndarray]:
    """Five typical telemetry columns of ``rows`` values each, seeded."""
    rng = np.random.default_rng(seed)
    inc = rng.poisson(3, rows) + (rng.random(rows) < 0.001) * rng.integers(100, 5000, rows)
    counter = (np.cumsum(inc) + 1_000_000).astype(np.uint32)
    ts = (1_714_560_000_000 + np.cumsum(1000 + rng.integers(-3, 4, rows))).astype(np.int64)
    gauge = np.clip(np.cumsum(rng.integers(-20, 21, rows)), -50_000, 50_000).astype(np.int32) + 200_000
    runs = rng.geometric(0.02, rows // 10 + 1)
    cats = rng.choice([3, 7, 11, 200, 404], size=len(runs), p=[0.5, 0.2, 0.15, 0.1, 0.05])
    category = np.repeat(cats, runs)[:rows].astype(np.int32)
    sensor = np.round(20 + np.cumsum(rng.normal(0, 0.05, rows)), 2).astype(np.float64)
    return {"counter_u32": counter, "timestamp_i64": ts, "gauge_i32": gauge.astype(np.int32),
            "category_i32": category, "sensor_f64": sensor}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/precodec-zstd-data")
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "telemetry.jsonl"), "wb") as f:
        f.writelines(telemetry_records(a.records, seed=a.seed))
    cols = numeric_columns(a.rows, seed=a.seed + 1)
    for name, arr in cols.items():
        arr.astype(arr.dtype.newbyteorder("<")).tofile(os.path.join(a.out, f"{name}.bin"))
    np.savez(os.path.join(a.out, "columns.npz"), **cols)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
