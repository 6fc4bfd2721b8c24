"""Sandbox throughput: 16 keep-alive clients against `bulksync sandbox --latency-ms 50`.

Target (issue 3): at least 95% of the bound 16 / 0.05 s = 320 answers/s.
The sandbox runs in its own process, as users run it; the clients are plain
http.client connections in threads so the client side is not what is measured.

    .venv/bin/python bench/sandbox_throughput.py [--clients 16] [--latency-ms 50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--latency-ms", type=float, default=50)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()

    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPTASK_")}
    proc = subprocess.Popen([sys.executable, "-m", "bulksync", "sandbox", "--token", "bench",
                             "--latency-ms", str(args.latency_ms)],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    url = proc.stdout.readline().split()[-1]
    host, port = url.split("//")[1].split("/")[0].split(":")
    body = json.dumps({"description": "bench", "requesterChannel": "C076K6Y74L1",
                       "formId": "6a1f4c2e-93b7-4d58-a0e1-7c2b9f3d5e84"})
    headers = {"Authorization": "Api-Token bench", "Content-Type": "application/json"}
    counts = [0] * args.clients
    stop = time.monotonic() + args.seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(host, int(port))
        while time.monotonic() < stop:
            conn.request("POST", "/api/v2/public/ticket", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 201, response.status
            counts[i] += 1
        conn.close()

    try:
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait()
    total = sum(counts)
    bound = args.clients / (args.latency_ms / 1000)
    rate = total / elapsed
    print(f"clients={args.clients} latency={args.latency_ms:.0f}ms answers={total} "
          f"seconds={elapsed:.2f} rate={rate:.1f}/s bound={bound:.0f}/s ratio={rate / bound:.3f}")


if __name__ == "__main__":
    main()
