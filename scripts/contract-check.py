#!/usr/bin/env python3
"""contract-check: the model contract's layering rules (include/snapmem/model.h, docs/DESIGN.md
"Source layout"), checked on the C sources of the tree.

    scripts/contract-check.py [ROOT]      (default: the repository holding this script)

Run by `make check` and `make sanitize` through tests/run.sh. Rules, each violation printed as
FILE:LINE: RULE: what (comments and string literals are not code; string literals are checked
token by token, so a literal split over two lines is still seen):

  estimator-imports-pipeline  estimator/ neither includes snapmem/pipeline.h nor any src/pipeline/
                              header, nor calls sm_pipeline_* / sm__pl_*
  pipeline-imports-estimator  src/pipeline/ and include/snapmem/pipeline.h neither include
                              snapmem/estimator.h nor an estimator/ header, nor call sm_est_*,
                              sm_estimate_* or sm__est_*
  model-imports               src/model/ and include/snapmem/model.h include neither side
  stage-literal               a stage id spelled as a string literal outside src/model/ and
                              include/snapmem/model.h (use SM_STAGE_*)
  option-literal              an option value ("index", "mask", "in-memory", "streaming") spelled
                              outside the contract (use SM_SELECT_NAME_*, SM_TEMP_NAME_* and the
                              sm_model_*_name / _parse functions)
  dtype-literal               "float32" / "float64" outside include/snapmem/snapshot.h, whose
                              SM_DTYPE_NAME_* are the one spelling (sm_dtype_name,
                              sm_dtype_from_name)
  array-literal               an array name spelled in src/pipeline/ (use SM_ARRAY_*; profiles.c
                              names profiles.hdf5's datasets, a vocabulary of its own)
  file-length                 a file of src/pipeline/ over 800 lines (a stage's code is found under
                              its stage id, in the file of that name: docs/DESIGN.md)

Scope: *.c and *.h under src/, estimator/, include/, bench/, fuzz/ and examples/ (tests/ may
spell the contract out, to test it). Exit 0 when every rule holds, 1 when one does not, 2 on a
usage error.
"""
import os
import re
import sys

STAGES = ["load_halos", "load_gas_fields", "compute_temperature", "load_positions",
          "build_index", "select_sphere", "radial_distance", "mask_arrays", "histogram_write",
          "stream_cells"]
OPTION_VALUES = ["index", "mask", "in-memory", "streaming"]
DTYPE_VALUES = ["float32", "float64"]
ARRAYS = ["Group_M_Crit200", "Group_R_Crit200", "GroupPos", "halo_index", "halo_center",
          "halo_m200", "halo_r200", "InternalEnergy", "ElectronAbundance", "StarFormationRate",
          "temperature", "Coordinates", "io_buffer", "index_cell_start", "index_cell_fill",
          "sphere_cells", "sphere_mask", "radius", "selected_temperature", "selected_positions",
          "histogram", "halo_grid_start", "halo_grid_halos", "profile_sums"]
MAX_PIPELINE_LINES = 800
SCOPE = ["src", "estimator", "include", "bench", "fuzz", "examples"]
CONTRACT = ("src/model/", "include/snapmem/model.h")


def split_c(text):
    """(code, strings): code with comments blanked and string/char literals emptied, line for
    line; strings a list of (line, literal contents) in order."""
    code, strings = [], []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            chunk = text[i:j]
            code.append("\n" * chunk.count("\n"))
            line += chunk.count("\n")
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c == '"' or c == "'":
            j, buf = i + 1, []
            while j < n and text[j] != c and text[j] != "\n":
                if text[j] == "\\" and j + 1 < n:
                    buf.append(text[j:j + 2])
                    j += 2
                    continue
                buf.append(text[j])
                j += 1
            if c == '"':
                strings.append((line, "".join(buf)))
            code.append(c + c)
            i = j + 1
        else:
            if c == "\n":
                line += 1
            code.append(c)
            i += 1
    return "".join(code), strings


def files(root):
    for top in SCOPE:
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith((".c", ".h")):
                    p = os.path.join(dirpath, f)
                    yield os.path.relpath(p, root).replace(os.sep, "/")


def main():
    if len(sys.argv) > 2:
        print("usage: contract-check.py [ROOT]", file=sys.stderr)
        return 2
    root = sys.argv[1] if len(sys.argv) == 2 else os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(root, "src", "model")):
        print("contract-check: '%s' has no src/model/" % root, file=sys.stderr)
        return 2
    bad, nfiles = [], 0

    def report(path, line, rule, what):
        bad.append("%s:%d: %s: %s" % (path, line, rule, what))

    include = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
    for path in files(root):
        nfiles += 1
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        code, strings = split_c(text)
        lines = code.split("\n")
        incs = [(text.count("\n", 0, m.start()) + 1, m.group(1))
                for m in include.finditer(text)]
        in_est = path.startswith("estimator/")
        in_pl = path.startswith("src/pipeline/") or path == "include/snapmem/pipeline.h"
        in_model = path.startswith(CONTRACT)

        def calls(prefixes, rule):
            pat = re.compile(r"\b(" + "|".join(prefixes) + r")\w*\s*\(")
            for no, l in enumerate(lines, 1):
                m = pat.search(l)
                if m:
                    report(path, no, rule, "calls %s()" % m.group(0).rstrip("( \t"))

        if in_est or in_model:
            rule = "estimator-imports-pipeline" if in_est else "model-imports"
            for no, h in incs:
                if h == "snapmem/pipeline.h" or h.startswith("pipeline/"):
                    report(path, no, rule, 'includes "%s"' % h)
            calls(["sm_pipeline_", "sm__pl_"], rule)
        if in_pl or in_model:
            rule = "pipeline-imports-estimator" if in_pl else "model-imports"
            for no, h in incs:
                if h == "snapmem/estimator.h" or h.startswith("estimator/"):
                    report(path, no, rule, 'includes "%s"' % h)
            calls(["sm_est_", "sm_estimate_", "sm__est_"], rule)
        if path.startswith("src/pipeline/"):
            n = text.count("\n")
            if n > MAX_PIPELINE_LINES:
                report(path, n, "file-length", "%d lines, over %d" % (n, MAX_PIPELINE_LINES))
        for no, s in strings:
            if s in STAGES and not in_model:
                report(path, no, "stage-literal", '"%s" (SM_STAGE_%s)' % (s, s.upper()))
            if s in OPTION_VALUES and not in_model:
                report(path, no, "option-literal", '"%s"' % s)
            if s in DTYPE_VALUES and path != "include/snapmem/snapshot.h":
                report(path, no, "dtype-literal", '"%s" (SM_DTYPE_NAME_F%s)' % (s, s[5:]))
            if s in ARRAYS and path.startswith("src/pipeline/") and \
                    path != "src/pipeline/profiles.c":
                report(path, no, "array-literal", '"%s" (SM_ARRAY_*)' % s)
    for b in bad:
        print(b)
    print("contract-check: %d files, %d violation%s" % (nfiles, len(bad),
                                                          "" if len(bad) == 1 else "s"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
