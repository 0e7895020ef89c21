/*
 * Stage stream_cells of the distributed run (docs/MPI.md): this rank's chunk files, in ascending
 * file number, block by block: the three gas fields, the temperature (sm__pl_temperature_block, the
 * serial run's kernel) and Coordinates of a block, then every cell looked up in the halo index and
 * added into the sums of each halo whose sphere holds it, with the serial run's distance in the
 * positions' own type (float32: the same float centre, box, half box and radius as select_sphere)
 * and its histogram rule (sm__pl_hist_add). The block arrays are the serial run's names at block
 * size; profile_sums, 25,200 bytes a halo, live until histogram_write.
 */
#include <stdint.h>
#include <string.h>

#include "snapmem/units.h"

#include "distributed.h"
#include "run.h"

/* Cell xi (temperature tf) into halo h's sums when it lies within 2 R200, float32 arithmetic. */
static inline void add_one_f32(struct dist *D, uint64_t h, const float *xi, float tf)
{
	const struct run *R = D->R;
	const double *cd = &R->halo_center[3 * h];
	const float c3[3] = {(float)cd[0], (float)cd[1], (float)cd[2]};
	const float bx = (float)R->box, r2 = (float)(2.0 * R->halo_r200[h]);
	float d = sm__pl_dist_f32(xi, c3, bx, bx / 2);

	if (d < r2)
		sm__pl_hist_add(D->sums + h * SM_MODEL_HISTOGRAM_BYTES, &R->tbins, (double)d,
				R->halo_r200[h], tf);
}

static inline void add_one_f64(struct dist *D, uint64_t h, const double *xi, float tf)
{
	const struct run *R = D->R;
	const double *cd = &R->halo_center[3 * h];
	double d = sm__pl_dist_f64(xi, cd, R->box, R->box / 2);

	if (d < 2.0 * R->halo_r200[h])
		sm__pl_hist_add(D->sums + h * SM_MODEL_HISTOGRAM_BYTES, &R->tbins, d,
				R->halo_r200[h], tf);
}

/* 1 when a coordinate lies within half a box of the box (load_positions' rule). */
static inline int in_range(double v, double box)
{
	return v >= -0.5 * box && v < 1.5 * box;
}

/* Cells [0, n) of a block into the halos' sums; returns n, or the first cell whose coordinate is
 * bad (non-finite, or more than half a box outside, as the serial run). */
static uint64_t add_block_f32(struct dist *D, const float *x, const float *t, uint64_t n)
{
	const double box = D->R->box;
	uint64_t i, j;

	for (i = 0; i < n; i++) {
		const float *xi = x + 3 * i;
		uint64_t c;

		if (!in_range(xi[0], box) || !in_range(xi[1], box) || !in_range(xi[2], box))
			return i;
		c = (sm__pl_halo_axis(D, xi[0], box) * D->hg + sm__pl_halo_axis(D, xi[1], box)) *
			    D->hg + sm__pl_halo_axis(D, xi[2], box);
		for (j = D->hg_start[c]; j < D->hg_start[c + 1]; j++)
			add_one_f32(D, D->hg_halos[j], xi, t[i]);
	}
	return n;
}

static uint64_t add_block_f64(struct dist *D, const double *x, const float *t, uint64_t n)
{
	const double box = D->R->box;
	uint64_t i, j;

	for (i = 0; i < n; i++) {
		const double *xi = x + 3 * i;
		uint64_t c;

		if (!in_range(xi[0], box) || !in_range(xi[1], box) || !in_range(xi[2], box))
			return i;
		c = (sm__pl_halo_axis(D, xi[0], box) * D->hg + sm__pl_halo_axis(D, xi[1], box)) *
			    D->hg + sm__pl_halo_axis(D, xi[2], box);
		for (j = D->hg_start[c]; j < D->hg_start[c + 1]; j++)
			add_one_f64(D, D->hg_halos[j], xi, t[i]);
	}
	return n;
}
/* One block of chunk f: cells [local, local + n) of the file. */
static int stream_block(struct dist *D, int64_t f, uint64_t local, uint64_t n)
{
	static const char *const names[3] = {SM_ARRAY_INTERNAL_ENERGY, SM_ARRAY_ELECTRON_ABUNDANCE,
					     SM_ARRAY_STAR_FORMATION_RATE};
	struct run *R = D->R;
	float *fld[3] = {R->u, R->xe, R->sfr};
	uint64_t g = D->first[f] + local, bad;
	int rc, j;

	for (j = 0; j < 3; j++)
		if ((rc = sm__pl_read_gas(R, names[j], g, n, fld[j])) != 0)
			return rc;
	if ((rc = sm__pl_temperature_block(R, g, n, R->u, R->xe, R->sfr, R->temp)) != 0)
		return rc;
	if ((rc = sm__pl_read_positions(R, g, n, R->coords, &bad)) != 0)
		return rc;
	if (bad < n)
		return sm__pl_bad_coordinate(R, g + bad);
	bad = R->pt == SM_DTYPE_F32 ? add_block_f32(D, R->coords, R->temp, n)
				    : add_block_f64(D, R->coords, R->temp, n);
	return bad < n ? sm__pl_bad_coordinate(R, g + bad) : 0;
}

/* Stage stream_cells: this rank's chunk files, in ascending file number, block by block. */
int sm__pl_stream_cells(struct dist *D)
{
	static const char *const names[3] = {SM_ARRAY_INTERNAL_ENERGY, SM_ARRAY_ELECTRON_ABUNDANCE,
					     SM_ARRAY_STAR_FORMATION_RATE};
	struct run *R = D->R;
	float **fld[3] = {&R->u, &R->xe, &R->sfr};
	uint64_t k = R->k, bytes, done = 0;
	int64_t f;
	int rc, j;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_STREAM_CELLS, -1, D->my_cells)) != 0)
		return rc;
	if (sm_mul_u64(k, SM_MODEL_HISTOGRAM_BYTES, &bytes) != 0)
		return sm_error_set(R->err, SM_EOVERFLOW, "'%s': %llu halos: profile sums do not fit "
				    "in 64 bits", sm__pl_cat_file(R), (unsigned long long)k);
	if ((rc = sm__pl_palloc(R, &D->sums, SM_ARRAY_PROFILE_SUMS, bytes)) != 0)
		return rc;
	memset(D->sums, 0, bytes);
	D->b = R->o->model.stream_block < R->n ? R->o->model.stream_block : R->n;
	if (D->b > 0) {
		for (j = 0; j < 3; j++)
			if ((rc = sm__pl_palloc(R, fld[j], names[j], 4 * D->b)) != 0)
				return rc;
		if ((rc = sm__pl_palloc(R, &R->temp, SM_ARRAY_TEMPERATURE, 4 * D->b)) != 0 ||
		    (rc = sm__pl_palloc(R, &R->coords, SM_ARRAY_COORDINATES, 3 * R->psz * D->b)) != 0)
			return rc;
		if (R->pt == SM_DTYPE_F32 &&
		    (rc = sm__pl_palloc(R, &R->iobuf, SM_ARRAY_IO_BUFFER, SM_MODEL_IO_BUFFER_BYTES)) != 0)
			return rc;
	}
	for (f = 0; f < R->s.nfiles; f++) {
		uint64_t cnt = R->s.chunk_counts[f * SM_NTYPES + 0], local;

		if (D->owner[f] != D->rank)
			continue;
		for (local = 0; local < cnt; local += D->b) {
			uint64_t n = cnt - local < D->b ? cnt - local : D->b;

			if ((rc = sm__pl_cancelled(R)) != 0 ||
			    (rc = stream_block(D, f, local, n)) != 0)
				return rc;
			done += n;
			sm__pl_progress(R, SM_STAGE_STREAM_CELLS, -1, done, D->my_cells);
		}
	}
	sm__pl_pfree(R, &R->iobuf);
	sm__pl_pfree(R, &R->coords);
	sm__pl_pfree(R, &R->temp);
	for (j = 0; j < 3; j++)
		sm__pl_pfree(R, fld[j]);
	sm__pl_stage_end(R);
	return 0;
}

