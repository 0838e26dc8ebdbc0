"""What the tests of `daggerpool watch --listen` share: a watch started in
the test's own temp dir on a free loopback port (--listen 0, the address
read from its log), plain HTTP GETs, and a stop by its recorded pid."""
import atexit
import http.client
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

SEED = """
workflow: { name = "svc"; max_concurrent_jobs = 2; timeout = "30s"; };
jobs = (
  { name = "fetch"; type = "core.sleep"; params = { duration = "50ms"; }; },
  { name = "build"; type = "core.sleep"; depends_on = [ "fetch" ]; params = { duration = "20ms"; }; },
  { name = "test"; type = "core.noop"; depends_on = [ "build" ]; },
  { name = "deploy"; type = "core.noop"; depends_on = [ "test" ]; }
);
"""

NOT_READY = """
workflow: { name = "waiting"; max_concurrent_jobs = 2; timeout = "30s"; };
jobs = (
  { name = "db"; type = "core.noop"; },
  { name = "migrate"; type = "core.sleep"; depends_on = [ "db" ]; params = { duration = "1ms"; ready = false; }; },
  { name = "app"; type = "core.noop"; depends_on = [ "migrate" ]; },
  { name = "broken"; type = "core.sleep"; params = { duration = "1ms"; error = "disk full"; }; }
);
"""


_dirs = []


@atexit.register
def _cleanup():
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)


def tmpdir():
    """A temp dir of the test's own, removed when the test ends."""
    d = tempfile.mkdtemp(prefix="dp-svc-")
    _dirs.append(d)
    return d


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class Watch:
    """daggerpool watch FILE --listen 0 ... in the background."""

    def __init__(self, daggerpool, cfg, *args, listen="0", timeout=30):
        self.dir = os.path.dirname(cfg)
        self.err_path = os.path.join(self.dir, "watch.err.%d" % time.monotonic_ns())
        self.err = open(self.err_path, "w")
        argv = [daggerpool, "watch", cfg, *args]
        if listen is not None:
            argv += ["--listen", listen]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.err, start_new_session=True)
        self.host = self.port = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"serving http://(\[[^\]]+\]|[0-9.]+):(\d+)/", self.log())
            if m:
                self.host, self.port = m.group(1).strip("[]"), int(m.group(2))
                return
            if self.proc.poll() is not None:
                raise AssertionError("watch ended (%d) before serving:\n%s" % (self.proc.returncode, self.log()))
            time.sleep(0.02)
        self.stop()
        raise AssertionError("watch did not log its address:\n" + self.log())

    def log(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def get(self, path, method="GET", timeout=20):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request(method, path)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def wait_for(self, what, cond, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        raise AssertionError("timed out waiting for " + what + "\n" + self.log()[-3000:])

    def runs_ended(self):
        return len(re.findall(r"run \d+: \w+; next run", self.log()))

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.err.close()
        return self.proc.returncode


def fail(msg):
    raise AssertionError(msg)
