#!/usr/bin/env python3
"""notify_test.py DAGGERPOOL FAULTS_DIR CASE - `daggerpool watch` under systemd.

The test plays systemd's part: it opens its own notification socket (an
AF_UNIX datagram socket in its temp dir), starts watch with NOTIFY_SOCKET
(and WATCHDOG_USEC) pointing at it, and checks the messages:

  lifecycle  EXTEND_TIMEOUT_USEC and WATCHDOG=1 while the first run is under
             way, READY=1 with the first run's STATUS only once it ended,
             STATUS per run, RELOADING=1 + MONOTONIC_USEC then READY=1 on
             SIGHUP, STOPPING=1 on SIGTERM (exit 130).
  stuck      a run stuck past its timeout (a job that ignores cancellation)
             stops the watchdog pings, so systemd would restart the unit.
  none       without NOTIFY_SOCKET nothing is sent and watch runs as before.

Every process the test starts is killed by pid at the end.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

DP, FAULTS_DIR, CASE = sys.argv[1], sys.argv[2], sys.argv[3]


def fail(msg, log=None):
    print("FAIL: " + msg)
    if log:
        print("--- watch's stderr ---")
        print(log)
    sys.exit(1)


class Watch:
    def __init__(self, work, cfg, args, env_extra, notify=True):
        self.work = work
        self.sock = None
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("WATCHDOG_USEC", None)
        env.pop("WATCHDOG_PID", None)
        if notify:
            path = os.path.join(work, "notify.sock")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(path)
            self.sock.settimeout(0.05)
            env["NOTIFY_SOCKET"] = path
        env.update(env_extra)
        self.err = open(os.path.join(work, "err"), "w+")
        self.proc = subprocess.Popen([DP, "watch", cfg] + args, stdout=subprocess.DEVNULL,
                                     stderr=self.err, env=env)
        self.msgs = []  # (time since start, message)
        self.cursor = 0  # wait_for looks from here on
        self.t0 = time.monotonic()

    def collect(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.msgs.append((time.monotonic() - self.t0, data.decode()))

    def wait_for(self, pred, seconds, what):
        """Waits for a message after the one the last wait_for matched."""
        end = time.monotonic() + seconds
        while True:
            while self.cursor < len(self.msgs):
                self.cursor += 1
                if pred(self.msgs[self.cursor - 1][1]):
                    return
            if time.monotonic() >= end:
                break
            self.collect(0.05)
        fail("no message %s within %ss; got %r" % (what, seconds, [m for _, m in self.msgs]), self.log())

    def log(self):
        self.err.flush()
        with open(self.err.name) as f:
            return f.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def lifecycle(work):
    cfg = os.path.join(work, "wf.cfg")
    write(cfg, """
workflow = { name = "svc"; };
jobs = ( { name = "slow"; type = "core.sleep"; params = { duration = "1500ms"; }; },
         { name = "after"; type = "core.noop"; depends_on = ["slow"]; } );
""")
    w = Watch(work, cfg, ["--interval", "300ms"], {"WATCHDOG_USEC": "400000"})
    try:
        # During the first run (1.5 s): pings every 200 ms, start-up extended, no READY.
        w.collect(1.2)
        early = [m for _, m in w.msgs]
        if not any(m == "WATCHDOG=1" for m in early):
            fail("no WATCHDOG=1 during the first run: %r" % early, w.log())
        if sum(m == "WATCHDOG=1" for m in early) < 3:
            fail("too few WATCHDOG=1 during 1.2 s at WatchdogSec=0.4s: %r" % early, w.log())
        if not any(m.startswith("EXTEND_TIMEOUT_USEC=") for m in early):
            fail("the first run did not extend the start-up timeout: %r" % early, w.log())
        if any("READY=1" in m for m in early):
            fail("READY=1 before the first run ended: %r" % early, w.log())
        w.wait_for(lambda m: m.startswith("READY=1\nSTATUS=run 1: success; next run in"), 10, "READY=1 after run 1")
        w.wait_for(lambda m: m.startswith("STATUS=run 2: success; next run in"), 10, "STATUS of run 2")
        ready = [m for _, m in w.msgs if m.startswith("READY=1")]
        if len(ready) != 1:
            fail("READY=1 sent %d times before any reload: %r" % (len(ready), ready), w.log())
        after_ready = [m for _, m in w.msgs[[m for _, m in w.msgs].index(ready[0]):]]
        if any(m.startswith("EXTEND_TIMEOUT_USEC") for m in after_ready):
            fail("EXTEND_TIMEOUT_USEC after READY=1: %r" % after_ready, w.log())
        # Reload: wait for a pause between runs, then SIGHUP.
        w.proc.send_signal(signal.SIGHUP)
        w.wait_for(lambda m: m.startswith("RELOADING=1\nMONOTONIC_USEC="), 10, "RELOADING=1 on SIGHUP")
        w.wait_for(lambda m: m.startswith("READY=1\nSTATUS=workflow reloaded"), 10, "READY=1 after the reload")
        w.proc.send_signal(signal.SIGTERM)
        w.wait_for(lambda m: m.startswith("STOPPING=1"), 10, "STOPPING=1 on SIGTERM")
        rc = w.proc.wait(timeout=20)
        if rc != 130:
            fail("watch ended with %d after SIGTERM, not 130" % rc, w.log())
    finally:
        w.kill()


def stuck(work):
    cfg = os.path.join(work, "wf.cfg")
    write(cfg, """
workflow = { name = "stuck"; timeout = "1s"; plugin_path = [ "%s" ]; };
jobs = ( { name = "hang"; type = "faults.sleep"; params = { duration = "1h"; }; } );
""" % FAULTS_DIR)
    w = Watch(work, cfg, ["--interval", "300ms"], {"WATCHDOG_USEC": "500000"})
    try:
        # Healthy until the timeout (1 s) plus one watchdog period (0.5 s).
        w.collect(5.0)
        pings = [t for t, m in w.msgs if m == "WATCHDOG=1"]
        if not pings:
            fail("no WATCHDOG=1 at all", w.log())
        if not any(t < 1.0 for t in pings):
            fail("no WATCHDOG=1 while the run was within its timeout: %r" % pings, w.log())
        late = [t for t in pings if t > 2.5]
        if late:
            fail("WATCHDOG=1 went on while the run was stuck past its timeout: %r" % pings, w.log())
        if w.proc.poll() is not None:
            fail("watch ended (%s) instead of hanging in the stuck run" % w.proc.returncode, w.log())
    finally:
        w.kill()


def none(work):
    cfg = os.path.join(work, "wf.cfg")
    write(cfg, 'workflow = { name = "plain"; };\njobs = ( { name = "a"; type = "core.noop"; } );\n')
    w = Watch(work, cfg, ["--until-ready"], {}, notify=False)
    try:
        rc = w.proc.wait(timeout=30)
        if rc != 0:
            fail("watch --until-ready without systemd ended with %d" % rc, w.log())
        if "systemd" in w.log():
            fail("watch spoke of systemd without NOTIFY_SOCKET", w.log())
    finally:
        w.kill()


with tempfile.TemporaryDirectory(prefix="dp_systemd.") as work:
    {"lifecycle": lifecycle, "stuck": stuck, "none": none}[CASE](work)
print("ok: " + CASE)
