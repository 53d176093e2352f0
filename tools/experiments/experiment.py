"""tools/experiments/experiment.py: what every experiment script of this folder shares (standard library only).

An experiment is one script, tools/experiments/<name>, that trains what it needs and writes
its table, plots and results.json into docs/experiments/<name>/ (under --quick, into
BUILD/experiments/<name>/: a check that the script works, run by a meson test). The script
imports this module by name: Python puts the script's own directory first on sys.path.

    import experiment as ex

    ap = ex.parser(__doc__)                     # --quick, --build DIR, --out DIR, --keep
    ap.add_argument("--steps", type=int)        # the script's own options
    a = ex.parse(ap)                            # a.build absolute; the clock starts
    train, sample = ex.programs(a, "train", "sample")   # paths in the build dir, or fail
    data = ex.tiny_shakespeare(a)               # data/tinyshakespeare.txt, fetched; or skip / fail
    out, work = ex.dirs(a)                      # a.out (made) and a.work (a fresh temporary dir)
    ex.run_all([(cmd, work + "/x.jsonl", work + "/x.log"), ...])   # ./train ... --json, 2 at a time
    s = ex.summary_of(work + "/x.jsonl")        # the trainer's --json summary event
    res["setup"] = {..., **ex.stamp(a)}         # quick, wall_s, load_average, date, commit
    ex.write_json(out + "/results.json", res)
    wrote = ["table.md", "results.json"]
    if ex.gnuplot(a, "my_experiment.gp", out + "/val.png", file=out + "/val.dat"):   # out='.../val.png' too
        wrote.append("val.png")
    ex.finish(a, wrote)                         # "wrote ... into OUT (N s in all)", the
                                                # gnuplot-absent note, --keep or remove a.work

The name used in messages and default folders is the script's file name (sys.argv[0]).

Constants:  HERE (this folder), ROOT (the project), TINY_SHAKESPEARE (its path in data/).

Functions (each fails with "<name>: message" and exit status 1 where it says so):

    name()                        the experiment's name: the script's file name
    fail(msg)                     print "<name>: msg" on stderr, exit 1
    missing(a, msg)               a prerequisite is absent: under --quick skip (exit 77, meson's
                                  SKIP), else fail
    parser(doc)                   an ArgumentParser with --quick, --build DIR (default <repo>/build),
                                  --out DIR and --keep; the description is doc's first line
    parse(ap)                     parse the command line and return it (a): a.build made
                                  absolute, a.start = now; the functions below take this a
    programs(a, *names)           paths of programs in the build dir (e.g. "train",
                                  "tools/experiments/gradient-flow"): one path for one name, a
                                  list for several; fail when one is missing
    fetched(corpus, paths)        True when the paths exist, after data/fetch CORPUS copied them
                                  from ../shared/data if they were absent and it is there
    today()                       the UTC date, YYYY-MM-DD
    tiny_shakespeare(a)           the corpus path; copied by data/fetch from ../shared/data when
                                  absent; else, under --quick, a generated stand-in (40 KB of
                                  play-like lines, in BUILD/experiments/), else fail
    data_overrides(a)             ["data.path=STAND_IN"] when that stand-in is used, else []: add
                                  it to the commands of cfgs that name the corpus themselves
    log_row(header, line)         one log.csv line as {column name: value or None}
    read_log(path)                every row of a run's log.csv, as log_row's dicts
    dirs(a)                       make a.out (--out, or BUILD/experiments/<name> under --quick,
                                  else docs/experiments/<name>) and a.work (a temporary
                                  directory); note the load average; return (a.out, a.work)
    run(cmd, out, err, env=None)  run cmd with stdout, stderr into files; return (wall s, CPU s);
                                  fail with the tail of its log when it exits non-zero
    run_all(jobs, parallel=2, env=None)
                                  jobs = [(cmd, out, err)], `parallel` at a time; fail naming the
                                  first that fails
    json_lines(path)              the JSON objects of a file's lines that start with "{"
    summary_of(path)              the "summary" event of a ./train --json output; fail if none
    load_average()                the 1-minute load average, or None
    git_commit()                  the short commit of the tree, "+changes" when it is dirty; or None
    stamp(a)                      {"quick", "wall_s", "load_average": [before, now], "date", "commit"}
                                  for results.json's setup; sets a.wall (seconds since parse())
    write_json(path, obj)         results.json as every experiment writes it (indent 1, newline)
    gnuplot(a, script, png, **params)
                                  run gnuplot -e "k='v'; n=3; ...; out='png'" tools/experiments/<script>
                                  (str values quoted, ints %d, floats %g; the script writes the
                                  png named by its variable `out`); True when it plotted,
                                  False when gnuplot is absent (then finish() says so and removes
                                  an older run's png, which would mislead beside the new table);
                                  fail when gnuplot fails
    finish(a, wrote)              print what was written and the time, the gnuplot-absent note,
                                  then keep a.work (--keep, says where) or remove it
"""
import argparse
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TINY_SHAKESPEARE = os.path.join(ROOT, "data", "tinyshakespeare.txt")


def name():
    return os.path.basename(sys.argv[0])


def fail(msg):
    print("%s: %s" % (name(), msg), file=sys.stderr)
    sys.exit(1)


def missing(a, msg):
    if a.quick:
        print("%s: skipped: %s" % (name(), msg), file=sys.stderr)
        sys.exit(77)
    fail(msg)


def parser(doc):
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out")
    ap.add_argument("--keep", action="store_true")
    return ap


def parse(ap):
    a = ap.parse_args()
    a.start = time.time()
    a.build = os.path.abspath(a.build)
    a.unplotted = []  # pngs gnuplot could not make (it is absent), for finish()
    return a


def programs(a, *names):
    paths = [os.path.join(a.build, n) for n in names]
    for p in paths:
        if not os.access(p, os.X_OK):
            fail("%s not found: build first (meson setup build && ninja -C build), or say where with --build DIR" % p)
    return paths[0] if len(paths) == 1 else paths


def fetched(corpus, paths):
    """True when every path exists, after data/fetch CORPUS has copied them from ../shared/data
    (the local mirror) if they were absent and the mirror is there."""
    if not all(os.path.exists(p) for p in paths) and os.path.isdir(os.path.join(ROOT, "..", "shared", "data")):
        subprocess.call([os.path.join(ROOT, "data", "fetch"), corpus], stdout=subprocess.DEVNULL)
    return all(os.path.exists(p) for p in paths)


def today():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


def tiny_shakespeare(a):
    if not fetched("tinyshakespeare", [TINY_SHAKESPEARE]):
        if not a.quick:
            fail("%s not found: fetch it with data/fetch tinyshakespeare (from the project root)" % TINY_SHAKESPEARE)
        # --quick checks the script, not a result: a generated stand-in does for that
        a.stand_in = _stand_in(os.path.join(a.build, "experiments", "tiny_stand_in.txt"))
        print("%s: %s not found: --quick trains on a generated stand-in, %s" % (name(), TINY_SHAKESPEARE, a.stand_in),
              file=sys.stderr)
        return a.stand_in
    return TINY_SHAKESPEARE


def data_overrides(a):
    """["data.path=STAND_IN"] when tiny_shakespeare(a) gave the stand-in, else []: for cfgs that name the corpus."""
    return ["data.path=" + a.stand_in] if getattr(a, "stand_in", None) else []


def _stand_in(path):
    """40 KB of play-like lines (speakers in capitals, "ROMEO:" among them) from a tiny grammar, seeded."""
    import random
    rng = random.Random(1)
    who = ["ROMEO", "JULIET", "KING HENRY", "FIRST CITIZEN", "MENENIUS", "NURSE"]
    subj, verb, obj = ["I", "thou", "my lord", "the king", "this night", "our love", "good friend"], \
        ["shall", "dost", "will not", "must", "cannot"], \
        ["speak of death", "go to Rome", "see the queen", "be merry", "hear me, sir", "know thy heart"]
    lines = []
    while sum(len(x) for x in lines) < 40000:
        lines.append("%s:\n" % rng.choice(who))
        for _ in range(rng.randint(1, 3)):
            s = "%s %s %s%s" % (rng.choice(subj), rng.choice(verb), rng.choice(obj), rng.choice([".", "!", "?", ";"]))
            lines.append(s[0].upper() + s[1:] + "\n")
        lines.append("\n")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(lines))
    return path


def dirs(a):
    default = (os.path.join(a.build, "experiments", name()) if a.quick
               else os.path.join(ROOT, "docs", "experiments", name()))
    a.out = os.path.abspath(a.out or default)
    os.makedirs(a.out, exist_ok=True)
    a.work = tempfile.mkdtemp(prefix=name() + ".")
    a.load_before = load_average()
    return a.out, a.work


def _log_tail(path, lines=5):
    with open(path) as f:
        return "\n  ".join(f.read().strip().splitlines()[-lines:])


def _children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd, out_path, err_path, env=None):
    t0, c0 = time.time(), _children_cpu()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        rc = subprocess.call(cmd, stdout=out, stderr=err, env=env)
    if rc != 0:
        fail("'%s' exited with status %d (its log: %s):\n  %s" % (" ".join(cmd), rc, err_path, _log_tail(err_path)))
    return time.time() - t0, _children_cpu() - c0


def run_all(jobs, parallel=2, env=None):
    pending, running = list(jobs), []
    while pending or running:
        while pending and len(running) < parallel:
            cmd, out, err = pending.pop(0)
            with open(out, "w") as fo, open(err, "w") as fe:
                running.append((cmd, err, subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env)))
        cmd, err, p = running.pop(0)
        if p.wait() != 0:
            fail("'%s' exited with status %d (its log: %s):\n  %s" % (" ".join(cmd), p.returncode, err, _log_tail(err)))


def json_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def log_row(header, line):
    """One log.csv line as {column: int step / float value / None where empty}, by the header's names
    (step,train_loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s), so no script counts columns."""
    cells = line.rstrip("\n").split(",")
    return {k: (int(v) if k == "step" else float(v)) if v else None for k, v in zip(header, cells)}


def read_log(path):
    """Every row of a run's log.csv (log_row's dicts), in step order."""
    with open(path) as f:
        header = f.readline().rstrip("\n").split(",")
        return [log_row(header, line) for line in f if line.strip()]


def summary_of(path):
    for ev in json_lines(path):
        if ev.get("event") == "summary":
            return ev
    fail(path + ": the trainer wrote no summary")


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def git_commit():
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True)
        return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "") if head.returncode == 0 else None
    except OSError:
        return None


def stamp(a):
    a.wall = time.time() - a.start
    return {
        "quick": a.quick,
        "wall_s": round(a.wall, 1),
        "load_average": [None if x is None else round(x, 2) for x in (a.load_before, load_average())],
        "date": today(),
        "commit": git_commit(),
    }


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def _gp_value(v):
    if isinstance(v, str):
        return "'%s'" % v
    return "%d" % v if isinstance(v, int) else "%g" % v


def gnuplot(a, script, png, **params):
    exe = shutil.which("gnuplot")
    if not exe:
        a.unplotted.append(png)
        return False
    gp = os.path.join(HERE, script)
    expr = "; ".join("%s=%s" % (k, _gp_value(v)) for k, v in dict(params, out=png).items())
    p = subprocess.run([exe, "-e", expr, gp], capture_output=True, text=True)
    if p.returncode != 0:
        fail("gnuplot failed on %s:\n%s" % (gp, p.stderr.strip()))
    return True


def finish(a, wrote):
    wall = getattr(a, "wall", time.time() - a.start)
    print("wrote %s into %s (%.0f s in all)" % (", ".join(wrote), a.out, wall))
    if a.unplotted:
        for png in a.unplotted:
            if os.path.exists(png):  # an older run's plot beside this run's table would mislead
                os.remove(png)
        print("%s: gnuplot not found, so no %s (Debian: apt-get install gnuplot-nox); the tables and results.json "
              "are written" % (name(), ", ".join(os.path.basename(p) for p in a.unplotted)), file=sys.stderr)
    if a.keep:
        print("runs kept in " + a.work)
    else:
        shutil.rmtree(a.work)
