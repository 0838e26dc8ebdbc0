"""The status page in a real browser: Debian's headless Chromium loads / of
a live watch; the DOM has a row per job with its status, the outcome, the
frontiers and the DAG drawn (SVG, coloured by status); a screenshot is kept
in ARTIFACTS. Then the same on a 100 000-job workflow: the page loads in
under 5 s as Chromium's Navigation Timing reports it (the graph left out
with a note, the table paged).

usage: test_chromium.py DAGGERPOOL CHROMIUM GEN_WORKFLOW ARTIFACTS"""
import html.parser
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc  # noqa: E402

DP, CHROMIUM, GEN, ARTIFACTS = sys.argv[1:5]


def chromium(d, *args, timeout=120):
    """Runs headless Chromium in its own session and profile under d; kills
    the whole group whatever happens. (stdout, seconds)."""
    prof = os.path.join(d, "chromium-profile")
    argv = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--user-data-dir=" + prof, *args]
    env = dict(os.environ, HOME=d, XDG_CONFIG_HOME=d, XDG_CACHE_HOME=d)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    return out.decode("utf-8", "replace"), time.monotonic() - t0


class Dom(html.parser.HTMLParser):
    """What the tests read of the DOM Chromium dumps."""

    def __init__(self):
        super().__init__()
        self.rows = {}
        self.ids = {}
        self.nodes = 0
        self.polys_filled = set()
        self._id = None
        self.texts = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-job" in a:
            self.rows[a["data-job"]] = a.get("data-status")
        if "id" in a:
            self.ids[a["id"]] = a
            self._id = a["id"]
            self.texts.setdefault(self._id, "")
        if tag == "g" and a.get("class") == "node":
            self.nodes += 1
        if tag in ("path", "polygon") and a.get("fill", "").startswith("#"):
            self.polys_filled.add(a["fill"].lower())

    def handle_data(self, data):
        if self._id:
            self.texts[self._id] += data

    def handle_endtag(self, tag):
        if tag in ("span", "dd", "p"):
            self._id = None


MIXED = """
workflow: { name = "shop"; max_concurrent_jobs = 4; timeout = "30s"; fail_fast = false; };
jobs = (
  { name = "db"; type = "core.noop"; },
  { name = "cache"; type = "core.noop"; },
  { name = "migrate"; type = "core.sleep"; depends_on = [ "db" ]; params = { duration = "1ms"; ready = false; }; },
  { name = "api"; type = "core.noop"; depends_on = [ "migrate", "cache" ]; },
  { name = "web"; type = "core.noop"; depends_on = [ "api" ]; },
  { name = "payments"; type = "core.sleep"; depends_on = [ "db" ]; params = { duration = "1ms"; error = "card gateway refused"; }; },
  { name = "emails"; type = "core.sleep"; depends_on = [ "cache" ]; params = { duration = "30ms"; }; }
);
"""

EXPECT = {"db": "success", "cache": "success", "migrate": "not_ready", "api": "skipped", "web": "skipped",
          "payments": "failed", "emails": "success"}


def small():
    d = svc.tmpdir()
    cfg = svc.write(os.path.join(d, "shop.cfg"), MIXED)
    w = svc.Watch(DP, cfg, "--interval", "1h")
    try:
        w.wait_for("a run", lambda: w.runs_ended() >= 1)
        url = "http://%s:%d/" % (w.host, w.port)
        out, secs = chromium(d, "--dump-dom", url)
        dom = Dom()
        dom.feed(out)
        assert dom.rows == EXPECT, "job rows %s, expected %s\n%s" % (dom.rows, EXPECT, out[:3000])
        assert dom.texts.get("outcome", "").strip() == "failed", dom.texts
        assert "frontiers" in dom.ids, "no frontiers table"
        assert "graph" in dom.ids and dom.nodes == len(EXPECT), "graph nodes %d" % dom.nodes
        # graph --result's colours: success, not_ready, skipped, failed.
        for fill in ["#b7e4c7", "#ffe8a1", "#e9ecef", "#f5b7b1"]:
            assert fill in dom.polys_filled, "no node filled %s: %s" % (fill, dom.polys_filled)
        os.makedirs(ARTIFACTS, exist_ok=True)
        shot = os.path.join(ARTIFACTS, "status-page.png")
        if os.path.exists(shot):
            os.unlink(shot)
        chromium(d, "--screenshot=" + shot, "--window-size=1100,1000", "--hide-scrollbars", url)
        with open(shot, "rb") as f:
            png = f.read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000, "no screenshot at %s" % shot
        print("screenshot: " + shot)
    finally:
        w.stop()


class Browser:
    """Headless Chromium driven over its DevTools pipe (--remote-debugging-pipe:
    JSON messages ending in NUL, read by Chromium on fd 3, written on fd 4),
    for what --dump-dom cannot do: look at a page in real time while it
    reloads itself. (--virtual-time-budget stops the clock while a request
    is pending, so a page that keeps reloading can hold it for minutes on a
    loaded machine.) Killed with its whole group by close()."""

    def __init__(self, d):
        to_r, self._to = os.pipe()
        self._from, from_w = os.pipe()

        def fds():
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        prof = os.path.join(d, "chromium-cdp-profile")
        argv = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--user-data-dir=" + prof, "--remote-debugging-pipe",
                "about:blank"]
        env = dict(os.environ, HOME=d, XDG_CONFIG_HOME=d, XDG_CACHE_HOME=d)
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                  start_new_session=True, preexec_fn=fds, pass_fds=(3, 4))
        os.close(to_r)
        os.close(from_w)
        self._buf = b""
        self._id = 0
        self.session = None

    def call(self, method, timeout=30, **params):
        """Sends one command (to the attached page once there is one) and
        returns its result; events in between are dropped."""
        import json
        import select
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._to, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                m = json.loads(raw)
                if m.get("id") == self._id:
                    if "error" in m:
                        raise AssertionError("%s: %s" % (method, m["error"]))
                    return m.get("result", {})
            left = deadline - time.monotonic()
            assert left > 0, "Chromium did not answer %s in %d s" % (method, timeout)
            if select.select([self._from], [], [], left)[0]:
                chunk = os.read(self._from, 65536)
                assert chunk, "Chromium closed its DevTools pipe"
                self._buf += chunk

    def open(self, url, timeout=30):
        """A new page, navigated to url (timeout: for Chromium's start)."""
        target = self.call("Target.createTarget", timeout=timeout, url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.navigate", url=url)

    def navigate(self, url):
        self.call("Page.navigate", url=url)

    def loaded(self, url, timeout=120):
        """Waits until the page at url has fired its load event and returns
        the browser's own Navigation Timing of it (ms from the navigation's
        start: requestStart, responseEnd, domContentLoadedEventEnd,
        loadEventEnd)."""
        import json
        expr = ("(() => { const n = performance.getEntriesByType('navigation')[0];"
                " return location.href === %s && document.readyState === 'complete' && n && n.loadEventEnd > 0"
                " ? JSON.stringify({request: n.requestStart - n.startTime, response: n.responseEnd - n.startTime,"
                " dcl: n.domContentLoadedEventEnd - n.startTime, load: n.loadEventEnd - n.startTime}) : null; })()"
                % json.dumps(url))
        deadline = time.monotonic() + timeout
        while True:
            r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
            v = r.get("result", {}).get("value")
            if v:
                return json.loads(v)
            assert time.monotonic() < deadline, "%s did not load in %d s" % (url, timeout)
            time.sleep(0.05)

    def html(self):
        r = self.call("Runtime.evaluate", expression="document.documentElement.outerHTML", returnByValue=True)
        return r.get("result", {}).get("value", "")

    def close(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()
        os.close(self._to)
        os.close(self._from)


def reloads_itself():
    """The page follows the runs: Chromium opens it and the test watches it
    in real time. The page polls /api/v1/status every 2 s and, since runs
    end every few ms (--interval 10ms), reloads itself: watch's debug log
    (-v) shows the page requested again, and the DOM then shows a later run
    than the first load did. Without the page's script there is one
    request and the run shown never changes."""
    import re
    d = svc.tmpdir()
    cfg = svc.write(os.path.join(d, "tick.cfg"),
                    'workflow: { name = "tick"; };\njobs = ({ name = "a"; type = "core.noop"; });\n')
    w = svc.Watch(DP, cfg, "--interval", "10ms", "-v")
    b = Browser(d)
    try:
        w.wait_for("a run", lambda: w.runs_ended() >= 1)
        b.open("http://%s:%d/" % (w.host, w.port))

        def run_shown():
            m = re.search(r"\(run (\d+), workflow generation", b.html())
            return int(m.group(1)) if m else None

        first = []
        w.wait_for("the page's first load", lambda: first.append(run_shown()) or first[-1] is not None, timeout=60)
        later = []
        w.wait_for("the page to reload itself with a later run",
                   lambda: later.append(run_shown()) or (later[-1] or 0) > first[-1], timeout=90)
        loads = len(re.findall(r"http: GET / *$", w.log(), re.M))
        assert loads >= 2, "the page was requested %d time(s): it did not reload itself" % loads
        print("the page reloaded itself: %d loads; run %d at the first, run %d later" % (loads, first[-1], later[-1]))
    finally:
        b.close()
        w.stop()


def large():
    """The 100 000-job workflow's page loads in under 5 s as Chromium itself
    measures it (Navigation Timing, from the navigation's start to the end
    of the load event: the request, the server's answer, parsing, layout);
    Chromium's own start is not in it."""
    d = svc.tmpdir()
    cfg = os.path.join(d, "big.cfg")
    with open(cfg, "w") as f:
        subprocess.run([GEN, "-n", "100000", "-j", "2"], stdout=f, check=True)
    w = svc.Watch(DP, cfg, "--interval", "1h", "--no-job-metrics", timeout=120)
    b = None
    try:
        w.wait_for("the 100 000-job run", lambda: w.runs_ended() >= 1, timeout=240)
        url = "http://%s:%d/" % (w.host, w.port)
        t0 = time.monotonic()
        st, _, body = w.get("/")
        served = time.monotonic() - t0
        assert st == 200, st
        b = Browser(d)
        b.open(url, timeout=120)
        nav = b.loaded(url)
        dom = Dom()
        dom.feed(b.html())
        assert len(dom.rows) == 500, "rows on the first page: %d" % len(dom.rows)
        assert set(dom.rows.values()) == {"success"}, set(dom.rows.values())
        assert "graph-note" in dom.ids and "graph" not in dom.ids, "the 100 000-job graph was drawn?"
        assert nav["load"] < 5000, "the page of a 100 000-job workflow took %.0f ms to load in Chromium " \
            "(Navigation Timing: %s)" % (nav["load"], nav)
        print("100 000 jobs: served in %.3f s (a plain GET); in Chromium (Navigation Timing, ms from the "
              "navigation's start): response ended %.0f, DOMContentLoaded %.0f, load event ended %.0f" %
              (served, nav["response"], nav["dcl"], nav["load"]))
        page = url + "?page=200"
        b.navigate(page)
        nav = b.loaded(page)
        dom = Dom()
        dom.feed(b.html())
        assert len(dom.rows) == 500 and "j0099999" in dom.rows and "j0099500" in dom.rows, sorted(dom.rows)[:3]
        assert nav["load"] < 5000, "page 200 took %.0f ms to load: %s" % (nav["load"], nav)
        print("page 200: load event ended %.0f ms from the navigation's start" % nav["load"])
    finally:
        if b:
            b.close()
        w.stop()

small()
reloads_itself()
large()
print("1 passed, 0 failed")
