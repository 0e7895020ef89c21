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
 */
#include <stdint.h>
#include <string.h>

#include "grid.h"

#define SLAB_RUN 256u /* rows classified in one call */

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* The slab's pass (the file's comment); f64 a constant. With room for the slab's keys (kept
 * non-NULL), the counting pass keeps them and the copy reads them instead of finding them again. */
static ALWAYS_INLINE void sort_slab(const struct grid *gr, unsigned char *x, float *t,
				    const int f64, uint64_t *st, uint64_t *pos, uint32_t *kept,
				    uint64_t a, uint64_t b, uint64_t gap)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const uint64_t g2 = gr->g * gr->g;
	uint32_t run[SLAB_RUN];
	uint64_t i, c, sum = a - gap;

	memset(pos, 0, g2 * sizeof(pos[0]));
	for (i = a; i < b; i += SLAB_RUN) {
		const uint64_t m = b - i < SLAB_RUN ? b - i : SLAB_RUN;
		uint32_t *key = kept != NULL ? kept + (i - a) : run;
		uint64_t j;

		sm__pl_slab_keys(gr, x + xs * i, f64, m, key);
		for (j = 0; j < m; j++)
			pos[key[j]]++;
	}
	for (c = 0; c < g2; c++) {
		const uint64_t k = pos[c];

		st[c] = sum;
		pos[c] = sum;
		sum += k;
	}
	for (i = a; i < b; i += SLAB_RUN) {
		const uint64_t m = b - i < SLAB_RUN ? b - i : SLAB_RUN;
		const uint32_t *key = kept != NULL ? kept + (i - a) : run;
		uint64_t j;

		if (kept == NULL)
			sm__pl_slab_keys(gr, x + xs * i, f64, m, run);
		for (j = 0; j < m; j++) {
			const uint64_t p = pos[key[j]]++;

			memcpy(x + xs * p, x + xs * (i + j), xs);
			t[p] = t[i + j];
		}
	}
}

void sm__pl_sort_slab_apart(const struct grid *gr, void *x, float *t, int f64, uint64_t *st,
			    uint64_t *pos, uint32_t *keys, uint64_t nkeys, uint64_t a, uint64_t b,
			    uint64_t gap)
{
	uint32_t *kept = b - a <= nkeys ? keys : NULL;

	if (f64)
		sort_slab(gr, x, t, 1, st, pos, kept, a, b, gap);
	else
		sort_slab(gr, x, t, 0, st, pos, kept, a, b, gap);
}
