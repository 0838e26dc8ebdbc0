#!/usr/bin/env python3
"""Isolated attempts leave nothing behind, through the daggerpool command.

With isolation = "process", whatever a plugin starts (a background command,
a forked helper, a daemon in its own session, one that closed its
descriptors) must not hold the attempt open, must not hide a crash, and must
not outlive the attempt (success, failure, crash, timeout, cancellation, a
second SIGINT); the runner's descriptors must not leak into it; and an
isolated attempt must run the plugin version it pinned even where the
private copy is a temporary file instead of a memfd.

Every process a test starts carries a marker found in /proc/*/cmdline: the
runners are started through a symlink in the test's own directory
($DAGGERPOOL_JOB_RUNNER), so they and their forks carry its path; helpers
that execute sleep(1) get a unique number of seconds. Whatever a failed test
leaves is killed by pid at its end.

  test_leftovers.py --daggerpool BIN --runner RUNNER --faults-dir DIR
                    --faults-v2 SO [-k NAME]
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ARGS = None
TMP = None
RUNNER = None  # the symlink the runners are started through
SLACK = 8.0    # generous: shared machines, sanitizers
LONG = 600     # helpers sleep this long (seconds, plus a unique fraction)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def marker():
    """A unique number of seconds for sleep(1): its command line finds it."""
    return "%d.%06d" % (LONG, random.randrange(1, 999999))


def procs(*needles):
    """(pid, ppid, cmdline) of every process whose command line holds a needle."""
    found = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if fields[0] == "Z":
            continue  # a zombie is gone already, only not yet reaped by its parent
        if any(n in cmd for n in needles):
            found.append((int(d), int(fields[1]), cmd))
    return found


def wait_gone(needles, secs=5.0):
    """Waits up to secs for no process to match; returns what is left."""
    end = time.monotonic() + secs
    while True:
        left = procs(*needles)
        if not left or time.monotonic() >= end:
            return left
        time.sleep(0.05)


def kill_left(needles):
    for pid, _, _ in procs(*needles):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def env():
    e = dict(os.environ)
    e["DAGGERPOOL_JOB_RUNNER"] = RUNNER
    return e


def wf(jobs, workflow='timeout = "60s";', defaults='isolation = "process";'):
    return "workflow: { name = \"t\"; %s };\ndefaults = { %s };\njobs = (\n%s\n);\n" % (
        workflow, defaults, ",\n".join(jobs))


def run(cfg_text, *extra, expect=None, timeout=120, extra_env=None, plugin_dirs=None):
    """Runs `daggerpool run`; returns (code, result, stderr, seconds). The
    output goes to files: a leaked process holding a pipe must not hang the
    test itself."""
    cfg = write("wf.cfg", cfg_text)
    out = os.path.join(TMP, "wf.json")
    if os.path.exists(out):
        os.unlink(out)
    cmd = [ARGS.daggerpool, "run", cfg, "--json", out]
    for d in (plugin_dirs if plugin_dirs is not None else [ARGS.faults_dir]):
        cmd += ["--plugin-path", d]
    cmd += list(extra)
    e = env()
    e.update(extra_env or {})
    with open(os.path.join(TMP, "stderr"), "w+b") as err, open(os.path.join(TMP, "stdout"), "w+b") as so:
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdout=so, stderr=err, timeout=timeout, env=e)
        secs = time.monotonic() - t0
        err.seek(0)
        stderr = err.read().decode("utf-8", errors="replace")
    res = None
    if os.path.exists(out):
        with open(out, "rb") as f:
            res = json.loads(f.read().decode("utf-8"))
    if expect is not None and p.returncode != expect:
        raise AssertionError("exit %d, expected %d\nstderr:\n%s" % (p.returncode, expect, stderr[-3000:]))
    return p.returncode, res, stderr, secs


def job(res, name):
    return res["jobs"][name]


# ---- 1. the runner's descriptors stay with the runner -----------------------

def test_background_command_does_not_hold_the_attempt():
    # A command that leaves a process in the background: the attempt ends
    # when the command does (not when the background process does, nor at
    # the timeout), and the background process ends with the attempt.
    m1, m2, m3 = marker(), marker(), marker()
    jobs = [
        '{ name = "redirected"; type = "shell.command"; timeout = "2s"; '
        'params = { command = "sleep %s >/dev/null 2>&1 &"; }; }' % m1,
        '{ name = "untimed"; type = "shell.command"; params = { command = "sleep %s >/dev/null 2>&1 &"; }; }' % m2,
        '{ name = "daemon"; type = "shell.command"; timeout = "2s"; '
        'params = { command = "setsid sleep %s </dev/null >/dev/null 2>&1 &"; }; }' % m3,
    ]
    try:
        code, res, err, secs = run(wf(jobs), expect=0)
        for n in ("redirected", "untimed", "daemon"):
            j = job(res, n)
            check(j["status"] == "success" and j["duration_ms"] < SLACK * 1000, (n, j))
        check(secs < SLACK, secs)
        # The runner reaps all it killed before it exits, and the host
        # reaps the runner before the attempt ends: gone already.
        left = wait_gone([m1, m2, m3], secs=1.0)
        check(not left, "left running after the run: %s" % left)
    finally:
        kill_left([m1, m2, m3])


def test_commands_do_not_inherit_runner_fds():
    # What the plugin executes sees stdin, stdout and stderr only (the shell
    # lists its descriptors; `ls` adds the one it reads the directory with).
    jobs = ['{ name = "fds"; type = "shell.command"; params = { command = "ls /proc/$$/fd"; }; }']
    code, res, err, _ = run(wf(jobs), "-v", "--log-format", "json", expect=0)
    fds = set()
    for l in err.splitlines():
        if l.startswith("{"):
            rec = json.loads(l)
            if rec.get("job") == "fds" and rec.get("message", "").strip().isdigit():
                fds.add(int(rec["message"]))
    check({0, 1, 2} <= fds, (fds, err[-2000:]))
    check(not fds & {3, 4, 5}, "the command inherited the runner's descriptors: %s" % sorted(fds))


# ---- 2. a crash is a crash, whatever holds the socket ----------------------

def test_crash_seen_with_helper_holding_the_socket():
    # The helper is a plain fork of the worker: it holds the control socket.
    for timeout in ('', 'timeout = "4s"; '):
        code, res, err, secs = run(wf(['{ name = "c"; type = "faults.fork"; %s'
                                       'params = { then = "segv"; }; }' % timeout],
                                      workflow='timeout = "40s";'), expect=1)
        j = job(res, "c")
        check(j["status"] == "failed" and j["error"] == "plugin 'faults' crashed with SIGSEGV in job 'c'",
              (timeout, j))
        check(secs < SLACK, (timeout, j["duration_ms"], secs))
        left = wait_gone([RUNNER], secs=1.0)
        check(not left, "left running: %s" % left)


# ---- 3. nothing an attempt started outlives it ------------------------------

HELPERS = [
    # (name, params): a plain fork, one in its own session, one that closed
    # its descriptors, executed ones likewise (marked by their sleep).
    ("fork", 'helper = "fork";'),
    ("fork_setsid", 'helper = "fork"; setsid = true;'),
    ("fork_closed", 'helper = "fork"; close_fds = true;'),
    ("exec", 'helper = "exec"; sleep = "%s";'),
    ("exec_setsid_closed", 'helper = "exec"; setsid = true; close_fds = true; sleep = "%s";'),
]


def test_nothing_outlives_its_attempt():
    ends = [("ready", "", "success"), ("fail", "", "failed"), ("segv", "", "failed"),
            ("hang", 'timeout = "1s"; ', "failed")]
    jobs, marks, want = [], [RUNNER], {}
    for then, extra, status in ends:
        for hname, hparams in HELPERS:
            if "%s" in hparams:
                m = marker()
                marks.append(m)
                hparams = hparams % m
            name = "%s_%s" % (then, hname)
            jobs.append('{ name = "%s"; type = "faults.fork"; %sparams = { then = "%s"; %s }; }'
                        % (name, extra, then, hparams))
            want[name] = status
    try:
        code, res, err, secs = run(wf(jobs), "--keep-going", "-j", "8", expect=1)
        for name, status in want.items():
            j = job(res, name)
            check(j["status"] == status, (name, j))
            if name.startswith("hang"):
                check(j["error"] == "timed out after 1s", (name, j))
            if name.startswith("segv"):
                check("crashed with SIGSEGV" in j["error"], (name, j))
        left = wait_gone(marks, secs=1.0)
        check(not left, "left running after the run: %s" % left)
    finally:
        kill_left(marks)


def start(cfg_text):
    cfg = write("wf.cfg", cfg_text)
    out = os.path.join(TMP, "wf.json")
    err = open(os.path.join(TMP, "stderr"), "w+b")
    p = subprocess.Popen([ARGS.daggerpool, "run", cfg, "--json", out, "--plugin-path", ARGS.faults_dir, "-j", "8"],
                         stdout=subprocess.DEVNULL, stderr=err, env=env())
    return p, err, out


def wait_running(needles, count, secs=30.0):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if len(procs(*needles)) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("the jobs did not start: %s" % procs(*needles))


def hanging_jobs():
    """Isolated jobs that ignore cancellation, each with a helper, and their
    markers (the runner's path marks the forks)."""
    m1, m2, m3 = marker(), marker(), marker()
    jobs = ['{ name = "a"; type = "faults.fork"; params = { then = "hang"; helper = "exec"; sleep = "%s"; }; }' % m1,
            '{ name = "b"; type = "faults.fork"; params = { then = "hang"; helper = "exec"; setsid = true; '
            'close_fds = true; sleep = "%s"; }; }' % m2,
            '{ name = "c"; type = "faults.fork"; params = { then = "hang"; setsid = true; }; }',
            '{ name = "d"; type = "faults.sleep"; }',
            '{ name = "e"; type = "shell.command"; params = { command = "trap \'\' TERM INT; sleep %s"; }; }' % m3]
    return jobs, [RUNNER, m1, m2, m3], [m1, m2, m3]


def test_cancel_ends_everything():
    jobs, marks, sleeps = hanging_jobs()
    p, err, out = start(wf(jobs))
    try:
        wait_running(sleeps, len(sleeps))
        p.send_signal(signal.SIGINT)
        code = p.wait(timeout=3 + SLACK)
        check(code == 130, code)
        with open(out) as f:
            check(json.load(f)["outcome"] == "cancelled", out)
        left = wait_gone(marks, secs=1.0)
        check(not left, "left running after the run was cancelled: %s" % left)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        err.close()
        kill_left(marks)


def test_second_sigint_ends_every_runner():
    # "Quit at once": the command goes, and so does every runner and all
    # their plugins started, at once (well before any grace period).
    jobs, marks, sleeps = hanging_jobs()
    p, err, out = start(wf(jobs))
    try:
        wait_running(sleeps, len(sleeps))
        p.send_signal(signal.SIGINT)
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        code = p.wait(timeout=SLACK)
        check(code == -signal.SIGINT, code)
        left = wait_gone(marks, secs=3.0)
        check(not left, "left running after the second SIGINT: %s" % left)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        err.close()
        kill_left(marks)


def test_host_killed_ends_every_runner():
    # Even a host that cannot clean up (SIGKILL) takes its runners with it:
    # their supervisors have it as their parent-death signal.
    jobs, marks, sleeps = hanging_jobs()
    p, err, out = start(wf(jobs))
    try:
        wait_running(sleeps, len(sleeps))
        p.kill()
        p.wait()
        left = wait_gone(marks, secs=3.0)
        check(not left, "left running after the host was killed: %s" % left)
    finally:
        err.close()
        kill_left(marks)


# ---- 5. the pinned version runs, from a temporary-file copy too -------------

def test_pinned_version_runs_from_a_file_copy():
    # DAGGERPOOL_PLUGIN_COPY=file makes the host keep its private copies as
    # unlinked temporary files, as where memfd_create is missing. The
    # plugin file is replaced (by a version the host refuses: writable by
    # all) while a gate job holds the run; the isolated job that runs then
    # must run the version it pinned, 1.0.0, and say so.
    d = os.path.join(TMP, "plugins")
    copies = os.path.join(TMP, "copies")
    os.mkdir(d)
    os.mkdir(copies)
    shutil.copy(os.path.join(ARGS.faults_dir, "faults.so"), d)
    started, go = os.path.join(TMP, "started"), os.path.join(TMP, "go")
    jobs = ['{ name = "gate"; type = "shell.command"; isolation = "none"; params = { command = '
            '"touch %s; while [ ! -e %s ]; do sleep 0.05; done"; }; }' % (started, go),
            '{ name = "v"; type = "faults.version"; depends_on = [ "gate" ]; }']
    cfg = write("wf.cfg", wf(jobs))
    out = os.path.join(TMP, "wf.json")
    e = env()
    e.update({"DAGGERPOOL_PLUGIN_COPY": "file", "DAGGERPOOL_PLUGIN_TMPDIR": copies})
    errf = open(os.path.join(TMP, "stderr"), "w+b")
    p = subprocess.Popen([ARGS.daggerpool, "run", cfg, "--json", out, "--plugin-path", d,
                          "--log-format", "json"], stdout=subprocess.DEVNULL, stderr=errf, env=e)
    try:
        end = time.monotonic() + 30
        while not os.path.exists(started):
            if time.monotonic() >= end or p.poll() is not None:
                errf.seek(0)
                raise AssertionError("the gate job did not start: %s" % errf.read().decode(errors="replace")[-2000:])
            time.sleep(0.05)
        # The host runs from a temporary file in `copies`, not from a memfd.
        with open("/proc/%d/maps" % p.pid) as f:
            maps = f.read()
        check(copies + "/daggerpool-faults-" in maps and "memfd:daggerpool-plugin:faults" not in maps,
              [l for l in maps.splitlines() if "faults" in l])
        new = os.path.join(d, "faults.so.new")
        shutil.copy(ARGS.faults_v2, new)
        os.chmod(new, 0o666)
        os.rename(new, os.path.join(d, "faults.so"))
        time.sleep(0.5)  # let the host see the change (and refuse it)
        with open(go, "w"):
            pass
        code = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        errf.seek(0)
        stderr = errf.read().decode("utf-8", errors="replace")
        errf.close()
    check(code == 0, (code, stderr[-3000:]))
    with open(out) as f:
        res = json.load(f)
    j = job(res, "v")
    check(j["status"] == "success" and j["plugin_version"] == "1.0.0", j)
    ran = [json.loads(l)["message"] for l in stderr.splitlines()
           if l.startswith("{") and json.loads(l).get("job") == "v" and "running faults" in l]
    check(ran == ["running faults 1.0.0"], (ran, stderr[-3000:]))


TESTS = [v for k, v in sorted(globals().items()) if k.startswith("test_")]


def main():
    global ARGS, TMP, RUNNER
    ap = argparse.ArgumentParser()
    ap.add_argument("--daggerpool", required=True)
    ap.add_argument("--runner", required=True)
    ap.add_argument("--faults-dir", required=True)
    ap.add_argument("--faults-v2", default="")
    ap.add_argument("-k", default="")
    ARGS = ap.parse_args()
    failed = 0
    for t in TESTS:
        if ARGS.k not in t.__name__:
            continue
        TMP = tempfile.mkdtemp(prefix="dp_left_")
        os.chmod(TMP, 0o755)
        d = os.path.join(TMP, "runner-%d-%06d" % (os.getpid(), random.randrange(1000000)))
        os.mkdir(d)
        RUNNER = os.path.join(d, "daggerpool-job-runner")
        os.symlink(os.path.abspath(ARGS.runner), RUNNER)
        t0 = time.monotonic()
        try:
            note = t()
            print("ok   %-50s %5.1fs%s" % (t.__name__, time.monotonic() - t0, "  (%s)" % note if note else ""), flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("FAIL %-50s %s" % (t.__name__, e), flush=True)
        finally:
            kill_left([RUNNER])
            shutil.rmtree(TMP, ignore_errors=True)
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
