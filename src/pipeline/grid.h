/*
 * The serial run's spatial index (src/pipeline/ only): a uniform grid of g^3 cells over the box
 * (g = sm_model_grid_side(N)). build_index.c builds it: the cells near the selected halos are
 * put into grid-cell order within Coordinates and temperature (build_index_sort.c's block
 * distribution, build_index_compact.c's compaction, build_index_slab.c's counting pass; the
 * grid indices of many rows from grid_bins.c); select_sphere.c scans the grid cells a sphere
 * covers. Both find a coordinate's grid cell and a sphere's grid cells with the functions here,
 * so they agree cell for cell.
 */
#ifndef SNAPMEM_PIPELINE_GRID_H
#define SNAPMEM_PIPELINE_GRID_H

#include <stdint.h>

#include "run.h"

/* Grid index along one axis of a coordinate in [-box/2, 3 box/2) (load_positions checks that). */
static inline uint64_t sm__pl_axis_bin(const struct grid *gr, double x)
{
	double t = x * gr->inv_w;
	int64_t i;

	if (t < 0)
		t += gr->gd;
	else if (t >= gr->gd)
		t -= gr->gd;
	i = (int64_t)t;
	return i < 0 ? 0 : (uint64_t)i >= gr->g ? gr->g - 1 : (uint64_t)i;
}

/* The grid cell (x g + y) g + z of a cell's coordinates, in the positions' own type. */
static inline uint64_t sm__pl_key_f32(const struct grid *gr, const float *x)
{
	return (sm__pl_axis_bin(gr, x[0]) * gr->g + sm__pl_axis_bin(gr, x[1])) * gr->g +
	       sm__pl_axis_bin(gr, x[2]);
}

static inline uint64_t sm__pl_key_f64(const struct grid *gr, const double *x)
{
	return (sm__pl_axis_bin(gr, x[0]) * gr->g + sm__pl_axis_bin(gr, x[1])) * gr->g +
	       sm__pl_axis_bin(gr, x[2]);
}

/* 1 when grid cell `key` is flagged in gr->cover (one bit per grid cell, so that the near/far
 * split's random lookups stay in the L1/L2 cache: 37 KiB at 1e7 cells, against 300 KiB a byte). */
static inline int sm__pl_covered(const struct grid *gr, uint64_t key)
{
	return (gr->cover[key >> 3] >> (key & 7)) & 1;
}

/* sm__pl_axis_bin of coordinate k of the row at r (3 values, double when f64, else float). */
static inline uint64_t sm__pl_row_bin(const struct grid *gr, const void *r, int f64, int k)
{
	return sm__pl_axis_bin(gr, f64 ? ((const double *)r)[k] : ((const float *)r)[k]);
}

/* The near split's bucket of a row whose grid indices are bx, by, bz: its x slab when its grid
 * cell is flagged in gr->cover (near), g when not (far). */
static inline uint64_t sm__pl_near_bucket(const struct grid *gr, uint64_t bx, uint64_t by,
					  uint64_t bz)
{
	return sm__pl_covered(gr, (bx * gr->g + by) * gr->g + bz) ? bx : gr->g;
}

/* Grid indices of rows [0, n) of x (3 coordinates a row, double when f64, else float), each
 * sm__pl_axis_bin's: along `axis` into bx (axis 0, 1 or 2), or all three into bx, by, bz (axis
 * 3). Four or eight rows an instruction where the CPU has AVX2 and sm__pl_bins_avx2 is 1 (the
 * default; 0 is the tests' switch to the one-row arithmetic; grid_bins.c). */
void sm__pl_grid_bins(const struct grid *gr, const void *x, int f64, int axis, uint64_t n,
		      uint32_t *bx, uint32_t *by, uint32_t *bz);
extern int sm__pl_bins_avx2;
/* 1 (the default): the eight-row loops find the grid indices in float arithmetic where that is
 * exact (grid_bins.c's fbins8_f32), else in double; 0: always in double (the tests'
 * switch). Either way the indices are sm__pl_axis_bin's. */
extern int sm__pl_bins_float;

/* The grid cells y g + z of rows [0, n) within their x slab (build_index_slab.c's keys): float32
 * rows eight an instruction from one load of their coordinates where the CPU has AVX2 and
 * sm__pl_bins_avx2 is 1, the others through sm__pl_grid_bins axis by axis; the same numbers. */
void sm__pl_slab_keys(const struct grid *gr, const void *x, int f64, uint64_t n, uint32_t *key);

/* The near split's buckets of rows [0, n) (sm__pl_near_bucket's): float32 rows eight an
 * instruction where the CPU has AVX2 and sm__pl_bins_avx2 is 1 (the cover read four bytes at a
 * time: at least 3 bytes past its last flag byte must be readable), float64 rows' grid indices
 * four at a time. */
void sm__pl_near_buckets(const struct grid *gr, const void *x, int f64, uint64_t n, uint16_t *bk);

/* Ranges of grid indices along one axis covering [c - r, c + r] (periodic, each index once). */
struct axis_range {
	uint64_t a[2], b[2];  /* up to two runs [a, b] */
	int n;
};

/* The grid indices along one axis that a sphere of radius r at c touches, padded for rounding
 * (build_index.c): the cover build_index sorts and the sphere scans visit. */
void sm__pl_axis_cover(const struct grid *gr, double c, double r, struct axis_range *ar);

/*
 * One in-place distribution pass of build_index's sort (build_index_sort.c): the rows [lo, lo + n)
 * of x (3 coordinates per cell, float or double as f64 says) and t go to the g buckets of their
 * grid index along `axis`, bucket c ending up in [start[c stride], start[(c+1) stride]); with
 * bounds != NULL the bucket sizes are counted and the boundaries written to bounds[c stride]
 * (and used) instead of start, a single row's by its own bucket.
 */
void sm__pl_distribute(const struct grid *gr, void *x, float *t, int f64, const uint64_t *start,
		       uint64_t *bounds, uint64_t lo, uint64_t n, uint64_t stride, int axis);

/* The same pass with g + 1 buckets: rows whose grid cell is flagged in gr->cover (near) into the
 * g buckets of their x slab, the others (far) into the last; bounds[0..g+1] receive the
 * buckets' boundaries (bounds[g]: where the far rows begin, bounds[g + 1] = lo + n). From
 * 131,072 rows, when fewer than three fifths of every 1024th row are near, the far rows are not
 * kept: [lo, bounds[0]) and [bounds[g], bounds[g + 1]) then hold what the compaction of the near
 * rows left there, bounds[0] being lo, or lo + the number of near rows when the far rows were at
 * least as many (their slabs made behind the compacted rows; build_index_sort.c). */
void sm__pl_split_near(const struct grid *gr, void *x, float *t, int f64, uint64_t *bounds,
		       uint64_t lo, uint64_t n);

/* The rows [a, b) of one x slab of x and t into grid-cell order, out of place: into rows
 * [a - gap, b - gap), whose contents are not kept (build_index_slab.c). st[y g + z] (y, z < g)
 * receives where grid cell (y, z) of the slab begins there; pos: g^2 words of scratch; keys:
 * room for nkeys grid cells, which spares finding them twice when the slab has at most nkeys
 * rows. The rows of a grid cell keep their order. */
void sm__pl_sort_slab_apart(const struct grid *gr, void *x, float *t, int f64, uint64_t *st,
			    uint64_t *pos, uint32_t *keys, uint64_t nkeys, uint64_t a, uint64_t b,
			    uint64_t gap);

/* build_index_compact.c: the near rows of [lo, lo + n) compacted to [lo, lo + *nnear) in their
 * order, the far rows not kept; then, when the far rows were at least as many, the near rows
 * into their x slabs in the far rows' space right behind them, bounds[c] (c = 0..g) where slab c
 * begins there, and 1 is returned; else 0 (the caller makes the slabs). */
int sm__pl_compact_near(const struct grid *gr, void *x, float *t, int f64, uint64_t *bounds,
			uint64_t lo, uint64_t n, uint64_t *nnear);

/* 1 when fewer than num / den of every 1024th row of [lo, lo + n) are near (build_index_sort.c). */
int sm__pl_near_share_below(const struct grid *gr, const void *x, int f64, uint64_t lo,
			    uint64_t n, unsigned num, unsigned den);

/* Rows [lo, lo + n) (all near) into their x slabs in place, bounds[c] (c = 0..g) where slab c
 * begins (build_index_sort.c: the near split's stripes, or one distribution pass). */
void sm__pl_slabs_in_place(const struct grid *gr, void *x, float *t, int f64, uint64_t *bounds,
			   uint64_t lo, uint64_t n);

/* From this many rows the near split and the blocks classify in stripes on the worker threads. */
#define SM__PL_STRIPES_MIN_ROWS 131072u

/* A block of near rows (build_index_compact.c's logs and list, build_index_slab.c's sort): one
 * word, its first row << SM__PL_BLOCK_START | its rows - 1 (at most 2^14 rows; bits 14-23 hold
 * the slab in the logs). */
#define SM__PL_BLOCK_START 24
#define SM__PL_BLOCK_ROWS_MASK ((UINT64_C(1) << 14) - 1)

static inline uint64_t sm__pl_block_at(uint64_t e)
{
	return e >> SM__PL_BLOCK_START;
}

static inline uint64_t sm__pl_block_rows(uint64_t e)
{
	return (e & SM__PL_BLOCK_ROWS_MASK) + 1;
}

/* sm__pl_near_blocks' outcomes. */
enum sm__pl_blocks_way {
	SM__PL_BLOCKS_DECLINED = 0, /* the way does not apply: nothing moved */
	SM__PL_BLOCKS_LISTED = 1,   /* the slabs' blocks listed, the slabs' places in bounds */
	SM__PL_BLOCKS_IN_PLACE = 2  /* more rows near than far: the near rows at the front */
};

/* The near rows in blocks (build_index_compact.c, sm__pl_near_blocks): list[first[c],
 * first[c + 1]) are slab c's blocks in the rows' order, one word each (sm__pl_block_at and
 * sm__pl_block_rows read it). */
struct near_blocks {
	const uint64_t *list;
	uint64_t first[SM_MODEL_GRID_MAX_SIDE + 1];
	uint64_t words; /* the scratch words the list holds, from the scratch's start */
};

/* 1 (the default): build_index takes sm__pl_near_blocks' way where it applies; 0: the near split
 * alone (the tests' switch; the index is the same row for row). */
extern int sm__pl_index_blocks;

/*
 * build_index_compact.c: when [lo, lo + n) has at least SM__PL_STRIPES_MIN_ROWS rows and fewer
 * than half of every 1024th row are near, the near rows are gathered, on the worker threads in 8
 * stripes fixed by n, into blocks of one x slab each (buffered in buf, buf_bytes, whose contents
 * are not kept; the logs and the list in scratch, words), each stripe's blocks at its front, the
 * far rows not kept. Returns:
 *   - SM__PL_BLOCKS_DECLINED when the way does not apply (nothing moved);
 *   - SM__PL_BLOCKS_LISTED with the blocks listed slab by slab in nb (nb->words of scratch), all
 *     below lo + n - *nnear (the blocks that lay beyond moved into the far rows' gaps, or, when
 *     they did not fit there, every stripe's blocks put one after the other from lo), and
 *     bounds[c] (c = 0..g) the place of slab c's rows in [lo + n - *nnear, lo + n);
 *   - SM__PL_BLOCKS_IN_PLACE when more rows were near than far: the near rows are
 *     [lo, lo + *nnear), in blocks, and the caller makes the slabs in place.
 */
enum sm__pl_blocks_way sm__pl_near_blocks(const struct grid *gr, void *x, float *t, int f64,
					  uint64_t lo, uint64_t n, uint64_t *scratch, uint64_t words,
					  void *buf, uint64_t buf_bytes, uint64_t *bounds,
					  uint64_t *nnear, struct near_blocks *nb);

/* One x slab's rows, the blocks list[0, nlist) (sm__pl_near_blocks' entries, rows in all), into
 * grid-cell order at [dst, dst + rows) (apart from the blocks): st, pos, keys and nkeys as
 * sm__pl_sort_slab_apart's. The rows of a grid cell keep the blocks' order (build_index_slab.c). */
void sm__pl_sort_slab_blocks(const struct grid *gr, void *x, float *t, int f64, uint64_t *st,
			     uint64_t *pos, uint32_t *keys, uint64_t nkeys, const uint64_t *list,
			     uint64_t nlist, uint64_t rows, uint64_t dst);

#endif
