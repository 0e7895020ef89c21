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
 * One body (distribute_rows) serves the passes: by grid index along an axis, or the near split
 * (rows whose grid cell is flagged in the cover into their x slabs, the others into one last
 * bucket), for float and double coordinates. Rows are moved as bytes (a cell's coordinates are
 * 12 or 24 bytes); each pass is its own function with the row type and the bucket rule fixed, so
 * that the compiler specialises the body as it would a hand-written copy. Phase 1 finds its rows'
 * buckets in runs (grid_bins.c, with AVX2 where the CPU has it). Unless most rows are near, the
 * near split compacts them first (the comment above sm__pl_split_near's helpers).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "common/parallel.h"
#include "grid.h"

#define DIST_SCRATCH_BYTES 131072u /* a distribution pass's block buffers, on its thread's stack */
#define DIST_MAX_BUCKETS (SM_MODEL_GRID_MAX_SIDE + 1)

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* The bucket of a row whose coordinates are at x: its grid index along `axis` (the sort's levels),
 * or, in the near split (cover), its x slab when its grid cell is flagged in gr->cover and g (the
 * last bucket) when not. */
static ALWAYS_INLINE uint64_t bucket_of(const struct grid *gr, const unsigned char *x, int axis,
					const int f64, const int cover)
{
	if (cover)
		return sm__pl_near_bucket(gr, sm__pl_row_bin(gr, x, f64, 0),
					  sm__pl_row_bin(gr, x, f64, 1), sm__pl_row_bin(gr, x, f64, 2));
	return sm__pl_row_bin(gr, x, f64, axis);
}

/* Phase 1 finds its rows' buckets BUCKET_RUN at a time, in a loop of their own (the grid indices
 * of four rows an instruction where the CPU has AVX2, sm__pl_grid_bins), before it moves them: the
 * classification had been most of the near split's time (1e7 cells, 2 CPUs: 0.035-0.043 s of its
 * 0.064-0.076 s with the moves left out). */
#define BUCKET_RUN 256u

/* The buckets (bucket_of's) of rows [0, n) of x, n at most BUCKET_RUN. */
static ALWAYS_INLINE void run_buckets(const struct grid *gr, const unsigned char *x, uint64_t n,
				      int axis, const int f64, const int cover, uint16_t *bk)
{
	uint32_t bx[BUCKET_RUN];
	uint64_t i;

	if (cover) {
		sm__pl_near_buckets(gr, x, f64, n, bk);
		return;
	}
	sm__pl_grid_bins(gr, x, f64, axis, n, bx, NULL, NULL);
	for (i = 0; i < n; i++)
		bk[i] = (uint16_t)bx[i];
}

/* Phase 1's step: row i of x and t into bucket b's buffer (bx, bt: B rows a bucket, cnt[b] held);
 * a full buffer goes back into the rows at *wpos as a block of bucket b (nfull[b] counts them). */
static ALWAYS_INLINE void buffer_row(unsigned char *x, float *t, uint64_t i, uint64_t b, size_t xs,
				     uint64_t B, unsigned char *bx, float *bt, uint32_t *cnt,
				     uint64_t *nfull, uint64_t *wpos)
{
	const uint64_t k = cnt[b]++;

	memcpy(bx + xs * (B * b + k), x + xs * i, xs);
	bt[B * b + k] = t[i];
	if (k + 1 == B) {
		memcpy(x + xs * *wpos, bx + xs * B * b, xs * B);
		memcpy(t + *wpos, bt + B * b, B * sizeof(float));
		*wpos += B;
		cnt[b] = 0;
		nfull[b]++;
	}
}

/* One pass over rows [lo, lo + n) into nb buckets (the file's comment); f64 and cover are
 * constants at every call. */
static ALWAYS_INLINE void distribute_rows(const struct grid *gr, unsigned char *xall, float *tall,
					  const uint64_t *start, uint64_t *bounds, uint64_t lo,
					  uint64_t n, uint64_t stride, unsigned nb, int axis,
					  const int f64, const int cover, const uint64_t *pre)
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
	if (pre != NULL) { /* rows [0, pre_rows) are pre[c] full blocks of each bucket c already */
		memcpy(nfull, pre, nb * sizeof(nfull[0]));
		for (c = 0; c < nb; c++)
			wpos += pre[c] * B;
	} else {
		memset(nfull, 0, nb * sizeof(nfull[0]));
	}

	/* 1. classify */
	for (i = wpos; i < n; i += BUCKET_RUN) {
		const uint64_t m = n - i < BUCKET_RUN ? n - i : BUCKET_RUN;
		uint16_t bk[BUCKET_RUN];

		run_buckets(gr, x + xs * i, m, axis, f64, cover, bk);
		for (j = 0; j < m; j++)
			buffer_row(x, t, i + j, bk[j], xs, B, bx, bt, cnt, nfull, &wpos);
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

/* The passes, one function each (each with its own DIST_SCRATCH_BYTES of scratch): by grid index
 * along an axis; the near split (cover); the x slabs' pass of near rows; float or double rows.
 * The last two go on after the stripes below (pre). */
static void distribute_f32(const struct grid *gr, void *x, float *t, const uint64_t *start,
			   uint64_t *bounds, uint64_t lo, uint64_t n, uint64_t stride, int axis)
{
	distribute_rows(gr, x, t, start, bounds, lo, n, stride, (unsigned)gr->g, axis, 0, 0, NULL);
}

static void distribute_f64(const struct grid *gr, void *x, float *t, const uint64_t *start,
			   uint64_t *bounds, uint64_t lo, uint64_t n, uint64_t stride, int axis)
{
	distribute_rows(gr, x, t, start, bounds, lo, n, stride, (unsigned)gr->g, axis, 1, 0, NULL);
}

static void split_near_f32(const struct grid *gr, void *x, float *t, uint64_t *bounds,
			   uint64_t lo, uint64_t n, const uint64_t *pre)
{
	distribute_rows(gr, x, t, NULL, bounds, lo, n, 1, (unsigned)gr->g + 1, 0, 0, 1, pre);
}

static void split_near_f64(const struct grid *gr, void *x, float *t, uint64_t *bounds,
			   uint64_t lo, uint64_t n, const uint64_t *pre)
{
	distribute_rows(gr, x, t, NULL, bounds, lo, n, 1, (unsigned)gr->g + 1, 0, 1, 1, pre);
}

static void slabs_f32(const struct grid *gr, void *x, float *t, uint64_t *bounds, uint64_t lo,
		      uint64_t n, const uint64_t *pre)
{
	distribute_rows(gr, x, t, NULL, bounds, lo, n, 1, (unsigned)gr->g, 0, 0, 0, pre);
}

static void slabs_f64(const struct grid *gr, void *x, float *t, uint64_t *bounds, uint64_t lo,
		      uint64_t n, const uint64_t *pre)
{
	distribute_rows(gr, x, t, NULL, bounds, lo, n, 1, (unsigned)gr->g, 0, 1, 0, pre);
}

/*
 * The near split (sm__pl_split_near) takes one of two ways, by the share of near rows among every
 * SPARSE_STEP-th row (a choice the data alone makes):
 *   - dense (three fifths or more near): one distribution pass of g + 1 buckets, the near rows
 *     into their x slabs, the far rows into the last;
 *   - compacting (fewer: TNG's few hundred halos hold a few percent of the cells, the mock's 30
 *     halos 45 %): the near rows compacted to the front in their order, the far rows not kept,
 *     and the near rows into their x slabs, behind them or in place (build_index_compact.c).
 * Measured at 1e7 cells (one binary, 8-10 alternating runs each way, 2 CPUs), with the
 * compaction taking its near rows by a mask's bits: compacting at 45 % near (the 30 halos)
 * 0.0983 s against 0.1055 s the dense way (at 1e6 cells 0.0097 against 0.0110 s), at the 60
 * halos of the mock (55 % of the cells in spheres) 0.1184 against 0.1194 s: the ways cross near
 * there. Before the mask, the dense way was the faster from a fifth of the rows near. The share is
 * counted on every 1024th row (every 64th before: 2.0-2.7 ms of strided reads at 1e7 cells;
 * build_index 0.0303 -> 0.0278 s with 3 halos, 10 alternating runs).
 * Either pass classifies on the worker threads in stripes fixed by n and the block size (so the
 * rows' order does not depend on the threads), each classified as phase 1 above into blocks at
 * the stripe's front, its partial buffers then written behind them (bucket by bucket). A
 * stripe's length is a whole number of blocks (the last excepted), so its partial rows fill
 * whole blocks but the last stripe's: the stripes' full blocks are made one run at the front by
 * swapping the earlier stripes' partial blocks with the later stripes' last full blocks (whole
 * blocks of one bucket each, so every full block stays one); the pass then goes on from the
 * full blocks' end with the partial rows (a few buffers' worth) and the stripes' block counts.
 */
#define SPLIT_STRIPES SM__PL_MAX_THREADS
#define SPARSE_STEP 1024u /* every 1024th row's bucket decides the way */

/* 1 when fewer than num / den of every SPARSE_STEP-th row of [lo, lo + n) are near. */
int sm__pl_near_share_below(const struct grid *gr, const void *xv, int f64, uint64_t lo,
			    uint64_t n, unsigned num, unsigned den)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const unsigned char *x = (const unsigned char *)xv + xs * lo;
	unsigned char rows[BUCKET_RUN * 3 * sizeof(double)];
	uint16_t bk[BUCKET_RUN];
	uint64_t k = 0, m = (n + SPARSE_STEP - 1) / SPARSE_STEP, near = 0, q;

	while (k < m) {
		const uint64_t c = m - k < BUCKET_RUN ? m - k : BUCKET_RUN;

		for (q = 0; q < c; q++)
			memcpy(rows + xs * q, x + xs * SPARSE_STEP * (k + q), xs);
		sm__pl_near_buckets(gr, rows, f64, c, bk);
		for (q = 0; q < c; q++)
			near += bk[q] != gr->g;
		k += c;
	}
	return den * near < num * m;
}

struct split_job {
	const struct grid *gr;
	unsigned char *x;
	float *t;
	int f64;
	int cover; /* 1: the near split (g + 1 buckets), 0: near rows into their x slabs */
	uint64_t B, edge[SPLIT_STRIPES + 1];
	uint64_t nfull[SPLIT_STRIPES][DIST_MAX_BUCKETS];
	atomic_uint next;
};

static ALWAYS_INLINE void split_stripe_rows(struct split_job *J, unsigned s, const int f64)
{
	_Alignas(16) unsigned char scratch[DIST_SCRATCH_BYTES];
	uint32_t cnt[DIST_MAX_BUCKETS];
	const struct grid *gr = J->gr;
	const unsigned nb = (unsigned)gr->g + (unsigned)J->cover;
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const uint64_t B = J->B, a = J->edge[s], n = J->edge[s + 1] - a;
	unsigned char *x = J->x + xs * a, *bx = scratch;
	float *t = J->t + a, *bt = (float *)(void *)(bx + xs * B * (nb + 3));
	uint64_t *nfull = J->nfull[s], i, wpos = 0, c;

	memset(cnt, 0, nb * sizeof(cnt[0]));
	memset(nfull, 0, nb * sizeof(nfull[0]));
	for (i = 0; i < n; i += BUCKET_RUN) {
		const uint64_t m = n - i < BUCKET_RUN ? n - i : BUCKET_RUN;
		uint16_t bk[BUCKET_RUN];
		uint64_t j;

		run_buckets(gr, x + xs * i, m, 0, f64, J->cover, bk);
		for (j = 0; j < m; j++)
			buffer_row(x, t, i + j, bk[j], xs, B, bx, bt, cnt, nfull, &wpos);
	}
	for (c = 0; c < nb; c++) { /* the partial buffers behind the blocks */
		memcpy(x + xs * wpos, bx + xs * B * c, xs * cnt[c]);
		memcpy(t + wpos, bt + B * c, cnt[c] * sizeof(float));
		wpos += cnt[c];
	}
}

static void split_stripe_part(void *arg, unsigned part, unsigned parts)
{
	struct split_job *J = arg;
	unsigned s;

	(void)part;
	(void)parts;
	while ((s = atomic_fetch_add(&J->next, 1)) < SPLIT_STRIPES) {
		if (J->f64)
			split_stripe_rows(J, s, 1);
		else
			split_stripe_rows(J, s, 0);
	}
}

/* Swaps the n bytes at a and b (apart) through a small buffer. */
static void swap_bytes(unsigned char *a, unsigned char *b, size_t n)
{
	unsigned char tmp[4096];

	while (n > 0) {
		const size_t k = n < sizeof(tmp) ? n : sizeof(tmp);

		memcpy(tmp, a, k);
		memcpy(a, b, k);
		memcpy(b, tmp, k);
		a += k;
		b += k;
		n -= k;
	}
}

/* Swaps blocks i and j (B rows each) of x and t. */
static void swap_blocks(unsigned char *x, float *t, size_t xs, uint64_t B, uint64_t i, uint64_t j)
{
	swap_bytes(x + xs * B * i, x + xs * B * j, xs * B);
	swap_bytes((unsigned char *)(t + B * i), (unsigned char *)(t + B * j), B * sizeof(float));
}

/* Rows [lo, lo + n) by stripes (the comment above): the near split (cover) or the near rows
 * into their x slabs; 1 when done, 0 when too few rows. */
static int stripes_pass(const struct grid *gr, void *xv, float *tv, int f64, int cover,
			uint64_t *bounds, uint64_t lo, uint64_t n)
{
	struct split_job J;
	const unsigned nb = (unsigned)gr->g + (unsigned)cover;
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	uint64_t pre[DIST_MAX_BUCKETS], F[SPLIT_STRIPES], front, c;
	unsigned s;

	if (n < SM__PL_STRIPES_MIN_ROWS)
		return 0;
	memset(&J, 0, sizeof(J));
	J.gr = gr;
	J.x = (unsigned char *)xv + xs * lo;
	J.t = tv + lo;
	J.f64 = f64;
	J.cover = cover;
	J.B = DIST_SCRATCH_BYTES / ((nb + 3) * (xs + sizeof(float))); /* distribute_rows' B */
	for (s = 0; s <= SPLIT_STRIPES; s++)
		J.edge[s] = s == SPLIT_STRIPES ? n : n * s / SPLIT_STRIPES / J.B * J.B;
	atomic_init(&J.next, 0);
	sm__pl_parallel(split_stripe_part, &J, sm__pl_threads() < SPLIT_STRIPES ? sm__pl_threads()
									: SPLIT_STRIPES);
	/* The full blocks into one run at the front: the front's gaps (each earlier stripe's
	 * partial blocks) swapped with the last full blocks behind them. */
	for (s = 0; s < SPLIT_STRIPES; s++)
		for (F[s] = 0, c = 0; c < nb; c++)
			F[s] += J.nfull[s][c];
	front = F[0];
	for (s = 1; s < SPLIT_STRIPES; s++) {
		uint64_t b0 = J.edge[s] / J.B, gap = b0 - front, k = F[s] < gap ? F[s] : gap, q;

		for (q = 0; q < k; q++)
			swap_blocks(J.x, J.t, xs, J.B, front + q, b0 + F[s] - k + q);
		/* the blocks of stripe s now end at front + F[s] */
		if (k < gap) /* not enough of them to fill the gap: they all moved into it */
			front += F[s];
		else
			front = b0 + F[s] - k;
	}
	for (c = 0; c < nb; c++)
		for (pre[c] = 0, s = 0; s < SPLIT_STRIPES; s++)
			pre[c] += J.nfull[s][c];
	if (cover && f64)
		split_near_f64(gr, xv, tv, bounds, lo, n, pre);
	else if (cover)
		split_near_f32(gr, xv, tv, bounds, lo, n, pre);
	else if (f64)
		slabs_f64(gr, xv, tv, bounds, lo, n, pre);
	else
		slabs_f32(gr, xv, tv, bounds, lo, n, pre);
	return 1;
}

void sm__pl_distribute(const struct grid *gr, void *x, float *t, int f64, const uint64_t *start,
		       uint64_t *bounds, uint64_t lo, uint64_t n, uint64_t stride, int axis)
{
	if (f64)
		distribute_f64(gr, x, t, start, bounds, lo, n, stride, axis);
	else
		distribute_f32(gr, x, t, start, bounds, lo, n, stride, axis);
}

void sm__pl_slabs_in_place(const struct grid *gr, void *x, float *t, int f64, uint64_t *bounds,
			   uint64_t lo, uint64_t n)
{
	if (!stripes_pass(gr, x, t, f64, 0, bounds, lo, n))
		sm__pl_distribute(gr, x, t, f64, NULL, bounds, lo, n, 1, 0);
}

void sm__pl_split_near(const struct grid *gr, void *x, float *t, int f64, uint64_t *bounds,
		       uint64_t lo, uint64_t n)
{
	uint64_t nnear;

	if (n >= SM__PL_STRIPES_MIN_ROWS && sm__pl_near_share_below(gr, x, f64, lo, n, 3, 5)) {
		if (!sm__pl_compact_near(gr, x, t, f64, bounds, lo, n, &nnear))
			sm__pl_slabs_in_place(gr, x, t, f64, bounds, lo, nnear);
		bounds[gr->g + 1] = lo + n;
		return;
	}
	if (stripes_pass(gr, x, t, f64, 1, bounds, lo, n))
		return;
	if (f64)
		split_near_f64(gr, x, t, bounds, lo, n, NULL);
	else
		split_near_f32(gr, x, t, bounds, lo, n, NULL);
}
