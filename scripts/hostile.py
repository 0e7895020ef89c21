#!/usr/bin/python3
"""`make hostile`: snapmem against a hostile world (issue #18), as a harness.

Builds a small valid mock with `snapmem mock`, derives hostile variants of it with h5py (other
encodings of the same data, header and dataset faults, truncated files, bad values, special
files), tampered copies of a finished run directory, and cases under resource limits, signals and
absurd options; runs the subcommands (info, estimate, tradeoff, run, report) on each and checks the
command-line contract (docs/DESIGN.md, docs/CLI.md):

- the exit status is 0, 1, 2 or 3 (130/143 after a signal sent on purpose): never killed by a
  signal, never a hang (each command runs under a timeout);
- a failure prints exactly one line on stderr, starting "snapmem", and for bad input naming its
  subject in quotes;
- nothing partial is left behind: a fresh --out directory does not exist after a failure (after a
  signal it may hold memory.json marked incomplete, nothing else), a --force run over an existing
  directory leaves its sentinel file alone and adds nothing, an -o target keeps its old contents;
- the inputs are never written (checksums of every input file before and after);
- variants that hold the same data differently (compressed, chunked, big-endian, re-split, extra
  attributes...) give the same profiles.hdf5 counts as the original.

Usage: scripts/hostile.py --bin build/snapmem [--sample N] [--seed S] [--keep DIR] [--list]
  --sample N   run N cases drawn with the seed (CI); known failures are left out of a sample
  --with-known with --sample: draw from the known failures too
Prints "hostile: N cases, N kept the contract, N broke it" and the cases that broke it; exits 1
when a case not in KNOWN broke it. KNOWN lists the cases that fail on purpose until the fix named
beside them lands; a known case that keeps the contract is reported so that it can be removed.
"""
import argparse
import hashlib
import os
import random
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

SNAP = "snapdir_099/snap_099.%d.hdf5"
GRP = "groups_099/fof_subhalo_tab_099.%d.hdf5"
GAS_FIELDS = ("Coordinates", "InternalEnergy", "ElectronAbundance", "StarFormationRate")
TIMEOUT = 15

# Cases that break the contract on purpose until another part of issue #18 lands: name -> why.
# A name ending in '*' matches every case with that prefix.
KNOWN = {
}


def known(name):
    for k, why in KNOWN.items():
        if name == k or (k.endswith("*") and name.startswith(k[:-1])):
            return why
    return None


# ---- editing a copy of the mock --------------------------------------------------------------

def chunks(d):
    return sorted(int(f.split(".")[1]) for f in os.listdir(os.path.join(d, "snapdir_099")))


def snap(d, i):
    return os.path.join(d, SNAP % i)


def grp(d, i):
    return os.path.join(d, GRP % i)


def gas_chunks(d):
    out = []
    for i in chunks(d):
        with h5py.File(snap(d, i), "r") as f:
            if f["Header"].attrs["NumPart_ThisFile"][0] > 0:
                out.append(i)
    return out


def rewrite(path, name, fn):
    """Replaces dataset `name` by fn(data, attrs) -> (data, create_dataset kwargs)."""
    with h5py.File(path, "r+") as f:
        ds = f[name]
        data = ds[()]
        attrs = dict(ds.attrs)
        del f[name]
        data, kw = fn(data)
        nd = f.create_dataset(name, data=data, **kw)
        for k, v in attrs.items():
            nd.attrs[k] = v


def all_gas(d, fn, fields=None):
    for i in gas_chunks(d):
        with h5py.File(snap(d, i), "r") as f:
            names = [n for n in f["PartType0"]] if fields is None else fields
        for n in names:
            rewrite(snap(d, i), "PartType0/" + n, fn)


def set_attr(path, name, value, group="Header"):
    with h5py.File(path, "r+") as f:
        if value is None:
            del f[group].attrs[name]
        else:
            f[group].attrs[name] = value


def set_values(path, name, fn):
    with h5py.File(path, "r+") as f:
        a = f[name][()]
        fn(a)
        f[name][...] = a


def truncate(path, size):
    with open(path, "r+b") as f:
        if size < 0:
            size = os.path.getsize(path) * (-size) // 100
        f.truncate(size)


def resplit(d, nfiles):
    """Redistributes every particle type over nfiles chunk files (the same data)."""
    old = chunks(d)
    data, header, counts = {}, None, None
    for i in old:
        with h5py.File(snap(d, i), "r") as f:
            if header is None:
                header = {k: v for k, v in f["Header"].attrs.items()}
            for t in range(6):
                g = "PartType%d" % t
                if g not in f:
                    continue
                for n, ds in f[g].items():
                    data.setdefault((g, n), []).append(ds[()])
        os.unlink(snap(d, i))
    full = {k: np.concatenate(v) for k, v in data.items()}
    total = [0] * 6
    for (g, n), a in full.items():
        total[int(g[8:])] = len(a)
    for i in range(nfiles):
        with h5py.File(snap(d, i), "w") as f:
            h = f.create_group("Header")
            this = [0] * 6
            for (g, n), a in full.items():
                t = int(g[8:])
                lo, hi = len(a) * i // nfiles, len(a) * (i + 1) // nfiles
                this[t] = hi - lo
                f.require_group(g).create_dataset(n, data=a[lo:hi])
            for k, v in header.items():
                h.attrs[k] = v
            h.attrs["NumPart_ThisFile"] = np.array(this, dtype=np.int32)
            h.attrs["NumFilesPerSnapshot"] = np.int32(nfiles)
    del counts


def be(a):
    return a, {"dtype": a.dtype.newbyteorder(">")}


# Input variants `run` may accept (exit 0) although they are not the original data; every other
# variant that is not the same data must be refused by `run` (exit 2, or 3 for absurd sizes).
ACCEPTABLE = {
    "no-attr-Redshift", "no-attr-NumPart_Total_HighWord",
    "no-attr-UnitVelocity_in_cm_per_s",   # the default 1e5 cm/s (DESIGN.md)
    "u-2d",                               # [N, 1] is one value per cell
    "value-Coordinates--1",               # just outside the box: wrapped periodically
    "cat-m200-negative",                  # no halo above the cut: an empty result, said so
    "lzf",                                # readable when an LZF plugin is installed (same data)
    "cat-Group_M_Crit200-nan",            # NaN M200 is "unknown": never above --mass-min, ranked
                                          # last (docs/PIPELINE.md); memory.json says null
}


def variants():
    """(name, builder, same): same = the data is unchanged, the results must equal the original;
    "maybe": the same data, which may be unreadable here (a filter HDF5 lacks)."""
    V = []

    def add(name, fn, same=False):
        V.append((name, fn, same))

    add("valid", lambda d: None, True)
    # other encodings of the same data
    add("gzip", lambda d: all_gas(d, lambda a: (a, {"compression": "gzip", "compression_opts": 4,
                                                    "shuffle": True})), True)
    add("chunked", lambda d: all_gas(d, lambda a: (a, {"chunks": True})), True)
    add("chunked-tiny", lambda d: all_gas(d, lambda a: (a, {"chunks": (7,) + a.shape[1:]})), True)
    add("fletcher32", lambda d: all_gas(d, lambda a: (a, {"fletcher32": True, "chunks": True})),
        True)
    add("big-endian", lambda d: all_gas(d, be), True)
    add("big-endian-gzip", lambda d: all_gas(d, lambda a: (a, {"dtype": a.dtype.newbyteorder(">"),
                                                              "compression": "gzip"})), True)
    add("lzf", lambda d: all_gas(d, lambda a: (a, {"compression": "lzf"}), ["InternalEnergy"]),
        "maybe")
    add("scaleoffset", lambda d: all_gas(d, lambda a: (a, {"scaleoffset": 0}),
                                         ["ParticleIDs"]), True)
    add("resplit-5", lambda d: resplit(d, 5), True)
    add("resplit-1", lambda d: resplit(d, 1), True)
    add("f64-fields", lambda d: all_gas(d, lambda a: (a.astype(np.float64), {}),
                                        ["InternalEnergy", "ElectronAbundance"]), True)
    add("extra-attr", lambda d: [set_attr(snap(d, i), "Junk", np.arange(5)) for i in chunks(d)],
        True)
    add("extra-dataset", extra_dataset, True)
    # header faults (chunk 0)
    for a in ("NumPart_ThisFile", "NumPart_Total", "NumFilesPerSnapshot", "BoxSize",
              "HubbleParam", "Redshift", "UnitVelocity_in_cm_per_s", "NumPart_Total_HighWord"):
        add("no-attr-" + a, lambda d, a=a: set_attr(snap(d, 0), a, None))
    add("attr-string-npart", lambda d: set_attr(snap(d, 0), "NumPart_Total", np.bytes_("20000")))
    add("attr-string-box", lambda d: set_attr(snap(d, 0), "BoxSize", np.bytes_("big")))
    add("attr-short-npart", lambda d: set_attr(snap(d, 0), "NumPart_ThisFile",
                                               np.array([5000, 1, 0], np.int32)))
    add("attr-negative-npart", lambda d: set_attr(snap(d, 0), "NumPart_ThisFile",
                                                  np.array([-5, 0, 0, 0, 0, 0], np.int32)))
    add("attr-huge-total", lambda d: set_attr(snap(d, 0), "NumPart_Total_HighWord",
                                              np.array([7, 0, 0, 0, 0, 0], np.uint32)))
    add("attr-nfiles-0", lambda d: set_attr(snap(d, 0), "NumFilesPerSnapshot", np.int32(0)))
    add("attr-nfiles-9", lambda d: set_attr(snap(d, 0), "NumFilesPerSnapshot", np.int32(9)))
    for v in ("0", "-1", "inf", "nan"):
        add("box-" + v, lambda d, v=v: [set_attr(snap(d, i), "BoxSize", np.float64(v))
                                        for i in chunks(d)])
    add("hubble-0", lambda d: set_attr(snap(d, 0), "HubbleParam", np.float64(0)))
    add("uvel-nan", lambda d: set_attr(snap(d, 0), "UnitVelocity_in_cm_per_s", np.float64("nan")))
    add("uvel-0", lambda d: set_attr(snap(d, 0), "UnitVelocity_in_cm_per_s", np.float64(0)))
    add("box-disagree", lambda d: set_attr(snap(d, 2), "BoxSize", np.float64(50000)))
    add("total-disagree", lambda d: set_attr(snap(d, 2), "NumPart_Total",
                                             np.array([20001, 1253, 0, 0, 0, 0], np.uint32)))
    add("cat-box-disagree", lambda d: set_attr(grp(d, 0), "BoxSize", np.float64(1000)))
    add("cat-no-ngroups", lambda d: set_attr(grp(d, 0), "Ngroups_Total", None))
    add("cat-ngroups-wrong", lambda d: set_attr(grp(d, 0), "Ngroups_Total", np.int32(99)))
    # datasets
    add("no-u-chunk2", lambda d: del_ds(snap(d, 2), "PartType0/InternalEnergy"))
    add("no-coords-chunk0", lambda d: del_ds(snap(d, 0), "PartType0/Coordinates"))
    add("no-parttype0", lambda d: [del_ds(snap(d, i), "PartType0") for i in gas_chunks(d)])
    add("coords-2col", lambda d: rewrite(snap(d, 0), "PartType0/Coordinates",
                                         lambda a: (a[:, :2], {})))
    add("coords-int", lambda d: rewrite(snap(d, 0), "PartType0/Coordinates",
                                        lambda a: (a.astype(np.int32), {})))
    add("u-short", lambda d: rewrite(snap(d, 0), "PartType0/InternalEnergy",
                                     lambda a: (a[:-1], {})))
    add("u-long", lambda d: rewrite(snap(d, 0), "PartType0/InternalEnergy",
                                    lambda a: (np.append(a, a[:1]), {})))
    add("u-string", lambda d: rewrite(snap(d, 0), "PartType0/InternalEnergy",
                                      lambda a: (np.array([b"x"] * len(a), "S4"), {})))
    add("u-scalar", lambda d: rewrite(snap(d, 0), "PartType0/InternalEnergy",
                                      lambda a: (a[0], {})))
    add("u-2d", lambda d: rewrite(snap(d, 0), "PartType0/InternalEnergy",
                                  lambda a: (a.reshape(-1, 1), {})))
    add("cat-no-r200", lambda d: del_ds(grp(d, 0), "Group/Group_R_Crit200"))
    add("cat-pos-2col", lambda d: rewrite(grp(d, 0), "Group/GroupPos", lambda a: (a[:, :2], {})))
    # truncated files
    add("trunc-chunk0-half", lambda d: truncate(snap(d, 0), -50))
    add("trunc-chunk2-1k", lambda d: truncate(snap(d, 2), 1000))
    add("trunc-chunk0-empty", lambda d: truncate(snap(d, 0), 0))
    add("trunc-cat-half", lambda d: truncate(grp(d, 0), -50))
    add("missing-chunk2", lambda d: os.unlink(snap(d, 2)))
    # values
    for field, what in (("InternalEnergy", "nan"), ("InternalEnergy", "inf"),
                        ("InternalEnergy", "-1"), ("InternalEnergy", "3e38"),
                        ("ElectronAbundance", "nan"), ("ElectronAbundance", "-1"),
                        ("StarFormationRate", "nan"), ("Coordinates", "nan"),
                        ("Coordinates", "inf"), ("Coordinates", "-1"), ("Coordinates", "1e10")):
        add("value-%s-%s" % (field, what),
            lambda d, f=field, w=what: set_values(snap(d, 0), "PartType0/" + f,
                                                  lambda a: a.__setitem__(slice(3, 9), float(w))))
    for field, what in (("Group_R_Crit200", "1e30"), ("Group_R_Crit200", "inf"),
                        ("Group_R_Crit200", "-1"), ("Group_M_Crit200", "inf"),
                        ("Group_M_Crit200", "nan"), ("GroupPos", "nan")):
        add("cat-%s-%s" % (field, what),
            lambda d, f=field, w=what: set_values(grp(d, 0), "Group/" + f,
                                                  lambda a: a.__setitem__(0, float(w))))
    add("cat-m200-negative", lambda d: set_values(grp(d, 0), "Group/Group_M_Crit200",
                                                  lambda a: a.__setitem__(slice(None), -1.0)))
    # special files in place of chunk 2
    add("fifo-chunk2", lambda d: (os.unlink(snap(d, 2)), os.mkfifo(snap(d, 2))))
    add("dir-chunk2", lambda d: (os.unlink(snap(d, 2)), os.mkdir(snap(d, 2))))
    add("devnull-chunk2", lambda d: (os.unlink(snap(d, 2)), os.symlink("/dev/null", snap(d, 2))))
    add("symlink-loop-chunk2", lambda d: (os.unlink(snap(d, 2)),
                                          os.symlink(snap(d, 2), snap(d, 2))))
    add("fifo-cat0", lambda d: (os.unlink(grp(d, 0)), os.mkfifo(grp(d, 0))))
    return V


def del_ds(path, name):
    with h5py.File(path, "r+") as f:
        del f[name]


def extra_dataset(d):
    for i in gas_chunks(d):
        with h5py.File(snap(d, i), "r+") as f:
            n = f["Header"].attrs["NumPart_ThisFile"][0]
            f.create_dataset("PartType0/Junk", data=np.zeros((n, 4), np.int8))
            f.create_group("PartType5")


# ---- running and checking --------------------------------------------------------------------

class Res:
    def __init__(self, rc, out, err, timed_out):
        self.rc, self.out, self.err, self.timed_out = rc, out, err, timed_out


def run(bin_, args, limits=None, sig=None, env=None):
    def pre():
        for res, val in (limits or {}).items():
            resource.setrlimit(res, (val, val))
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.Popen([bin_] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, preexec_fn=pre, env=e)
    if sig is not None:
        time.sleep(sig[1])
        try:
            p.send_signal(sig[0])
        except ProcessLookupError:
            pass
    try:
        out, err = p.communicate(timeout=TIMEOUT)
        return Res(p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), False)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return Res(None, out.decode(errors="replace"), err.decode(errors="replace"), True)


def tree_sums(d):
    sums = {}
    for root, dirs, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    sums[p] = hashlib.sha256(fh.read()).hexdigest()
            else:
                sums[p] = "special %o" % st.st_mode
    return sums


def contract(r, allowed=(0, 1, 2, 3), names_subject=False):
    """The problems of one command's result (empty: kept the contract)."""
    if r.timed_out:
        return ["no answer within %d s (a hang)" % TIMEOUT]
    if r.rc < 0:
        # only the signal sent on purpose, before the command installed its handler
        return [] if r.rc in allowed else ["killed by signal %d" % -r.rc]
    if r.rc not in allowed:
        return ["exit status %d" % r.rc]
    p = []
    if r.rc == 127:
        if "error while loading shared libraries" not in r.err:
            p.append("exit 127 without the dynamic loader's message: %r" % r.err[:200])
        return p
    if r.rc not in (0, 1):
        lines = [l for l in r.err.splitlines() if l.strip()]
        if len(lines) != 1:
            p.append("%d lines on stderr: %r" % (len(lines), r.err[:300]))
        elif not lines[0].startswith("snapmem"):
            p.append("stderr line does not start with 'snapmem': %r" % lines[0][:200])
        elif names_subject and r.rc == 2 and "'" not in lines[0]:
            p.append("the error names no file: %r" % lines[0][:200])
    return p


def ftype(mode):
    for test, name in ((stat.S_ISREG, "regular file"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISLNK, "symlink"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISDIR, "directory")):
        if test(mode):
            return name
    return "special file"


def profile_counts(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()].tobytes() for k in ("counts", "sf_counts", "hist2d", "halo_index")}


class Harness:
    def __init__(self, bin_, work):
        self.bin = bin_
        self.work = work
        self.cases = []   # (name, fn) fn() -> list of problems

    def add(self, name, fn):
        self.cases.append((name, fn))

    def fresh(self, name):
        d = os.path.join(self.work, "c", name)
        if os.path.lexists(d):
            shutil.rmtree(d)
        os.makedirs(d)
        return d

    # one input variant, one subcommand
    def input_case(self, vname, vdir, cmd, same, ref):
        def fn():
            d = self.fresh("%s.%s" % (vname, cmd))
            before = tree_sums(vdir)
            p = []
            base = ["--base-path", vdir, "--snap", "99"]
            if cmd in ("info", "tradeoff"):
                r = run(self.bin, [cmd] + base)
                p += contract(r, names_subject=True)
            elif cmd == "estimate":
                o = os.path.join(d, "est.json")
                with open(o, "w") as fh:
                    fh.write("sentinel\n")
                r = run(self.bin, ["estimate"] + base + ["--format", "json", "-o", o])
                p += contract(r, names_subject=True)
                if r.rc not in (0, 1) and open(o).read() != "sentinel\n":
                    p.append("-o target changed by a failed estimate")
            elif cmd == "run":
                out = os.path.join(d, "out")
                r = run(self.bin, ["run"] + base + ["--out", out])
                p += contract(r, names_subject=True)
                if r.rc not in (0, None) and os.path.lexists(out):
                    p.append("left %s behind: %s" % (out, sorted(os.listdir(out))))
                if same is True and r.rc != 0:
                    p.append("the same data in another layout failed: %s" % r.err.strip()[:300])
                if not same and vname != "valid" and vname not in ACCEPTABLE and r.rc == 0:
                    p.append("bad input accepted: exit 0")
                if same and r.rc == 0 and ref is not None:
                    if profile_counts(os.path.join(out, "profiles.hdf5")) != ref:
                        p.append("profiles.hdf5 differs from the original's")
            elif cmd == "run-force":
                keep = os.path.join(d, "keep")
                os.mkdir(keep)
                with open(os.path.join(keep, "sentinel"), "w") as fh:
                    fh.write("sentinel\n")
                r = run(self.bin, ["run"] + base + ["--out", keep, "--force"])
                p += contract(r, names_subject=True)
                if r.rc not in (0, None):
                    left = sorted(os.listdir(keep))
                    if left != ["sentinel"]:
                        p.append("a failed --force run left %s" % left)
                    elif open(os.path.join(keep, "sentinel")).read() != "sentinel\n":
                        p.append("sentinel changed")
            if tree_sums(vdir) != before:
                p.append("an input file was changed")
            return p
        return fn


def build_cases(h):
    work = h.work
    mock = os.path.join(work, "mock")
    r = run(h.bin, ["mock", mock, "--gas", "20000", "--halos", "6", "--files", "3", "--seed", "7"])
    if r.rc != 0:
        sys.exit("hostile: cannot make the mock: " + r.err)
    refrun = os.path.join(work, "ref-run")
    r = run(h.bin, ["run", "--base-path", mock, "--snap", "99", "--out", refrun])
    if r.rc != 0:
        sys.exit("hostile: the valid mock does not run: " + r.err)
    ref = profile_counts(os.path.join(refrun, "profiles.hdf5"))

    cmds = ("info", "estimate", "tradeoff", "run", "run-force")
    for vname, build, same in variants():
        names = ["input/%s/%s" % (vname, c) for c in cmds]
        vdir = os.path.join(work, "v", vname)
        shutil.copytree(mock, vdir)
        build(vdir)
        for c, n in zip(cmds, names):
            h.add(n, h.input_case(vname, vdir, c, same, ref))

    # tampered run directories, for report
    def tamper(name, fn):
        def case():
            d = h.fresh("report." + name)
            rd = os.path.join(d, "run")
            shutil.copytree(refrun, rd)
            fn(rd)
            before = tree_sums(rd)
            o = os.path.join(d, "report.out")
            with open(o, "w") as fh:
                fh.write("sentinel\n")
            p = []
            for fmt in ("table", "json"):
                r = run(h.bin, ["report", rd, "--format", fmt])
                p += contract(r, names_subject=True)
            r = run(h.bin, ["report", rd, "--format", "html", "-o", o])
            p += contract(r, names_subject=True)
            if r.rc not in (0, 1) and open(o).read() != "sentinel\n":
                p.append("-o target changed by a failed report")
            if tree_sums(rd) != before:
                p.append("the run directory was changed")
            return p
        h.add("report/" + name, case)

    def write(path, text):
        def f(rd):
            p = os.path.join(rd, path)
            if os.path.isdir(p):
                shutil.rmtree(p)
            with open(p, "w") as fh:
                fh.write(text)
        return f

    def json_edit(path, fn):
        import json

        def f(rd):
            p = os.path.join(rd, path)
            with open(p) as fh:
                j = json.load(fh)
            fn(j)
            with open(p, "w") as fh:
                json.dump(j, fh)
        return f

    tamper("valid", lambda rd: None)
    tamper("estimate-truncated", lambda rd: truncate(os.path.join(rd, "estimate.json"), -50))
    tamper("memory-truncated", lambda rd: truncate(os.path.join(rd, "memory.json"), -50))
    tamper("memory-empty", write("memory.json", ""))
    tamper("memory-not-json", write("memory.json", "{ not json"))
    tamper("memory-array", write("memory.json", "[1, 2, 3]"))
    tamper("estimate-missing", lambda rd: os.unlink(os.path.join(rd, "estimate.json")))
    tamper("estimate-dir", lambda rd: (os.unlink(os.path.join(rd, "estimate.json")),
                                       os.mkdir(os.path.join(rd, "estimate.json"))))
    tamper("estimate-fifo", lambda rd: (os.unlink(os.path.join(rd, "estimate.json")),
                                        os.mkfifo(os.path.join(rd, "estimate.json"))))
    tamper("stages-empty", json_edit("estimate.json", lambda j: j.__setitem__("stages", [])))
    tamper("stages-not-array", json_edit("estimate.json", lambda j: j.__setitem__("stages", 7)))
    tamper("stage-peak-negative", json_edit("memory.json", lambda j: [
        s.__setitem__("requested_peak", -5) for s in j.get("stages", []) if isinstance(s, dict)]))
    tamper("stage-peak-string", json_edit("memory.json", lambda j: [
        s.__setitem__("requested_peak", "x") for s in j.get("stages", []) if isinstance(s, dict)]))
    tamper("schema-other", json_edit("memory.json", lambda j: j.__setitem__("schema", "other/9")))

    # -o onto what is not a regular file (issue #18 item 1): the target must stay what it was
    def special_o(name, make, cmd):
        def case():
            d = h.fresh("o." + name)
            t = os.path.join(d, "target")
            if make(d, t) is False:
                return []  # cannot be made here (mknod needs root)
            kind = os.lstat(t).st_mode
            link_to = os.readlink(t) if os.path.islink(t) else None
            sums = tree_sums(d)
            a = [x.replace("@T", t).replace("@MOCK", mock).replace("@RUN", rd_for(d))
                 for x in cmd]
            r = run(h.bin, a)
            p = contract(r, names_subject=True)
            st = os.lstat(t)
            if stat.S_IFMT(st.st_mode) != stat.S_IFMT(kind):
                p.append("-o replaced a %s by a %s" % (ftype(kind), ftype(st.st_mode)))
            elif link_to is not None and os.readlink(t) != link_to:
                p.append("-o changed the symlink")
            for f, v in sums.items():
                if f != t and tree_sums(d).get(f) != v:
                    p.append("'%s' changed" % f)
            return p
        h.add("o/" + name, case)

    def rd_for(d):
        rd = os.path.join(d, "run")
        if not os.path.exists(rd):
            shutil.copytree(refrun, rd)
        return rd

    def mk_fifo(d, t):
        os.mkfifo(t)

    def mk_link(d, t):
        with open(os.path.join(d, "kept.txt"), "w") as fh:
            fh.write("kept\n")
        os.symlink(os.path.join(d, "kept.txt"), t)

    def mk_dev(d, t):
        try:
            os.mknod(t, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except OSError:
            return False

    EST_O = ["estimate", "--base-path", "@MOCK", "--snap", "99", "--format", "json", "-o", "@T"]
    REP_O = ["report", "@RUN", "--format", "json", "-o", "@T"]
    for kind, make in (("fifo", mk_fifo), ("symlink", mk_link), ("chardev", mk_dev)):
        special_o("estimate-" + kind, make, EST_O)
        special_o("report-" + kind, make, REP_O)

    def own_input(d, t):
        os.symlink(os.path.join(rd_for(d), "memory.json"), t)
    special_o("report-own-input", own_input, ["report", "@RUN", "-o", "@RUN/memory.json"])

    # resource limits and signals, on the valid mock
    def limited(name, args, limits=None, sig=None, allowed=(0, 1, 2, 3), env=None):
        def case():
            d = h.fresh("limit." + name)
            out = os.path.join(d, "out")
            a = [x.replace("@OUT", out).replace("@MOCK", mock).replace("@RUN", refrun)
                 for x in args]
            r = run(h.bin, a, limits=limits, sig=sig, env=env)
            p = contract(r, allowed=allowed)
            if r.rc not in (0, None) and os.path.lexists(out):
                left = sorted(os.listdir(out)) if os.path.isdir(out) else ["(a file)"]
                if r.rc in (130, 143) and left == ["memory.json"]:
                    with open(os.path.join(out, "memory.json")) as fh:
                        if "incomplete" not in fh.read():
                            p.append("memory.json after a signal is not marked incomplete")
                else:
                    p.append("left %s behind: %s" % (out, left))
            return p
        h.add("limits/" + name, case)

    RUN = ["run", "--base-path", "@MOCK", "--snap", "99", "--out", "@OUT"]
    EST = ["estimate", "--base-path", "@MOCK", "--snap", "99"]
    for mib in (20, 36, 40, 45, 50, 58, 64, 80, 120):
        # below ~34 MiB the dynamic loader cannot map the libraries: exit 127 with its own
        # line before snapmem runs (the floor, docs/PIPELINE.md "Memory limits")
        floor = (127,) if mib < 34 else ()
        limited("as-%dM-run" % mib, RUN, {resource.RLIMIT_AS: mib << 20},
                allowed=(0, 1, 2, 3) + floor)
        limited("as-%dM-estimate" % mib, EST, {resource.RLIMIT_AS: mib << 20},
                allowed=(0, 1, 2, 3) + floor)
    for mib in (50, 80):
        limited("data-%dM-run" % mib, RUN, {resource.RLIMIT_DATA: mib << 20})
    for kib in (32, 64, 128):
        limited("stack-%dK-run" % kib, RUN, {resource.RLIMIT_STACK: kib << 10})
        limited("stack-%dK-tradeoff" % kib, ["tradeoff", "--base-path", "@MOCK", "--snap", "99"],
                {resource.RLIMIT_STACK: kib << 10})
    for kib in (4, 64, 400):
        limited("fsize-%dK-run" % kib, RUN, {resource.RLIMIT_FSIZE: kib << 10})
    limited("fsize-1K-estimate-o", EST + ["--format", "json", "-o", "@OUT"],
            {resource.RLIMIT_FSIZE: 1 << 10})
    for n in (6, 12, 20):
        limited("nofile-%d-run" % n, RUN, {resource.RLIMIT_NOFILE: n})
    for stage in ("load_halos", "load_gas_fields", "compute_temperature", "load_positions",
                  "build_index", "histogram_write"):
        for s in (2, 15):
            limited("inject-%s-%d" % (stage, s), RUN + ["--inject-signal", "%s:%d" % (stage, s)],
                    allowed=(0, 128 + s))
    for s, delay in ((signal.SIGINT, 0.05), (signal.SIGTERM, 0.15), (signal.SIGINT, 0.3)):
        limited("signal-%d-after-%gs" % (s, delay), RUN, sig=(s, delay),
                allowed=(0, 128 + s, -s))
    # absurd options
    for i, extra in enumerate((["--halos", "-1"], ["--stream-block", "0"], ["--max-mem", "1B"],
                               ["--mass-min", "nan"], ["--mass-min", "-1e300"],
                               ["--positions", "float16"], ["--ranks", "0"],
                               ["--halos", "99999999999999999999"], ["--sphere-cells", "0"],
                               ["--temperature", "streaming", "--stream-block", "1"])):
        limited("option-%d-%s" % (i, "".join(extra).strip("-").replace("--", "_")),
                RUN + extra)
        limited("option-%d-estimate" % i, EST + extra)
    limited("snap-huge", ["run", "--base-path", "@MOCK", "--snap", "99999999999", "--out", "@OUT"])
    limited("out-empty", ["run", "--base-path", "@MOCK", "--snap", "99", "--out", ""])
    limited("base-empty", ["run", "--base-path", "", "--snap", "99", "--out", "@OUT"])

    # pipeline descriptions (docs/PIPELINES.md "Errors"): each is exit 2 with one line naming the
    # file, nothing written with -o, within TIMEOUT (a FIFO is refused without being read, lets
    # that double each other are refused when read)
    doubling = "".join("  a%d: a%d + a%d\n" % (i, i + 1, i + 1) for i in range(63))
    descs = {
        "not-yaml": "pipeline: x\nstages: [a: b: c\n",
        "empty": "",
        "binary": "\0\x01\x02garbage",
        "alias": "pipeline: x\nstages:\n  - &a {id: a}\n  - *a\n",
        "two-documents": "pipeline: x\nstages: [{id: a}]\n---\npipeline: y\n",
        "deep": "pipeline: x\nstages: " + "[" * 5000 + "]" * 5000 + "\n",
        "unknown-quantity": "pipeline: x\nstages: [{id: a, arrays: [{name: q, dtype: uint8, "
                            "count: gass_cells}]}]\n",
        "cycle": "pipeline: x\nlet: {a: b, b: a}\nstages: [{id: s}]\n",
        "division-by-zero": "pipeline: x\nstages: [{id: a, arrays: [{name: q, dtype: uint8, "
                            "count: \"1 / 0\"}]}]\n",
        "overflow": "pipeline: x\nstages: [{id: a, arrays: [{name: q, dtype: float64, "
                    "count: 18446744073709551615}]}]\n",
        "freed-twice": "pipeline: x\nstages: [{id: a, arrays: [{name: q, dtype: uint8, count: 1, "
                       "free: end, free: end}]}]\n",
        "doubling-lets": "pipeline: x\nlet:\n" + doubling + "  a63: 1\nstages: [{id: a, arrays: "
                         "[{name: q, dtype: uint8, count: a0}]}]\n",
    }
    ddir = os.path.join(work, "descriptions")
    os.makedirs(ddir, exist_ok=True)
    for dname, text in descs.items():
        with open(os.path.join(ddir, dname + ".yaml"), "w") as fh:
            fh.write(text)
    os.mkfifo(os.path.join(ddir, "fifo.yaml"))
    os.makedirs(os.path.join(ddir, "directory.yaml"), exist_ok=True)

    def description(dname, cmd):
        def case():
            d = h.fresh("description." + dname + "." + cmd)
            out = os.path.join(d, "out.json")
            path = os.path.join(ddir, dname + ".yaml")
            r = run(h.bin, [cmd, "--pipeline", path, "--format", "json", "-o", out])
            p = contract(r, allowed=(2,))
            if r.rc == 2 and dname + ".yaml" not in r.err:
                p.append("the error names no file: %r" % r.err[:200])
            if os.path.lexists(out):
                p.append("-o written for a bad description")
            return p
        h.add("description/%s/%s" % (dname, cmd), case)
    for dname in sorted(descs) + ["fifo", "directory"]:
        for cmd in ("estimate", "tradeoff"):
            description(dname, cmd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--with-known", action="store_true")
    ap.add_argument("--keep", help="work directory to keep (default: a temporary one, removed)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--only", help="run only cases whose name contains this")
    a = ap.parse_args()
    bin_ = os.path.abspath(a.bin)
    work = a.keep or tempfile.mkdtemp(prefix="snapmem-hostile.")
    os.makedirs(work, exist_ok=True)
    try:
        h = Harness(bin_, work)
        build_cases(h)
        cases = h.cases
        if a.only:
            cases = [c for c in cases if a.only in c[0]]
        if a.sample:
            pool = [c for c in cases if a.with_known or known(c[0]) is None]
            cases = random.Random(a.seed).sample(pool, min(a.sample, len(pool)))
            cases.sort(key=lambda c: c[0])
        if a.list:
            for n, _ in cases:
                print(n + ("   [known: %s]" % known(n) if known(n) else ""))
            return 0
        broke, known_broke, known_kept = [], [], []
        for n, fn in cases:
            try:
                p = fn()
            except Exception as e:  # the harness's own failure counts against the case
                p = ["harness error: %r" % e]
            why = known(n)
            if p and why:
                known_broke.append((n, p, why))
            elif p:
                broke.append((n, p))
            elif why:
                known_kept.append((n, why))
        kept = len(cases) - len(broke) - len(known_broke)
        print("hostile: %d cases, %d kept the contract, %d broke it (%d of them known)"
              % (len(cases), kept, len(broke) + len(known_broke), len(known_broke)))
        for n, p in broke:
            print("  BROKE %s: %s" % (n, "; ".join(p)))
        for n, p, why in known_broke:
            print("  known %s: %s  [%s]" % (n, "; ".join(p)[:300], why))
        for n, why in known_kept:
            print("  known but kept the contract now (remove from KNOWN): %s  [%s]" % (n, why))
        return 1 if broke else 0
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
