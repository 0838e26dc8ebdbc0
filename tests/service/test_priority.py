"""The server's threads run at the lowest scheduling priority, the rest of
watch at its own: under a live `watch --listen` (runs every 10 ms), every
libmicrohttpd thread (named MHD-...) has the policy SCHED_IDLE (or, where the
kernel refuses it, nice 19), and the loop's and the workers' threads keep
SCHED_OTHER at nice 0, so that a run's workers always get the CPU before a
client is answered (docs/service.md, "Limits"). The endpoints still answer,
from many clients at once. Read from /proc/PID/task/TID/stat (Linux).

usage: test_priority.py DAGGERPOOL"""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc  # noqa: E402

DP = sys.argv[1]
SCHED_OTHER, SCHED_IDLE = 0, 5


def threads(pid):
    """{tid: (name, nice, policy)} of the process's threads now."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                st = f.read()
        except OSError:
            continue  # ended meanwhile
        name = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()  # fields[0] is the stat's field 3
        out[int(tid)] = (name, int(fields[16]), int(fields[38]))
    return out


def main():
    d = svc.tmpdir()
    cfg = svc.write(os.path.join(d, "svc.cfg"), svc.SEED)
    w = svc.Watch(DP, cfg, "--interval", "10ms")
    try:
        w.wait_for("two runs", lambda: w.runs_ended() >= 2)
        # Requests from 50 clients at once, so that every server thread has
        # worked (a thread of the pool lowered only when it first serves
        # would show here too).
        errors = []

        def client():
            try:
                for path in ("/metrics", "/healthz", "/api/v1/result", "/"):
                    st, _, body = w.get(path)
                    if st not in (200, 503) or not body:
                        errors.append("%s: %d" % (path, st))
            except OSError as e:
                errors.append(str(e))

        cs = [threading.Thread(target=client) for _ in range(50)]
        for c in cs:
            c.start()
        for c in cs:
            c.join(120)
        assert not errors, errors[:5]
        ts = threads(w.proc.pid)
        server = {t: v for t, v in ts.items() if v[0].startswith("MHD")}
        rest = {t: v for t, v in ts.items() if not v[0].startswith("MHD")}
        assert len(server) == 2, "expected the server's 2 threads (MHD-...), found %s" % ts
        for tid, (name, nice, policy) in server.items():
            assert policy == SCHED_IDLE or (policy == SCHED_OTHER and nice == 19), \
                "server thread %d (%s) runs at policy %d, nice %d: expected SCHED_IDLE (%d) or nice 19" % (
                    tid, name, policy, nice, SCHED_IDLE)
        assert rest, ts
        for tid, (name, nice, policy) in rest.items():
            assert policy == SCHED_OTHER and nice == 0, \
                "thread %d (%s) of watch runs at policy %d, nice %d: only the server's threads are lowered" % (
                    tid, name, policy, nice)
        runs = w.runs_ended()
        w.wait_for("runs to go on", lambda: w.runs_ended() > runs + 2)
        print("server threads %s; the other %d threads at SCHED_OTHER, nice 0" %
              (sorted("%s nice %d policy %d" % v for v in server.values()), len(rest)))
    finally:
        rc = w.stop()
    assert rc == 130, "watch ended %s:\n%s" % (rc, w.log()[-2000:])
    assert "Sanitizer" not in w.log() and "runtime error" not in w.log(), w.log()[-4000:]


main()
print("1 passed, 0 failed")
