"""Temperature radial profiles of the most massive halos, as the reference notebook
(docs/notebook.txt) computes them: numpy and h5py, snapshot chunks read the way illustris_python
reads them, one snapmem.stage per notebook step.

    python3 radial_profiles.py BASE_PATH [SNAP] [OUT.hdf5]

Plainly it runs as any script (every snapmem call is then a no-op); under
``snapmem profile -- python3 radial_profiles.py ...`` each step is a stage of the measurement.
Written the way a scientist writes the notebook, not tuned for memory: the temporaries numpy
makes in step 3 and the boolean mask over every cell in step 5 are what the profile shows.
"""
import os
import sys

import h5py
import numpy as np

try:
    import snapmem
except ImportError:          # not installed: the markers are not needed to run
    class _NoSnapmem:
        class stage:
            def __init__(self, *a, **k): pass
            def __enter__(self): return self
            def __exit__(self, *a): return False
            def __call__(self, fn): return fn
        @staticmethod
        def track(name, obj): return obj
    snapmem = _NoSnapmem()

GAMMA = 5.0 / 3.0
X_H = 0.76
K_B = 1.380649e-16           # erg / K
M_P = 1.672621924e-24        # g
MASS_MIN = 1e14              # Msun
RBINS, TBINS = 50, 60


# --- what illustris_python does: paths, headers, loadSubset, loadHalos -------------------------

def snap_path(base, snap, chunk):
    return os.path.join(base, "snapdir_%03d" % snap, "snap_%03d.%d.hdf5" % (snap, chunk))


def group_path(base, snap, chunk):
    return os.path.join(base, "groups_%03d" % snap, "fof_subhalo_tab_%03d.%d.hdf5" % (snap, chunk))


def load_header(base, snap):
    with h5py.File(snap_path(base, snap, 0), "r") as f:
        return dict(f["Header"].attrs.items())


def load_subset(base, snap, field, dtype=None):
    """All gas cells' `field`, chunk by chunk into one preallocated array (il.snapshot.loadSubset)."""
    header = load_header(base, snap)
    n = int(header["NumPart_Total"][0]) + (int(header["NumPart_Total_HighWord"][0]) << 32)
    nfiles = int(header["NumFilesPerSnapshot"])
    result = None
    offset = 0
    for chunk in range(nfiles):
        with h5py.File(snap_path(base, snap, chunk), "r") as f:
            count = int(f["Header"].attrs["NumPart_ThisFile"][0])
            if count == 0 or "PartType0" not in f:
                continue
            ds = f["PartType0"][field]
            if result is None:
                shape = (n,) + ds.shape[1:]
                result = np.empty(shape, dtype=dtype or ds.dtype)
            if dtype is None:
                ds.read_direct(result, dest_sel=np.s_[offset:offset + count])
            else:                               # float64 on disk: read, then cast
                result[offset:offset + count] = ds[:]
            offset += count
    return result


def load_halos(base, snap, fields):
    """The group catalogue's fields over every chunk (il.groupcat.loadHalos)."""
    out = {k: [] for k in fields}
    chunk = 0
    while True:
        path = group_path(base, snap, chunk)
        if not os.path.exists(path):
            break
        with h5py.File(path, "r") as f:
            if int(f["Header"].attrs["Ngroups_ThisFile"]) > 0:
                for k in fields:
                    out[k].append(f["Group"][k][:])
        chunk += 1
    return {k: np.concatenate(v) for k, v in out.items()}


# --- the notebook's steps ------------------------------------------------------------------------

@snapmem.stage("load_halos")
def step1_halos(base, snap, h):
    groups = load_halos(base, snap, ["GroupPos", "Group_M_Crit200", "Group_R_Crit200"])
    keep = np.flatnonzero(groups["Group_M_Crit200"] * 1e10 / h > MASS_MIN)
    keep = keep[np.argsort(-groups["Group_M_Crit200"][keep], kind="stable")]  # most massive first
    return groups["GroupPos"][keep], groups["Group_R_Crit200"][keep], groups["Group_M_Crit200"][keep]


@snapmem.stage("load_gas_fields")
def step2_gas(base, snap):
    u = snapmem.track("InternalEnergy", load_subset(base, snap, "InternalEnergy"))
    xe = snapmem.track("ElectronAbundance", load_subset(base, snap, "ElectronAbundance"))
    sfr = snapmem.track("StarFormationRate", load_subset(base, snap, "StarFormationRate"))
    return u, xe, sfr


@snapmem.stage("compute_temperature")
def step3_temperature(u, xe, unit_v2):
    # the notebook's one-liner: numpy makes a temporary array for every operation
    mu = 4.0 * M_P / (1.0 + 3.0 * X_H + 4.0 * X_H * xe)
    temperature = (GAMMA - 1.0) * u / K_B * unit_v2 * mu
    return snapmem.track("temperature", temperature.astype(np.float32))


@snapmem.stage("load_positions")
def step4_positions(base, snap):
    return snapmem.track("Coordinates", load_subset(base, snap, "Coordinates", dtype=np.float32))


def one_halo(i, center, r200, coords, temperature, star_forming, box):
    with snapmem.stage("select_sphere", instance=i):
        d = coords - center.astype(np.float32)          # N x 3 temporary
        d -= box * np.round(d / box)                    # periodic: minimum image
        r2 = (d * d).sum(axis=1)
        mask = r2 < (2.0 * r200) ** 2                   # a boolean over every cell
    with snapmem.stage("radial_distance", instance=i):
        r = np.sqrt(r2[mask]) / r200
    with snapmem.stage("mask_arrays", instance=i):
        t_sel = temperature[mask]
        sf_sel = star_forming[mask]
    with snapmem.stage("histogram_write", instance=i):
        edges = np.linspace(0.0, 2.0, RBINS + 1)
        cold = ~sf_sel                                  # star-forming cells leave the profile
        counts, _ = np.histogram(r[cold], bins=edges)
        sf_counts, _ = np.histogram(r[sf_sel], bins=edges)
        tsum, _ = np.histogram(r[cold], bins=edges, weights=t_sel[cold].astype(np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_t = tsum / counts
        logt = np.clip(np.log10(np.maximum(t_sel[cold], 1e-30)), 3.0, 9.0 - 1e-9)
        h2, _, _ = np.histogram2d(r[cold], logt, bins=[edges, np.linspace(3.0, 9.0, TBINS + 1)])
    return counts, sf_counts, mean_t, h2


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: radial_profiles.py BASE_PATH [SNAP] [OUT.hdf5]")
    base = sys.argv[1]
    snap = int(sys.argv[2]) if len(sys.argv) > 2 else 99
    out = sys.argv[3] if len(sys.argv) > 3 else "profiles-notebook.hdf5"
    header = load_header(base, snap)
    h = float(header["HubbleParam"])
    box = float(header["BoxSize"])
    unit_v = float(header.get("UnitVelocity_in_cm_per_s", 1e5))

    centers, r200, m200 = step1_halos(base, snap, h)
    u, xe, sfr = step2_gas(base, snap)
    temperature = step3_temperature(u, xe, unit_v * unit_v)
    star_forming = sfr > 0
    del u, xe, sfr                                      # "discard gas data"
    coords = step4_positions(base, snap)

    results = [one_halo(i, centers[i], r200[i], coords, temperature, star_forming, box)
               for i in range(len(r200))]
    with h5py.File(out, "w") as f:
        f["center"], f["r200"], f["m200"] = centers, r200, m200
        for k, name in enumerate(["counts", "sf_counts", "mean_temperature", "hist2d"]):
            f[name] = np.array([res[k] for res in results])
    print("%d halos, %d gas cells: %s" % (len(r200), len(temperature), out))


if __name__ == "__main__":
    main()
