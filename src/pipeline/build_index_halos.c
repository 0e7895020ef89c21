/*
 * Stage build_index of the distributed run (docs/MPI.md): the halo index, a CSR over a grid of
 * hg^3 cells, hg = sm_model_halo_grid_side(BoxSize, largest 2 R200) (the model contract's, the
 * estimator's too), a cell at least one sphere diameter wide: each halo's sphere (with the margin
 * SM_MODEL_HALO_GRID_MARGIN of the box) overlaps at most 2 cells an axis, 8 in all.
 * halo_grid_start[hg^3 + 1] and halo_grid_halos[K min(8, hg^3)] (uint32), halos ascending in each
 * cell's list; stream_cells looks every cell's halos up in it.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "distributed.h"
#include "run.h"

/* Halo grid cells along one axis overlapping [c - s, c + s] (s with the margin), periodic,
 * distinct: 1 or 2 of them (the cell width is at least 2 s). */
static int axis_cells(const struct dist *D, double c, double s, uint64_t out[2])
{
	int64_t g = (int64_t)D->hg;
	double flo = floor((c - s) * D->inv_w), fhi = floor((c + s) * D->inv_w);
	int64_t lo, hi, a, b;

	/* The selected halos are checked (centre in [0, box), 2 R200 + margin at most 2 box + 1e-5
	 * box): the cells lie within a few boxes of the grid, far inside int64; anything else is a
	 * programming error, answered with the whole axis' first cell rather than an overflow. */
	if (!(flo >= -4.0 * (double)g && fhi <= 5.0 * (double)g)) {
		out[0] = 0;
		return 1;
	}
	lo = (int64_t)flo;
	hi = (int64_t)fhi;

	/* Three cells only by rounding, the interval being at most one cell wide: both ends then
	 * lie within rounding of a boundary, and the margin keeps every sphere cell away from them. */
	if (hi - lo >= 2)
		lo = hi = lo + 1;
	a = ((lo % g) + g) % g;
	b = ((hi % g) + g) % g;

	out[0] = (uint64_t)a;
	if (b == a)
		return 1;
	out[1] = (uint64_t)b;
	return 2;
}


/* The halo grid cells halo h's sphere overlaps, in x, y, z order; returns how many (1 to 8). */
static int halo_cells(const struct dist *D, uint64_t h, uint64_t cells[8])
{
	const double *cd = &D->R->halo_center[3 * h];
	double s = 2.0 * D->R->halo_r200[h] + SM_MODEL_HALO_GRID_MARGIN * D->R->box;
	uint64_t ax[2], ay[2], az[2];
	int nx = axis_cells(D, cd[0], s, ax), ny = axis_cells(D, cd[1], s, ay);
	int nz = axis_cells(D, cd[2], s, az), i, j, l, n = 0;

	for (i = 0; i < nx; i++)
		for (j = 0; j < ny; j++)
			for (l = 0; l < nz; l++)
				cells[n++] = (ax[i] * D->hg + ay[j]) * D->hg + az[l];
	return n;
}

/* Stage build_index: the halo index (CSR over the hg^3 halo grid). */
int sm__pl_build_halo_index(struct dist *D)
{
	struct run *R = D->R;
	uint64_t k = R->k, h, c, cap, nent, cells[8];
	double smax = 0;
	int rc, i, n;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_BUILD_INDEX, -1, k)) != 0)
		return rc;
	for (h = 0; h < k; h++)
		if (2.0 * R->halo_r200[h] > smax)
			smax = 2.0 * R->halo_r200[h];
	D->hg = k > 0 ? sm_model_halo_grid_side(R->box, smax) : 1;
	D->hg3 = D->hg * D->hg * D->hg;
	D->inv_w = (double)D->hg / R->box;
	R->r->grid_side = D->hg;
	cap = D->hg3 < SM_MODEL_HALO_GRID_CELLS_PER_HALO ? D->hg3
							 : SM_MODEL_HALO_GRID_CELLS_PER_HALO;
	if (k > UINT32_MAX / SM_MODEL_HALO_GRID_CELLS_PER_HALO)
		return sm_error_set(R->err, SM_EOVERFLOW, "'%s': %llu halos: too many for the "
				    "halo index", sm__pl_cat_file(R), (unsigned long long)k);
	if ((rc = sm__pl_palloc(R, &D->hg_start, SM_ARRAY_HALO_GRID_START, 4 * (D->hg3 + 1))) != 0 ||
	    (rc = sm__pl_palloc(R, &D->hg_halos, SM_ARRAY_HALO_GRID_HALOS, 4 * k * cap)) != 0)
		return rc;
	/* Counts into start[c + 1], offsets, fill with start[c] as the cursor (halos ascending),
	 * then shift back: start[c] is where cell c's list begins. */
	memset(D->hg_start, 0, 4 * (D->hg3 + 1));
	for (h = 0; h < k; h++)
		for (i = 0, n = halo_cells(D, h, cells); i < n; i++)
			D->hg_start[cells[i] + 1]++;
	D->hg_lmax = 0;
	for (c = 0; c < D->hg3; c++) {
		if (D->hg_start[c + 1] > D->hg_lmax)
			D->hg_lmax = D->hg_start[c + 1];
		D->hg_start[c + 1] += D->hg_start[c];
	}
	nent = D->hg_start[D->hg3];
	if (nent > k * cap)
		return sm_error_set(R->err, SM_EINVAL, "pipeline: halo index holds %llu entries, "
				    "over its bound %llu", (unsigned long long)nent,
				    (unsigned long long)(k * cap));
	for (h = 0; h < k; h++)
		for (i = 0, n = halo_cells(D, h, cells); i < n; i++)
			D->hg_halos[D->hg_start[cells[i]]++] = (uint32_t)h;
	for (c = D->hg3; c > 0; c--)
		D->hg_start[c] = D->hg_start[c - 1];
	D->hg_start[0] = 0;
	sm__pl_progress(R, SM_STAGE_BUILD_INDEX, -1, k, k);
	sm__pl_stage_end(R);
	return 0;
}
