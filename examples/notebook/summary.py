"""Where the profiled notebook's peak is, and why, beside the C pipeline on the same data.

    python3 summary.py NOTEBOOK_PROFILE_DIR [C_RUN_DIR]

Reads NOTEBOOK_PROFILE_DIR/memory.json (snapmem profile) and, when given, C_RUN_DIR/memory.json
(snapmem run), and prints per notebook step the allocated peak above the process's baseline
(both), then the stage of the notebook's peak and the sites live at it (with --python-lines: the
script's own lines). Standard library only.
"""
import json
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


def where(site):
    frames = site.get("frames", [])
    for fr in frames:
        if fr.get("python"):
            return "%s (%s:%d)" % (fr["function"], os.path.basename(fr["file"]), fr["line"])
    for fr in frames:
        if fr.get("function") and not (fr.get("object") or "").endswith("libsnapmem-preload.so"):
            return fr["function"]
    return "?"


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
    for s in sites[:6]:
        if s.get("peak_bytes", 0) >= 1 << 20:
            print("  %s  %s%s" % (mib(s["peak_bytes"]), where(s), "  (tracked)" if s["tracked"] else ""))


if __name__ == "__main__":
    main()
