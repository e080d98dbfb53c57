"""Labeled traffic for the digits model, to watch the quality loop work (see digits-quality-loop.yaml).

Each batch of held digits is predicted and joined with its true labels in one feedback call
(`{"instances", "truth"}`), on a connection of its own, so the Service spreads batches over the
versions it serves as it would spread clients. `--shift invert` sends the digits with their pixels
inverted (16 - x), a distribution the model never saw: its live accuracy drops. Bounded by --rows
and --max-seconds (or Ctrl-C); prints progress every few seconds and one JSON summary line at the end.

    python examples/traffic.py --url http://127.0.0.1:PORT --model digits --shift invert

With --data it sends the given rows instead and needs only the standard library (the end-to-end tests
run it in a pod of the serving image).
"""
from __future__ import annotations

import argparse
import http.client
import json
import time
import urllib.parse

PROGRESS_EVERY_S = 5.0


def digits(shift: str) -> tuple[list[list[int]], list[int]]:
    from modelops_training import data as training_data, sources   # the bundled digits, from the trainer
    raw, label = sources.read_bytes("builtin:digits")
    table = training_data.parse_csv(raw, label, target=None, features=None)
    rows = [[int(v) for v in row] for row in table.features]
    if shift == "invert":
        rows = [[16 - v for v in row] for row in rows]
    return rows, [int(t) for t in table.target]


def send(url: urllib.parse.SplitResult, model: str, rows: list, truth: list) -> tuple[int, dict]:
    """One batch on a new connection; (0, {error}) when the connection itself fails."""
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
    try:
        conn.request("POST", f"/v1/models/{model}:feedback", body=json.dumps({"instances": rows, "truth": truth}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else {})
    except (OSError, http.client.HTTPException) as e:
        return 0, {"error": str(e)}
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="the model's address, e.g. the one `modelops run` prints")
    p.add_argument("--model", default="digits")
    p.add_argument("--shift", choices=("none", "invert"), default="invert")
    p.add_argument("--data", help='JSON {"rows": [[...], ...], "truth": [...]} to send instead of the digits')
    p.add_argument("--rows", type=int, help="rows to send in all, cycling (default: 6000 digits, or --data's rows)")
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--rate", type=float, default=10.0, help="batches per second, at most")
    p.add_argument("--max-seconds", type=float, default=300.0)
    args = p.parse_args(argv)
    if args.data:
        data = json.loads(args.data)
        rows, truth = data["rows"], data["truth"]
    else:
        rows, truth = digits(args.shift)
    args.rows = args.rows or (len(rows) if args.data else 6000)
    if min(args.rows, args.batch, len(rows)) < 1 or args.rate <= 0 or args.max_seconds <= 0:
        p.error("--rows, --batch, --rate, --max-seconds and the rows of --data must be positive")

    url = urllib.parse.urlsplit(args.url)
    statuses: dict[str, int] = {}
    sent = joined = 0
    started = last_progress = time.monotonic()
    try:
        while sent < args.rows and time.monotonic() - started < args.max_seconds:
            at = sent % len(rows)
            n = min(args.batch, args.rows - sent, len(rows) - at)
            status, body = send(url, args.model, rows[at:at + n], truth[at:at + n])
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            sent += n
            joined += int(body.get("joined") or 0)
            if time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                last_progress = time.monotonic()
                print(f"{sent} rows sent, {joined} joined, statuses {statuses}; the replica that answered last: "
                      f"{json.dumps(body.get('metrics') or body.get('error') or body)}", flush=True)
            time.sleep(max(0.0, 1.0 / args.rate - 0.001))
    except KeyboardInterrupt:
        pass   # Ctrl-C ends the traffic; the summary still says what was sent
    print(json.dumps({"rows": sent, "joined": joined, "statuses": statuses,
                      "seconds": round(time.monotonic() - started, 1)}), flush=True)
    return 0 if set(statuses) == {"200"} else 1


if __name__ == "__main__":
    raise SystemExit(main())
