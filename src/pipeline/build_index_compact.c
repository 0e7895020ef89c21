/*
 * build_index's compaction (grid.h, sm__pl_compact_near), the near split's way unless most rows
 * are near (build_index_sort.c): the near rows (in grid cells some sphere scan visits) are
 * compacted to the front in their order, a stripe a worker thread, each to its own front (every
 * row's bucket found by sm__pl_near_buckets, the near rows taken by the bits of a mask,
 * near_bits, each stripe counting its rows of every x slab), then the stripes' near rows put one
 * after the other (copied on the threads where they do not meet their place). Then, when the far
 * rows were at least as many, the near rows go to their x slabs by one stable counting pass into
 * the far rows' space right behind them (slabs_apart: the compaction's counts, the slab found
 * again, a copy; the index then begins there); otherwise the caller distributes them in place.
 * The far rows are not kept: nothing reads a cell outside the grid cells the sphere scans visit
 * after build_index, and the arrays' tail holds what the compaction left there. The compaction
 * keeps the rows' order and the counting pass is stable, so the stripes change nothing but the
 * time. Measured at 1e7 cells, one binary, alternating runs (8-12 each), 2 CPUs:
 *   - the near rows taken by the mask's bits instead of a test of every row's bucket:
 *     build_index 0.0373 -> 0.0310 s with 3 of the mock's 30 halos (4.6 % near);
 *   - 8 stripes closed up one after the other -> one a thread, two copied at once: 0.0978 ->
 *     0.0949 s at 45 % near (the 30 halos), 0.0301 -> 0.0289 s at 4.6 %;
 *   - the slabs behind instead of in place: 0.0973 -> 0.0834 s at 45 %, at 1e6 cells 0.0128 ->
 *     0.0118 s.
 *
 * The blocks (sm__pl_near_blocks), build_index's way before the near split where fewer than half
 * of the rows are near: the same classification, in 8 stripes fixed by n (taken by the worker
 * threads as they come free), but each near row goes to its part's buffer of its x slab (B rows:
 * the buffers of B rows of every slab fit in a few hundred KiB, in index_cell_start); a full
 * buffer is written to the stripe's front as a block, logged (start, slab, rows), and the partial
 * buffers follow at the stripe's end, slab by slab. The slabs are to go to the last nnear rows:
 * the blocks lying there move into the gaps the far rows left below them (with 45 % near, the
 * blocks of the last 3 or 4 stripes; with a few percent, none), or, where the gaps are broken up
 * so that the blocks do not fit whole, every stripe's blocks are put one after the other from the
 * front. The logs then become a list of every slab's blocks in the rows' order, from which each
 * slab is sorted straight into its place (build_index_slab.c). Against the compaction's way this
 * spares the pass that made the slabs behind (a read and a scattered write of every near row)
 * and, mostly, the close-up; the index is the same row for row. The stripes and B depend on n,
 * g and the rows' size, not on the threads, so that the blocks, and the slabs made in place from
 * them when more rows turn out near than far (SM__PL_BLOCKS_IN_PLACE), do not either.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) && defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "common/parallel.h"
#include "grid.h"

#define COMPACT_STRIPES SM__PL_MAX_THREADS
#define COMPACT_RUN 256u /* rows classified in one call */

#define ALWAYS_INLINE inline __attribute__((always_inline))

struct compact_job {
	const struct grid *gr;
	unsigned char *x;
	float *t;
	int f64;
	int scatter; /* 0: the compaction's pass, 1: slabs_apart's */
	unsigned stripes;
	uint64_t edge[COMPACT_STRIPES + 1], kept[COMPACT_STRIPES];
	uint64_t front[COMPACT_STRIPES]; /* where each stripe's near rows are after the close-up */
	/* each stripe's near rows in every x slab; then (slabs_apart) where the next one goes */
	uint64_t slab[COMPACT_STRIPES][SM_MODEL_GRID_MAX_SIDE];
	atomic_uint next;
};

/* Bit q set where bk[q] is not g (a near row), q < n <= 64: sixteen buckets a step with SSE2. */
static ALWAYS_INLINE uint64_t near_bits(const uint16_t *bk, uint64_t n, uint64_t g)
{
	uint64_t bits = 0, q = 0;

#if defined(__SSE2__) && defined(__x86_64__) && defined(__GNUC__)
	const __m128i vg = _mm_set1_epi16((short)g);

	for (; q + 16 <= n; q += 16) {
		const __m128i lo =
			_mm_cmpeq_epi16(_mm_loadu_si128((const __m128i *)(const void *)(bk + q)), vg);
		const __m128i hi =
			_mm_cmpeq_epi16(_mm_loadu_si128((const __m128i *)(const void *)(bk + q + 8)), vg);

		bits |= (uint64_t)(uint16_t)~_mm_movemask_epi8(_mm_packs_epi16(lo, hi)) << q;
	}
#endif
	for (; q < n; q++)
		bits |= (uint64_t)(bk[q] != g) << q;
	return bits;
}

/* Stripe s's near rows to its front, in order; their number into J->kept[s]. */
static ALWAYS_INLINE void compact_stripe(struct compact_job *J, unsigned s, const int f64)
{
	const struct grid *gr = J->gr;
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const uint64_t a = J->edge[s], n = J->edge[s + 1] - a, g = gr->g;
	unsigned char *x = J->x + xs * a;
	float *t = J->t + a;
	uint64_t i, w = 0, *cnt = J->slab[s];

	memset(cnt, 0, gr->g * sizeof(cnt[0]));
	for (i = 0; i < n; i += COMPACT_RUN) {
		const uint64_t m = n - i < COMPACT_RUN ? n - i : COMPACT_RUN;
		uint16_t bk[COMPACT_RUN];
		uint64_t j;

		sm__pl_near_buckets(gr, x + xs * i, f64, m, bk);
		for (j = 0; j < m; j += 64) {
			uint64_t near = near_bits(bk + j, m - j < 64 ? m - j : 64, g);

			while (near != 0) { /* w <= i + j + q: only rows already taken are written */
				const uint64_t q = j + (uint64_t)__builtin_ctzll(near);
				unsigned char r[3 * sizeof(double)];
				const float tq = t[i + q];

				memcpy(r, x + xs * (i + q), xs); /* whole before the write */
				memcpy(x + xs * w, r, xs);
				t[w++] = tq;
				cnt[bk[q]]++;
				near &= near - 1;
			}
		}
	}
	J->kept[s] = w;
}


/* Stripe s's near rows (at J->front[s], J->kept[s] of them) to their x slabs' next places
 * J->slab[s][c], rows from J->x (the near rows' space is J->gap rows further on). */
static ALWAYS_INLINE void scatter_stripe(struct compact_job *J, unsigned s, const int f64)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const uint64_t a = J->front[s], b = a + J->kept[s];
	uint64_t *pos = J->slab[s], i;
	uint32_t bx[COMPACT_RUN];

	for (i = a; i < b; i += COMPACT_RUN) {
		const uint64_t m = b - i < COMPACT_RUN ? b - i : COMPACT_RUN;
		uint64_t j;

		sm__pl_grid_bins(J->gr, J->x + xs * i, f64, 0, m, bx, NULL, NULL);
		for (j = 0; j < m; j++) {
			const uint64_t p = pos[bx[j]]++;

			memcpy(J->x + xs * p, J->x + xs * (i + j), xs);
			J->t[p] = J->t[i + j];
		}
	}
}

/* The stripes, taken one at a time as threads come free: compacted, or (J->scatter) their rows
 * sent to their x slabs. */
static void stripe_part(void *arg, unsigned part, unsigned parts)
{
	struct compact_job *J = arg;
	unsigned s;

	(void)part;
	(void)parts;
	while ((s = atomic_fetch_add(&J->next, 1)) < J->stripes) {
		if (J->scatter && J->f64)
			scatter_stripe(J, s, 1);
		else if (J->scatter)
			scatter_stripe(J, s, 0);
		else if (J->f64)
			compact_stripe(J, s, 1);
		else
			compact_stripe(J, s, 0);
	}
}

/* The close-up's copy on the worker threads: n bytes from src to dst, which do not meet. */
struct copy_job {
	unsigned char *dst;
	const unsigned char *src;
	uint64_t n;
};

/* Part p of the close-up's copy: its share of the bytes, in 64-byte pieces. */
static void copy_part(void *arg, unsigned part, unsigned parts)
{
	struct copy_job *C = arg;
	const uint64_t lines = (C->n + 63) / 64;
	const uint64_t a = lines * part / parts * 64, b0 = lines * (part + 1) / parts * 64;
	const uint64_t b = b0 < C->n ? b0 : C->n;

	if (a < b)
		memcpy(C->dst + a, C->src + a, b - a);
}

/* n bytes from src to dst (apart), on parts threads. */
static void copy_apart(unsigned char *dst, const unsigned char *src, uint64_t n, unsigned parts)
{
	struct copy_job C = {dst, src, n};

	sm__pl_parallel(copy_part, &C, parts);
}

/* The stripes' rows kept at their fronts (kept[s] rows from edge[s] of x and t) put one after
 * the other from row 0, front[s] where stripe s's begin then; returns their number. */
static uint64_t close_up(unsigned char *x, float *t, size_t xs, const uint64_t *edge,
			 const uint64_t *kept, uint64_t *front, unsigned stripes, unsigned parts)
{
	uint64_t at = kept[0];
	unsigned s;

	front[0] = 0;
	for (s = 1; s < stripes; s++) {
		front[s] = at;
		if (at + kept[s] <= edge[s] && parts > 1) {
			copy_apart(x + xs * at, x + xs * edge[s], xs * kept[s], parts);
			copy_apart((unsigned char *)(t + at), (const unsigned char *)(t + edge[s]),
				   kept[s] * sizeof(float), parts);
		} else {
			memmove(x + xs * at, x + xs * edge[s], xs * kept[s]);
			memmove(t + at, t + edge[s], kept[s] * sizeof(float));
		}
		at += kept[s];
	}
	return at;
}

/* Rows [lo, lo + n): the near rows to [lo, lo + returned), in their order; J (the caller's)
 * keeps each stripe's place and x slab counts. */
static uint64_t compact_near(struct compact_job *J, const struct grid *gr, void *xv, float *tv,
			     int f64, uint64_t lo, uint64_t n)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const unsigned parts = sm__pl_threads() < COMPACT_STRIPES ? sm__pl_threads() : COMPACT_STRIPES;
	unsigned s;

	memset(J, 0, sizeof(*J));
	J->gr = gr;
	J->x = (unsigned char *)xv + xs * lo;
	J->t = tv + lo;
	J->f64 = f64;
	J->stripes = parts;
	for (s = 0; s <= J->stripes; s++)
		J->edge[s] = n * s / J->stripes;
	atomic_init(&J->next, 0);
	sm__pl_parallel(stripe_part, J, parts);
	return close_up(J->x, J->t, xs, J->edge, J->kept, J->front, J->stripes, parts);
}

/* The nnear compacted rows into their x slabs behind them, at [lo + nnear, lo + 2 nnear) (the far
 * rows' space, not kept), each slab's rows in their order: bounds[c] (c = 0..g) where slab c
 * begins there. */
static void slabs_apart(struct compact_job *J, uint64_t *bounds, uint64_t lo, uint64_t nnear)
{
	const uint64_t g = J->gr->g;
	uint64_t c, sum = nnear;
	unsigned s;

	for (c = 0; c < g; c++) {
		bounds[c] = lo + sum;
		for (s = 0; s < J->stripes; s++) {
			const uint64_t k = J->slab[s][c];

			J->slab[s][c] = sum;
			sum += k;
		}
	}
	bounds[g] = lo + sum;
	atomic_store(&J->next, 0);
	J->scatter = 1;
	sm__pl_parallel(stripe_part, J, J->stripes);
}

int sm__pl_compact_near(const struct grid *gr, void *x, float *t, int f64, uint64_t *bounds,
			uint64_t lo, uint64_t n, uint64_t *nnear)
{
	struct compact_job J;

	*nnear = compact_near(&J, gr, x, t, f64, lo, n);
	if (*nnear > n - *nnear)
		return 0;
	slabs_apart(&J, bounds, lo, *nnear);
	return 1;
}

/* ---- the near rows in blocks of one x slab (sm__pl_near_blocks) ------------------------------ */

#define BLOCK_STRIPES SM__PL_MAX_THREADS /* fixed: the blocks do not depend on the threads */
#define BLOCK_MIN_ROWS 64u
#define BLOCK_MAX_FILL 256u   /* B's limit where the buffers have room for more */
#define BLOCK_MAX_ROWS (SM__PL_BLOCK_ROWS_MASK + 1)
/* a log entry: a block's word (grid.h) with its slab in bits 14-23 */
#define LOG_SLAB 14
#define LOG_SLAB_MASK 1023u   /* g <= SM_MODEL_GRID_MAX_SIDE = 512 */

int sm__pl_index_blocks = 1;

struct block_job {
	const struct grid *gr;
	unsigned char *x;
	float *t;
	int f64;
	uint64_t B;
	uint64_t edge[BLOCK_STRIPES + 1], kept[BLOCK_STRIPES];
	uint64_t *log[BLOCK_STRIPES], nlog[BLOCK_STRIPES];
	uint64_t rows[BLOCK_STRIPES][SM_MODEL_GRID_MAX_SIDE]; /* each stripe's near rows per slab */
	unsigned char *buf;
	uint64_t part_bytes; /* a part's buffers: g B rows, then g B temperatures */
	atomic_uint next;
};

/* Slab c's k buffered rows to row w (from J->x) as a block, logged; returns the row after it. */
static ALWAYS_INLINE uint64_t flush_block(struct block_job *J, unsigned s, const unsigned char *bx,
					  const float *bt, uint64_t c, uint64_t k, uint64_t w,
					  size_t xs)
{
	const uint64_t B = J->B;

	memcpy(J->x + xs * w, bx + xs * B * c, xs * k);
	memcpy(J->t + w, bt + B * c, k * sizeof(float));
	J->log[s][J->nlog[s]++] = w << SM__PL_BLOCK_START | c << LOG_SLAB | (k - 1);
	J->rows[s][c] += k;
	return w + k;
}

/* Stripe s's near rows into the part's buffers, a buffer an x slab; each full one to the
 * stripe's front as a block, then the partial ones, slab by slab. A block is written over rows
 * already read: the rows flushed and buffered are near rows the stripe has read. */
static ALWAYS_INLINE void block_stripe(struct block_job *J, unsigned s, unsigned char *bx,
				       const int f64)
{
	const struct grid *gr = J->gr;
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const uint64_t a = J->edge[s], e = J->edge[s + 1], g = gr->g, B = J->B;
	float *bt = (float *)(void *)(bx + xs * B * g);
	uint32_t fill[SM_MODEL_GRID_MAX_SIDE];
	uint64_t i, c, w = a;

	memset(fill, 0, g * sizeof(fill[0]));
	memset(J->rows[s], 0, g * sizeof(J->rows[s][0]));
	J->nlog[s] = 0;
	for (i = a; i < e; i += COMPACT_RUN) {
		const uint64_t m = e - i < COMPACT_RUN ? e - i : COMPACT_RUN;
		uint16_t bk[COMPACT_RUN];
		uint64_t j;

		sm__pl_near_buckets(gr, J->x + xs * i, f64, m, bk);
		for (j = 0; j < m; j += 64) {
			uint64_t near = near_bits(bk + j, m - j < 64 ? m - j : 64, g);

			while (near != 0) {
				const uint64_t q = j + (uint64_t)__builtin_ctzll(near);
				const uint64_t b = bk[q];
				const uint32_t f = fill[b];

				memcpy(bx + xs * (B * b + f), J->x + xs * (i + q), xs);
				bt[B * b + f] = J->t[i + q];
				if (f + 1 == B) {
					w = flush_block(J, s, bx, bt, b, B, w, xs);
					fill[b] = 0;
				} else {
					fill[b] = f + 1;
				}
				near &= near - 1;
			}
		}
	}
	for (c = 0; c < g; c++)
		if (fill[c] > 0)
			w = flush_block(J, s, bx, bt, c, fill[c], w, xs);
	J->kept[s] = w - a;
}

static void block_part(void *arg, unsigned part, unsigned parts)
{
	struct block_job *J = arg;
	unsigned char *bx = J->buf + J->part_bytes * part;
	unsigned s;

	(void)parts;
	while ((s = atomic_fetch_add(&J->next, 1)) < BLOCK_STRIPES) {
		if (J->f64)
			block_stripe(J, s, bx, 1);
		else
			block_stripe(J, s, bx, 0);
	}
}

/* The blocks clear_tail moves: mv[2 k] a block's log entry as it was, mv[2 k + 1] its new start. */
struct move_job {
	struct block_job *J;
	const uint64_t *mv;
	uint64_t nmv;
};

static void move_part(void *arg, unsigned part, unsigned parts)
{
	const struct move_job *M = arg;
	struct block_job *J = M->J;
	const size_t xs = J->f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const uint64_t a = M->nmv * part / parts, b = M->nmv * (part + 1) / parts;
	uint64_t k;

	for (k = a; k < b; k++) {
		const uint64_t from = sm__pl_block_at(M->mv[2 * k]), to = M->mv[2 * k + 1];
		const uint64_t rows = sm__pl_block_rows(M->mv[2 * k]);

		memcpy(J->x + xs * to, J->x + xs * from, xs * rows);
		memcpy(J->t + to, J->t + from, rows * sizeof(float));
	}
}

/* The moves that make rows [d0, n) free of blocks: the blocks reaching into them (a suffix of
 * each stripe's log, whose blocks lie in the log's order) into the gaps below d0 behind the
 * stripes' blocks, first gap first. With commit, each move into mv (mv[2 k] the block's log entry
 * as it was, mv[2 k + 1] its new start) and its log entry changed. Returns the number of moves,
 * or UINT64_MAX when the gaps cannot take the blocks whole or mv (mvw words) has no room. */
static uint64_t tail_moves(struct block_job *J, uint64_t d0, uint64_t *mv, uint64_t mvw,
			   int commit)
{
	uint64_t cur = 0, end = 0, j, k = 0;
	unsigned s, h = 0;

	for (s = 0; s < BLOCK_STRIPES; s++) {
		uint64_t *log = J->log[s];

		j = J->nlog[s];
		while (j > 0 && sm__pl_block_at(log[j - 1]) + sm__pl_block_rows(log[j - 1]) > d0)
			j--;
		for (; j < J->nlog[s]; j++) {
			const uint64_t rows = sm__pl_block_rows(log[j]);

			while (cur + rows > end) { /* the next gap below d0 */
				if (h == BLOCK_STRIPES || J->edge[h] + J->kept[h] >= d0)
					return UINT64_MAX;
				cur = J->edge[h] + J->kept[h];
				end = J->edge[h + 1] < d0 ? J->edge[h + 1] : d0;
				h++;
			}
			if (2 * k + 2 > mvw)
				return UINT64_MAX;
			if (commit) {
				mv[2 * k] = log[j];
				mv[2 * k + 1] = cur;
				log[j] = cur << SM__PL_BLOCK_START |
					 (log[j] & ((UINT64_C(1) << SM__PL_BLOCK_START) - 1));
			}
			k++;
			cur += rows;
		}
	}
	return k;
}

/* Rows [d0, n) made free of blocks (tail_moves), the moves made on the worker threads. Returns
 * 0, moving nothing, when they cannot be. */
static int clear_tail(struct block_job *J, uint64_t d0, uint64_t *mv, uint64_t mvw)
{
	struct move_job M = {J, mv, 0};

	if (tail_moves(J, d0, mv, mvw, 0) == UINT64_MAX)
		return 0;
	M.nmv = tail_moves(J, d0, mv, mvw, 1);
	if (M.nmv > 0)
		sm__pl_parallel(move_part, &M, M.nmv >= 64 ? sm__pl_threads() : 1);
	return 1;
}

/* A part's buffers for blocks of B rows, to a whole number of cache lines. */
static uint64_t part_bytes(uint64_t g, uint64_t B, size_t xs)
{
	return (g * B * (xs + sizeof(float)) + 63) / 64 * 64;
}

/* Stripe s's log words for blocks of B rows: its full blocks and its partial ones. */
static uint64_t stripe_words(const struct block_job *J, unsigned s, uint64_t B)
{
	return (J->edge[s + 1] - J->edge[s]) / B + J->gr->g;
}

/* The logs' words, and the list's, for blocks of B rows. */
static uint64_t block_words(const struct block_job *J, uint64_t B)
{
	uint64_t w = 0;
	unsigned s;

	for (s = 0; s < BLOCK_STRIPES; s++)
		w += stripe_words(J, s, B);
	return w;
}

enum sm__pl_blocks_way sm__pl_near_blocks(const struct grid *gr, void *x, float *t, int f64,
					  uint64_t lo, uint64_t n, uint64_t *scratch, uint64_t words,
					  void *buf, uint64_t buf_bytes, uint64_t *bounds,
					  uint64_t *nnear, struct near_blocks *nb)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const uint64_t g = gr->g;
	struct block_job J;
	uint64_t front[BLOCK_STRIPES], at[SM_MODEL_GRID_MAX_SIDE], L = 0, B, c, sum;
	unsigned s, parts;

	*nnear = 0;
	if (!sm__pl_index_blocks || n < SM__PL_STRIPES_MIN_ROWS ||
	    !sm__pl_near_share_below(gr, x, f64, lo, n, 1, 2))
		return SM__PL_BLOCKS_DECLINED;
	memset(&J, 0, sizeof(J));
	J.gr = gr;
	J.x = (unsigned char *)x + xs * lo;
	J.t = t + lo;
	J.f64 = f64;
	for (s = 0; s <= BLOCK_STRIPES; s++)
		J.edge[s] = n * s / BLOCK_STRIPES;
	/* B: the smallest number of rows whose logs and list fit twice in the scratch, the list
	 * beside the slab sorts' counters; doubled while eight parts' buffers fit in buf, up to
	 * BLOCK_MAX_FILL rows. B depends on n, g and the rows' size alone, not on the threads. */
	for (B = BLOCK_MIN_ROWS; B <= BLOCK_MAX_ROWS; B *= 2) {
		L = block_words(&J, B);
		if (2 * L <= words && L + SM__PL_MAX_THREADS * g * g <= words)
			break;
	}
	if (B > BLOCK_MAX_ROWS || part_bytes(g, B, xs) > buf_bytes)
		return SM__PL_BLOCKS_DECLINED;
	while (2 * B <= BLOCK_MAX_FILL && BLOCK_STRIPES * part_bytes(g, 2 * B, xs) <= buf_bytes) {
		B *= 2;
		L = block_words(&J, B);
	}
	J.B = B;
	J.part_bytes = part_bytes(g, B, xs);
	parts = sm__pl_threads() < BLOCK_STRIPES ? sm__pl_threads() : BLOCK_STRIPES;
	if (parts > buf_bytes / J.part_bytes)
		parts = (unsigned)(buf_bytes / J.part_bytes);
	J.buf = buf;
	for (sum = 0, s = 0; s < BLOCK_STRIPES; s++) {
		J.log[s] = scratch + L + sum; /* the list's L words first, the logs behind */
		sum += stripe_words(&J, s, B);
	}
	atomic_init(&J.next, 0);
	sm__pl_parallel(block_part, &J, parts);
	for (*nnear = 0, s = 0; s < BLOCK_STRIPES; s++)
		*nnear += J.kept[s];
	if (*nnear > n - *nnear) {
		(void)close_up(J.x, J.t, xs, J.edge, J.kept, front, BLOCK_STRIPES, sm__pl_threads());
		return SM__PL_BLOCKS_IN_PLACE;
	}
	/* The slabs go to the last nnear rows: the blocks lying there move to the gaps below them,
	 * or, where the gaps are too broken up for them, every stripe's blocks to the front. */
	if (!clear_tail(&J, n - *nnear, scratch, L)) {
		(void)close_up(J.x, J.t, xs, J.edge, J.kept, front, BLOCK_STRIPES, sm__pl_threads());
		for (s = 0; s < BLOCK_STRIPES; s++)
			for (c = 0; c < J.nlog[s]; c++)
				J.log[s][c] -= (J.edge[s] - front[s]) << SM__PL_BLOCK_START;
	}
	/* The list: slab by slab, each slab's blocks stripe by stripe in their order; the slabs'
	 * rows to their places in the last nnear rows. */
	memset(at, 0, g * sizeof(at[0]));
	for (s = 0; s < BLOCK_STRIPES; s++)
		for (c = 0; c < J.nlog[s]; c++)
			at[J.log[s][c] >> LOG_SLAB & LOG_SLAB_MASK]++;
	for (sum = 0, c = 0; c < g; c++) {
		const uint64_t k = at[c];

		nb->first[c] = sum;
		at[c] = sum;
		sum += k;
	}
	nb->first[g] = sum;
	for (s = 0; s < BLOCK_STRIPES; s++)
		for (c = 0; c < J.nlog[s]; c++) {
			const uint64_t e = J.log[s][c];

			scratch[at[e >> LOG_SLAB & LOG_SLAB_MASK]++] =
				(sm__pl_block_at(e) + lo) << SM__PL_BLOCK_START |
				(e & SM__PL_BLOCK_ROWS_MASK);
		}
	nb->list = scratch;
	nb->words = L;
	for (sum = lo + n - *nnear, c = 0; c < g; c++) {
		bounds[c] = sum;
		for (s = 0; s < BLOCK_STRIPES; s++)
			sum += J.rows[s][c];
	}
	bounds[g] = sum;
	return SM__PL_BLOCKS_LISTED;
}
