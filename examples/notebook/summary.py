"""Where the profiled notebook's peak is, and why, beside the C pipeline on the same data.

    python3 summary.py NOTEBOOK_PROFILE_DIR [C_RUN_DIR]

Reads NOTEBOOK_PROFILE_DIR/memory.json (snapmem profile) and, when given, C_RUN_DIR/memory.json
(snapmem run), and prints per notebook step the allocated peak above the process's baseline
(both), then the stage of the notebook's peak and the sites live at it, and for the steps where
the notebook's way of writing costs memory (step 3's one-liner, step 5's per-halo work) the sites
live at that step's own peak (its top_sites): with --python-lines each names the script's line,
printed with its source text, so the figures say why. Standard library only.
"""
import json
import linecache
import os
import sys

STEPS = ["load_halos", "load_gas_fields", "compute_temperature", "load_positions",
         "select_sphere", "radial_distance", "mask_arrays", "histogram_write"]


def mib(b):
    return "%9.2f MiB" % (b / 1048576.0)


def start_of_step1(doc):
    """allocated bytes when the first step began: the interpreter, numpy and h5py (or the C
    program) already loaded; the steps' own memory is what lies above it"""
    for st in doc["stages"]:
        if st["id"] == STEPS[0]:
            return st["allocated"]["begin"]
    return doc["baseline"]["allocated"]


def per_stage(doc):
    base = start_of_step1(doc)
    out = {}
    for st in doc["stages"]:
        above = max(0, st["allocated"]["peak"] - base)
        out[st["id"]] = max(out.get(st["id"], 0), above)
    return out


def library(path):
    """numpy's own Python code (np.round's wrappers...), not the script's"""
    return (path.startswith("<") or "/dist-packages/" in path or "/site-packages/" in path
            or "/lib/python3" in path)


def script_frame(site):
    """the innermost Python frame in the script itself (--python-lines), or None"""
    py = [fr for fr in site.get("frames", []) if fr.get("python")]
    for fr in py:
        if not library(fr.get("file") or "<"):
            return fr
    return None


def where(site):
    fr = script_frame(site)
    if fr:
        code = linecache.getline(fr["file"], fr["line"]).strip()
        return "%s:%d  %s" % (os.path.basename(fr["file"]), fr["line"], code)
    for fr in site.get("frames", []):
        if fr.get("function") and not (fr.get("object") or "").endswith("libsnapmem-preload.so"):
            return fr["function"]
    return "?"


def why(doc, step, label):
    """the sites of 1 MiB and more live at the peak of step's largest instance"""
    best = None
    for st in doc["stages"]:
        if st["id"] == step and (best is None or st["allocated"]["peak"] > best["allocated"]["peak"]):
            best = st
    if best is None:
        return
    sites = {s["id"]: s for s in doc["sites"]} if doc["sites"] and "id" in doc["sites"][0] \
        else dict(enumerate(doc["sites"]))
    inst = "" if best.get("instance", -1) < 0 else " (halo %d, the largest)" % best["instance"]
    print("\n%s, step '%s'%s: live at its peak" % (label, step, inst))
    for ts in best.get("top_sites", []):
        site = sites.get(ts["site"])
        # the interpreter's own sampled blocks (no line of the script) are not the step's doing
        if site is not None and ts["bytes"] >= 1 << 20 and script_frame(site):
            print("  %s  %s%s" % (mib(ts["bytes"]), where(site),
                                  "  (tracked)" if site.get("tracked") else ""))


def main():
    nb = json.load(open(os.path.join(sys.argv[1], "memory.json")))
    c = json.load(open(os.path.join(sys.argv[2], "memory.json"))) if len(sys.argv) > 2 else None
    a, b = per_stage(nb), per_stage(c) if c else {}
    print("%-22s %14s %14s   (allocated peak above the memory at step 1's start;"
          " per-halo steps: largest halo)" % ("step", "notebook", "C pipeline"))
    for s in STEPS:
        if s in a or s in b:
            print("%-22s %14s %14s" % (s, mib(a[s]) if s in a else "-", mib(b[s]) if s in b else "-"))
    if (nb.get("allocator") or {}).get("large"):
        print("(notebook: blocks of %d KiB and more counted as glibc serves them under snapmem "
              "profile, the request rounded to the page; C pipeline: jemalloc's size classes)"
              % (nb["allocator"]["large"]["min_bytes"] // 1024))
    peak_t = nb["profiler"]["peak_t"]
    inner = None
    for st in nb["stages"]:
        if st["t_begin"] <= peak_t <= st["t_begin"] + st["wall_s"]:
            if inner is None or st["depth"] > inner["depth"]:
                inner = st
    total = max(st["allocated"]["peak"] for st in nb["stages"]) - start_of_step1(nb)
    print("\nnotebook peak: %s above step 1's start, in step '%s'; live at the peak:"
          % (mib(total).strip(), inner["id"] if inner else "?"))
    sites = sorted(nb["sites"], key=lambda s: -s.get("peak_bytes", 0))
    for s in sites[:8]:
        if s.get("peak_bytes", 0) >= 1 << 20:
            print("  %s  %s%s" % (mib(s["peak_bytes"]), where(s), "  (tracked)" if s["tracked"] else ""))
    print("\nwhy (untracked blocks are numpy's temporaries and masks; the C pipeline streams them):")
    why(nb, "compute_temperature", "step 3, the temperature one-liner")
    why(nb, "select_sphere", "step 5, the N x 3 offsets of every cell")
    why(nb, "mask_arrays", "step 5, the boolean mask over every cell")


if __name__ == "__main__":
    main()
