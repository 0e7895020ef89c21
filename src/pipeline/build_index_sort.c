/*
 * build_index's in-place sort (grid.h): the rows of Coordinates (3 values of the positions' type per
 * cell) and temperature (one float per cell) are moved together into buckets by one block
 * distribution pass at a time, after IPS4o (Axtmann et al. 2017), so that cells move in runs of B
 * rows rather than one dependent cache miss at a time:
 *   1. classify: one scan moves every row into its bucket's B-row buffer (on the stack); a full
 *      buffer is written back behind the scan, so [0, F B) ends up as F blocks of one bucket each;
 *   2. permute: the blocks go to their bucket's block slots (slots are B-aligned: bucket c owns
 *      slots [ceil(S_c / B), ceil(S_c+1 / B))), swapping out the block found there; a block that
 *      would end past the range keeps its tail in an overflow buffer;
 *   3. clean up, bucket by bucket: a bucket's blocks may reach up to B-1 rows into the next
 *      bucket (those rows move into its own head), and its head and tail gaps take its buffer.
 * Scratch: DIST_SCRATCH_BYTES of stack for nb + 3 blocks, plus ~28 bytes per bucket.
 *
 * One body (distribute_rows) serves the four passes: by grid index along an axis, or the near
 * split (rows whose grid cell is flagged in the cover into their x slabs, the others into one
 * last bucket), for float and double coordinates. Rows are moved as bytes (a cell's
 * coordinates are 12 or 24 bytes); each pass is its own function with the row type and the
 * bucket rule fixed, so that the compiler specialises the body as it would a hand-written copy.
 */
#include <stdint.h>
#include <string.h>

#include "grid.h"

#define DIST_SCRATCH_BYTES 65536u /* a distribution pass's block buffers, on its thread's stack */
#define DIST_MAX_BUCKETS (SM_MODEL_GRID_MAX_SIDE + 1)

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* The bucket of a row whose coordinates are at x: its grid index along `axis` (the sort's levels),
 * or, in the near split (cover), its x slab when its grid cell is flagged in gr->cover and g (the
 * last bucket) when not. */
static ALWAYS_INLINE uint64_t bucket_of(const struct grid *gr, const unsigned char *x, int axis,
					const int f64, const int cover)
{
	if (cover) {
		const uint64_t bx = sm__pl_axis_bin(gr, f64 ? ((const double *)(const void *)x)[0]
							   : ((const float *)(const void *)x)[0]);
		const uint64_t by = sm__pl_axis_bin(gr, f64 ? ((const double *)(const void *)x)[1]
							   : ((const float *)(const void *)x)[1]);
		const uint64_t bz = sm__pl_axis_bin(gr, f64 ? ((const double *)(const void *)x)[2]
							   : ((const float *)(const void *)x)[2]);

		return sm__pl_covered(gr, (bx * gr->g + by) * gr->g + bz) ? bx : gr->g;
	}
	return sm__pl_axis_bin(gr, f64 ? ((const double *)(const void *)x)[axis]
				       : ((const float *)(const void *)x)[axis]);
}

/* One pass over rows [lo, lo + n) into nb buckets (the file's comment); f64 and cover are
 * constants at every call. */
static ALWAYS_INLINE void distribute_rows(const struct grid *gr, unsigned char *xall, float *tall,
					  const uint64_t *start, uint64_t *bounds, uint64_t lo,
					  uint64_t n, uint64_t stride, unsigned nb, int axis,
					  const int f64, const int cover)
{
	_Alignas(16) unsigned char scratch[DIST_SCRATCH_BYTES];
	uint32_t cnt[DIST_MAX_BUCKETS];
	uint64_t nfull[DIST_MAX_BUCKETS], w[DIST_MAX_BUCKETS], r[DIST_MAX_BUCKETS];
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float); /* a row's coordinates */
	const size_t row = xs + sizeof(float);
	const uint64_t B = DIST_SCRATCH_BYTES / ((nb + 3) * row);
	unsigned char *x = xall + xs * lo, *bx, *ax, *sx, *ox, *tx;
	float *t = tall + lo, *bt, *at, *st, *ot, *tf;
	uint64_t i, wpos = 0, F, c, j;

	if (n < 2 || nb < 2) { /* nothing to move: a single row's bucket is its own */
		uint64_t b0 = n == 1 && nb >= 2 ? bucket_of(gr, x, axis, f64, cover) : 0;

		if (bounds != NULL)
			for (c = 0; c <= nb; c++)
				bounds[c * stride] = c <= b0 ? lo : lo + n;
		return;
	}
	if (bounds != NULL)
		start = bounds;
	/* scratch: [nb + 3][B] coordinate rows (the buckets' buffers, then A, swap and overflow),
	 * then [nb + 3][B] temperatures in the same order */
	bx = scratch;
	bt = (float *)(void *)(bx + xs * B * (nb + 3));
	ax = bx + xs * B * nb;
	at = bt + B * nb;
	sx = ax + xs * B;
	st = at + B;
	ox = sx + xs * B;
	ot = st + B;
	memset(cnt, 0, nb * sizeof(cnt[0]));
	memset(nfull, 0, nb * sizeof(nfull[0]));

	/* 1. classify */
	for (i = 0; i < n; i++) {
		uint64_t b = bucket_of(gr, x + xs * i, axis, f64, cover), k = cnt[b]++;

		memcpy(bx + xs * (B * b + k), x + xs * i, xs);
		bt[B * b + k] = t[i];
		if (k + 1 == B) {
			memcpy(x + xs * wpos, bx + xs * B * b, xs * B);
			memcpy(t + wpos, bt + B * b, B * sizeof(float));
			wpos += B;
			cnt[b] = 0;
			nfull[b]++;
		}
	}
	F = wpos / B;
	if (bounds != NULL) { /* the bucket sizes are what phase 1 saw */
		uint64_t pos = lo;

		for (c = 0; c < nb; c++) {
			bounds[c * stride] = pos;
			pos += nfull[c] * B + cnt[c];
		}
		bounds[(uint64_t)nb * stride] = pos;
	}

	/* 2. permute the F blocks into their buckets' slots */
	for (c = 0; c < nb; c++) {
		uint64_t s0 = (start[c * stride] - lo + B - 1) / B;
		uint64_t s1 = (start[(c + 1) * stride] - lo + B - 1) / B;

		w[c] = s0;
		r[c] = F < s0 ? s0 : F > s1 ? s1 : F;
	}
	for (c = 0; c < nb; c++) {
		while (w[c] < r[c]) {
			j = --r[c];
			memcpy(ax, x + xs * B * j, xs * B);
			memcpy(at, t + B * j, B * sizeof(float));
			for (;;) {
				uint64_t b = bucket_of(gr, ax, axis, f64, cover), q;

				while (w[b] < r[b] &&
				       bucket_of(gr, x + xs * B * w[b], axis, f64, cover) == b)
					w[b]++;
				q = w[b]++;
				if (q < r[b]) { /* swap with the block in the slot, carry that one on */
					memcpy(sx, x + xs * B * q, xs * B);
					memcpy(st, t + B * q, B * sizeof(float));
					memcpy(x + xs * B * q, ax, xs * B);
					memcpy(t + B * q, at, B * sizeof(float));
					tx = ax, ax = sx, sx = tx;
					tf = at, at = st, st = tf;
					continue;
				}
				if ((q + 1) * B <= n) {
					memcpy(x + xs * B * q, ax, xs * B);
					memcpy(t + B * q, at, B * sizeof(float));
				} else { /* the slot crossing the end: the tail to the overflow buffer */
					uint64_t in = n - q * B;

					memcpy(x + xs * B * q, ax, xs * in);
					memcpy(t + B * q, at, in * sizeof(float));
					memcpy(ox, ax + xs * in, xs * (B - in));
					memcpy(ot, at + in, (B - in) * sizeof(float));
				}
				break;
			}
		}
	}

	/* 3. clean up: overflow rows into the head, the buffer into the gaps */
	for (c = 0; c < nb; c++) {
		uint64_t S = start[c * stride] - lo, Se = start[(c + 1) * stride] - lo;
		uint64_t A = (S + B - 1) / B * B, E = A + nfull[c] * B, p = S, k = 0;
		const unsigned char *bxc = bx + xs * B * c;
		const float *btc = bt + B * c;

		if (nfull[c] == 0) {
			A = E = Se; /* the whole range is the head */
		} else if (E > Se) {
			/* rows [Se, E): in the array below n, in the overflow buffer from n on */
			uint64_t ov = E - Se, in = E <= n ? ov : n - Se;

			memcpy(x + xs * p, x + xs * Se, xs * in);
			memcpy(t + p, t + Se, in * sizeof(float));
			memcpy(x + xs * (p + in), ox, xs * (ov - in));
			memcpy(t + p + in, ot, (ov - in) * sizeof(float));
			p += ov;
		}
		for (; p < A; p++, k++) {
			memcpy(x + xs * p, bxc + xs * k, xs);
			t[p] = btc[k];
		}
		for (p = E; p < Se; p++, k++) {
			memcpy(x + xs * p, bxc + xs * k, xs);
			t[p] = btc[k];
		}
	}
}

/* The four passes, one function each (each with its own 64 KiB of scratch). */
static void distribute_f32(const struct grid *gr, void *x, float *t, const uint64_t *start,
			   uint64_t *bounds, uint64_t lo, uint64_t n, uint64_t stride, int axis)
{
	distribute_rows(gr, x, t, start, bounds, lo, n, stride, (unsigned)gr->g, axis, 0, 0);
}

static void distribute_f64(const struct grid *gr, void *x, float *t, const uint64_t *start,
			   uint64_t *bounds, uint64_t lo, uint64_t n, uint64_t stride, int axis)
{
	distribute_rows(gr, x, t, start, bounds, lo, n, stride, (unsigned)gr->g, axis, 1, 0);
}

static void split_near_f32(const struct grid *gr, void *x, float *t, uint64_t *bounds,
			   uint64_t lo, uint64_t n)
{
	distribute_rows(gr, x, t, NULL, bounds, lo, n, 1, (unsigned)gr->g + 1, 0, 0, 1);
}

static void split_near_f64(const struct grid *gr, void *x, float *t, uint64_t *bounds,
			   uint64_t lo, uint64_t n)
{
	distribute_rows(gr, x, t, NULL, bounds, lo, n, 1, (unsigned)gr->g + 1, 0, 1, 1);
}

void sm__pl_distribute(const struct grid *gr, void *x, float *t, int f64, const uint64_t *start,
		       uint64_t *bounds, uint64_t lo, uint64_t n, uint64_t stride, int axis)
{
	if (f64)
		distribute_f64(gr, x, t, start, bounds, lo, n, stride, axis);
	else
		distribute_f32(gr, x, t, start, bounds, lo, n, stride, axis);
}

void sm__pl_split_near(const struct grid *gr, void *x, float *t, int f64, uint64_t *bounds,
		       uint64_t lo, uint64_t n)
{
	if (f64)
		split_near_f64(gr, x, t, bounds, lo, n);
	else
		split_near_f32(gr, x, t, bounds, lo, n);
}
