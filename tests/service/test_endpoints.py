"""watch --listen's endpoints through the command: /metrics parsed by
Debian's prometheus_client, /healthz, /readyz (200, and 503 naming the
first job that is not ready), /api/v1/result (the --json document), /api/v1/runs (the state's
history; 404 without state), HEAD,
405 for other methods, 404, --no-job-metrics, workflow.listen and its
FILE:LINE refusal, a refused --listen, a port in use, and nothing left
listening after SIGTERM or SIGINT; /healthz says stuck when a run hangs past
its timeout.

usage: test_endpoints.py DAGGERPOOL FAULTS_PLUGIN_DIR"""
import json
import os
import re
import signal
import socket
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc  # noqa: E402

DP, FAULTS = sys.argv[1], os.path.abspath(sys.argv[2])


def families(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = fam
    return out


def sample(fams, family, name, **labels):
    for s in fams[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    svc.fail("no sample %s%s in %s" % (name, labels, [s for s in fams[family].samples]))


def check_metrics_and_result():
    d = svc.tmpdir()
    cfg = svc.write(os.path.join(d, "seed.cfg"), svc.SEED)
    jl = os.path.join(d, "runs.jsonl")
    w = svc.Watch(DP, cfg, "--interval", "300ms", "--json-lines", jl)
    try:
        assert w.host == "127.0.0.1", "--listen 0 must be loopback, got " + w.host
        # Before any run ends: not ready, healthy.
        w.wait_for("two runs", lambda: w.runs_ended() >= 2)
        st, hdr, body = w.get("/metrics")
        assert st == 200 and hdr["Content-Type"].startswith("text/plain; version=0.0.4"), (st, hdr)
        fams = families(body.decode())
        for name in ["daggerpool_runs", "daggerpool_run_duration_seconds", "daggerpool_last_run_timestamp_seconds",
                     "daggerpool_jobs", "daggerpool_job_attempts", "daggerpool_plugin_reloads",
                     "daggerpool_requeue_after_seconds", "process_cpu_seconds", "process_resident_memory_bytes",
                     "process_open_fds", "process_start_time_seconds"]:
            assert name in fams, "no family %s in /metrics:\n%s" % (name, body.decode())
        runs1 = sample(fams, "daggerpool_runs", "daggerpool_runs_total", outcome="success")
        assert runs1 >= 2, runs1
        assert sample(fams, "daggerpool_jobs", "daggerpool_jobs", status="success") == 4
        assert sample(fams, "daggerpool_jobs", "daggerpool_jobs", status="failed") == 0
        cnt = sample(fams, "daggerpool_run_duration_seconds", "daggerpool_run_duration_seconds_count")
        assert cnt == runs1, (cnt, runs1)
        att = sample(fams, "daggerpool_job_attempts", "daggerpool_job_attempts_total", job="deploy", result="success")
        assert att == runs1, (att, runs1)
        assert abs(sample(fams, "daggerpool_requeue_after_seconds", "daggerpool_requeue_after_seconds") - 0.3) < 1e-9
        # The counters move as runs happen.
        w.wait_for("more runs", lambda: w.runs_ended() >= runs1 + 2)
        fams2 = families(w.get("/metrics")[2].decode())
        assert sample(fams2, "daggerpool_runs", "daggerpool_runs_total", outcome="success") > runs1
        # Health and readiness.
        st, _, body = w.get("/healthz")
        assert st == 200 and body.startswith(b"ok"), (st, body)
        st, _, body = w.get("/readyz")
        assert st == 200 and body.startswith(b"ready"), (st, body)
        # The result: the same document as --json (the writer's indented
        # form, byte for byte), of a run that the JSON lines have too.
        st, hdr, body = w.get("/api/v1/result")
        assert st == 200 and hdr["Content-Type"] == "application/json", (st, hdr)
        doc = json.loads(body)
        assert body == (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode(), body
        lines = []
        for l in open(jl):
            try:
                lines.append(json.loads(l))
            except ValueError:
                pass  # the line being appended right now
        for l in lines:
            l.pop("run"), l.pop("workflow_generation")
        assert doc in lines, "the served result is none of the runs' JSON lines"
        # --no-state: the watch holds the workflow's state while it runs.
        ref = subprocess.run([DP, "run", cfg, "--no-state", "--json", "-"], capture_output=True, check=True).stdout
        assert ref == (json.dumps(json.loads(ref), indent=2, ensure_ascii=False) + "\n").encode()
        assert list(json.loads(ref).keys()) == list(doc.keys())
        # The page's poll and the graph.
        st, _, body = w.get("/api/v1/status")
        s = json.loads(body)
        assert st == 200 and s["workflow"] == "svc" and s["jobs"]["success"] == 4, s
        st, hdr, body = w.get("/graph.svg")
        assert st == 200 and hdr["Content-Type"] == "image/svg+xml" and b"<svg" in body, (st, hdr, body[:200])
        assert b"deploy" in body and b"#b7e4c7" in body, "the SVG lacks a job or the success colour"
        # HEAD: headers only; other methods: 405; unknown paths: 404.
        st, hdr, body = w.get("/metrics", method="HEAD")
        assert st == 200 and body == b"", (st, body)
        for m in ["POST", "PUT", "DELETE", "PATCH"]:
            st, hdr, _ = w.get("/metrics", method=m)
            assert st == 405 and hdr.get("Allow") == "GET, HEAD", (m, st, hdr)
        assert w.get("/nope")[0] == 404
        assert w.get("/api/v1/result/../../etc/passwd")[0] in (400, 404)
        # SIGHUP reloads every plugin: daggerpool_plugin_reloads_total counts it.
        w.proc.send_signal(signal.SIGHUP)

        def reloads():
            f = families(w.get("/metrics")[2].decode())
            return [s.value for s in f["daggerpool_plugin_reloads"].samples
                    if s.labels == {"plugin": "core", "result": "success"} and s.value >= 1]
        w.wait_for("daggerpool_plugin_reloads_total{plugin=core,result=success}", reloads)
        # SIGTERM: exit 130, and nothing listens on the port any more.
        port = w.port
        code = w.stop()
        assert code == 130, (code, w.log()[-4000:])
        assert "Sanitizer" not in w.log() and "runtime error" not in w.log(), w.log()[-4000:]
        s = socket.socket()
        try:
            s.settimeout(5)
            assert s.connect_ex(("127.0.0.1", port)) != 0, "something still listens on %d" % port
        finally:
            s.close()
    finally:
        w.stop(signal.SIGKILL)


def check_not_ready():
    d = svc.tmpdir()
    cfg = svc.write(os.path.join(d, "wait.cfg"), svc.NOT_READY)
    w = svc.Watch(DP, cfg, "--interval", "5s", "--keep-going", "--no-job-metrics")
    try:
        w.wait_for("a run", lambda: w.runs_ended() >= 1)
        st, _, body = w.get("/readyz")
        assert st == 503 and b"first job not ready: migrate (not_ready)" in body, (st, body)
        fams = families(w.get("/metrics")[2].decode())
        assert sample(fams, "daggerpool_jobs", "daggerpool_jobs", status="skipped") == 1
        assert sample(fams, "daggerpool_jobs", "daggerpool_jobs", status="failed") == 1
        assert not [s for s in fams["daggerpool_job_attempts"].samples], "--no-job-metrics still has per-job series"
        doc = json.loads(w.get("/api/v1/result")[2])
        assert doc["outcome"] == "failed" and doc["jobs"]["broken"]["error"] == "disk full", doc
        page = w.get("/")[2].decode()
        assert 'data-job="migrate" data-status="not_ready"' in page, page
        assert 'data-job="broken" data-status="failed"' in page and "disk full" in page
        assert b"<svg" in w.get("/graph.svg")[2]
        # SIGINT too: exit 130, the port closed.
        port = w.port
        assert w.stop(signal.SIGINT) == 130, w.log()[-4000:]
        s = socket.socket()
        try:
            s.settimeout(5)
            assert s.connect_ex(("127.0.0.1", port)) != 0, "something still listens on %d" % port
        finally:
            s.close()
    finally:
        w.stop()


def check_config_and_refusals():
    d = svc.tmpdir()
    # workflow.listen serves; the flag overrides it.
    cfg = svc.write(os.path.join(d, "listen.cfg"), svc.SEED.replace('timeout = "30s";', 'timeout = "30s"; listen = ":0";'))
    w = svc.Watch(DP, cfg, "--interval", "1s", listen=None)
    try:
        assert w.host == "127.0.0.1"
        assert w.get("/healthz")[0] == 200
    finally:
        w.stop()
    # A bad workflow.listen: refused with its line, exit 2, by validate too.
    bad = svc.write(os.path.join(d, "bad.cfg"), 'workflow: {\n  name = "x";\n  listen = "localhost:99999";\n};\n'
                    'jobs = ({ name = "a"; type = "core.noop"; });\n')
    for cmd in (["watch", bad], ["validate", bad]):
        p = subprocess.run([DP, *cmd], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and re.search(r"bad\.cfg:3: workflow\.listen: .*'99999' is not a port", p.stderr), \
            (cmd, p.returncode, p.stderr)
    for arg, why in [("nonsense", "is not a port"), ("example.com:80", "not an IPv4 address"),
                     ("::1:80", "IPv6 address goes in brackets"), ("1.2.3.4:", "is not a port")]:
        p = subprocess.run([DP, "watch", cfg, "--listen", arg], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and why in p.stderr, (arg, p.returncode, p.stderr)
    # A port in use: exit 2 before anything runs, saying so.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        port = s.getsockname()[1]
        p = subprocess.run([DP, "watch", cfg, "--listen", str(port)], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "Address already in use" in p.stderr and "run started" not in p.stderr, \
            (p.returncode, p.stderr)
    finally:
        s.close()
    # IPv6 loopback, and an address beyond loopback only when written out.
    w = svc.Watch(DP, cfg, "--interval", "1s", listen="[::1]:0")
    try:
        assert w.host == "::1" and w.get("/healthz")[0] == 200
    finally:
        w.stop()
    w = svc.Watch(DP, cfg, "--interval", "1s", listen="0.0.0.0:0")
    try:
        assert "reachable beyond this machine" in w.log(), w.log()
    finally:
        w.stop()


def check_stuck():
    """/healthz: 200 while the run is within its timeout, 503 once it has
    gone on past it by more than the grace (one interval, at least 1 s): a
    job that ignores cancellation (the faults test plugin) holds the run."""
    d = svc.tmpdir()
    cfg = svc.write(os.path.join(d, "stuck.cfg"),
                    'workflow = { name = "stuck"; timeout = "1s"; plugin_path = [ "%s" ]; };\n'
                    'jobs = ( { name = "hang"; type = "faults.sleep"; params = { duration = "1h"; }; } );\n'
                    % FAULTS)
    w = svc.Watch(DP, cfg, "--interval", "300ms")
    try:
        st, _, body = w.wait_for("/healthz: the run under way", lambda: (lambda r: r if b"under way" in r[2] else None)(
            w.get("/healthz")), timeout=30)
        assert st == 200, (st, body)
        st, _, body = w.wait_for("/healthz to say stuck", lambda: (lambda r: r if r[0] == 503 else None)(
            w.get("/healthz")), timeout=30)
        assert b"stuck: run 1 started" in body and b"past its timeout of 1.0 s" in body, body
        st, _, body = w.get("/readyz")
        assert st == 503 and b"no run has ended yet" in body, (st, body)
    finally:
        w.stop(signal.SIGKILL)


def check_runs():
    """/api/v1/runs: the durable state's run history, oldest first; 404
    with --no-state."""
    d = svc.tmpdir()
    cfg = svc.write(os.path.join(d, "seed.cfg"), svc.SEED)
    state = os.path.join(d, "state.db")
    w = svc.Watch(DP, cfg, "--interval", "300ms", "--state", state)
    try:
        w.wait_for("three runs", lambda: w.runs_ended() >= 3)
        st, hdr, body = w.get("/api/v1/runs")
        assert st == 200 and hdr["Content-Type"] == "application/json", (st, hdr, body)
        runs = json.loads(body)["runs"]
        assert len(runs) >= 3, runs
        ids = [r["id"] for r in runs]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
        done = [r for r in runs if r["outcome"] is not None]
        assert len(done) >= 3, runs
        for r in done:
            assert r["command"] == "watch" and r["outcome"] == "success", r
            assert r["jobs"] == 4 and r["success"] == 4 and r["failed"] == 0, r
            assert r["end_ms"] >= r["start_ms"] and r["duration_ms"] == r["end_ms"] - r["start_ms"], r
        # It moves as runs happen.
        n = len(done)
        w.wait_for("more runs in /api/v1/runs",
                   lambda: len([r for r in json.loads(w.get("/api/v1/runs")[2])["runs"] if r["outcome"]]) > n)
    finally:
        assert w.stop() == 130
    w = svc.Watch(DP, cfg, "--interval", "300ms", "--no-state")
    try:
        w.wait_for("a run", lambda: w.runs_ended() >= 1)
        st, _, body = w.get("/api/v1/runs")
        assert st == 404 and b"no durable state" in body, (st, body)
    finally:
        w.stop()


check_metrics_and_result()
check_runs()
check_not_ready()
check_config_and_refusals()
check_stuck()
print("1 passed, 0 failed")
