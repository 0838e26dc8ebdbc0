#!/usr/bin/env python3
"""What 1 000 concurrent /metrics scrapes cost the runs of
`daggerpool watch --listen` (issue 17): the same workflow reconciled back to
back (--interval 1ms) for SECONDS without load, then for SECONDS while 1 000
clients on loopback scrape /metrics in a loop (each: connect, GET, read to
the end, again), then without load again. Prints the runs' durations (from
the log's "run ended: ... in N ms" lines) per phase, the scrapes served and
their latency, and the CPU time the server's threads (MHD-worker) and the
rest of watch took in each phase.

--pin: watch runs on CPU 0 only and the scraping clients (this process) on
CPU 1 only (as `taskset -c` would), so that the figure shows what serving
the scrapes costs the runs, not what the clients themselves take from a
2-core machine (a real deployment's Prometheus is on another machine).

usage: bench/service_load.py [--pin] DAGGERPOOL GEN_WORKFLOW [SECONDS (30)] [CLIENTS (1000)] [JOBS (500)]
       e.g. bench/service_load.py --pin build/release/bin/daggerpool build/release/bin/gen_workflow"""
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

ARGS = sys.argv[1:]
PIN = "--pin" in ARGS
if PIN:
    ARGS.remove("--pin")
DP, GEN = ARGS[0:2]
SECONDS = float(ARGS[2]) if len(ARGS) > 2 else 30
CLIENTS = int(ARGS[3]) if len(ARGS) > 3 else 1000
JOBS = ARGS[4] if len(ARGS) > 4 else "500"


def durations(path):
    with open(path, errors="replace") as f:
        return [int(m.group(1)) for m in re.finditer(r"run ended: \w+ in (\d+) ms", f.read())]


def cpu_ticks(pid):
    """(server threads, the rest) of watch's CPU time so far, in clock ticks."""
    server = rest = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        if name.startswith("MHD"):
            server += ticks
        else:
            rest += ticks
    return server, rest


async def scraper(host, port, stop, counts, lat):
    req = b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    while not stop.is_set():
        try:
            t0 = time.monotonic()
            r, w = await asyncio.open_connection(host, port)
            w.write(req)
            await w.drain()
            body = await r.read()
            w.close()
            lat.append(time.monotonic() - t0)
            counts["ok" if body.startswith(b"HTTP/1.1 200") else "bad"] += 1
        except OSError:
            counts["error"] += 1
            await asyncio.sleep(0.01)


async def load(host, port, seconds):
    stop = asyncio.Event()
    counts = {"ok": 0, "bad": 0, "error": 0}
    lat = []
    tasks = [asyncio.create_task(scraper(host, port, stop, counts, lat)) for _ in range(CLIENTS)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait(tasks, timeout=30)
    return counts, sorted(lat)


def phase(name, durs, cpu):
    durs = sorted(durs)
    p95 = durs[int(len(durs) * 0.95) - 1] if durs else float("nan")
    tck = os.sysconf("SC_CLK_TCK")
    print("%-14s runs %5d  median %7.1f ms  p95 %7.1f ms  mean %7.1f ms  CPU: server %5.1f s, the rest %5.1f s" %
          (name, len(durs), statistics.median(durs) if durs else float("nan"), p95,
           statistics.mean(durs) if durs else float("nan"), cpu[0] / tck, cpu[1] / tck))


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
                         stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                         preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if PIN else None)
    if PIN:
        os.sched_setaffinity(0, {1})
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
        load0 = os.getloadavg()[0]
        marks = [len(durations(log))]
        cpus = [cpu_ticks(p.pid)]
        time.sleep(SECONDS)
        marks.append(len(durations(log)))
        cpus.append(cpu_ticks(p.pid))
        counts, lat = asyncio.run(load("127.0.0.1", port, SECONDS))
        marks.append(len(durations(log)))
        cpus.append(cpu_ticks(p.pid))
        time.sleep(SECONDS)
        marks.append(len(durations(log)))
        cpus.append(cpu_ticks(p.pid))
        runs = durations(log)
        used = [tuple(b - a for a, b in zip(cpus[i], cpus[i + 1])) for i in range(3)]
        print("watch --interval 1ms on %s core.noop jobs (random shape, -j 2); %d s per phase; %d scraping clients; %s"
              "; load average %.1f at the start, %.1f at the end"
              % (JOBS, SECONDS, CLIENTS, "watch on CPU 0, the clients on CPU 1" if PIN else "not pinned", load0,
                 os.getloadavg()[0]))
        phase("no load", runs[marks[0]:marks[1]], used[0])
        phase("1000 scrapers" if CLIENTS == 1000 else "%d scrapers" % CLIENTS, runs[marks[1]:marks[2]], used[1])
        phase("no load again", runs[marks[2]:marks[3]], used[2])
        print("scrapes: %d answered 200, %d other, %d connection errors (%.0f/s); latency median %.1f ms, p95 %.1f ms"
              % (counts["ok"], counts["bad"], counts["error"], counts["ok"] / SECONDS,
                 1000 * statistics.median(lat) if lat else float("nan"),
                 1000 * lat[int(len(lat) * 0.95) - 1] if lat else float("nan")))
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        shutil.rmtree(d, ignore_errors=True)


main()
