"""A projected dark-matter surface-density map of a snapshot, as a scientist writes it with numpy
and h5py: every dark-matter particle's position read the way illustris_python's
``snapshot.loadSubset(base, snap, 'dm', ['Coordinates'])`` reads it, binned onto an NGRID x NGRID
grid along z with ``np.histogram2d``, scaled to Msun per (ckpc/h)^2 and written to HDF5.

    python3 project.py BASE_PATH [SNAP] [NGRID] [OUT.hdf5]

Plainly it runs as any script (every snapmem call is then a no-op); under
``snapmem profile -- python3 project.py ...`` each step is a stage of the measurement and the named
arrays are tracked. Not tuned for memory: illustris_python's loader reads each chunk into a
temporary before copying it into the preallocated result, and np.histogram2d copies the two
coordinate columns, makes a bin index per particle and axis, a flat index, and the histogram twice
(integer counts, then as float). examples/dm-projection/dm-projection.yaml describes those arrays
for `snapmem estimate --pipeline`; examples/dm-projection/README.md has the measured figures.
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


# --- what illustris_python does: paths, header, loadSubset ---------------------------------------

def snap_path(base, snap, chunk):
    return os.path.join(base, "snapdir_%03d" % snap, "snap_%03d.%d.hdf5" % (snap, chunk))


def load_header(base, snap):
    with h5py.File(snap_path(base, snap, 0), "r") as f:
        return dict(f["Header"].attrs.items())


def load_subset(base, snap, ptype, field):
    """All particles of type `ptype`: `field` into one preallocated array, chunk by chunk, each
    chunk read whole and then copied in (il.snapshot.loadSubset)."""
    header = load_header(base, snap)
    n = int(header["NumPart_Total"][ptype]) + (int(header["NumPart_Total_HighWord"][ptype]) << 32)
    group = "PartType%d" % ptype
    result = None
    offset = 0
    for chunk in range(int(header["NumFilesPerSnapshot"])):
        with h5py.File(snap_path(base, snap, chunk), "r") as f:
            count = int(f["Header"].attrs["NumPart_ThisFile"][ptype])
            if count == 0 or group not in f:
                continue
            ds = f[group][field]
            if result is None:
                result = np.zeros((n,) + ds.shape[1:], dtype=ds.dtype)
            result[offset:offset + count] = ds[0:count]   # a temporary of the chunk, copied in
            offset += count
    return result


# --- the steps ------------------------------------------------------------------------------------

@snapmem.stage("read_coordinates")
def read_coordinates(base, snap):
    return snapmem.track("Coordinates", load_subset(base, snap, 1, "Coordinates"))


@snapmem.stage("project")
def project(coords, box, ngrid):
    # x and y are views; histogram2d makes its own copies (see dm-projection.yaml)
    counts, _, _ = np.histogram2d(coords[:, 0], coords[:, 1], bins=ngrid,
                                  range=[[0.0, box], [0.0, box]])
    return counts


@snapmem.stage("surface_density")
def surface_density(counts, mass_msun, pixel_area):
    sigma = counts * (mass_msun / pixel_area)            # Msun / (ckpc/h)^2
    return snapmem.track("surface_density", sigma)


@snapmem.stage("write_map")
def write_map(out, sigma, box, header):
    with h5py.File(out, "w") as f:
        d = f.create_dataset("surface_density", data=sigma)
        d.attrs["units"] = "Msun / (ckpc/h)^2"
        f.attrs["BoxSize"] = box
        f.attrs["NumPart_Total_dm"] = int(header["NumPart_Total"][1]) + \
            (int(header["NumPart_Total_HighWord"][1]) << 32)
        f.attrs["projection"] = "z"


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: project.py BASE_PATH [SNAP] [NGRID] [OUT.hdf5]")
    base = sys.argv[1]
    snap = int(sys.argv[2]) if len(sys.argv) > 2 else 99
    ngrid = int(sys.argv[3]) if len(sys.argv) > 3 else 2048
    out = sys.argv[4] if len(sys.argv) > 4 else "dm-projection.hdf5"
    header = load_header(base, snap)
    box = float(header["BoxSize"])
    h = float(header["HubbleParam"])
    mass_msun = float(header["MassTable"][1]) * 1e10 / h

    coords = read_coordinates(base, snap)
    counts = project(coords, box, ngrid)
    del coords
    sigma = surface_density(counts, mass_msun, (box / ngrid) ** 2)
    del counts
    write_map(out, sigma, box, header)
    print("%d dark-matter particles onto %d x %d pixels: %s (%.3g to %.3g Msun/(ckpc/h)^2)"
          % (int(sigma.sum() / mass_msun * (box / ngrid) ** 2 + 0.5), ngrid, ngrid, out,
             sigma.min(), sigma.max()))


if __name__ == "__main__":
    main()
