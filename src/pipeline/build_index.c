/*
 * Stage build_index of the serial run (--select index; docs/MODEL.md): a uniform grid of g^3 cells
 * over the box, g = sm_model_grid_side(N), and Coordinates and temperature of the cells some
 * halo's sphere scan will visit (near) put in grid-cell order in place, index_cell_start[c] where
 * grid cell c's rows begin. No per-cell memory besides the two arrays the model names:
 *   1. the grid cells the scans visit are flagged, a bit each, in index_cell_fill's first
 *      g^3 / 8 + 1 bytes;
 *   2. unless half of the rows are near (at TNG scale a few percent of the cells lie near the
 *      selected halos, in the mock 45 %), the near rows are gathered into blocks of one x slab
 *      each and the stripes' blocks put at the front (sm__pl_near_blocks,
 *      build_index_compact.c; the blocks buffered in index_cell_start, their list in
 *      index_cell_fill behind the flags), the others not kept; else the near split
 *      (sm__pl_split_near, build_index_sort.c) puts the near rows into their x slabs: below
 *      three fifths near, the near rows are compacted first and the others not kept, the slabs
 *      then made in the far rows' space right behind the compacted rows when the far rows were
 *      at least as many, else in place; with more near rows, one in-place distribution of all
 *      rows, the far rows behind the near;
 *   3. each slab into grid-cell order, the slabs shared out to the worker threads: from its
 *      blocks into the far rows' space behind them, or from a slab made behind back into the
 *      compacted rows' place, by one counting pass each (build_index_slab.c, its counters behind
 *      the cover flags, or the list, in index_cell_fill); the others by an in-place MSD radix
 *      sort, y rows inside the slab and then z cells inside a row, each level an in-place block
 *      distribution that counts its buckets itself (sm__pl_distribute). The blocks' way and
 *      the slabs made behind both leave a grid cell's rows in their own order: the same index.
 * Since 2026-11: the near split and the x slabs one pass (one thread, 1e7 cells, median of 9:
 * build_index 0.231 -> 0.212 s); the classification on the worker threads in stripes (11
 * idle-gated interleaved pairs: 0.683 of the time); the rows' buckets found in runs before they
 * move, eight float32 rows an instruction with AVX2; 128 KiB block buffers. Since 2026-12-02:
 * float arithmetic for the grid indices, compaction up to three fifths near, the slabs made
 * behind (the figures in grid_bins.c, build_index_compact.c); and step 3's counting pass for
 * slabs made behind instead of the in-place sort (one binary, alternating runs, 30 halos):
 * build_index 0.0864 -> 0.0805 s and 0.0800 -> 0.0729 s at 1e7 cells (12 and 14 runs each; a
 * third set of 10 on a busier machine gave 0.0975 -> 0.0998 s), 0.0091 -> 0.0077 s at 1e6 (14).
 * Later on 2026-12-02 the blocks (step 2) instead of the compaction, the slabs made behind and the
 * sorts back (against the previous binary, alternating serial runs, medians of the pairs'
 * ratios): build_index 0.795 at 1e7 cells (12 pairs: 56.4 -> 44.8 ms; the pipeline 0.925),
 * 0.859 with float64 positions (8), 0.864 at 1e6 (12: 6.5 -> 5.5 ms), 0.961 with 3 halos (4.6 %
 * near, 8). The pass that made the slabs behind (a read and a scattered write of every near row)
 * is gone, and the stripes' close-up with it where the far rows' gaps take the blocks lying in
 * the slabs' place.
 *
 * The distributed run's build_index (the halo index) is in build_index_halos.c.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "grid.h"
#include "run.h"

/* build_index's parallel parts (step 3): all parts take slabs one at a time, each sorting its
 * slab and writing the slab's index_cell_start entries. A slab's cells and entries are its own,
 * and its order does not depend on who sorts it. */
struct index_job {
	const struct grid *gr;
	void *x;
	float *t;
	int f64;
	uint64_t *start;
	/* slab s's rows as the near split made them: [bound[s], bound[s + 1]) */
	const uint64_t *bound;
	/* gap > 0: the slabs, made gap rows further on, sorted back out of place
	 * (sm__pl_sort_slab_apart), each part with g^2 words of pos and room for nkeys keys;
	 * blocks != NULL: each slab sorted from its blocks to bound[sl] (sm__pl_sort_slab_blocks),
	 * with the same scratch */
	uint64_t gap, *pos, nkeys;
	uint32_t *keys;
	const struct near_blocks *blocks;
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

	(void)parts;
	while ((sl = atomic_fetch_add(&J->next, 1)) < g) {
		/* the entries st[0..g^2) are the slab's own to write; st[g2] is the next slab's */
		uint64_t *st = J->start + sl * g2;
		const uint64_t a = J->bound[sl], b = J->bound[sl + 1];

		if (J->blocks != NULL) {
			const uint64_t *f = J->blocks->first;

			sm__pl_sort_slab_blocks(J->gr, J->x, J->t, J->f64, st, J->pos + part * g2,
						J->keys + part * J->nkeys, J->nkeys,
						J->blocks->list + f[sl], f[sl + 1] - f[sl], b - a, a);
			continue;
		}
		if (J->gap > 0) {
			sm__pl_sort_slab_apart(J->gr, J->x, J->t, J->f64, st, J->pos + part * g2,
					       J->keys + part * J->nkeys, J->nkeys, a, b, J->gap);
			continue;
		}
		/* The rows' and cells' boundaries are the distribution passes' own counts (bounds
		 * mode): the slab's rows into a local table first, since st[g2] is the next slab's
		 * st[0], which another part may be writing. */
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

int sm__pl_build_index(struct run *R)
{
	uint64_t g = sm_model_grid_side(R->n), m = g * g * g, nnear;
	const uint64_t cover_words = (m / 8 + 1 + 3 + 7) / 8; /* the flags, 3 bytes read past */
	uint64_t bound[SM_MODEL_GRID_MAX_SIDE + 2];
	struct near_blocks nb;
	enum sm__pl_blocks_way way;
	struct index_job J;
	uint64_t used;
	unsigned parts;
	int rc;

	R->grid.g = g;
	R->grid.gd = (double)g;
	R->grid.box = R->box;
	R->grid.inv_w = (double)g / R->box;
	R->r->grid_side = g;
	if ((rc = sm__pl_stage_begin(R, SM_STAGE_BUILD_INDEX, -1, R->n)) != 0 ||
	    (rc = sm__pl_palloc_filled(R, &R->cstart, SM_ARRAY_INDEX_CELL_START, 8 * (m + 1))) != 0 ||
	    (rc = sm__pl_palloc_filled(R, &R->cfill, SM_ARRAY_INDEX_CELL_FILL, 8 * m)) != 0)
		return rc;
	/* Only cells some sphere scan can visit are sorted; index_cell_fill holds the cover flags
	 * (a bit per grid cell: m / 8 + 1 bytes of its 8m). Near rows (in grid cells some sphere
	 * scan visits) into their x slabs (sm__pl_split_near, its classification in stripes on the
	 * worker threads from 131,072 cells), the slab boundaries into bound[0..g]; then every
	 * entry of index_cell_start is written by the slabs' sorts, and the last here. */
	mark_cover(R, (unsigned char *)R->cfill);
	R->grid.cover = (const unsigned char *)R->cfill;
	way = sm__pl_near_blocks(&R->grid, R->coords, R->temp, R->pt == SM_DTYPE_F64, 0, R->n,
				 R->cfill + cover_words, m - cover_words, R->cstart, 8 * (m + 1),
				 bound, &nnear, &nb);
	if (way == SM__PL_BLOCKS_DECLINED) {
		sm__pl_split_near(&R->grid, R->coords, R->temp, R->pt == SM_DTYPE_F64, bound, 0,
				  R->n);
		nnear = bound[g] - bound[0];
	} else if (way == SM__PL_BLOCKS_IN_PLACE) {
		sm__pl_slabs_in_place(&R->grid, R->coords, R->temp, R->pt == SM_DTYPE_F64, bound,
				      0, nnear);
	}
	R->r->indexed_cells = nnear;
	if ((rc = sm__pl_cancelled(R)) != 0)
		return rc;
	parts = nnear >= 65536 ? sm__pl_threads() : 1;
	memset(&J, 0, sizeof(J));
	J.gr = &R->grid;
	J.x = R->coords;
	J.t = R->temp;
	J.f64 = R->pt == SM_DTYPE_F64;
	J.start = R->cstart;
	J.bound = bound;
	/* Slabs sorted from their blocks, or made behind the compacted rows (bound[0] > 0) and
	 * sorted back, out of place: index_cell_fill's words behind the cover flags (and the
	 * blocks' list) hold the parts' counters, then each part's slab keys. */
	used = cover_words + (way == SM__PL_BLOCKS_LISTED ? nb.words : 0);
	if (way == SM__PL_BLOCKS_LISTED || (bound[0] > 0 && (m - used) / (g * g) >= parts)) {
		if (way == SM__PL_BLOCKS_LISTED)
			J.blocks = &nb;
		else
			J.gap = bound[0];
		J.pos = R->cfill + used;
		J.keys = (uint32_t *)(void *)(J.pos + parts * g * g);
		J.nkeys = (m - used - parts * g * g) * 2 / parts;
	}
	atomic_init(&J.next, 0);
	sm__pl_parallel(slab_part, &J, parts);
	R->cstart[m] = bound[g] - J.gap;
	sm__pl_pfree(R, &R->cfill);
	sm__pl_progress(R, SM_STAGE_BUILD_INDEX, -1, R->n, R->n);
	sm__pl_stage_end(R);
	return 0;
}
