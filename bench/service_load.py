#!/usr/bin/env python3
"""What 1 000 concurrent /metrics scrapes cost the runs of
`daggerpool watch --listen` (issue 17): the same workflow reconciled back to
back (--interval 1ms) for SECONDS without load, then for SECONDS while 1 000
clients on loopback scrape /metrics in a loop (each: connect, GET, read to
the end, again), then without load again. Prints the runs' durations (from
the log's "run ended: ... in N ms" lines) per phase and the scrapes served.

usage: bench/service_load.py DAGGERPOOL GEN_WORKFLOW [SECONDS (30)] [CLIENTS (1000)] [JOBS (500)]
       e.g. bench/service_load.py build/release/bin/daggerpool build/release/bin/gen_workflow"""
import asyncio
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

DP, GEN = sys.argv[1:3]
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 30
CLIENTS = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
JOBS = sys.argv[5] if len(sys.argv) > 5 else "500"


def durations(path):
    with open(path, errors="replace") as f:
        return [int(m.group(1)) for m in re.finditer(r"run ended: \w+ in (\d+) ms", f.read())]


async def scraper(host, port, stop, counts):
    req = b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    while not stop.is_set():
        try:
            r, w = await asyncio.open_connection(host, port)
            w.write(req)
            await w.drain()
            body = await r.read()
            w.close()
            counts["ok" if body.startswith(b"HTTP/1.1 200") else "bad"] += 1
        except OSError:
            counts["error"] += 1
            await asyncio.sleep(0.01)


async def load(host, port, seconds):
    stop = asyncio.Event()
    counts = {"ok": 0, "bad": 0, "error": 0}
    tasks = [asyncio.create_task(scraper(host, port, stop, counts)) for _ in range(CLIENTS)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait(tasks, timeout=30)
    return counts


def phase(name, durs):
    durs = sorted(durs)
    p95 = durs[int(len(durs) * 0.95) - 1] if durs else float("nan")
    print("%-14s runs %5d  median %7.1f ms  p95 %7.1f ms  mean %7.1f ms" %
          (name, len(durs), statistics.median(durs) if durs else float("nan"), p95,
           statistics.mean(durs) if durs else float("nan")))


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
    d = tempfile.mkdtemp(prefix="dp-svc-bench-")
    cfg = os.path.join(d, "w.cfg")
    with open(cfg, "w") as f:
        subprocess.run([GEN, "-n", JOBS, "-j", "2"], stdout=f, check=True)
    log = os.path.join(d, "watch.err")
    err = open(log, "w")
    p = subprocess.Popen([DP, "watch", cfg, "--interval", "1ms", "--listen", "0"],
                         stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        port = None
        for _ in range(600):
            with open(log, errors="replace") as f:
                m = re.search(r"serving http://127\.0\.0\.1:(\d+)/", f.read())
            if m:
                port = int(m.group(1))
                break
            time.sleep(0.05)
        assert port, "watch does not listen"
        time.sleep(2)  # warm up
        marks = [len(durations(log))]
        time.sleep(SECONDS)
        marks.append(len(durations(log)))
        counts = asyncio.run(load("127.0.0.1", port, SECONDS))
        marks.append(len(durations(log)))
        time.sleep(SECONDS)
        marks.append(len(durations(log)))
        runs = durations(log)
        print("watch --interval 1ms on %s core.noop jobs (random shape, -j 2); %d s per phase; %d scraping clients"
              % (JOBS, SECONDS, CLIENTS))
        phase("no load", runs[marks[0]:marks[1]])
        phase("1000 scrapers" if CLIENTS == 1000 else "%d scrapers" % CLIENTS, runs[marks[1]:marks[2]])
        phase("no load again", runs[marks[2]:marks[3]])
        print("scrapes: %d answered 200, %d other, %d connection errors (%.0f/s)" %
              (counts["ok"], counts["bad"], counts["error"], counts["ok"] / SECONDS))
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        shutil.rmtree(d, ignore_errors=True)


main()
