/*
 * build_index's near split (src/pipeline/build_index_sort.c, sm__pl_split_near) called directly,
 * on rows whose buckets are known: below 131,072 rows it is one distribution pass on the calling
 * thread, from there the rows are classified in 8 stripes on the worker threads, the stripes'
 * full blocks gathered at the front by swapping whole blocks, and the pass goes on from there.
 * Checks, for float32 and float64 coordinates, both ways: the boundaries are the buckets' counts,
 * every row lies in its bucket's range (near rows in their x slab, far rows behind), and the rows
 * are the same rows (coordinates and temperature moved together, none lost or doubled). The
 * stripes' rows are laid out so that each stripe leaves nearly a whole buffer of partial rows in
 * every bucket: the later stripes then have fewer full blocks than the gap of partial blocks in
 * front of them, the case where all of a stripe's blocks move into the gap. Those rows are
 * nearly all near (the dense way); rows a tenth, 40 % or 55 % of which are near take the
 * compacting way (near rows compacted to the front, then into their slabs: behind them where the
 * far rows, not kept, were as many, else in place): checked for the boundaries and the near rows
 * alone.
 *
 * A slab sorted back out of place (build_index_slab.c) is checked the same way, cell by cell.
 * The near rows gathered in blocks of one x slab (build_index_compact.c, sm__pl_near_blocks) and
 * each slab sorted from its blocks give the same index row for row as the near split and the
 * slabs sorted back (10 % and 45 % near, float32 and float64); the way declines, moving nothing,
 * below 131,072 rows, from half the sampled rows near, without room for its buffers or its list,
 * and with its switch off; when the sample misleads (more rows near than far), the near rows are
 * at the front, each once, and the slabs made in place from them hold their rows.
 *
 * Also the grid indices four rows at a time (sm__pl_grid_bins with AVX2, where the CPU has it),
 * a slab sort's grid cells eight rows at a time (sm__pl_slab_keys) and the near split's buckets
 * eight rows at a time (sm__pl_near_buckets), in float arithmetic
 * where it is exact and in double, against the one-row arithmetic (sm__pl_axis_bin and the cover
 * bit), on random and edge coordinates, and every float32 around each grid-cell boundary.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline/grid.h"

#define G 64u               /* grid side: 64 slabs + the far bucket */
#define SCRATCH 131072u     /* build_index_sort.c's DIST_SCRATCH_BYTES */

static unsigned char cover[G * G * G / 8 + 4]; /* + 3: sm__pl_near_buckets reads 4 bytes */

/* The grid over a box of side G (grid width 1): grid cells with y = 0 are covered (near), the
 * others not. */
static struct grid make_grid(void)
{
	struct grid gr;
	uint64_t x, z;

	memset(cover, 0, sizeof(cover));
	for (x = 0; x < G; x++)
		for (z = 0; z < G; z++) {
			uint64_t key = (x * G + 0) * G + z;

			cover[key >> 3] |= (unsigned char)(1u << (key & 7));
		}
	gr.g = G;
	gr.gd = (double)G;
	gr.box = (double)G;
	gr.inv_w = 1.0;
	gr.cover = cover;
	return gr;
}

/* Row i of bucket b (b < G: near, in slab b; G: far), its z from i so that rows differ. */
static void place(double *p, uint64_t b, uint64_t i)
{
	p[0] = b < G ? (double)b + 0.5 : (double)(i % G) + 0.25;
	p[1] = b < G ? 0.5 : 1.5 + (double)(i % (G - 2));
	p[2] = (double)(i % G) + 0.75;
}

/* Row i of x (3 coordinates, double when f64, else float) as doubles. */
static void row_at(const unsigned char *x, uint64_t i, int f64, double p[3])
{
	if (f64) {
		memcpy(p, x + 3 * sizeof(double) * i, 3 * sizeof(double));
	} else {
		float f[3];

		memcpy(f, x + 3 * sizeof(float) * i, sizeof(f));
		p[0] = f[0];
		p[1] = f[1];
		p[2] = f[2];
	}
}

/* The buckets of n rows: row i's bucket in bkt[i]. Each stripe of `stripe` rows (the last the
 * rest) first takes B - 1 rows of every bucket, then whole blocks of bucket (i / B) % (G + 1), so
 * that each stripe ends with nearly B - 1 partial rows in every bucket. */
static void buckets(uint64_t *bkt, uint64_t n, uint64_t stripe, uint64_t B)
{
	uint64_t i;

	for (i = 0; i < n; i++) {
		uint64_t j = stripe > 0 ? i % stripe : i;

		bkt[i] = j < (G + 1) * (B - 1) ? j / (B - 1) : ((j / B) * 7) % (G + 1);
	}
}

static uint64_t bucket_of_row(const double *p)
{
	uint64_t x = (uint64_t)p[0], y = (uint64_t)p[1];

	return y == 0 ? x : G;
}

/* Rows [0, n) of bucket bkt[i] each (place), the row's identity in its temperature (exact below
 * 2^24), through sm__pl_split_near; then the boundaries are the buckets' counts and every row of
 * buckets 0..last lies in its bucket's range, once, as placed (coordinates and temperature moved
 * together). last: G (every bucket: the far rows kept) or G - 1 (the near rows alone). Returns
 * where the near rows begin (bounds[0]). */
static uint64_t split_and_check(uint64_t n, int f64, const uint64_t *bkt, uint64_t last)
{
	const struct grid gr = make_grid();
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	uint64_t count[G + 1] = {0}, bounds[G + 2], i, c;
	unsigned char *x = calloc(n, xs), *seen = calloc(n, 1);
	float *t = calloc(n, sizeof(float));

	assert_non_null(x);
	assert_non_null(seen);
	assert_non_null(t);
	for (i = 0; i < n; i++) {
		double p[3];

		place(p, bkt[i], i);
		if (f64) {
			memcpy(x + xs * i, p, xs);
		} else {
			float q[3] = {(float)p[0], (float)p[1], (float)p[2]};

			memcpy(x + xs * i, q, xs);
		}
		t[i] = (float)i;
		count[bkt[i]]++;
	}
	sm__pl_split_near(&gr, x, t, f64, bounds, 0, n);
	/* compacting, the near rows lie at the front or, where the far rows were as many, right
	 * behind the place they were compacted to */
	assert_true(bounds[0] == 0 || (last < G && bounds[0] == n - count[G] && 2 * bounds[0] <= n));
	for (c = 0; c <= last; c++)
		assert_int_equal(bounds[c + 1] - bounds[c], count[c]);
	assert_true(bounds[G] <= n);
	assert_int_equal(bounds[G + 1], n);
	for (c = 0; c <= last; c++)
		for (i = bounds[c]; i < bounds[c + 1]; i++) {
			double p[3], q[3];
			uint64_t id = (uint64_t)t[i];

			row_at(x, i, f64, p);
			assert_int_equal(bucket_of_row(p), c);
			assert_true(id < n && (float)id == t[i] && bkt[id] == c);
			assert_int_equal(seen[id], 0);
			seen[id] = 1;
			place(q, bkt[id], id);
			if (!f64) {
				q[0] = (float)q[0];
				q[1] = (float)q[1];
				q[2] = (float)q[2];
			}
			assert_true(p[0] == q[0] && p[1] == q[1] && p[2] == q[2]);
		}
	free(x);
	free(seen);
	free(t);
	return bounds[0];
}

static void check_split(uint64_t n, int f64)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const uint64_t B = SCRATCH / ((G + 1 + 3) * (xs + sizeof(float)));
	uint64_t *bkt = calloc(n, sizeof(*bkt));

	assert_non_null(bkt);
	/* stripes as the split makes them (n s / 8 rounded down to a block) */
	buckets(bkt, n, n / 8 / B * B, B);
	(void)split_and_check(n, f64, bkt, G);
	free(bkt);
}

static void test_split_one_pass(void **state)
{
	(void)state;
	check_split(100000, 0);
	check_split(100000, 1);
	check_split(5, 0);
}

static void test_split_stripes(void **state)
{
	(void)state;
	check_split(131072, 0);
	check_split(131072, 1);
	check_split(1000003, 0);
	check_split(1000003, 1);
}

/* The compacting way: pct percent of the rows near (spread without a period, so that the way's
 * sampling of every 1024th row sees as many), in slab i % G, the others far; n rows. */
static int some_near(uint64_t i, unsigned pct)
{
	return (uint32_t)(i * 2654435761u) % 100u < pct;
}

static void check_split_sparse(uint64_t n, int f64, unsigned pct)
{
	uint64_t *bkt = calloc(n, sizeof(*bkt)), i;

	assert_non_null(bkt);
	for (i = 0; i < n; i++)
		bkt[i] = some_near(i, pct) ? i % G : G;
	/* behind the compacted rows exactly when the far rows are as many */
	assert_int_equal(split_and_check(n, f64, bkt, G - 1) > 0, pct < 50);
	free(bkt);
}

static void test_split_sparse(void **state)
{
	(void)state;
	check_split_sparse(131072, 0, 10);
	check_split_sparse(1000003, 0, 10);
	check_split_sparse(1000003, 1, 10);
	check_split_sparse(1000003, 0, 40);
	check_split_sparse(1000003, 1, 40);
	check_split_sparse(1000003, 0, 55); /* more near rows than far: their slabs in place */
	check_split_sparse(1000003, 1, 55);
}

/* A slab sorted back out of place (sm__pl_sort_slab_apart, build_index_slab.c): n rows of slab 5
 * of the G grid at [a + gap, a + gap + n), random y and z (some grid cells empty, others holding
 * many rows), the row's identity in its temperature; then every grid cell's range [st[c],
 * st[c + 1]) (the last ending at a + n) starts at a, holds rows of that cell only, in the order
 * they had (the identities ascending), and every row is there once, coordinates and temperature
 * together; float32 and float64, an empty slab too; with room for nkeys keys, so that the keys
 * are kept between the passes when the slab has at most nkeys rows and found again otherwise. */
static void check_slab_apart(uint64_t n, int f64, unsigned seed, uint64_t nkeys)
{
	const struct grid gr = make_grid();
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const uint64_t a = 1000, gap = n + 17, total = a + gap + n;
	unsigned char *x = calloc(total, xs), *seen = calloc(n + 1, 1);
	float *t = calloc(total, sizeof(float));
	uint64_t *st = calloc(G * G, sizeof(uint64_t)), *pos = calloc(G * G, sizeof(uint64_t));
	uint32_t *keys = calloc(nkeys + 1, sizeof(uint32_t));
	uint64_t i, c;

	assert_non_null(keys);
	assert_non_null(x);
	assert_non_null(seen);
	assert_non_null(t);
	assert_non_null(st);
	assert_non_null(pos);
	for (i = 0; i < n; i++) {
		double p[3];

		seed = seed * 1103515245u + 12345u;
		p[0] = 5.5;
		p[1] = (double)((seed >> 8) % 7 * 9 % G) + 0.25; /* 7 rows of y only */
		p[2] = (double)((seed >> 16) % G) + 0.75;
		if (f64) {
			memcpy(x + xs * (a + gap + i), p, xs);
		} else {
			const float q[3] = {(float)p[0], (float)p[1], (float)p[2]};

			memcpy(x + xs * (a + gap + i), q, xs);
		}
		t[a + gap + i] = (float)i;
	}
	sm__pl_sort_slab_apart(&gr, x, t, f64, st, pos, keys, nkeys, a + gap, a + gap + n, gap);
	assert_int_equal(st[0], a);
	for (c = 0; c < G * G; c++) {
		const uint64_t end = c + 1 < G * G ? st[c + 1] : a + n;
		int64_t last = -1;

		assert_true(st[c] <= end && end <= a + n);
		for (i = st[c]; i < end; i++) {
			double p[3];
			const uint64_t id = (uint64_t)t[i];

			row_at(x, i, f64, p);
			assert_true((uint64_t)p[1] * G + (uint64_t)p[2] == c && p[0] == 5.5);
			assert_true(id < n && (float)id == t[i] && (int64_t)id > last);
			assert_int_equal(seen[id], 0);
			seen[id] = 1;
			last = (int64_t)id;
		}
	}
	for (i = 0; i < n; i++)
		assert_int_equal(seen[i], 1);
	free(x);
	free(seen);
	free(t);
	free(st);
	free(pos);
	free(keys);
}

static void test_slab_apart(void **state)
{
	(void)state;
	check_slab_apart(0, 0, 1u, 0);
	check_slab_apart(1, 1, 2u, 0);
	check_slab_apart(1, 0, 2u, 1);
	check_slab_apart(70001, 0, 3u, 0);
	check_slab_apart(70001, 1, 4u, 0);
	check_slab_apart(70001, 0, 5u, 70001);
	check_slab_apart(70001, 1, 6u, 100000);
	check_slab_apart(70001, 0, 7u, 70000);
}

/* Rows [0, n) of bucket bkt[i] each (place) into x and t, the row's identity in its temperature. */
static void make_rows(unsigned char *x, float *t, uint64_t n, int f64, const uint64_t *bkt)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	uint64_t i;

	for (i = 0; i < n; i++) {
		double p[3];

		place(p, bkt[i], i);
		if (f64) {
			memcpy(x + xs * i, p, xs);
		} else {
			const float q[3] = {(float)p[0], (float)p[1], (float)p[2]};

			memcpy(x + xs * i, q, xs);
		}
		t[i] = (float)i;
	}
}

/* index_cell_fill's and index_cell_start's room at grid side G (build_index.c's): the scratch
 * behind the cover flags, the buffers. */
#define BL_WORDS ((uint64_t)G * G * G - ((uint64_t)G * G * G / 8 + 1 + 3 + 7) / 8)
#define BL_BUF_BYTES (8 * ((uint64_t)G * G * G + 1))

/* The near rows in blocks (sm__pl_near_blocks), each slab then sorted from its blocks
 * (sm__pl_sort_slab_blocks), against the other way on a copy of the rows: the near split
 * (sm__pl_split_near) and each slab sorted back out of place (sm__pl_sort_slab_apart). The index
 * is the same row for row and cell for cell, in the last nnear rows instead of the first;
 * pct percent of n rows near (some_near), in slab i % G; or (pct 0, n = 2^20) as many near rows
 * as far, none of them read by the way's sample: the odd rows, but in the first stripe the rows
 * not divisible by 4 (row 1 excepted) and in the second those of remainder 1, and row n / 4 + 2,
 * in slab i % 61. The gaps below the last nnear rows then hold exactly as many rows as the blocks
 * beyond, the first one row more than a whole number of blocks: every stripe's blocks go to the
 * front instead. */
static void check_blocks_same(uint64_t n, int f64, unsigned pct)
{
	const struct grid gr = make_grid();
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	uint64_t *bkt = calloc(n, sizeof(*bkt)), *scratch = calloc(BL_WORDS, 8);
	unsigned char *x = calloc(n, xs), *x2 = calloc(n, xs), *buf = malloc(BL_BUF_BYTES);
	float *t = calloc(n, sizeof(float)), *t2 = calloc(n, sizeof(float));
	uint64_t *st = calloc((uint64_t)G * G * G, 8), *st2 = calloc((uint64_t)G * G * G, 8);
	uint64_t *pos = calloc((uint64_t)G * G, 8);
	uint64_t bounds[G + 2], b2[G + 2], nnear = 0, i, c, k, near = 0;
	static struct near_blocks nb;

	assert_true(bkt && scratch && x && x2 && buf && t && t2 && st && st2 && pos);
	for (i = 0; i < n; i++) {
		if (pct > 0)
			bkt[i] = some_near(i, pct) ? i % G : G;
		else if (i < n / 8)
			bkt[i] = i % 4 != 0 && i != 1 ? i % 61 : G;
		else if (i < n / 4)
			bkt[i] = i % 4 == 1 ? i % 61 : G;
		else
			bkt[i] = i % 2 == 1 || i == n / 4 + 2 ? i % 61 : G;
		near += bkt[i] < G;
	}
	make_rows(x, t, n, f64, bkt);
	memcpy(x2, x, n * xs);
	memcpy(t2, t, n * sizeof(float));
	assert_int_equal(sm__pl_near_blocks(&gr, x, t, f64, 0, n, scratch, BL_WORDS, buf,
					    BL_BUF_BYTES, bounds, &nnear, &nb),
			 SM__PL_BLOCKS_LISTED);
	assert_int_equal(nnear, near);
	assert_int_equal(bounds[0], n - nnear); /* the slabs in the last nnear rows */
	assert_int_equal(bounds[G], n);
	assert_true(nb.words > 0 && nb.words <= BL_WORDS / 2);
	for (c = 0; c < G; c++) {
		uint64_t rows = 0, e;

		/* each block holds rows of its slab only, in the rows' order, within the near rows */
		for (e = nb.first[c]; e < nb.first[c + 1]; e++) {
			const uint64_t a = sm__pl_block_at(nb.list[e]), m = sm__pl_block_rows(nb.list[e]);

			assert_true(a + m <= (pct > 0 ? n - nnear : nnear));
			for (k = a; k < a + m; k++) {
				double p[3];

				row_at(x, k, f64, p);
				assert_int_equal(bucket_of_row(p), c);
				assert_true(k == a || t[k] > t[k - 1]);
			}
			rows += m;
		}
		assert_int_equal(rows, bounds[c + 1] - bounds[c]);
		/* the scratch behind the list: the sort's counters and keys, as build_index.c */
		sm__pl_sort_slab_blocks(&gr, x, t, f64, st + c * G * G, scratch + nb.words,
					(uint32_t *)(void *)(scratch + nb.words + G * G),
					(BL_WORDS - nb.words - G * G) * 2, nb.list + nb.first[c],
					nb.first[c + 1] - nb.first[c], rows, bounds[c]);
	}
	/* the other way */
	sm__pl_split_near(&gr, x2, t2, f64, b2, 0, n);
	assert_int_equal(b2[0], nnear); /* the slabs made behind the compacted rows */
	for (c = 0; c < G; c++)
		sm__pl_sort_slab_apart(&gr, x2, t2, f64, st2 + c * G * G, pos, NULL, 0, b2[c],
				       b2[c + 1], b2[0]);
	for (k = 0; k < (uint64_t)G * G * G; k++)
		assert_int_equal(st[k] - (n - nnear), st2[k]);
	assert_memory_equal(x + xs * (n - nnear), x2, xs * nnear);
	assert_memory_equal(t + (n - nnear), t2, sizeof(float) * nnear);
	free(bkt);
	free(scratch);
	free(x);
	free(x2);
	free(buf);
	free(t);
	free(t2);
	free(st);
	free(st2);
	free(pos);
}

static void test_blocks_same_index(void **state)
{
	(void)state;
	check_blocks_same(131072, 0, 10);
	check_blocks_same(1000003, 0, 10);
	check_blocks_same(1000003, 1, 10);
	check_blocks_same(1000003, 0, 45);
	check_blocks_same(1000003, 1, 45);
	check_blocks_same(1 << 20, 0, 0);
	check_blocks_same(1 << 20, 1, 0);
}

/* Where the way does not apply, nothing moves and 0 is returned: fewer than 131,072 rows, half
 * of every 1024th row near or more, buffers or scratch too small for blocks, the switch off. */
static void test_blocks_declined(void **state)
{
	const struct grid gr = make_grid();
	const uint64_t n = 300000;
	uint64_t *bkt = calloc(n, sizeof(*bkt)), *scratch = calloc(BL_WORDS, 8);
	unsigned char *x = calloc(n, 3 * sizeof(float)), *x0 = calloc(n, 3 * sizeof(float));
	unsigned char *buf = malloc(BL_BUF_BYTES);
	float *t = calloc(n, sizeof(float)), *t0 = calloc(n, sizeof(float));
	uint64_t bounds[G + 2], nnear = 7, i;
	static struct near_blocks nb;

	(void)state;
	assert_true(bkt && scratch && x && x0 && buf && t && t0);
	for (i = 0; i < n; i++)
		bkt[i] = some_near(i, 55) ? i % G : G;
	make_rows(x, t, n, 0, bkt);
	memcpy(x0, x, n * 3 * sizeof(float));
	memcpy(t0, t, n * sizeof(float));
	assert_int_equal(sm__pl_near_blocks(&gr, x, t, 0, 0, n, scratch, BL_WORDS, buf, BL_BUF_BYTES,
					    bounds, &nnear, &nb),
			 SM__PL_BLOCKS_DECLINED); /* 55 % near */
	assert_int_equal(nnear, 0);
	for (i = 0; i < n; i++)
		bkt[i] = some_near(i, 10) ? i % G : G;
	make_rows(x, t, n, 0, bkt);
	memcpy(x0, x, n * 3 * sizeof(float));
	memcpy(t0, t, n * sizeof(float));
	assert_int_equal(sm__pl_near_blocks(&gr, x, t, 0, 0, 131071, scratch, BL_WORDS, buf,
					    BL_BUF_BYTES, bounds, &nnear, &nb),
			 SM__PL_BLOCKS_DECLINED);
	assert_int_equal(sm__pl_near_blocks(&gr, x, t, 0, 0, n, scratch, BL_WORDS, buf,
					    (uint64_t)G * 64 * 16 - 1, bounds, &nnear, &nb),
			 SM__PL_BLOCKS_DECLINED); /* no room for one part's buffers of 64 rows */
	assert_int_equal(sm__pl_near_blocks(&gr, x, t, 0, 0, n, scratch, 8 * G * G, buf,
					    BL_BUF_BYTES, bounds, &nnear, &nb),
			 SM__PL_BLOCKS_DECLINED); /* no room for the slab sorts' counters beside the list */
	sm__pl_index_blocks = 0;
	assert_int_equal(sm__pl_near_blocks(&gr, x, t, 0, 0, n, scratch, BL_WORDS, buf, BL_BUF_BYTES,
					    bounds, &nnear, &nb),
			 SM__PL_BLOCKS_DECLINED);
	sm__pl_index_blocks = 1;
	assert_memory_equal(x, x0, n * 3 * sizeof(float));
	assert_memory_equal(t, t0, n * sizeof(float));
	free(bkt);
	free(scratch);
	free(x);
	free(x0);
	free(buf);
	free(t);
	free(t0);
}

/* Every 1024th row far (the rows the way's sampling reads) and 60 % of the others near: the way
 * is taken, more rows turn out near than far, and 2 is returned with the near rows (each once,
 * coordinates and temperature together) at [0, nnear); the slabs then made in place
 * (sm__pl_slabs_in_place) hold their rows. */
static void check_blocks_overflow(int f64)
{
	const struct grid gr = make_grid();
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const uint64_t n = 500000;
	uint64_t *bkt = calloc(n, sizeof(*bkt)), *scratch = calloc(BL_WORDS, 8);
	unsigned char *x = calloc(n, xs), *seen = calloc(n, 1), *buf = malloc(BL_BUF_BYTES);
	float *t = calloc(n, sizeof(float));
	uint64_t bounds[G + 2], nnear = 0, near = 0, count[G] = {0}, i, c;
	static struct near_blocks nb;

	assert_true(bkt && scratch && x && seen && buf && t);
	for (i = 0; i < n; i++) {
		bkt[i] = i % 1024 != 0 && some_near(i, 60) ? i % G : G;
		if (bkt[i] < G) {
			near++;
			count[bkt[i]]++;
		}
	}
	make_rows(x, t, n, f64, bkt);
	assert_int_equal(sm__pl_near_blocks(&gr, x, t, f64, 0, n, scratch, BL_WORDS, buf,
					    BL_BUF_BYTES, bounds, &nnear, &nb),
			 SM__PL_BLOCKS_IN_PLACE);
	assert_int_equal(nnear, near);
	sm__pl_slabs_in_place(&gr, x, t, f64, bounds, 0, nnear);
	assert_int_equal(bounds[0], 0);
	for (c = 0; c < G; c++) {
		assert_int_equal(bounds[c + 1] - bounds[c], count[c]);
		for (i = bounds[c]; i < bounds[c + 1]; i++) {
			double p[3], q[3];
			const uint64_t id = (uint64_t)t[i];

			row_at(x, i, f64, p);
			assert_int_equal(bucket_of_row(p), c);
			assert_true(id < n && bkt[id] == c && !seen[id]);
			seen[id] = 1;
			place(q, c, id);
			assert_true(p[0] == (f64 ? q[0] : (float)q[0]) &&
				    p[1] == (f64 ? q[1] : (float)q[1]) &&
				    p[2] == (f64 ? q[2] : (float)q[2]));
		}
	}
	free(bkt);
	free(scratch);
	free(x);
	free(seen);
	free(buf);
	free(t);
}

static void test_blocks_overflow(void **state)
{
	(void)state;
	check_blocks_overflow(0);
	check_blocks_overflow(1);
}

/* The 67-cell grid over a 75,000 box (1e7 cells' side) with the cover given, and n rows of
 * coordinates for it (double in xd, the same rounded to float in xf): the first `edges` rows from
 * the edges below, the others random within half a box of the box (load_positions' check). The
 * edges: 0, -0, the box and its neighbours, -box/2, 3 box/2, grid-cell boundaries and their
 * neighbours, values just below 0 (whose wrap rounds to g), NaN. */
#define TB_BOX 75000.0
#define TB_G 67u

static struct grid grid67(const unsigned char *cov)
{
	struct grid gr;

	gr.g = TB_G;
	gr.gd = TB_G;
	gr.box = TB_BOX;
	gr.inv_w = TB_G / TB_BOX;
	gr.cover = cov;
	return gr;
}

static void test_rows(double *xd, float *xf, size_t n, size_t edges, unsigned seed)
{
	const double box = TB_BOX, w = TB_BOX / TB_G;
	const double edge[] = {0.0, -0.0, box, nextafter(box, 0), nextafter(box, 2 * box),
			       -box / 2, 1.5 * box, nextafter(1.5 * box, 0), w, 2 * w,
			       nextafter(w, 0), nextafter(66 * w, box), -w, -1e-300, 1e-300,
			       -1e-3, nextafter(-0.0, -1.0), NAN};
	size_t i;

	for (i = 0; i < 3 * n; i++) {
		seed = seed * 1103515245u + 12345u;
		xd[i] = i < 3 * edges ? edge[(i / 3 + i % 3 * 7) % (sizeof(edge) / sizeof(edge[0]))]
				      : -box / 2 + 2 * box * (double)(seed >> 8) / 16777216.0;
		xf[i] = (float)xd[i];
	}
}

/* The eight-row loops' ways: 0 one row at a time, 1 AVX2 in float arithmetic where exact (the
 * default), 2 AVX2 in double arithmetic. */
static const char *const way_name[3] = {"", " AVX2", " AVX2 (double)"};

static void bins_way(int way)
{
	sm__pl_bins_avx2 = way != 0;
	sm__pl_bins_float = way != 2;
}

/* sm__pl_grid_bins with and without AVX2 equal sm__pl_axis_bin for every row, along each axis
 * and for the three at once, float32 and float64: random coordinates within half a box of the box
 * (load_positions' check) and the edges: 0, -0, the box and its neighbours, -box/2, 3 box/2,
 * grid-cell boundaries and their neighbours, values just below 0 (whose wrap rounds to g), NaN. */
static void test_grid_bins_avx2(void **state)
{
	enum { N = 4099 };
	const struct grid gr = grid67(NULL);
	double *xd = malloc(3 * N * sizeof(double));
	float *xf = malloc(3 * N * sizeof(float));
	uint32_t *a[3], *b[3];
	size_t i;
	int f64, axis, k, avx;

	(void)state;
	assert_non_null(xd);
	assert_non_null(xf);
	for (k = 0; k < 3; k++) {
		a[k] = malloc(N * sizeof(uint32_t));
		b[k] = malloc(N * sizeof(uint32_t));
		assert_non_null(a[k]);
		assert_non_null(b[k]);
	}
	test_rows(xd, xf, N, 400, 2024u);
	for (f64 = 0; f64 <= 1; f64++)
		for (avx = 0; avx <= 2; avx++)
			for (axis = 0; axis <= 3; axis++) {
				const void *x = f64 ? (const void *)xd : (const void *)xf;

				bins_way(avx);
				sm__pl_grid_bins(&gr, x, f64, axis, N, a[0], a[1], a[2]);
				bins_way(1);
				for (i = 0; i < N; i++)
					for (k = 0; k < 3; k++) {
						double v = f64 ? xd[3 * i + k] : (double)xf[3 * i + k];
						uint32_t got = axis < 3 ? a[0][i] : a[k][i];

						if (axis < 3 && k != axis)
							continue;
						b[k][i] = (uint32_t)sm__pl_axis_bin(&gr, v);
						if (got != b[k][i])
							fail_msg("%s%s axis %d row %zu (%a): %u against %u",
								 f64 ? "float64" : "float32",
								 way_name[avx], k, i, v, got, b[k][i]);
					}
			}
	for (k = 0; k < 3; k++) {
		free(a[k]);
		free(b[k]);
	}
	free(xd);
	free(xf);
}

/* sm__pl_slab_keys (a slab sort's grid cells y g + z) in each of the ways equals y g + z from
 * sm__pl_axis_bin for every row: float32 and float64, random and edge coordinates as above, row
 * counts that leave tails of every length. */
static void test_slab_keys(void **state)
{
	enum { N = 4099 };
	const struct grid gr = grid67(NULL);
	double *xd = malloc(3 * N * sizeof(double));
	float *xf = malloc(3 * N * sizeof(float));
	uint32_t *key = malloc(N * sizeof(uint32_t));
	size_t i, n;
	int f64, way;

	(void)state;
	assert_non_null(xd);
	assert_non_null(xf);
	assert_non_null(key);
	test_rows(xd, xf, N, 400, 77u);
	for (f64 = 0; f64 <= 1; f64++)
		for (way = 0; way <= 2; way++)
			for (n = N - 8; n <= N; n++) {
				const void *x = f64 ? (const void *)xd : (const void *)xf;

				bins_way(way);
				sm__pl_slab_keys(&gr, x, f64, n, key);
				bins_way(1);
				for (i = 0; i < n; i++) {
					const double y = f64 ? xd[3 * i + 1] : (double)xf[3 * i + 1];
					const double z = f64 ? xd[3 * i + 2] : (double)xf[3 * i + 2];
					const uint32_t want =
						(uint32_t)(sm__pl_axis_bin(&gr, y) * TB_G +
							   sm__pl_axis_bin(&gr, z));

					if (key[i] != want)
						fail_msg("%s%s row %zu of %zu (%a, %a): key %u against %u",
							 f64 ? "float64" : "float32", way_name[way], i, n,
							 y, z, key[i], want);
				}
			}
	free(xd);
	free(xf);
	free(key);
}

/* sm__pl_near_buckets with and without AVX2 equals the bucket from sm__pl_axis_bin and the cover
 * bit for every row (float32 and float64; random and edge coordinates as above; a random cover
 * of about half the grid cells; a row count that leaves a tail). */
static void test_near_buckets_avx2(void **state)
{
	enum { N = 4099 };
	static unsigned char cov[TB_G * TB_G * TB_G / 8 + 4];
	const struct grid gr = grid67(cov);
	double *xd = malloc(3 * N * sizeof(double));
	float *xf = malloc(3 * N * sizeof(float));
	uint16_t *bk = malloc(N * sizeof(uint16_t));
	unsigned seed = 77u;
	size_t i;
	int f64, avx;

	(void)state;
	assert_non_null(xd);
	assert_non_null(xf);
	assert_non_null(bk);
	for (i = 0; i < sizeof(cov); i++) {
		seed = seed * 1103515245u + 12345u;
		cov[i] = (unsigned char)(seed >> 16);
	}
	test_rows(xd, xf, N, 300, seed);
	for (f64 = 0; f64 <= 1; f64++)
		for (avx = 0; avx <= 2; avx++) {
			bins_way(avx);
			sm__pl_near_buckets(&gr, f64 ? (const void *)xd : (const void *)xf, f64, N, bk);
			bins_way(1);
			for (i = 0; i < N; i++) {
				double p[3];
				uint64_t b[3], key, want;
				int k;

				for (k = 0; k < 3; k++) {
					p[k] = f64 ? xd[3 * i + k] : (double)xf[3 * i + k];
					b[k] = sm__pl_axis_bin(&gr, p[k]);
				}
				key = (b[0] * TB_G + b[1]) * TB_G + b[2];
				want = sm__pl_covered(&gr, key) ? b[0] : TB_G;
				if (bk[i] != want)
					fail_msg("%s%s row %zu (%a %a %a): bucket %u against %u",
						 f64 ? "float64" : "float32", way_name[avx], i, p[0],
						 p[1], p[2], bk[i], (unsigned)want);
			}
		}
	free(xd);
	free(xf);
	free(bk);
}

/* The float arithmetic of the eight-row loops (sm__pl_bins_float) where it decides alone: every
 * float32 within 300 steps of each grid-cell boundary k box / g (k from -g/2 to 3g/2, the wrap's
 * range), against sm__pl_axis_bin, for grids whose inv_w rounds up to float (75,000 kpc/h at 1e7
 * cells, TNG300-1's 205,000 at the largest grid, 35,000 at 301), down (35,000 at 67, 75,000 at
 * 512, 1,000 at 72 and 47) or not at all (a unit box). The products there lie within the float's
 * rounding of an integer: rounded up, a product just below an integer in double can reach it in
 * float (the guard above 0 decides); rounded down, one at or just above an integer can fall short
 * of it (the guard below 1; at 72 and 47 cells 625.0 and others do). Each value fills a group of
 * eight rows alone (a neighbour's flag would send the group to the double arithmetic, hiding a
 * missing guard). All float32 coordinates in the range were checked once by hand for twelve grids
 * (2.1-2.4e9 each, no difference). */
static void test_float_bins_sweep(void **state)
{
	static const struct {
		uint64_t g;
		double box;
	} grids[] = {{67, 75000.0}, {512, 205000.0}, {512, 1.0}, {3, 1.0},   {301, 35000.0},
		     {67, 35000.0}, {512, 75000.0},  {72, 1000.0}, {47, 1000.0}};
	enum { STEPS = 300, N = 8 * (2 * STEPS + 1) };
	float *x = malloc(3 * N * sizeof(float));
	uint32_t *b = malloc(N * sizeof(uint32_t));
	size_t gi;

	(void)state;
	assert_non_null(x);
	assert_non_null(b);
	for (gi = 0; gi < sizeof(grids) / sizeof(grids[0]); gi++) {
		const uint64_t g = grids[gi].g;
		const double box = grids[gi].box;
		struct grid gr;
		int64_t k;

		memset(&gr, 0, sizeof(gr));
		gr.g = g;
		gr.gd = (double)g;
		gr.box = box;
		gr.inv_w = (double)g / box;
		for (k = -(int64_t)g / 2; k <= 3 * (int64_t)g / 2; k++) {
			float v = (float)((double)k * box / (double)g);
			size_t i;
			int s;

			for (s = 0; s < STEPS; s++)
				v = nextafterf(v, -INFINITY);
			for (i = 0; i < N; i++) { /* eight rows of each value: a group alone */
				x[3 * i] = x[3 * i + 1] = x[3 * i + 2] = v;
				if (i % 8 == 7)
					v = nextafterf(v, INFINITY);
			}
			for (s = 0; s < 3; s++) {
				sm__pl_grid_bins(&gr, x, 0, s, N, b, NULL, NULL);
				for (i = 0; i < N; i++)
					if (b[i] != sm__pl_axis_bin(&gr, (double)x[3 * i]))
						fail_msg("g %llu box %g axis %d: %a gives %u against %llu",
							 (unsigned long long)g, box, s, x[3 * i], b[i],
							 (unsigned long long)sm__pl_axis_bin(
								 &gr, (double)x[3 * i]));
			}
		}
	}
	free(x);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_one_pass),
		cmocka_unit_test(test_split_stripes),
		cmocka_unit_test(test_split_sparse),
		cmocka_unit_test(test_slab_apart),
		cmocka_unit_test(test_blocks_same_index),
		cmocka_unit_test(test_blocks_declined),
		cmocka_unit_test(test_blocks_overflow),
		cmocka_unit_test(test_grid_bins_avx2),
		cmocka_unit_test(test_slab_keys),
		cmocka_unit_test(test_near_buckets_avx2),
		cmocka_unit_test(test_float_bins_sweep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
