#!/usr/bin/env python3
"""Isolation, fault containment and security, through the daggerpool command.

Each test writes a workflow into a temporary directory, runs the command and
checks the exit code, the JSON result and, where it matters, the time taken
(bounds are generous: the machines are shared and may run sanitizers).

  test_isolation.py --daggerpool BIN --faults-dir DIR [--sanitize address|thread|""] [-k NAME]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ARGS = None
TMP = None
GRACE = 1.0  # DP_ISOLATE_GRACE_MS
SLACK = 8.0  # generous: shared machines, sanitizers


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def run(cfg_text, *extra, name="wf.cfg", expect=None, timeout=120, plugin_dirs=None):
    """Runs `daggerpool run` on cfg_text; returns (code, result dict or None, stderr, seconds)."""
    cfg = write(name, cfg_text)
    out = os.path.join(TMP, name + ".json")
    if os.path.exists(out):
        os.unlink(out)
    dirs = plugin_dirs if plugin_dirs is not None else [ARGS.faults_dir]
    cmd = [ARGS.daggerpool, "run", cfg, "--json", out]
    for d in dirs:
        cmd += ["--plugin-path", d]
    cmd += list(extra)
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    secs = time.monotonic() - t0
    res = None
    if os.path.exists(out):
        with open(out, "rb") as f:
            res = json.loads(f.read().decode("utf-8"))
    if expect is not None and p.returncode != expect:
        raise AssertionError("exit %d, expected %d\nstderr:\n%s" % (p.returncode, expect, p.stderr.decode(errors="replace")[-3000:]))
    return p.returncode, res, p.stderr.decode("utf-8", errors="replace"), secs


def job(res, name):
    return res["jobs"][name]


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def wf(jobs, defaults='isolation = "process";', workflow='timeout = "60s";'):
    return "workflow: { name = \"t\"; %s };\ndefaults = { %s };\njobs = (\n%s\n);\n" % (
        workflow, defaults, ",\n".join(jobs))


# ---- process isolation: each fault contained and reported with its cause ----

def test_crashes_contained():
    jobs = [
        '{ name = "segv"; type = "faults.segv"; }',
        '{ name = "segv_check"; type = "faults.segv"; params = { in = "check"; }; }',
        '{ name = "abort"; type = "faults.abort"; }',
        '{ name = "exit3"; type = "faults.exit"; params = { status = 3; }; }',
        '{ name = "after"; type = "core.noop"; }',
    ]
    code, res, err, _ = run(wf(jobs), "--keep-going", expect=1)
    check(job(res, "segv")["error"] == "plugin 'faults' crashed with SIGSEGV in job 'segv'", job(res, "segv"))
    check(job(res, "segv_check")["error"] == "plugin 'faults' crashed with SIGSEGV in job 'segv_check'",
          job(res, "segv_check"))
    check(job(res, "abort")["error"] == "plugin 'faults' crashed with SIGABRT in job 'abort'", job(res, "abort"))
    check(job(res, "exit3")["error"] == "plugin 'faults' exited with status 3 in job 'exit3'", job(res, "exit3"))
    for n in ("segv", "segv_check", "abort", "exit3"):
        check(job(res, n)["status"] == "failed" and job(res, n)["attempts"] == 1, (n, job(res, n)))
    check(job(res, "after")["status"] == "success", job(res, "after"))


def test_crash_retried():
    code, res, _, _ = run(wf(['{ name = "segv"; type = "faults.segv"; retries = 2; backoff = { initial = 10; }; }']),
                          expect=1)
    j = job(res, "segv")
    check(j["attempts"] == 3 and "crashed with SIGSEGV" in j["error"], j)


def test_crash_in_create_at_validation():
    # A create that crashes is found when the job is added (params check),
    # in a child too: refused with exit 2, the host survives to say so.
    code, res, err, _ = run(wf(['{ name = "c"; type = "faults.segv"; params = { in = "create"; }; }']), expect=2)
    check("plugin 'faults' crashed with SIGSEGV in job 'c'" in err, err)


def test_hang_killed_on_job_timeout():
    jobs = ['{ name = "spin"; type = "faults.spin"; timeout = "1s"; }',
            '{ name = "deaf"; type = "faults.sleep"; timeout = "1s"; }']
    code, res, err, secs = run(wf(jobs), "--keep-going", expect=1)
    for n in ("spin", "deaf"):
        j = job(res, n)
        check(j["status"] == "failed" and j["error"] == "timed out after 1s", j)
        check(1000 <= j["duration_ms"] <= (1 + 2 * GRACE + SLACK) * 1000, j)
    check(secs < 1 + 2 * GRACE + SLACK, secs)


def test_hang_killed_on_global_timeout():
    code, res, err, secs = run(wf(['{ name = "deaf"; type = "faults.sleep"; }',
                                   '{ name = "spin"; type = "faults.spin"; }'],
                                  workflow='timeout = "1s";'), expect=4)
    check(res["outcome"] == "timeout" and res["timed_out"], res)
    check(job(res, "deaf")["status"] == "unknown" and job(res, "spin")["status"] == "unknown", res["jobs"])
    check(secs < 1 + 2 * GRACE + SLACK, secs)


def test_hang_killed_on_probe_timeout():
    # The readiness check never returns; the probe timeout ends it.
    code, res, err, secs = run(wf(['{ name = "p"; type = "faults.sleep"; timeout = "60s"; params = { in = "check"; }; '
                                   'readiness = { probe_timeout = "1s"; }; }']), expect=1)
    j = job(res, "p")
    check(j["status"] == "failed" and "probe timed out after 1s" in j["error"], j)
    check(secs < 1 + 2 * GRACE + SLACK, secs)


def comm(pid):
    try:
        with open("/proc/%s/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def test_cancel_kills_child():
    cfg = write("cancel.cfg", wf(['{ name = "deaf"; type = "faults.sleep"; }', '{ name = "spin"; type = "faults.spin"; }']))
    out = os.path.join(TMP, "cancel.json")
    p = subprocess.Popen([ARGS.daggerpool, "run", cfg, "--json", out, "--plugin-path", ARGS.faults_dir],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Each attempt runs in a worker (holding stdin/out/err, the two sockets
    # and the plugin) whose parent is a zygote of the plugin's version: it
    # holds stdin/out/err, its copy of the plugin (fd 5), its socket to the
    # host and its signalfd (both above 9), none of the attempt's. The warm
    # runner that started them is a child of the host too: it holds
    # stdin/out/err and its socket to the host (fd 9), nothing of the
    # attempts' and none of its spares' sockets (the host holds those: up to
    # two spares, supervisors holding only stdin/out/err, whose worker waits
    # for an attempt on one). Looked at until both attempts run (a zygote
    # loads the plugin before it forks its first worker: under a sanitizer
    # on a loaded machine that can take over a second), each look checked.
    def look():
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], stdout=subprocess.PIPE).stdout.split()
        warm = [k for k in kids if comm(k.decode()) == "dp-warm-runner"]
        check(len(warm) == 1, (kids, [comm(k.decode()) for k in kids]))
        fds = sorted(int(f) for f in os.listdir("/proc/%s/fd" % warm[0].decode()))
        check(fds == [0, 1, 2, 9], (warm, fds))
        kids = [k for k in kids if k not in warm]
        check(2 <= len(kids) <= 4, kids)
        attempts = 0
        for k in kids:
            fds = sorted(int(f) for f in os.listdir("/proc/%s/fd" % k.decode()))
            zygote = comm(k.decode()) == "dp-zygote"
            if zygote:
                check(len(fds) == 6 and fds[:4] == [0, 1, 2, 5] and min(fds[4:]) >= 10, (k, fds))
            else:
                check(fds == [0, 1, 2], (k, fds))
            workers = subprocess.run(["pgrep", "-P", k], stdout=subprocess.PIPE).stdout.split()
            if zygote and not workers:
                continue  # loading the plugin, or between attempts
            check(len(workers) == 1, (k, workers))
            fds = sorted(int(f) for f in os.listdir("/proc/%s/fd" % workers[0].decode()))
            if fds == [0, 1, 2, 3, 4, 5]:
                attempts += 1
            else:
                check(len(fds) == 4 and fds[:3] == [0, 1, 2], (workers[0], fds))  # the spare
        return kids, attempts

    # A look may also catch a process mid-way (a clone of the warm runner
    # not yet renamed, a zygote between two steps): only the last look's
    # failure counts.
    time.sleep(0.5)
    end = time.monotonic() + SLACK
    while True:
        try:
            kids, attempts = look()
            failure = None
        except (AssertionError, OSError) as ex:
            attempts, failure = 0, ex
        if attempts == 2 or time.monotonic() >= end:
            break
        time.sleep(0.1)
    if failure:
        raise failure
    check(attempts == 2, (kids, attempts))
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    try:
        p.communicate(timeout=2 * GRACE + SLACK)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("the command did not stop after SIGINT")
    secs = time.monotonic() - t0
    check(p.returncode == 130, p.returncode)
    check(secs < 2 * GRACE + SLACK, secs)
    with open(out) as f:
        res = json.load(f)
    check(res["outcome"] == "cancelled", res["outcome"])
    # No runner left behind.
    left = subprocess.run(["pgrep", "-f", "daggerpool-job-runner", "-P", str(p.pid)], stdout=subprocess.PIPE)
    check(left.stdout.strip() == b"", left.stdout)


def test_huge_message_truncated():
    for mode in ("process", "none"):
        code, res, _, _ = run(wf(['{ name = "huge"; type = "faults.huge_error"; }'],
                                 defaults='isolation = "%s";' % mode), expect=1)
        e = job(res, "huge")["error"]
        check(e.startswith("HUGE:"), e[:80])
        check(e.endswith("... [truncated: 10485760 bytes in all]"), (mode, e[-80:]))
        check(len(e) < 9000, (mode, len(e)))


def test_bad_status_reported():
    for mode in ("process", "none"):
        code, res, _, _ = run(wf(['{ name = "bad"; type = "faults.bad_status"; }'],
                                 defaults='isolation = "%s";' % mode), expect=1)
        e = job(res, "bad")["error"]
        check(e == "faults.bad_status: run returned 42, which is not a dp_plugin_result", (mode, e))
        check(job(res, "bad")["attempts"] == 1, job(res, "bad"))


def test_null_state_handled():
    for mode in ("process", "none"):
        code, res, _, _ = run(wf(['{ name = "n"; type = "faults.null_state"; }',
                                  '{ name = "after"; type = "core.noop"; depends_on = [ "n" ]; }'],
                                 defaults='isolation = "%s";' % mode), expect=0)
        check(res["outcome"] == "success", res)


def test_leak_contained():
    # 50 attempts that each leak 8 MiB: isolated, the leaks go with the
    # children; the job log carries the plugin's lines through the pipe.
    code, res, err, _ = run(wf(['{ name = "leak%d"; type = "faults.leak"; params = { bytes = 8388608; }; }' % i
                                for i in range(20)]), "-vv", "--log-format", "json", expect=0)
    lines = [json.loads(l) for l in err.splitlines() if l.startswith("{")]
    leaked = [l for l in lines if "leaked 8388608 bytes" in l.get("message", "")]
    check(len(leaked) == 20, len(leaked))
    check(all(l.get("job", "").startswith("leak") for l in leaked), leaked[:2])


def test_memory_limit():
    if ARGS.sanitize:
        return "skipped: an address-space limit cannot hold a sanitizer's shadow memory"
    code, res, _, _ = run(wf(['{ name = "big"; type = "faults.leak"; params = { bytes = 1073741824; }; '
                              'limits = { memory = "256MiB"; }; }']), expect=1)
    check("out of memory after leaking" in job(res, "big")["error"], job(res, "big"))
    code, res, _, _ = run(wf(['{ name = "small"; type = "faults.leak"; params = { bytes = 1048576; }; '
                              'limits = { memory = "256MiB"; }; }']), expect=0)


def test_cpu_limit():
    code, res, _, secs = run(wf(['{ name = "spin"; type = "faults.spin"; limits = { cpu = "1s"; }; }']), expect=1)
    e = job(res, "spin")["error"]
    check(e == "plugin 'faults' exceeded its cpu limit (1000 ms) in job 'spin' (killed by SIGXCPU)", e)
    check(secs < 2 + SLACK * 2, secs)


def test_open_files_limit_and_bad_limits():
    code, res, _, _ = run(wf(['{ name = "n"; type = "faults.null_state"; limits = { open_files = 32; }; }']), expect=0)
    code, res, err, _ = run(wf(['{ name = "n"; type = "core.noop"; limits = { cpu = "1s"; }; }'],
                               defaults=""), expect=2)
    check('limits apply only to isolation = "process"' in err, err)
    code, res, err, _ = run(wf(['{ name = "n"; type = "core.noop"; isolation = "fork"; }'], defaults=""), expect=2)
    check("'isolation' of job 'n' must be \"process\"" in err, err)
    code, res, err, _ = run(wf(['{ name = "n"; type = "core.noop"; limits = { open_files = 2; }; }']), expect=2)
    check("limits.open_files of job 'n' must be between 16" in err, err)


def test_in_process_default_and_params_refused_isolated():
    code, res, err, _ = run(wf(['{ name = "s"; type = "core.sleep"; params = { duration = "bad"; }; }']), expect=2)
    check("job 's'" in err and "bad" in err, err)


def test_isolated_sleep_cooperates_with_cancel():
    # core.sleep honours its context inside the child: a job timeout ends it
    # through the cancel socket, before any kill.
    code, res, _, secs = run(wf(['{ name = "s"; type = "core.sleep"; timeout = "500ms"; params = { duration = "1h"; }; }']),
                             expect=1)
    j = job(res, "s")
    check(j["error"] == "timed out after 500ms", j)
    check(j["duration_ms"] < 500 + GRACE * 1000, j)


def test_malformed_message_contained():
    code, res, err, secs = run(wf(['{ name = "g"; type = "faults.garbage"; }']), expect=1)
    j = job(res, "g")
    check(j["error"] == "plugin 'faults' sent a malformed message in job 'g' (killed)", j)
    check(secs < 5 + SLACK, secs)


def test_store_reached_from_child():
    # Three jobs in a chain, alternating modes, share one counter in the
    # host's store: the child reaches it through the host.
    jobs = ['{ name = "s1"; type = "faults.store"; isolation = "process"; }',
            '{ name = "s2"; type = "faults.store"; isolation = "none"; depends_on = [ "s1" ]; }',
            '{ name = "s3"; type = "faults.store"; isolation = "process"; depends_on = [ "s2" ]; }']
    code, res, err, _ = run(wf(jobs, defaults=""), "--log-format", "json", expect=0)
    seen = {}
    for l in err.splitlines():
        if l.startswith("{"):
            rec = json.loads(l)
            if rec.get("message", "").startswith("counter "):
                seen[rec["job"]] = rec["message"]
    check(seen == {"s1": "counter 1", "s2": "counter 2", "s3": "counter 3"}, seen)


# ---- security ---------------------------------------------------------------

def test_insecure_plugin_refused():
    d = os.path.join(TMP, "insecure")
    os.makedirs(d, exist_ok=True)
    shutil.copy(os.path.join(ARGS.faults_dir, "faults.so"), d)
    os.chmod(os.path.join(d, "faults.so"), 0o646)
    jobs = wf(['{ name = "n"; type = "faults.null_state"; }'], defaults="")
    code, res, err, _ = run(jobs, plugin_dirs=[d], expect=2)
    check("writable" in err and "faults.so" in err, err)
    run(jobs, "--allow-insecure-plugins", plugin_dirs=[d], expect=0)
    os.chmod(os.path.join(d, "faults.so"), 0o644)
    os.chmod(d, 0o777)
    try:
        code, res, err, _ = run(jobs, plugin_dirs=[d], expect=2)
        check("writable" in err, err)
        run(jobs, "--allow-insecure-plugins", plugin_dirs=[d], expect=0)
    finally:
        os.chmod(d, 0o755)
    run(jobs, plugin_dirs=[d], expect=0)


def test_shell_argv_is_literal():
    d = os.path.join(TMP, "argv")
    os.makedirs(d, exist_ok=True)
    meta = "a;touch pwned $(touch pwned2) `touch pwned3` | > x && *"
    for mode in ("none", "process"):
        cfg = wf(['{ name = "t"; type = "shell.command"; params = { argv = [ "/usr/bin/touch", "%s" ]; cwd = "%s"; }; }'
                  % (meta.replace('"', '\\"'), d)], defaults='isolation = "%s";' % mode)
        run(cfg, expect=0)
        names = sorted(os.listdir(d))
        check(names == [meta], names)
        os.unlink(os.path.join(d, meta))


NASTY_NAME = 'q"uo\\te\nnew\x01ctl\x1f\x7f\xff\xfe end'
# The same in libconfig's escapes.
NASTY_CFG = 'q\\"uo\\\\te\\nnew\\x01ctl\\x1f\\x7f\\xff\\xfe end'
# Job names must be valid UTF-8 (refused otherwise): the name has the
# control bytes, the error message the invalid UTF-8 too.
NASTY_NAME_CFG = 'q\\"uo\\\\te\\nnew\\x01ctl\\x1f\\x7f end'


def test_writers_escape_everything():
    jobs = ['{ name = "%s"; type = "core.sleep"; params = { error = "err %s"; }; }' % (NASTY_NAME_CFG, NASTY_CFG),
            '{ name = "ok"; type = "core.noop"; }']
    cfg = write("nasty.cfg", wf(jobs, defaults=""))
    out, trace = os.path.join(TMP, "nasty.json"), os.path.join(TMP, "nasty.trace")
    p = subprocess.run([ARGS.daggerpool, "run", cfg, "--json", out, "--trace", trace, "--keep-going",
                        "--log-format", "json", "-vv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    check(p.returncode == 1, (p.returncode, p.stderr[-2000:]))
    for path in (out, trace):
        with open(path, "rb") as f:
            raw = f.read()
        doc = json.loads(raw.decode("utf-8"))  # strict: valid UTF-8, control bytes escaped
        check(doc, path)
    with open(out, "rb") as f:
        res = json.loads(f.read().decode("utf-8"))
    names = list(res["jobs"])
    bad = [n for n in names if n != "ok"]
    check(len(bad) == 1, names)
    n = bad[0]
    # Valid bytes survive exactly; invalid UTF-8 (in the error) becomes
    # something valid.
    check(n.startswith('q"uo\\te\nnew\x01ctl\x1f\x7f'), repr(n))
    check(res["jobs"][n]["error"].startswith('err q"uo\\te\nnew\x01ctl'), repr(res["jobs"][n]["error"]))
    # JSON log lines (progress lines off a terminal are plain text).
    logs = [l for l in p.stderr.split(b"\n") if l.startswith(b"{")]
    check(logs, "no log lines")
    for l in logs:
        rec = json.loads(l.decode("utf-8"))
        check(isinstance(rec, dict), l)
    check(any('q"uo' in (json.loads(l.decode("utf-8")).get("job") or "") for l in logs), "no log line for the job")
    # Text logs and progress lines: one record per line, no raw control
    # bytes (no terminal escapes), valid UTF-8.
    p = subprocess.run([ARGS.daggerpool, "run", cfg, "--keep-going", "-vv"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    check(p.returncode == 1, p.returncode)
    err = p.stderr.decode("utf-8")  # strict
    check(not any((ord(ch) < 0x20 and ch != "\n") or ord(ch) == 0x7f for ch in err), repr(err[-500:]))
    check('q"uo\\te\\nnew\\x01ctl' in err, repr(err[-500:]))


TESTS = [v for k, v in sorted(globals().items()) if k.startswith("test_")]


def main():
    global ARGS, TMP
    ap = argparse.ArgumentParser()
    ap.add_argument("--daggerpool", required=True)
    ap.add_argument("--faults-dir", required=True)
    ap.add_argument("--sanitize", default="")
    ap.add_argument("-k", default="")
    ARGS = ap.parse_args()
    failed = 0
    for t in TESTS:
        if ARGS.k not in t.__name__:
            continue
        TMP = tempfile.mkdtemp(prefix="dp_iso_")
        os.chmod(TMP, 0o755)
        t0 = time.monotonic()
        try:
            note = t()
            print("ok   %-50s %5.1fs%s" % (t.__name__, time.monotonic() - t0, "  (%s)" % note if note else ""), flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("FAIL %-50s %s" % (t.__name__, e), flush=True)
        finally:
            shutil.rmtree(TMP, ignore_errors=True)
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
