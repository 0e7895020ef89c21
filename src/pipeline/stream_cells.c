/*
 * Stage stream_cells of the distributed run (docs/MPI.md): this rank's chunk files, in ascending
 * file number, block by block: the three gas fields, the temperature (sm__pl_temperature_block, the
 * serial run's kernel) and Coordinates of a block, then every cell looked up in the halo index and
 * added into the sums of each halo whose sphere holds it, with the serial run's distance in the
 * positions' own type (float32: the same float centre, box, half box and radius as select_sphere)
 * and its histogram rule (sm__pl_hist_add_rb). The block arrays are the serial run's names at block
 * size; profile_sums, 25,200 bytes a halo, live until histogram_write. The cell loop runs on the
 * worker threads (locate and add below), its sums bit for bit those of one thread.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "snapmem/units.h"

#include "distributed.h"
#include "run.h"

/* A block's cells go through the halo index in two steps on the worker threads (docs/MPI.md).
 * locate, the cells split into ranges, one a part: each part finds its cells' halo-grid cells
 * and keeps those whose grid cell lists a halo, in cell order, their offsets in the block's
 * InternalEnergy array and their grid cells in its ElectronAbundance array (both dead once the
 * temperatures are made; 4 bytes a cell each), from the start of its range. add, the halos split
 * into parts (halo h to part h mod parts): every part walks the kept cells in order and adds each
 * into the sums of the listed halos it owns. A halo's sums are thus added by one thread in cell
 * order whatever the number of parts: the sums, temperature sums included, are bit for bit those
 * of one thread. */
#define CELLS_PART_MIN 16384u          /* cells a part, at least, for locate and add to use several */
#define CELLS_PIECE (UINT64_C(1) << 30) /* cells a pass, so that offsets fit in 32 bits */

struct cells_job {
	struct dist *D;
	const void *x;  /* the cells' Coordinates, 3n of the positions' type */
	const float *t; /* their temperatures */
	uint32_t *off;  /* kept cells' offsets from their range's start */
	uint32_t *gc;   /* kept cells' halo-grid cells */
	uint64_t n;
	unsigned lparts;                  /* locate's parts */
	uint64_t kept[SM__PL_MAX_THREADS]; /* locate: cells kept by each part */
};

static inline uint64_t range_start(const struct cells_job *J, unsigned p)
{
	return J->n * p / J->lparts;
}

/* The halo-grid cell along one axis of a coordinate within half a box of the box: wrapped into
 * [0, box), times hg / box, truncated, at most hg - 1. */
static inline uint32_t axis_cell(double x, double box, double inv_w, double top)
{
	double v;

	x = x < 0 ? x + box : x >= box ? x - box : x;
	v = x * inv_w;
	v = v < top ? v : top;
	return (uint32_t)(int32_t)v;
}

/* Halo-grid cells of cells [0, n) of float32 or float64 positions into gc: a loop of its own,
 * without a branch, apart from the kept cells' compaction (3.6 against 4.2 ns a cell); f64 is a
 * constant at each call. */
static inline void grid_cells(const void *restrict x, const int f64, uint32_t *restrict gc,
			      uint64_t n, double box, double inv_w, uint32_t hg)
{
	const double top = (double)(hg - 1);
	const float *xf = x;
	const double *xd = x;
	uint64_t i;

	for (i = 0; i < n; i++)
		gc[i] = (axis_cell(f64 ? xd[3 * i] : xf[3 * i], box, inv_w, top) * hg +
			 axis_cell(f64 ? xd[3 * i + 1] : xf[3 * i + 1], box, inv_w, top)) * hg +
			axis_cell(f64 ? xd[3 * i + 2] : xf[3 * i + 2], box, inv_w, top);
}

static void locate_part(void *arg, unsigned part, unsigned parts)
{
	(void)parts; /* J->lparts */
	struct cells_job *J = arg;
	const struct dist *D = J->D;
	const uint32_t *start = D->hg_start;
	const uint64_t i0 = range_start(J, part), i1 = range_start(J, part + 1);
	uint32_t *off = J->off + i0, *gc = J->gc + i0;
	uint64_t i, m = 0;

	/* The coordinates were checked as read (sm__pl_read_positions: finite, within half a box of
	 * the box, as read and as narrowed), so each lies in the halo grid's reach. */
	if (D->R->pt == SM_DTYPE_F32)
		grid_cells((const float *)J->x + 3 * i0, 0, gc, i1 - i0, D->R->box, D->inv_w,
			   (uint32_t)D->hg);
	else
		grid_cells((const double *)J->x + 3 * i0, 1, gc, i1 - i0, D->R->box, D->inv_w,
			   (uint32_t)D->hg);
	/* kept without a branch: written always (m <= i), counted when the grid cell lists a halo */
	for (i = 0; i < i1 - i0; i++) {
		const uint32_t c = gc[i];

		off[m] = (uint32_t)i;
		gc[m] = c;
		m += start[c] != start[c + 1];
	}
	J->kept[part] = m;
}

/* add works in batches of up to ADD_BATCH pairs (a kept cell and a listed halo of the part): the
 * pairs are gathered in cell order, then their distances and r/R200 bins computed, then added in
 * the same order. The bins' addresses in the sums are thus known before the additions start
 * (added one pair at a time, each addition waited for the distance and the division of its
 * own pair: some 2.5x slower on the bench's mock). */
#define ADD_BATCH 256u

struct add_batch {
	uint64_t i[ADD_BATCH];   /* the cell, in the block */
	uint32_t h[ADD_BATCH];   /* the halo */
	int32_t rb[ADD_BATCH];   /* its r/R200 bin, or -1 outside 2 R200 */
	/* float32 positions: the pairs' coordinate differences, their halos' 2 R200 and R200 */
	float dx[ADD_BATCH], dy[ADD_BATCH], dz[ADD_BATCH], r2[ADD_BATCH];
	double r200[ADD_BATCH];
};

/* One coordinate difference to its minimum image: sm__pl_dist_f32's, the box added always (0,
 * box or -box: x + 0 is x, x + (-box) is x - box), so that the loop below vectorises. */
static inline float wrap_f32(float d, float box, float half)
{
	return d + (d > half ? -box : d < -half ? box : 0.0f);
}

/* The bins of float32 pairs [0, n) from their differences (vectorised, the Makefile giving this
 * file -fno-math-errno so that sqrtf may be; sm__pl_dist_f32's
 * sqrtf(dx * dx + dy * dy + dz * dz), the comparison with the float 2 R200, sm__pl_rbin). */
SM__PL_VECTORISE static void bins_f32(struct add_batch *restrict B, unsigned n, float box, float half)
{
	unsigned q;

	for (q = 0; q < n; q++) {
		const float dx = wrap_f32(B->dx[q], box, half), dy = wrap_f32(B->dy[q], box, half);
		const float dz = wrap_f32(B->dz[q], box, half);
		const float d = sqrtf(dx * dx + dy * dy + dz * dz);
		double x = (double)d / B->r200[q] * (SM_MODEL_RBINS / 2.0);
		int32_t rb;

		/* sm__pl_rbin, clamped before the conversion (NaN to 0) */
		x = x > 0 ? x : 0;
		x = x < SM_MODEL_RBINS ? x : SM_MODEL_RBINS - 1;
		rb = (int32_t)x;
		B->rb[q] = d < B->r2[q] ? rb : -1;
	}
}

/* Distances and bins of pairs [0, n) of a batch, the serial run's arithmetic (sm__pl_dist_f32 with
 * the same float centre, box, half box and radius as select_sphere; sm__pl_dist_f64). */
static inline void batch_bins(const struct dist *D, const void *x, int f32,
			      struct add_batch *B, unsigned n)
{
	const struct run *R = D->R;
	unsigned q;

	if (f32) {
		const float bx = (float)R->box;

		for (q = 0; q < n; q++) {
			const uint32_t h = B->h[q];
			const double *cd = &R->halo_center[3 * h];
			const float *xi = (const float *)x + 3 * B->i[q];

			B->dx[q] = xi[0] - (float)cd[0];
			B->dy[q] = xi[1] - (float)cd[1];
			B->dz[q] = xi[2] - (float)cd[2];
			B->r200[q] = R->halo_r200[h];
			B->r2[q] = (float)(2.0 * R->halo_r200[h]);
		}
		bins_f32(B, n, bx, bx / 2);
		return;
	}
	for (q = 0; q < n; q++) {
		const uint32_t h = B->h[q];
		const double r200 = R->halo_r200[h];
		const double d = sm__pl_dist_f64((const double *)x + 3 * B->i[q],
						 &R->halo_center[3 * h], R->box, R->box / 2);

		B->rb[q] = d < 2.0 * r200 ? sm__pl_rbin(d, r200) : -1;
	}
}

/* Pairs [0, n) of a batch into the sums, in order. */
static inline void batch_add(struct dist *D, const float *t, const struct add_batch *B,
			     unsigned n)
{
	unsigned q;

	for (q = 0; q < n; q++)
		if (B->rb[q] >= 0)
			sm__pl_hist_add_rb(D->sums + (uint64_t)B->h[q] * SM_MODEL_HISTOGRAM_BYTES,
					   &D->R->tbins, B->rb[q], t[B->i[q]]);
}

/* The kept cells of every range, in cell order, each added into the sums of the halos of this
 * part (h mod parts == part). */
static inline void add_cells(struct cells_job *J, unsigned part, unsigned parts, int f32)
{
	struct dist *D = J->D;
	const uint32_t *start = D->hg_start, *halos = D->hg_halos;
	const unsigned mask = (parts & (parts - 1)) == 0 ? parts - 1 : 0;
	struct add_batch B;
	unsigned p, n = 0;

	for (p = 0; p < J->lparts; p++) {
		const uint64_t i0 = range_start(J, p), m = J->kept[p];
		const uint32_t *off = J->off + i0, *gc = J->gc + i0;
		uint64_t k;

		for (k = 0; k < m; k++) {
			const uint32_t c = gc[k];
			uint32_t j;

			for (j = start[c]; j < start[c + 1]; j++) {
				const uint32_t h = halos[j];

				/* gathered without a branch: written always, kept when owned */
				B.i[n] = i0 + off[k];
				B.h[n] = h;
				n += parts == 1 || (mask != 0 ? (h & mask) : h % parts) == part;
				if (n == ADD_BATCH) {
					batch_bins(D, J->x, f32, &B, n);
					batch_add(D, J->t, &B, n);
					n = 0;
				}
			}
		}
	}
	batch_bins(D, J->x, f32, &B, n);
	batch_add(D, J->t, &B, n);
}

static void add_part(void *arg, unsigned part, unsigned parts)
{
	struct cells_job *J = arg;

	if (J->D->R->pt == SM_DTYPE_F32)
		add_cells(J, part, parts, 1);
	else
		add_cells(J, part, parts, 0);
}

/* Cells [0, n) of a block, their coordinates checked as read, into the halos' sums. */
static void add_block(struct dist *D, const void *x, const float *t, uint64_t n)
{
	const unsigned threads = sm__pl_threads();
	const size_t xsz = 3 * D->R->psz;
	uint64_t done;

	for (done = 0; done < n;) {
		struct cells_job J;
		uint64_t m = n - done < CELLS_PIECE ? n - done : CELLS_PIECE;
		unsigned parts = threads;

		if (m / CELLS_PART_MIN < parts)
			parts = m / CELLS_PART_MIN > 1 ? (unsigned)(m / CELLS_PART_MIN) : 1;
		memset(&J, 0, sizeof(J));
		J.D = D;
		J.x = (const char *)x + done * xsz;
		J.t = t + done;
		J.off = (uint32_t *)(void *)D->R->u;
		J.gc = (uint32_t *)(void *)D->R->xe;
		J.n = m;
		J.lparts = parts;
		sm__pl_parallel(locate_part, &J, parts);
		parts = threads;
		if (D->R->k < parts)
			parts = D->R->k > 1 ? (unsigned)D->R->k : 1;
		if (m < CELLS_PART_MIN)
			parts = 1;
		sm__pl_parallel(add_part, &J, parts);
		done += m;
	}
}

/* One block of chunk f: cells [local, local + n) of the file. */
static int stream_block(struct dist *D, int64_t f, uint64_t local, uint64_t n)
{
	struct run *R = D->R;
	float *fld[3] = {R->u, R->xe, R->sfr};
	uint64_t g = D->first[f] + local, bad;
	int rc, j;

	for (j = 0; j < 3; j++)
		if ((rc = sm__pl_read_gas(R, sm__pl_gas_names[j], g, n, fld[j])) != 0)
			return rc;
	if ((rc = sm__pl_temperature_block(R, g, n, R->u, R->xe, R->sfr, R->temp)) != 0)
		return rc;
	if ((rc = sm__pl_read_positions(R, g, n, R->coords, &bad)) != 0)
		return rc;
	if (bad < n)
		return sm__pl_bad_coordinate(R, g + bad);
	add_block(D, R->coords, R->temp, n);
	return 0;
}

/* Stage stream_cells: this rank's chunk files, in ascending file number, block by block. */
int sm__pl_stream_cells(struct dist *D)
{
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
			if ((rc = sm__pl_palloc(R, fld[j], sm__pl_gas_names[j], 4 * D->b)) != 0)
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

