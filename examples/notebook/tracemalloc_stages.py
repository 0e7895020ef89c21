"""Per-step peaks of radial_profiles.py as Python's tracemalloc sees them, for comparison with
snapmem profile (scripts/bench-profile.sh).

    python3 tracemalloc_stages.py radial_profiles.py BASE_PATH SNAP OUT.hdf5

Runs the script with a stand-in ``snapmem`` module whose stages read tracemalloc: for each stage
id, the highest traced bytes while it was open, less the traced bytes when the first step
(load_halos) began; per-halo stages: the largest instance. Prints one JSON object.
"""
import json
import runpy
import sys
import tracemalloc
import types

peaks = {}
open_stages = []
base = [None]


def _fold():
    cur, peak = tracemalloc.get_traced_memory()
    for s in open_stages:
        s[1] = max(s[1], peak)
    tracemalloc.reset_peak()
    return cur


class stage:
    def __init__(self, name, instance=None):
        self.name = name

    def __enter__(self):
        cur = _fold()
        if base[0] is None and self.name == "load_halos":
            base[0] = cur
        open_stages.append([self.name, cur])
        return self

    def __exit__(self, *exc):
        _fold()
        name, peak = open_stages.pop()
        peaks[name] = max(peaks.get(name, 0), peak)
        return False

    def __call__(self, fn):
        def wrapper(*a, **k):
            with stage(self.name):
                return fn(*a, **k)
        return wrapper


fake = types.ModuleType("snapmem")
fake.stage = stage
fake.track = lambda name, obj: obj
fake.begin = lambda name, instance=None: None
fake.end = lambda: None
sys.modules["snapmem"] = fake

script = sys.argv[1]
sys.argv = sys.argv[1:]
tracemalloc.start()
runpy.run_path(script, run_name="__main__")
tracemalloc.stop()
print(json.dumps({k: v - (base[0] or 0) for k, v in peaks.items()}))
