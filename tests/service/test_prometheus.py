"""A real Prometheus (Debian's) scrapes watch --listen on loopback: through
its query API the series exist and move as runs happen. Prometheus runs
on 127.0.0.1 with its config and data in the test's temp dir, and is
stopped by its pid.

usage: test_prometheus.py DAGGERPOOL PROMETHEUS"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc  # noqa: E402

DP, PROM = sys.argv[1:3]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def query(base, q):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=10) as r:
        doc = json.load(r)
    assert doc["status"] == "success", doc
    return {json.dumps(v["metric"], sort_keys=True): float(v["value"][1]) for v in doc["data"]["result"]}


def main():
    d = svc.tmpdir()
    cfg = svc.write(os.path.join(d, "seed.cfg"), svc.SEED)
    w = svc.Watch(DP, cfg, "--interval", "300ms")
    prom = None
    try:
        port = free_port()
        base = "http://127.0.0.1:%d" % port
        svc.write(os.path.join(d, "prometheus.yml"),
                  "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                  "scrape_configs:\n  - job_name: daggerpool\n    static_configs:\n"
                  "      - targets: ['%s:%d']\n" % (w.host, w.port))
        plog = open(os.path.join(d, "prometheus.log"), "w")
        prom = subprocess.Popen([PROM, "--config.file=" + os.path.join(d, "prometheus.yml"),
                                 "--storage.tsdb.path=" + os.path.join(d, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                                stdout=plog, stderr=plog, start_new_session=True, cwd=d)

        def up():
            try:
                return query(base, 'up{job="daggerpool"}') and list(query(base, 'up{job="daggerpool"}').values()) == [1.0]
            except OSError:
                return False
        w.wait_for("Prometheus to scrape watch (up == 1)", up, timeout=90)

        def runs():
            r = query(base, 'daggerpool_runs_total{job="daggerpool",outcome="success"}')
            return list(r.values())[0] if r else None
        first = w.wait_for("daggerpool_runs_total in Prometheus", runs, timeout=60)
        # Every series the issue names is there. The job label of the
        # per-job series meets Prometheus's own (the scrape job's name):
        # without honor_labels it is kept as exported_job.
        for q in ['daggerpool_run_duration_seconds_count', 'daggerpool_last_run_timestamp_seconds',
                  'daggerpool_jobs{status="success"}', 'daggerpool_job_attempts_total{exported_job="deploy",result="success"}',
                  'daggerpool_requeue_after_seconds', 'process_resident_memory_bytes', 'process_cpu_seconds_total',
                  'process_open_fds', 'process_start_time_seconds']:
            r = w.wait_for(q, lambda: query(base, q), timeout=30)
            assert len(r) == 1, (q, r)
        assert list(query(base, 'daggerpool_jobs{status="success"}').values()) == [4.0]
        # They move as runs happen: counters up, the last run's time later.
        t1 = list(query(base, "daggerpool_last_run_timestamp_seconds").values())[0]
        w.wait_for("daggerpool_runs_total to grow", lambda: (runs() or 0) >= first + 3, timeout=60)
        t2 = list(query(base, "daggerpool_last_run_timestamp_seconds").values())[0]
        assert t2 > t1, (t1, t2)
        rate = w.wait_for("a rate of runs", lambda: query(base, 'rate(daggerpool_runs_total{outcome="success"}[10s])'),
                          timeout=30)
        assert list(rate.values())[0] > 0, rate
        print("Prometheus saw runs_total go from %g to %g" % (first, runs()))
    finally:
        if prom:
            prom.send_signal(signal.SIGTERM)
            try:
                prom.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(prom.pid, signal.SIGKILL)
                prom.wait()
        w.stop()
    print("1 passed, 0 failed")


main()
