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
	/* the close-up's copy on the worker threads: n bytes from src to dst, which do not meet */
	unsigned char *dst;
	const unsigned char *src;
	uint64_t n;
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

/* Part p of the close-up's copy: its share of the bytes, in 64-byte pieces. */
static void copy_part(void *arg, unsigned part, unsigned parts)
{
	struct compact_job *J = arg;
	const uint64_t lines = (J->n + 63) / 64;
	const uint64_t a = lines * part / parts * 64, b0 = lines * (part + 1) / parts * 64;
	const uint64_t b = b0 < J->n ? b0 : J->n;

	if (a < b)
		memcpy(J->dst + a, J->src + a, b - a);
}

/* n bytes from src to dst (apart), on parts threads. */
static void copy_apart(struct compact_job *J, unsigned char *dst, const unsigned char *src,
		       uint64_t n, unsigned parts)
{
	J->dst = dst;
	J->src = src;
	J->n = n;
	sm__pl_parallel(copy_part, J, parts);
}

/* Rows [lo, lo + n): the near rows to [lo, lo + returned), in their order; J (the caller's)
 * keeps each stripe's place and x slab counts. */
static uint64_t compact_near(struct compact_job *J, const struct grid *gr, void *xv, float *tv,
			     int f64, uint64_t lo, uint64_t n)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const unsigned parts = sm__pl_threads() < COMPACT_STRIPES ? sm__pl_threads() : COMPACT_STRIPES;
	uint64_t front;
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
	front = J->kept[0];
	for (s = 1; s < J->stripes; s++) {
		J->front[s] = front;
		if (front + J->kept[s] <= J->edge[s] && parts > 1) {
			copy_apart(J, J->x + xs * front, J->x + xs * J->edge[s], xs * J->kept[s], parts);
			copy_apart(J, (unsigned char *)(J->t + front),
				   (const unsigned char *)(J->t + J->edge[s]), J->kept[s] * sizeof(float),
				   parts);
		} else {
			memmove(J->x + xs * front, J->x + xs * J->edge[s], xs * J->kept[s]);
			memmove(J->t + front, J->t + J->edge[s], J->kept[s] * sizeof(float));
		}
		front += J->kept[s];
	}
	return front;
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
