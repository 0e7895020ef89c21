/*
 * The distributed radial-profile pipeline (docs/MPI.md): R ranks, each streaming its share of the
 * snapshot's chunk files through the halo index, adding every cell into per-halo sums; the sums
 * are added over ranks to rank 0, which writes profiles.hdf5. Collectives go through the caller's
 * sm_pipeline_comm (the library never links MPI); with no comm the run is one rank.
 */
#include <math.h>
#include <stdint.h>

#include "snapmem/pipeline.h"

#define HALO_GRID_MAX_SIDE 64u
#define HALO_GRID_MARGIN 1e-5 /* of BoxSize: float32 rounding of coordinates and distances */

uint64_t sm_pipeline_halo_grid_side(double box, double s_max)
{
	double q;

	if (!isfinite(box) || !(box > 0) || !isfinite(s_max) || !(s_max > 0))
		return 1;
	q = floor(box / (2.0 * (s_max + HALO_GRID_MARGIN * box)));
	if (!(q >= 1))
		return 1;
	if (q >= HALO_GRID_MAX_SIDE)
		return HALO_GRID_MAX_SIDE;
	return (uint64_t)q;
}
