/*
 * Stage build_index of the serial run (--select index; docs/MODEL.md): a uniform grid of g^3 cells
 * over the box, g = sm_model_grid_side(N). First the grid cells some halo's sphere scan will visit
 * are flagged (a bit each, in index_cell_fill's first g^3 / 8 + 1 bytes); then one distribution
 * pass over all cells (sm__pl_split_near) moves the cells lying in flagged grid cells (near) to the
 * front, already in their x slabs, and the others behind them, unsorted and in no grid cell's
 * range; or, when fewer than three fifths are near (at TNG scale a few percent of the cells lie
 * near the selected halos, in the mock 45 %), the near cells are compacted to the front first and
 * only they distributed into their slabs, the others not kept: in place, or, when the far cells
 * were at least as many, into the far cells' space right behind the compacted ones, where the
 * index then begins (build_index_sort.c). Then Coordinates
 * and temperature of each slab's near cells are permuted in place into grid-cell order by an MSD
 * radix sort (y rows inside a slab, then z cells inside a row), the slabs shared out to the worker
 * threads, each level an in-place block distribution (sm__pl_distribute, build_index_sort.c).
 * Each pass finds its buckets' sizes itself (the block distribution's classification counts them)
 * and writes them as index_cell_start entries: slabs, then rows, then cells, so there is no
 * separate counting pass over the cells. No per-cell memory besides the two arrays the model names
 * (index_cell_fill holds the cover flags). The near split and the x slabs are one pass since
 * 2026-11 (before: a two-bucket split on the worker threads, its parts' near rows then closed
 * up by swapping, then the x-slab pass over the near rows; one thread, 1e7 cells, median of 9:
 * build_index 0.231 -> 0.212 s); its classification, most of its time, on the worker threads in
 * 8 fixed stripes since 2026-12-01 (sm__pl_split_near, from 131,072 cells; 11 idle-gated
 * interleaved pairs at 1e7 cells on 2 CPUs: build_index 0.683 of its time, the same CPU time);
 * the rows' buckets found in runs before they move, eight float32 rows an instruction with AVX2
 * (sm__pl_near_buckets), and blocks of 128 KiB of buffers instead of 64 since the session after
 * (build_index 0.970, 0.859 and 0.915 of its time, one after the other).
 *
 * The distributed run's build_index (the halo index) is in build_index_halos.c.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "grid.h"
#include "run.h"

/* build_index's parallel parts. The near split, into x slabs, classifies its stripes on the worker
 * threads and finds the slab boundaries itself (index_cell_start[s g^2]); then all parts take slabs one at a time and sort
 * each into rows and the rows into cells, the passes writing the slab's index_cell_start
 * entries. A slab's cells and entries are its own, and its order does not depend on who sorts
 * it. */
struct index_job {
	const struct grid *gr;
	void *x;
	float *t;
	int f64;
	uint64_t *start;
	atomic_uint_fast64_t next;
};

/* Rows [lo, lo + n) into the g buckets of their grid index along `axis`, the boundaries counted
 * into bounds[c stride] (c = 0..g). */
static void distribute_counted(const struct index_job *J, uint64_t *bounds, uint64_t lo,
			       uint64_t n, uint64_t stride, int axis)
{
	sm__pl_distribute(J->gr, J->x, J->t, J->f64, NULL, bounds, lo, n, stride, axis);
}

static void slab_part(void *arg, unsigned part, unsigned parts)
{
	struct index_job *J = arg;
	uint64_t g = J->gr->g, g2 = g * g, sl, y;
	uint64_t rows[SM_MODEL_GRID_MAX_SIDE + 1];

	(void)part;
	(void)parts;
	while ((sl = atomic_fetch_add(&J->next, 1)) < g) {
		uint64_t *st = J->start + sl * g2;
		uint64_t a = st[0], b = st[g2];

		/* The rows' and cells' boundaries are the distribution passes' own counts (bounds
		 * mode): the slab's rows into a local table first, since st[g2] is the next slab's
		 * st[0], which another part may be reading. */
		distribute_counted(J, rows, a, b - a, 1, 1);
		for (y = 0; y < g; y++)
			st[y * g] = rows[y];
		for (y = 0; y < g; y++) {
			uint64_t ra = rows[y], rb = rows[y + 1];

			if (y + 1 < g) {
				distribute_counted(J, st + y * g, ra, rb - ra, 1, 2);
			} else { /* the last row's end is st[g2]: its z bounds through the table */
				uint64_t z;

				distribute_counted(J, rows, ra, rb - ra, 1, 2);
				for (z = 0; z < g; z++)
					st[y * g + z] = rows[z];
			}
		}
	}
}

void sm__pl_axis_cover(const struct grid *gr, double c, double r, struct axis_range *ar)
{
	double pad = 1e-5 * r + 1e-6 * gr->box;
	double flo = floor((c - r - pad) * gr->inv_w), fhi = floor((c + r + pad) * gr->inv_w);
	int64_t g = (int64_t)gr->g;
	int64_t lo, hi, wl, wh;

	/* Decided in double before any integer conversion: a span of g cells or more (or one that
	 * is not a number) covers the axis, and whatever is left lies within a few grid widths of
	 * [0, g), the centre being in the box. */
	if (!(fhi - flo + 1 < gr->gd) || !(flo > -4.0 * gr->gd && fhi < 5.0 * gr->gd)) {
		ar->n = 1;
		ar->a[0] = 0;
		ar->b[0] = (uint64_t)g - 1;
		return;
	}
	lo = (int64_t)flo;
	hi = (int64_t)fhi;
	if (hi - lo + 1 >= g) {
		ar->n = 1;
		ar->a[0] = 0;
		ar->b[0] = (uint64_t)g - 1;
		return;
	}
	wl = ((lo % g) + g) % g;
	wh = ((hi % g) + g) % g;
	if (wl <= wh) {
		ar->n = 1;
		ar->a[0] = (uint64_t)wl;
		ar->b[0] = (uint64_t)wh;
	} else {
		ar->n = 2;
		ar->a[0] = (uint64_t)wl;
		ar->b[0] = (uint64_t)g - 1;
		ar->a[1] = 0;
		ar->b[1] = (uint64_t)wh;
	}
}

/* Bits [a, b] of a bit set set. */
static void set_bits(unsigned char *bits, uint64_t a, uint64_t b)
{
	for (; a <= b && (a & 7) != 0; a++)
		bits[a >> 3] |= (unsigned char)(1u << (a & 7));
	if (a + 8 <= b + 1) {
		uint64_t whole = (b + 1 - a) / 8;

		memset(bits + (a >> 3), 0xff, whole);
		a += 8 * whole;
	}
	for (; a <= b; a++)
		bits[a >> 3] |= (unsigned char)(1u << (a & 7));
}

/* The grid cells the halos' sphere scans visit (sphere_scan's own cover), flagged in the bit set
 * cover (bit m of byte m / 8, m / 8 + 1 bytes). */
static void mark_cover(const struct run *R, unsigned char *cover)
{
	const struct grid *gr = &R->grid;
	uint64_t h, g = gr->g, x, y;
	struct axis_range ax, ay, az;
	int i, j, l;

	memset(cover, 0, g * g * g / 8 + 1);
	for (h = 0; h < R->k; h++) {
		const double *cd = &R->halo_center[3 * h];
		double r2 = 2.0 * R->halo_r200[h];

		sm__pl_axis_cover(gr, cd[0], r2, &ax);
		sm__pl_axis_cover(gr, cd[1], r2, &ay);
		sm__pl_axis_cover(gr, cd[2], r2, &az);
		for (i = 0; i < ax.n; i++)
			for (x = ax.a[i]; x <= ax.b[i]; x++)
				for (j = 0; j < ay.n; j++)
					for (y = ay.a[j]; y <= ay.b[j]; y++)
						for (l = 0; l < az.n; l++)
							set_bits(cover, (x * g + y) * g + az.a[l],
								 (x * g + y) * g + az.b[l]);
	}
}

/* Near rows (in grid cells some sphere scan visits) into their x slabs at the front (or right
 * behind the place they were compacted to), far rows behind them or not kept (sm__pl_split_near,
 * its classification in stripes on the worker threads from 131,072 cells): the slab boundaries
 * into index_cell_start[s g^2] (s = 0..g, the last where the near rows end). Returns the number
 * of near rows. */
static uint64_t split_near_slabs(struct run *R)
{
	const struct grid *gr = &R->grid;
	const int f64 = R->pt == SM_DTYPE_F64;
	uint64_t g = gr->g, g2 = g * g, b[SM_MODEL_GRID_MAX_SIDE + 2], c;

	sm__pl_split_near(gr, R->coords, R->temp, f64, b, 0, R->n);
	for (c = 0; c <= g; c++)
		R->cstart[c * g2] = b[c];
	return b[g] - b[0];
}

int sm__pl_build_index(struct run *R)
{
	uint64_t g = sm_model_grid_side(R->n), m = g * g * g, nnear;
	struct index_job J;
	int rc;

	R->grid.g = g;
	R->grid.gd = (double)g;
	R->grid.box = R->box;
	R->grid.inv_w = (double)g / R->box;
	R->r->grid_side = g;
	if ((rc = sm__pl_stage_begin(R, SM_STAGE_BUILD_INDEX, -1, R->n)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->cstart, SM_ARRAY_INDEX_CELL_START, 8 * (m + 1))) != 0 ||
	    (rc = sm__pl_palloc(R, &R->cfill, SM_ARRAY_INDEX_CELL_FILL, 8 * m)) != 0)
		return rc;
	/* Only cells some sphere scan can visit are sorted; index_cell_fill holds the cover flags
	 * (a bit per grid cell: m / 8 + 1 bytes of its 8m). */
	mark_cover(R, (unsigned char *)R->cfill);
	R->grid.cover = (const unsigned char *)R->cfill;
	memset(R->cstart, 0, 8 * (m + 1));
	nnear = split_near_slabs(R);
	R->r->indexed_cells = nnear;
	if ((rc = sm__pl_cancelled(R)) != 0)
		return rc;
	memset(&J, 0, sizeof(J));
	J.gr = &R->grid;
	J.x = R->coords;
	J.t = R->temp;
	J.f64 = R->pt == SM_DTYPE_F64;
	J.start = R->cstart;
	atomic_init(&J.next, 0);
	sm__pl_parallel(slab_part, &J, nnear >= 65536 ? sm__pl_threads() : 1);
	sm__pl_pfree(R, &R->cfill);
	sm__pl_progress(R, SM_STAGE_BUILD_INDEX, -1, R->n, R->n);
	sm__pl_stage_end(R);
	return 0;
}
