#!/usr/bin/env python3
"""mutate-workflows.py OUTDIR COUNT SEED SEEDFILE...

Writes COUNT workflow files to OUTDIR (m0000.cfg, ...), each a seed file
(those given, and a few made here that use every key of a workflow) with
one to three random mutations: lines deleted, duplicated, swapped or cut;
characters deleted or inserted; numbers, strings and keys replaced (huge,
negative, out of range, wrong type, typos of known keys, other jobs'
names); keys added to groups; dependencies added (cycles); @includes
added (of a file there, of none, of itself); bytes that are not UTF-8. The
same SEED gives the same files, byte for byte. The seeds are written too
(s00.cfg, ...), with the files they @include (inc_*.cfg).

Used by scripts/compare-validate.sh to compare two builds' messages.
"""
import os
import random
import re
import sys

KEYS = ["workflow", "plugins", "defaults", "jobs", "name", "max_concurrent_jobs", "timeout", "fail_fast",
        "plugin_path", "path", "type", "params", "depends_on", "retries", "backoff", "readiness", "isolation",
        "limits", "initial", "factor", "max", "jitter", "period", "probe_timeout", "cpu", "memory",
        "open_files", "retry", "tmeout", "typ", "bogus", "dependson", "command", "duration", "ready"]
NUMBERS = ["0", "-1", "1", "1.5", "2.0", "1e3", "1e400", "-0.5", "1000001", "16", "15", "1048577", "100001",
           "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807",
           "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "18446744073709551615",
           "18446744073709551616", "99999999999999999999999", "0x7fffffff", "0x80000000", "0xffffffffffffffff",
           "0x10000000000000000", "5L", "99999999999999999999L", "-9223372036854775807L", "0x1L", "007",
           "+5", ".5", "5.", "1e-3"]
STRINGS = ['""', '"x"', '"30s"', '"30x"', '"1h30m"', '"-5s"', '"1.5s"', '"0"', '"99999999999999999999h"',
           '"a.b"', '"core.noop"', '"core.sleep"', '"shell.command"', '"nosuch.plugin"', '"noplugin"',
           '".x"', '"x."', '"process"', '"none"', '"thread"', '"512MiB"', '"2GiB"', '"100MB"', '"5 KB"',
           '"99999999999999999999TiB"', '"18446744073709551615B"', '"-1MiB"', '"1XB"', '"lib/custom.so"',
           '"plugins"', '"/nonexistent/dir"', '"a\\"b"', '"tab\\there"', '"new\\nline"', '"\xff\xfe"',
           '"caf\xc3\xa9"', '"j0"', '"j1"', '"A"', '"B"', '"prepare"', '"build"']
VALUES = NUMBERS + STRINGS + ["true", "false", "[ ]", "[ \"A\" ]", "[ \"A\", \"A\" ]", "[ 1, 2 ]", "( )",
                              "( \"x\", 1 )", "{ }", "{ a = 1; }", "{ initial = \"1s\"; }",
                              "{ period = \"1s\"; }", "{ memory = \"1MiB\"; }", "{ path = \"x.so\"; }"]
CHARS = list(';{}()[]",=:@#/*\\\n.-+0aZ_ \t') + ["\x00", "\xff", "\xc3", "//", "/*", "*/", "\"\"", "L"]

# Seeds made here: every key, defaults of every group, includes, plugins.
RICH = '''workflow: {
  name = "rich";
  max_concurrent_jobs = 8;
  timeout = "10m";
  fail_fast = false;
  plugin_path = [ "plugins", "/nonexistent/plugins" ];
};
plugins = { custom = { path = "lib/custom.so"; }; };
defaults = {
  type = "core.noop";
  timeout = "1m";
  retries = 2;
  params = { shared = 1; env = { LANG = "C"; }; };
  backoff = { initial = "1s"; factor = 2.0; max = "30s"; jitter = 0.5; };
  readiness = { period = "5s"; probe_timeout = "10s"; timeout = "5m"; };
  isolation = "none";
};
jobs = (
  { name = "A"; type = "core.sleep"; params = { duration = "10ms"; ready = true; }; },
  { name = "B"; depends_on = [ "A" ]; timeout = 30000; retries = 0;
    backoff = { initial = 100; factor = 1.5; max = "2s"; }; },
  { name = "C"; type = "shell.command"; depends_on = [ "A", "B" ];
    params = { command = "true"; argv = [ "true", "x" ]; not_ready_exit = 75; f = 1.5; big = 5000000000; };
    readiness = { period = "1s"; timeout = "1m"; }; },
  { name = "D"; type = "core.noop"; depends_on = "C"; isolation = "process";
    limits = { cpu = "10s"; memory = "512MiB"; open_files = 256; }; },
  { name = "E"; type = "fs.exists"; depends_on = [ "D" ]; params = { path = "/nonexistent"; }; }
);
'''
INCLUDER = '''workflow = { name = "inc"; };
@include "inc_defaults.cfg"
jobs = (
  { name = "j0"; type = "core.noop"; },
@include "inc_jobs.cfg"
  { name = "j9"; type = "core.noop"; depends_on = [ "j0", "j1" ]; }
);
'''
INC_DEFAULTS = 'defaults = { retries = 1; backoff = { initial = "1s"; }; };\n'
INC_JOBS = '''  { name = "j1"; type = "core.sleep"; params = { duration = "1ms"; }; depends_on = [ "j0" ]; },
  { name = "j2"; type = "core.noop"; depends_on = [ "j1" ]; timeout = "5s"; },
'''
MANY = "jobs = (\n" + ",\n".join(
    '  { name = "j%d"; type = "core.noop"; retires = %d; depends_on = [ "j%d" ]; }' % (i, i, (i + 1) % 30)
    for i in range(30)) + "\n);\n"
CYCLE = "jobs = (\n" + ",\n".join(
    '  { name = "c%02d"; type = "core.noop"; depends_on = [ "c%02d" ]; }' % (i, (i + 1) % 40)
    for i in range(40)) + "\n);\n"


def job_names(text):
    return re.findall(r'name\s*=\s*"([^"]*)"', text)


def group_has(text, at, key):
    """Whether the group whose '{' is at text[at] has key already (libconfig
    refuses a key twice before any check of ours)."""
    depth, i = 0, at
    while i < len(text):
        c = text[i]
        if c == '"':
            j = text.find('"', i + 1)
            i = len(text) if j < 0 else j
        elif c in "{([":
            depth += 1
        elif c in "})]":
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and text.startswith(key, i) and re.match(r'\s*[=:]', text[i + len(key):]) and \
                not (text[i - 1].isalnum() or text[i - 1] == "_"):
            return True
        i += 1
    return False


def add_key(rng, text, key, value):
    ms = [m for m in re.finditer(r'\{', text) if not group_has(text, m.start(), key)]
    if not ms:
        return text
    m = rng.choice(ms)
    return text[:m.end()] + " %s = %s; " % (key, value) + text[m.end():]


def mutate(rng, text, files):
    lines = text.split("\n")
    # Mostly mutations that libconfig parses, so that the checks after it
    # are what is compared; some that it does not.
    op = rng.choices(range(16), weights=[2, 1, 1, 1, 1, 5, 6, 5, 5, 5, 2, 1, 1, 3, 3, 6])[0]
    if op == 0 and len(lines) > 1:  # delete a line
        del lines[rng.randrange(len(lines))]
    elif op == 1:  # duplicate a line
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif op == 2 and len(lines) > 1:  # swap two lines
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 3 and text:  # delete a character
        i = rng.randrange(len(text))
        return text[:i] + text[i + 1:]
    elif op == 4:  # insert a character
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice(CHARS) + text[i:]
    elif op in (5, 6):  # replace a number or a string
        pat = r'-?\b\d[\w.]*' if op == 5 else r'"(?:[^"\\\n]|\\.)*"'
        ms = list(re.finditer(pat, text))
        if ms:
            m = rng.choice(ms)
            new = rng.choice(VALUES if rng.random() < 0.3 else (NUMBERS if op == 5 else STRINGS))
            return text[:m.start()] + new + text[m.end():]
    elif op == 7:  # replace a key (a typo, or another key)
        ms = list(re.finditer(r'\b([a-z_]+)\s*[=:]', text))
        if ms:
            m = rng.choice(ms)
            key = m.group(1)
            r = rng.random()
            if r < 0.4:
                new = rng.choice(KEYS)
            elif r < 0.6 and len(key) > 1:
                i = rng.randrange(len(key))
                new = key[:i] + key[i + 1:]
            elif r < 0.8:
                i = rng.randrange(len(key) + 1)
                new = key[:i] + rng.choice("aeiorstx_") + key[i:]
            else:
                i = rng.randrange(max(1, len(key) - 1))
                new = key[:i] + key[i + 1:i + 2] + key[i:i + 1] + key[i + 2:]
            return text[:m.start(1)] + new + text[m.end(1):]
    elif op == 8:  # add a key to a group
        return add_key(rng, text, rng.choice(KEYS), rng.choice(VALUES))
    elif op == 9:  # add a dependency (maybe a cycle, maybe unknown)
        ms = [m for m in re.finditer(r'\{\s*name\s*=\s*"[^"]*"\s*;', text)
              if not group_has(text, m.start(), "depends_on")]
        names = job_names(text) + ["nosuch", "A ", "j0 -> j1"]
        if ms:
            m = rng.choice(ms)
            deps = ", ".join('"%s"' % rng.choice(names) for _ in range(rng.randrange(1, 4)))
            return text[:m.end()] + " depends_on = [ %s ];" % deps + text[m.end():]
    elif op == 10:  # an @include at the start of a line
        inc = rng.choice(files + ["nosuch.cfg", "/nonexistent/x.cfg", "", "."])
        lines.insert(rng.randrange(len(lines) + 1), '@include "%s"' % inc)
    elif op == 11 and text:  # cut the file
        return text[:rng.randrange(len(text))]
    elif op == 12:  # a bracket for another
        ms = list(re.finditer(r'[\[\](){}]', text))
        if ms:
            m = rng.choice(ms)
            return text[:m.start()] + rng.choice("[](){}") + text[m.end():]
    elif op == 13:  # a job without its name, or its name twice
        ms = list(re.finditer(r'name\s*=\s*"[^"]*"\s*;', text))
        if ms:
            m = rng.choice(ms)
            new = rng.choice(["", 'name = "A";', 'name = 5;', 'name = "";', 'name = "\xff";', m.group(0) * 2])
            return text[:m.start()] + new + text[m.end():]
    elif op == 14:  # a section more (one the file does not have: libconfig refuses a key twice)
        extra = [x for x in ['jobs = ( { name = "X"; type = "core.noop"; } );', 'defaults = { name = "x"; };',
                             'defaults = 5;', 'workflow = ( 1 );', 'plugins = { p = { }; };',
                             'plugins = { p = { path = 5; x = 1; }; };', 'defaults = { limits = { cpu = 1; }; };',
                             'defaults = { depends_on = [ "A" ]; bogus = 1; params = 3; };',
                             'defaults = { backoff = 1; readiness = { x = 1; }; timeout = "1x"; };',
                             'workflow = { plugin_path = [ "" ]; name = ""; };', 'jobs = ( );', 'jobs = 5;',
                             'jobs = ( 5, { name = "A"; } );']
                 if not re.search(r'(?m)^\s*' + x.split()[0] + r'\s*[=:]', text)]
        if extra:
            lines.append(rng.choice(extra))
    else:  # a value out of its range in a known place
        key = rng.choice(["retries", "timeout", "max_concurrent_jobs", "factor", "jitter", "open_files",
                          "memory", "cpu", "isolation", "period"])
        return add_key(rng, text, key, rng.choice(VALUES))
    return "\n".join(lines)


def main():
    out, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seeds = []
    for path in sys.argv[4:]:
        with open(path, "rb") as f:
            seeds.append(f.read().decode("latin-1"))
    seeds += [RICH, INCLUDER, MANY, CYCLE]
    os.makedirs(out, exist_ok=True)
    aux = {"inc_defaults.cfg": INC_DEFAULTS, "inc_jobs.cfg": INC_JOBS}
    for name, text in aux.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(text.encode("latin-1"))
    for i, text in enumerate(seeds):
        with open(os.path.join(out, "s%02d.cfg" % i), "wb") as f:
            f.write(text.encode("latin-1"))
    rng = random.Random(seed)
    files = list(aux) + ["s%02d.cfg" % i for i in range(len(seeds))]
    for n in range(count):
        text = rng.choice(seeds)
        for _ in range(rng.choice([1, 1, 2, 3])):
            text = mutate(rng, text, files + ["m%04d.cfg" % n])
        with open(os.path.join(out, "m%04d.cfg" % n), "wb") as f:
            f.write(text.encode("latin-1"))


if __name__ == "__main__":
    main()
