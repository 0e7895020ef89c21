/*
 * build_index's sort of one x slab out of place (grid.h, sm__pl_sort_slab_apart). When the
 * compaction made the x slabs in the far rows' space behind the compacted rows
 * (build_index_compact.c), the place the near rows were compacted to is free again, and each
 * slab goes back into it by one stable counting pass: the slab's rows counted by grid cell
 * (y g + z, g^2 counters), then copied grid cell after grid cell, each cell's rows in their
 * order. A slab is about a megabyte at 1e7 cells (g = 67: 67,000 near rows of 16 bytes), so the
 * copy reads it from the cache; each row is read twice and written once, where the in-place
 * block distributions by rows and then cells (build_index.c's slab_part, the way when the slabs
 * were made in place) read and write it about twice a level and classify the blocks they swap
 * again. The grid cells are grid_bins.c's (sm__pl_slab_keys), found once when the caller has room
 * for the slab's (uint32 each: index_cell_fill's words behind the counters, about 287,000 a
 * thread at 1e7 cells) and kept for the copy, else found again for it. The result depends on
 * neither the threads nor their timing.
 * Since 2026-12-02 the keys are kept (one binary against the other, alternating serial runs at
 * 1e7 cells, 30 halos, 14 pairs twice: build_index 83.2 -> 78.3 and 83.9 -> 74.6 ms, the medians
 * of the pairs' ratios 0.931 and 0.916; the sort's copy pass had spent 3.6 of its 9.8 ns a row on
 * the keys, 44 ms of CPU a run in all).
 * sm__pl_sort_slab_blocks is the same pass over a slab gathered in blocks (build_index_compact.c's
 * sm__pl_near_blocks), read block by block, the next block's lines prefetched while one is
 * counted (blocks of 256 rows: build_index's slab sorts 21.6 -> 20.0 ms at 1e7 cells, one set of
 * 4 runs each, not alternated), and written into its place in the last nnear rows. Both are one
 * function over the slab's pieces: a range, or the blocks.
 */
#include <stdint.h>
#include <string.h>

#include "grid.h"

#define SLAB_RUN 256u /* rows classified in one call */

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* The slab's rows: the range [a, b) (list NULL), or the blocks list[0, nlist). */
struct slab_rows {
	const uint64_t *list;
	uint64_t nlist, a, b;
};

/* Piece q of the slab's rows into [*a, *e). */
static ALWAYS_INLINE void piece(const struct slab_rows *S, uint64_t q, uint64_t *a, uint64_t *e)
{
	if (S->list == NULL) {
		*a = S->a;
		*e = S->b;
	} else {
		*a = sm__pl_block_at(S->list[q]);
		*e = *a + sm__pl_block_rows(S->list[q]);
	}
}

/* Block q's rows and temperatures toward the cache, a line at a time. */
static ALWAYS_INLINE void prefetch_block(const unsigned char *x, const float *t, size_t xs,
					 const struct slab_rows *S, uint64_t q)
{
	uint64_t a, e, o;

	piece(S, q, &a, &e);
	for (o = xs * a; o < xs * e; o += 64)
		__builtin_prefetch(x + o);
	for (o = a * sizeof(float); o < e * sizeof(float); o += 64)
		__builtin_prefetch((const unsigned char *)t + o);
}

/* The slab's pass (the file's comment) into [dst, ...); f64 a constant. With room for the slab's
 * keys (kept non-NULL), the counting pass keeps them and the copy reads them instead of finding
 * them again. */
static ALWAYS_INLINE void sort_slab(const struct grid *gr, unsigned char *x, float *t,
				    const int f64, uint64_t *st, uint64_t *pos, uint32_t *kept,
				    const struct slab_rows *S, uint64_t dst)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const uint64_t g2 = gr->g * gr->g, pieces = S->list != NULL ? S->nlist : 1;
	uint32_t run[SLAB_RUN];
	uint64_t q, a, e, i, c, sum = dst, done = 0;

	memset(pos, 0, g2 * sizeof(pos[0]));
	for (q = 0; q < pieces; q++) {
		piece(S, q, &a, &e);
		if (S->list != NULL && q + 1 < pieces)
			prefetch_block(x, t, xs, S, q + 1);
		for (i = a; i < e; i += SLAB_RUN) {
			const uint64_t m = e - i < SLAB_RUN ? e - i : SLAB_RUN;
			uint32_t *key = kept != NULL ? kept + done : run;
			uint64_t j;

			sm__pl_slab_keys(gr, x + xs * i, f64, m, key);
			for (j = 0; j < m; j++)
				pos[key[j]]++;
			done += m;
		}
	}
	for (c = 0; c < g2; c++) {
		const uint64_t k = pos[c];

		st[c] = sum;
		pos[c] = sum;
		sum += k;
	}
	for (done = 0, q = 0; q < pieces; q++) {
		piece(S, q, &a, &e);
		for (i = a; i < e; i += SLAB_RUN) {
			const uint64_t m = e - i < SLAB_RUN ? e - i : SLAB_RUN;
			const uint32_t *key = kept != NULL ? kept + done : run;
			uint64_t j;

			if (kept == NULL)
				sm__pl_slab_keys(gr, x + xs * i, f64, m, run);
			for (j = 0; j < m; j++) {
				const uint64_t p = pos[key[j]]++;

				memcpy(x + xs * p, x + xs * (i + j), xs);
				t[p] = t[i + j];
			}
			done += m;
		}
	}
}

static void sort_rows(const struct grid *gr, void *x, float *t, int f64, uint64_t *st,
		      uint64_t *pos, uint32_t *keys, uint64_t nkeys, const struct slab_rows *S,
		      uint64_t rows, uint64_t dst)
{
	uint32_t *kept = rows <= nkeys ? keys : NULL;

	if (f64)
		sort_slab(gr, x, t, 1, st, pos, kept, S, dst);
	else
		sort_slab(gr, x, t, 0, st, pos, kept, S, dst);
}

void sm__pl_sort_slab_apart(const struct grid *gr, void *x, float *t, int f64, uint64_t *st,
			    uint64_t *pos, uint32_t *keys, uint64_t nkeys, uint64_t a, uint64_t b,
			    uint64_t gap)
{
	const struct slab_rows S = {NULL, 0, a, b};

	sort_rows(gr, x, t, f64, st, pos, keys, nkeys, &S, b - a, a - gap);
}

void sm__pl_sort_slab_blocks(const struct grid *gr, void *x, float *t, int f64, uint64_t *st,
			     uint64_t *pos, uint32_t *keys, uint64_t nkeys, const uint64_t *list,
			     uint64_t nlist, uint64_t rows, uint64_t dst)
{
	const struct slab_rows S = {list, nlist, 0, 0};

	sort_rows(gr, x, t, f64, st, pos, keys, nkeys, &S, rows, dst);
}
