/*
 * Stage select_sphere (step 5, per halo; docs/MODEL.md): the cells within 2 R200 of the halo's
 * centre, periodic minimum-image distance in the positions' own type (sm__pl_dist_f32/f64, the
 * one distance every strategy applies). With the index (--select index) the grid cells the sphere
 * covers are scanned, cell ranges of index_cell_start, into sphere_cells (uint32, uint64 beyond
 * 2^32 cells): counted first, then listed, each pass over the scan's grid rows (x, y) shared out
 * to the worker threads for large spheres by the cells the rows hold, the list in the one scan
 * order whatever the threads. With the mask (--select mask, the notebook's way) one byte per gas
 * cell, sphere_mask.
 * Since 2026-12-02 the parts take rows balanced by their cells, not whole x columns: a sphere
 * spans five or six columns, whose middle ones hold most of its cells, and the part with the
 * middle did up to 70 % of the scan (1e7 cells, 30 halos, one binary against the other in
 * alternating runs, 10 pairs: the select_sphere stages' sum 18.1 -> 14.9 ms, with the worker
 * threads' spin rule in common/parallel.c).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "grid.h"
#include "run.h"

/* One visit of a sphere scan: the contiguous cells [a, b) of the permuted arrays. */
typedef struct scan_out {
	uint64_t count;
	void *idx;        /* NULL: count only */
	int idx64;
} scan_out;

static void scan_note(scan_out *so, uint64_t i)
{
	if (so->idx != NULL) {
		if (so->idx64)
			((uint64_t *)so->idx)[so->count] = i;
		else
			((uint32_t *)so->idx)[so->count] = (uint32_t)i;
	}
	so->count++;
}

/* The distance tests of a float32 scan, SCAN_BLOCK cells at a time: the flags in[0, n) of the cells
 * at x (in[q] = 1 within r2 of c) and how many are set. sm__pl_dist_f32's arithmetic, its minimum
 * image written so that the loop vectorises (x + (-box) is x - box; the Makefile gives this file
 * -fno-math-errno so that sqrtf may be vectorised). */
#define SCAN_BLOCK 512u

__attribute__((target_clones("avx2", "default")))
SM__PL_VECTORISE static unsigned near_f32(const float *restrict x, unsigned n, const float *c,
					  float box, float half, float r2,
					  unsigned char *restrict in)
{
	const float c0 = c[0], c1 = c[1], c2 = c[2];
	unsigned q, k = 0;

	for (q = 0; q < n; q++) {
		const unsigned char f = sm__pl_dist_xyz_f32(x[3 * q], x[3 * q + 1], x[3 * q + 2], c0,
							    c1, c2, box, half) < r2;

		in[q] = f;
		k += f;
	}
	return k;
}

/* The cells of x[a, b) within r2 of c, counted or listed into so: a block's flags first, then
 * its cells listed without a branch (each index written, the count advanced by its flag) into a
 * buffer on the stack, whose set part is copied to the list, so that nothing is written past the
 * list's end. */
static void scan_range_f32(const float *x, uint64_t a, uint64_t b, const float *c, float box,
			   float half, float r2, scan_out *so)
{
	unsigned char in[SCAN_BLOCK];
	uint64_t i;

	for (i = a; i < b; i += SCAN_BLOCK) {
		const unsigned n = b - i < SCAN_BLOCK ? (unsigned)(b - i) : SCAN_BLOCK;
		const unsigned k = near_f32(x + 3 * i, n, c, box, half, r2, in);
		unsigned q, m = 0;

		if (so->idx == NULL || k == 0) {
			so->count += k;
			continue;
		}
		if (so->idx64) {
			uint64_t buf[SCAN_BLOCK];

			for (q = 0; q < n; q++) {
				buf[m] = i + q;
				m += in[q];
			}
			memcpy((uint64_t *)so->idx + so->count, buf, k * sizeof(buf[0]));
		} else {
			uint32_t buf[SCAN_BLOCK];

			for (q = 0; q < n; q++) {
				buf[m] = (uint32_t)(i + q);
				m += in[q];
			}
			memcpy((uint32_t *)so->idx + so->count, buf, k * sizeof(buf[0]));
		}
		so->count += k;
	}
}

static void scan_range_f64(const double *x, uint64_t a, uint64_t b, const double *c, double box,
			   double half, double r2, scan_out *so)
{
	uint64_t i;

	for (i = a; i < b; i++)
		if (sm__pl_dist_f64(x + 3 * i, c, box, half) < r2)
			scan_note(so, i);
}

/* The mask strategy: m[i] = cell i of x[0, n) lies within r2 of c; returns how many do: near_f32
 * a stretch of 2^20 cells at a time (its count in 32 bits), the double version as one loop
 * (sm__pl_dist_f64's arithmetic, its minimum image written so that the loop vectorises). */
#define MASK_STRETCH (1u << 20)

static uint64_t mask_fill_f32(const float *x, uint64_t n, const float *c, float box, float half,
			      float r2, unsigned char *m)
{
	uint64_t i, s = 0;

	for (i = 0; i < n; i += MASK_STRETCH)
		s += near_f32(x + 3 * i, n - i < MASK_STRETCH ? (unsigned)(n - i) : MASK_STRETCH, c,
			      box, half, r2, m + i);
	return s;
}

__attribute__((target_clones("avx2", "default")))
SM__PL_VECTORISE static uint64_t mask_fill_f64(const double *restrict x, uint64_t n,
					       const double *c, double box, double half, double r2,
					       unsigned char *restrict m)
{
	const double c0 = c[0], c1 = c[1], c2 = c[2];
	uint64_t i, s = 0;

	for (i = 0; i < n; i++) {
		const unsigned char f = sm__pl_dist_xyz_f64(x[3 * i], x[3 * i + 1], x[3 * i + 2], c0,
							    c1, c2, box, half) < r2;

		m[i] = f;
		s += f;
	}
	return s;
}

/* Every cell of x[a, b), counted or listed into so (a grid cell inside the sphere). */
static void scan_all(uint64_t a, uint64_t b, scan_out *so)
{
	uint64_t i;

	if (so->idx == NULL) {
		so->count += b - a;
		return;
	}
	if (so->idx64)
		for (i = a; i < b; i++)
			((uint64_t *)so->idx)[so->count++] = i;
	else
		for (i = a; i < b; i++)
			((uint32_t *)so->idx)[so->count++] = (uint32_t)i;
}

/* The cells of x[a, b) within r2 of c (the float or double centre as the positions' type). */
static void scan_test(const struct run *R, uint64_t a, uint64_t b, const void *c, double r2,
		      scan_out *so)
{
	if (R->pt == SM_DTYPE_F32) {
		float box = (float)R->box;

		scan_range_f32(R->coords, a, b, c, box, box / 2, (float)r2, so);
	} else {
		scan_range_f64(R->coords, a, b, c, R->box, R->box / 2, r2, so);
	}
}

/* The farthest a point of the grid's slab i along one axis, [i w, (i + 1) w), lies from c by the
 * minimum image, or -1 when the slab reaches half a box from c. */
static double axis_far(const struct grid *gr, uint64_t i, double c)
{
	double box = gr->box, half = box / 2, w = box / gr->gd;
	double lo = (double)i * w - c, hi;

	if (lo < -half)
		lo += box;
	else if (lo >= half)
		lo -= box;
	hi = lo + w;
	if (hi > half)
		return -1;
	return fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi);
}

/* The z cells [za, zb] of grid row (x, y) through the grid, with the z cells wholly inside the
 * sphere taken whole: every point of such a grid cell lies within the radius by more than the
 * sphere cover's padding (1e-5 r + 1e-6 box, far above the rounding of the float distance), so its
 * cells would all pass the distance test; the list is the same, cell for cell, in the same
 * order. fxy2: the row's farthest x and y extents squared (< 0: none inside). */
static void scan_row(const struct run *R, uint64_t base, uint64_t za, uint64_t zb, double fxy2,
		     double cz, double lim2, const void *c, double r2, scan_out *so)
{
	uint64_t z, a, b;

	if (fxy2 < 0) { /* no z cell of the row can be inside: the row's cells at once */
		scan_test(R, R->cstart[base + za], R->cstart[base + zb + 1], c, r2, so);
		return;
	}
	for (z = za; z <= zb; z++) {
		double fz = axis_far(&R->grid, z, cz);

		a = R->cstart[base + z];
		b = R->cstart[base + z + 1];
		if (fz >= 0 && fxy2 + fz * fz < lim2)
			scan_all(a, b, so);
		else
			scan_test(R, a, b, c, r2, so);
	}
}

/* Cells of halo h within 2 R200 through the grid: counted (so->idx NULL) or listed. Only the
 * grid rows (x, y) [va, vb) of the visit order (the rows the sphere touches, in the order they are
 * visited: x, then y) are scanned, so that parts of one scan can run at once and still list the
 * cells in the one order. */
static void sphere_scan(const struct run *R, uint64_t h, scan_out *so, uint64_t va, uint64_t vb)
{
	const struct grid *gr = &R->grid;
	const double *cd = &R->halo_center[3 * h];
	double r2 = 2.0 * R->halo_r200[h];
	struct axis_range ax, ay, az;
	int i, j, l, f32 = R->pt == SM_DTYPE_F32;
	uint64_t x, y, g = gr->g, v = 0;
	float cf[3] = {(float)cd[0], (float)cd[1], (float)cd[2]};
	/* the centre and radius the distance test uses, and the inside test's limit */
	double cc[3] = {f32 ? cf[0] : cd[0], f32 ? cf[1] : cd[1], f32 ? cf[2] : cd[2]};
	double lim = (f32 ? (double)(float)r2 : r2) - (1e-5 * r2 + 1e-6 * R->box);
	double lim2 = lim > 0 ? lim * lim : -1;
	const void *c = f32 ? (const void *)cf : (const void *)cd;

	so->count = 0;
	sm__pl_axis_cover(gr, cd[0], r2, &ax);
	sm__pl_axis_cover(gr, cd[1], r2, &ay);
	sm__pl_axis_cover(gr, cd[2], r2, &az);
	for (i = 0; i < ax.n; i++)
		for (x = ax.a[i]; x <= ax.b[i]; x++) {
			double fx = axis_far(gr, x, cc[0]);

			for (j = 0; j < ay.n; j++)
				for (y = ay.a[j]; y <= ay.b[j]; y++, v++) {
					double fy, fxy2;

					if (v < va || v >= vb)
						continue;
					fy = axis_far(gr, y, cc[1]);
					fxy2 = fx >= 0 && fy >= 0 && fx * fx + fy * fy < lim2
						       ? fx * fx + fy * fy : -1;
					for (l = 0; l < az.n; l++)
						scan_row(R, (x * g + y) * g, az.a[l], az.b[l], fxy2,
							 cc[2], lim2, c, r2, so);
				}
		}
}

/* The rows of halo h's scan (sphere_scan's visit order) shared out to `parts` parts by the cells
 * their grid cells hold, the scan's work: part p takes rows [edge[p], edge[p + 1]) (one part:
 * every row). total: the cells the scan visits, when known (0: counted here; parts 0: only
 * counted). Returns them. */
static uint64_t split_rows(const struct run *R, uint64_t h, uint64_t total, unsigned parts,
			   uint64_t *edge)
{
	const struct grid *gr = &R->grid;
	const double *cd = &R->halo_center[3 * h];
	const double r2 = 2.0 * R->halo_r200[h];
	struct axis_range ax, ay, az;
	uint64_t x, y, g = gr->g, v = 0, sum = 0;
	unsigned p = 1;
	int i, j, l, pass;

	if (parts == 1) { /* every row */
		edge[0] = 0;
		edge[1] = UINT64_MAX;
		return total;
	}
	sm__pl_axis_cover(gr, cd[0], r2, &ax);
	sm__pl_axis_cover(gr, cd[1], r2, &ay);
	sm__pl_axis_cover(gr, cd[2], r2, &az);
	/* pass 0 counts the cells (unless known), pass 1 places the edges (several parts) */
	for (pass = total > 0; pass < (parts > 1 ? 2 : 1); pass++)
		for (i = 0, v = 0; i < ax.n; i++)
			for (x = ax.a[i]; x <= ax.b[i]; x++)
				for (j = 0; j < ay.n; j++)
					for (y = ay.a[j]; y <= ay.b[j]; y++, v++) {
						const uint64_t base = (x * g + y) * g;
						uint64_t k = 0;

						for (l = 0; l < az.n; l++)
							k += R->cstart[base + az.b[l] + 1] -
							     R->cstart[base + az.a[l]];
						if (pass == 0) {
							total += k;
							continue;
						}
						/* a part's first row: the first whose cells
						 * before it reach its share */
						while (p < parts && sum >= total / parts * p)
							edge[p++] = v;
						sum += k;
					}
	if (parts > 0) {
		edge[0] = 0;
		while (p <= parts)
			edge[p++] = v;
	}
	return total;
}

/* The scan's parallel parts: part p owns the rows [edge[p], edge[p + 1]) of the scan (split_rows);
 * first each counts its cells (list 0), then each lists them from its offset (list 1). */
struct select_job {
	const struct run *R;
	uint64_t h;
	int list;
	uint64_t edge[SM__PL_MAX_THREADS + 1];
	uint64_t count[SM__PL_MAX_THREADS];     /* per part (count), offsets (list) */
};

static void select_part(void *arg, unsigned part, unsigned parts)
{
	struct select_job *J = arg;
	const struct run *R = J->R;
	scan_out so = {0, NULL, R->idx64};

	(void)parts;
	if (J->list)
		so.idx = R->idx64 ? (void *)((uint64_t *)R->sphere + J->count[part])
				  : (void *)((uint32_t *)R->sphere + J->count[part]);
	sphere_scan(R, J->h, &so, J->edge[part], J->edge[part + 1]);
	if (!J->list)
		J->count[part] = so.count;
}

/* The index strategy: sphere_cells, counted then listed, the rows shared out by their cells. */
static int select_by_index(struct run *R, uint64_t h, uint64_t *s)
{
	struct select_job J;
	unsigned parts, p;
	uint64_t n = 0, total;
	int rc;

	memset(&J, 0, sizeof(J));
	J.R = R;
	J.h = h;
	total = split_rows(R, h, 0, 0, NULL);
	parts = sm__pl_halo_parts(total, SM__PL_HALO_PART_MIN_CELLS);
	split_rows(R, h, total, parts, J.edge);
	sm__pl_parallel(select_part, &J, parts);
	for (p = 0; p < parts; p++) {
		uint64_t c = J.count[p];

		J.count[p] = n;
		n += c;
	}
	if ((rc = sm__pl_palloc_filled(R, &R->sphere, SM_ARRAY_SPHERE_CELLS,
				       n * (R->idx64 ? 8 : 4))) != 0)
		return rc;
	J.list = 1;
	sm__pl_parallel(select_part, &J, parts);
	*s = n;
	return 0;
}

/* The mask strategy: sphere_mask, one byte per gas cell, each worker thread filling its share
 * of the cells (R->mask_parts, fixed by N) and counting its selected cells for the later steps. */
struct mask_job {
	struct run *R;
	uint64_t h;
};

static void mask_part(void *arg, unsigned part, unsigned parts)
{
	const struct mask_job *J = arg;
	struct run *R = J->R;
	const double *cd = &R->halo_center[3 * J->h];
	const double r2 = 2.0 * R->halo_r200[J->h];
	uint64_t a, b;

	(void)parts; /* R->mask_parts */
	sm__pl_mask_range(R, part, &a, &b);

	if (R->pt == SM_DTYPE_F32) {
		const float c[3] = {(float)cd[0], (float)cd[1], (float)cd[2]};
		const float box = (float)R->box;

		R->mask_count[part] = mask_fill_f32((const float *)R->coords + 3 * a, b - a, c, box,
						    box / 2, (float)r2, R->mask + a);
	} else {
		R->mask_count[part] = mask_fill_f64((const double *)R->coords + 3 * a, b - a, cd,
						    R->box, R->box / 2, r2, R->mask + a);
	}
}

static int select_by_mask(struct run *R, uint64_t h, uint64_t *s)
{
	struct mask_job J = {R, h};
	unsigned p;
	int rc;

	if ((rc = sm__pl_palloc_filled(R, &R->mask, SM_ARRAY_SPHERE_MASK, R->n)) != 0)
		return rc;
	R->mask_parts = sm__pl_halo_parts(R->n, SM__PL_HALO_PART_MIN_CELLS);
	sm__pl_parallel(mask_part, &J, R->mask_parts);
	for (*s = 0, p = 0; p < R->mask_parts; p++)
		*s += R->mask_count[p];
	return 0;
}

int sm__pl_select_sphere(struct run *R, uint64_t h, uint64_t *s)
{
	int rc;

	*s = 0;
	if ((rc = sm__pl_stage_begin(R, SM_STAGE_SELECT_SPHERE, (int64_t)h, R->k)) != 0)
		return rc;
	rc = R->o->model.select == SM_SELECT_INDEX ? select_by_index(R, h, s)
						   : select_by_mask(R, h, s);
	if (rc != 0)
		return rc;
	R->r->halos[h].sphere_cells = *s;
	sm__pl_stage_end(R);
	return 0;
}
