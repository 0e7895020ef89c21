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
 * buckets in runs, with AVX2 where the CPU has it. Unless most rows are near, the near split
 * compacts them first and distributes them alone (the comment above sm__pl_split_near's helpers).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

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

/* Phase 1 finds its rows' buckets BUCKET_RUN at a time, in a loop of their own (the grid indices
 * of four rows an instruction where the CPU has AVX2, sm__pl_grid_bins), before it moves them: the
 * classification had been most of the near split's time (1e7 cells, 2 CPUs: 0.035-0.043 s of its
 * 0.064-0.076 s with the moves left out). */
#define BUCKET_RUN 256u

#if defined(__x86_64__) && defined(__GNUC__)
/* sm__pl_axis_bin of four coordinates: the same double product and wrap (compare and blend of the
 * same sums), then the truncation of a value clamped into [0, g - 1] first (max with 0 turns a NaN
 * or a negative into 0, min with g - 1 the rest above; truncating the clamped value gives the
 * scalar's clamped truncation). */
__attribute__((target("avx2"))) static inline __m128i axis_bins_avx2(__m256d x, __m256d inv_w,
								     __m256d gd, __m256d top)
{
	__m256d t = _mm256_mul_pd(x, inv_w);
	const __m256d lt = _mm256_cmp_pd(t, _mm256_setzero_pd(), _CMP_LT_OQ);
	const __m256d ge = _mm256_andnot_pd(lt, _mm256_cmp_pd(t, gd, _CMP_GE_OQ));

	t = _mm256_blendv_pd(t, _mm256_add_pd(t, gd), lt);
	t = _mm256_blendv_pd(t, _mm256_sub_pd(t, gd), ge);
	return _mm256_cvttpd_epi32(_mm256_min_pd(_mm256_max_pd(t, _mm256_setzero_pd()), top));
}

/* Coordinate k (0, 1, 2) of eight float32 rows r[0..23] loaded as a (0-7), b (8-15), c (16-23):
 * x = a0 a3 a6 b1 b4 b7 c2 c5, y = a1 a4 a7 b2 b5 c0 c3 c6, z = a2 a5 b0 b3 b6 c1 c4 c7, each by
 * three permutes and two blends. */
__attribute__((target("avx2"))) static inline __m256 axis8_f32(__m256 a, __m256 b, __m256 c, int k)
{
	if (k == 0)
		return _mm256_blend_ps(
			_mm256_blend_ps(_mm256_permutevar8x32_ps(a, _mm256_setr_epi32(0, 3, 6, 0, 0, 0, 0, 0)),
					_mm256_permutevar8x32_ps(b, _mm256_setr_epi32(0, 0, 0, 1, 4, 7, 0, 0)),
					0x38),
			_mm256_permutevar8x32_ps(c, _mm256_setr_epi32(0, 0, 0, 0, 0, 0, 2, 5)), 0xC0);
	if (k == 1)
		return _mm256_blend_ps(
			_mm256_blend_ps(_mm256_permutevar8x32_ps(a, _mm256_setr_epi32(1, 4, 7, 0, 0, 0, 0, 0)),
					_mm256_permutevar8x32_ps(b, _mm256_setr_epi32(0, 0, 0, 2, 5, 0, 0, 0)),
					0x18),
			_mm256_permutevar8x32_ps(c, _mm256_setr_epi32(0, 0, 0, 0, 0, 0, 3, 6)), 0xE0);
	return _mm256_blend_ps(
		_mm256_blend_ps(_mm256_permutevar8x32_ps(a, _mm256_setr_epi32(2, 5, 0, 0, 0, 0, 0, 0)),
				_mm256_permutevar8x32_ps(b, _mm256_setr_epi32(0, 0, 0, 3, 6, 0, 0, 0)),
				0x1C),
		_mm256_permutevar8x32_ps(c, _mm256_setr_epi32(0, 0, 0, 0, 0, 1, 4, 7)), 0xE0);
}

/* The grid indices of eight float32 values: two axis_bins_avx2. */
__attribute__((target("avx2"))) static inline __m256i bins8_f32(__m256 v, __m256d inv_w, __m256d gd,
								__m256d top)
{
	return _mm256_set_m128i(
		axis_bins_avx2(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), inv_w, gd, top),
		axis_bins_avx2(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), inv_w, gd, top));
}

/* bins8_f32 in float arithmetic, twice the lanes an instruction: the float coordinate times
 * inv_w rounded to float, its floor, and the wrap and clamp of sm__pl_axis_bin on the integers
 * (a floor below 0 takes g, one at g or above gives it back, then [0, g - 1]; the scalar's
 * truncation after its wrap clamps to the same index). The float product differs from the
 * double one by at most |t| 2^-23 (the two roundings of inv_w and of the product; |t| < 1.5 g
 * for coordinates within half a box of the box), so where its fraction lies at least
 * fbins_guard (g + 1) 2^-20 from 0 and from 1, both have the same floor. Lanes whose fraction
 * does not (an integer product, a value too large to have a fraction, not a number) are
 * flagged in *bad: the caller takes bins8_f32 for those eight values. Checked by hand on every
 * float32 in [-box/2, 3 box/2) for twelve grids (no difference). 1e7 cells, one binary with
 * and without, 10 alternating runs each: build_index 0.1225 -> 0.1134 s (the mock's 30 halos),
 * 0.0490 -> 0.0451 s (3 halos): the near split's classification went from 11-14 to 7-8 cycles a
 * row. */
__attribute__((target("avx2"))) static inline __m256i fbins8_f32(__m256 v, __m256 inv_w, __m256 lo,
								 __m256 hi, __m256i g, __m256i top,
								 __m256 *bad)
{
	const __m256 t = _mm256_mul_ps(v, inv_w);
	const __m256 fl = _mm256_round_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
	const __m256 fr = _mm256_sub_ps(t, fl);
	const __m256i zero = _mm256_setzero_si256();
	__m256i b = _mm256_cvttps_epi32(fl);

	*bad = _mm256_or_ps(*bad, _mm256_or_ps(_mm256_cmp_ps(fr, lo, _CMP_NGE_UQ),
					       _mm256_cmp_ps(fr, hi, _CMP_NLE_UQ)));
	b = _mm256_add_epi32(b, _mm256_and_si256(_mm256_cmpgt_epi32(zero, b), g));
	b = _mm256_sub_epi32(b, _mm256_and_si256(_mm256_cmpgt_epi32(b, top), g));
	return _mm256_min_epi32(_mm256_max_epi32(b, zero), top);
}

/* fbins8_f32's guard for grid side g. */
static inline float fbins_guard(uint64_t g)
{
	return (float)((double)(g + 1) * 0x1p-20);
}

/* Rows [0, n) four at a time, float32 rows along one axis eight at a time (the tail left): their
 * grid indices along axis (axis < 3) or, with axis 3, each of the three into bx, by, bz. Returns
 * the rows done. */
__attribute__((target("avx2"))) static uint64_t grid_bins_avx2(const struct grid *gr, const void *x,
							       int f64, int axis, uint64_t n,
							       uint32_t *bx, uint32_t *by,
							       uint32_t *bz)
{
	const __m256d inv_w = _mm256_set1_pd(gr->inv_w), gd = _mm256_set1_pd(gr->gd);
	const __m256d top = _mm256_set1_pd(gr->gd - 1.0);
	const float *xf = x;
	const double *xd = x;
	uint64_t i = 0;
	int k;

	if (!f64 && axis < 3) {
		const __m256 fw = _mm256_set1_ps((float)gr->inv_w);
		const __m256 lo = _mm256_set1_ps(fbins_guard(gr->g));
		const __m256 hi = _mm256_set1_ps(1.0f - fbins_guard(gr->g));
		const __m256i g = _mm256_set1_epi32((int)gr->g);
		const __m256i gtop = _mm256_set1_epi32((int)gr->g - 1);

		for (; i + 8 <= n; i += 8) {
			const float *r = xf + 3 * i;
			const __m256 a = _mm256_loadu_ps(r), b = _mm256_loadu_ps(r + 8);
			const __m256 c = _mm256_loadu_ps(r + 16);
			const __m256 v = axis8_f32(a, b, c, axis);
			__m256 bad = _mm256_setzero_ps();
			__m256i bins = sm__pl_bins_float ? fbins8_f32(v, fw, lo, hi, g, gtop, &bad)
							 : _mm256_setzero_si256();

			if (!sm__pl_bins_float || _mm256_movemask_ps(bad) != 0)
				bins = bins8_f32(v, inv_w, gd, top);
			_mm256_storeu_si256((__m256i *)(void *)(bx + i), bins);
		}
	}
	for (; i + 4 <= n; i += 4) {
		__m256d v[3];

		for (k = 0; k < 3; k++) {
			if (axis < 3 && k != axis)
				continue;
			if (f64) {
				const double *r = xd + 3 * i + k;

				v[k] = _mm256_setr_pd(r[0], r[3], r[6], r[9]);
			} else {
				const float *r = xf + 3 * i + k;

				v[k] = _mm256_cvtps_pd(_mm_setr_ps(r[0], r[3], r[6], r[9]));
			}
		}
		if (axis < 3) {
			_mm_storeu_si128((__m128i *)(void *)(bx + i),
					 axis_bins_avx2(v[axis], inv_w, gd, top));
		} else {
			_mm_storeu_si128((__m128i *)(void *)(bx + i), axis_bins_avx2(v[0], inv_w, gd, top));
			_mm_storeu_si128((__m128i *)(void *)(by + i), axis_bins_avx2(v[1], inv_w, gd, top));
			_mm_storeu_si128((__m128i *)(void *)(bz + i), axis_bins_avx2(v[2], inv_w, gd, top));
		}
	}
	return i;
}

/* The near split's buckets of float32 rows [0, n) eight at a time (the tail left): the rows'
 * coordinates gathered axis by axis from three loads (axis8_f32), their grid indices, the
 * grid cell's cover bit read with a gather of the four bytes from the cell's (the cover has room
 * past its last flag byte: index_cell_fill, 8 bytes a grid cell), the bucket the x slab when
 * flagged, g when not. Returns the rows done. */
__attribute__((target("avx2"))) static uint64_t near_buckets_avx2(const struct grid *gr,
								  const float *x, uint64_t n,
								  uint16_t *bk)
{
	const __m256d inv_w = _mm256_set1_pd(gr->inv_w), gd = _mm256_set1_pd(gr->gd);
	const __m256d top = _mm256_set1_pd(gr->gd - 1.0);
	const __m256i g = _mm256_set1_epi32((int)gr->g), one = _mm256_set1_epi32(1);
	const __m256i seven = _mm256_set1_epi32(7), gtop = _mm256_set1_epi32((int)gr->g - 1);
	const __m256 fw = _mm256_set1_ps((float)gr->inv_w);
	const __m256 lo = _mm256_set1_ps(fbins_guard(gr->g));
	const __m256 hi = _mm256_set1_ps(1.0f - fbins_guard(gr->g));
	const int fast = sm__pl_bins_float;
	uint64_t i = 0;

	for (; i + 8 <= n; i += 8) {
		const float *r = x + 3 * i;
		const __m256 a = _mm256_loadu_ps(r), b = _mm256_loadu_ps(r + 8);
		const __m256 c = _mm256_loadu_ps(r + 16);
		const __m256 vx = axis8_f32(a, b, c, 0), vy = axis8_f32(a, b, c, 1);
		const __m256 vz = axis8_f32(a, b, c, 2);
		__m256 bad = _mm256_setzero_ps();
		__m256i bx, by, bz;

		if (fast) {
			bx = fbins8_f32(vx, fw, lo, hi, g, gtop, &bad);
			by = fbins8_f32(vy, fw, lo, hi, g, gtop, &bad);
			bz = fbins8_f32(vz, fw, lo, hi, g, gtop, &bad);
		}
		if (!fast || _mm256_movemask_ps(bad) != 0) {
			bx = bins8_f32(vx, inv_w, gd, top);
			by = bins8_f32(vy, inv_w, gd, top);
			bz = bins8_f32(vz, inv_w, gd, top);
		}
		const __m256i key = _mm256_add_epi32(
			_mm256_mullo_epi32(_mm256_add_epi32(_mm256_mullo_epi32(bx, g), by), g), bz);
		const __m256i w = _mm256_i32gather_epi32((const int *)(const void *)gr->cover,
							 _mm256_srli_epi32(key, 3), 1);
		const __m256i bit = _mm256_and_si256(
			_mm256_srlv_epi32(w, _mm256_and_si256(key, seven)), one);
		const __m256i bkt = _mm256_blendv_epi8(g, bx, _mm256_cmpeq_epi32(bit, one));

		_mm_storeu_si128((__m128i *)(void *)(bk + i),
				 _mm_packus_epi32(_mm256_castsi256_si128(bkt),
						  _mm256_extracti128_si256(bkt, 1)));
	}
	return i;
}
#endif

int sm__pl_bins_avx2 = 1;
int sm__pl_bins_float = 1;

void sm__pl_near_buckets(const struct grid *gr, const void *x, int f64, uint64_t n, uint16_t *bk)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	uint64_t i = 0;

#if defined(__x86_64__) && defined(__GNUC__)
	if (!f64 && sm__pl_bins_avx2 != 0 && sm__cpu_avx2())
		i = near_buckets_avx2(gr, x, n, bk);
#endif
	for (; i < n; i++)
		bk[i] = (uint16_t)bucket_of(gr, (const unsigned char *)x + xs * i, 0, f64, 1);
}

void sm__pl_grid_bins(const struct grid *gr, const void *x, int f64, int axis, uint64_t n,
		      uint32_t *bx, uint32_t *by, uint32_t *bz)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	uint64_t i = 0;

#if defined(__x86_64__) && defined(__GNUC__)
	if (sm__pl_bins_avx2 != 0 && sm__cpu_avx2())
		i = grid_bins_avx2(gr, x, f64, axis, n, bx, by, bz);
#endif
	for (; i < n; i++) {
		const unsigned char *r = (const unsigned char *)x + xs * i;
		int k;

		for (k = 0; k < 3; k++) {
			uint32_t *out = axis < 3 ? (k == axis ? bx : NULL) : k == 0 ? bx : k == 1 ? by : bz;

			if (out != NULL)
				out[i] = (uint32_t)sm__pl_axis_bin(
					gr, f64 ? ((const double *)(const void *)r)[k]
						: ((const float *)(const void *)r)[k]);
		}
	}
}

/* The buckets (bucket_of's) of rows [0, n) of x, n at most BUCKET_RUN. */
static ALWAYS_INLINE void run_buckets(const struct grid *gr, const unsigned char *x, uint64_t n,
				      int axis, const int f64, const int cover, uint16_t *bk)
{
	uint32_t bx[BUCKET_RUN], by[BUCKET_RUN], bz[BUCKET_RUN];
	uint64_t i;

	if (!cover) {
		sm__pl_grid_bins(gr, x, f64, axis, n, bx, NULL, NULL);
		for (i = 0; i < n; i++)
			bk[i] = (uint16_t)bx[i];
		return;
	}
	if (!f64) { /* eight rows an instruction with AVX2 */
		sm__pl_near_buckets(gr, x, 0, n, bk);
		return;
	}
	/* float64: the grid indices four rows an instruction, the cover bits one at a time */
	sm__pl_grid_bins(gr, x, f64, 3, n, bx, by, bz);
	for (i = 0; i < n; i++)
		bk[i] = (uint16_t)(sm__pl_covered(gr, ((uint64_t)bx[i] * gr->g + by[i]) * gr->g + bz[i])
					   ? bx[i]
					   : gr->g);
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
 *     halos 45 %): first the near rows compacted to the front in their order, a stripe a worker
 *     thread, each to its own front (every row's bucket found, the near rows taken by the bits of
 *     a mask, near_bits), then the stripes' near rows one after the other (copied on the threads
 *     where they do not meet their place); then the near rows into their x slabs: when the far
 *     rows were at least as many, by one stable counting pass into the far rows' space right
 *     behind them (slabs_apart: the counts made by the compaction, the slab found again, a copy;
 *     the index then begins there), else by one distribution pass in place. The compaction keeps
 *     the rows' order, so its stripes change nothing but the time (8 stripes closed up one after
 *     the other: build_index 0.0978 s at 45 % near, 0.0301 s at 4.6 %; one a thread, two copied
 *     at once: 0.0949 s and 0.0289 s; the slabs behind instead of in place: 0.0973 -> 0.0834 s
 *     at 45 %, 12 alternating runs, 1e6 cells 0.0128 -> 0.0118 s).
 *     The far rows are not kept: nothing reads a cell outside the grid cells the sphere scans
 *     visit after build_index, and the arrays' tail holds what the compaction left there.
 * Measured at 1e7 cells (one binary, 8-10 alternating runs each way, 2 CPUs): taking the near
 * rows by the mask's bits instead of a test of every row's bucket, build_index 0.0373 -> 0.0310 s
 * with 3 of the mock's 30 halos (4.6 % near); compacting at 45 % near (the 30 halos) 0.0983 s
 * against 0.1055 s the dense way (at 1e6 cells 0.0097 against 0.0110 s), at the 60 halos of
 * the mock (55 % of the cells in spheres) 0.1184 against 0.1194 s: the ways cross near there.
 * Before the mask, the dense way was the faster from a fifth of the rows near.
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
#define SPLIT_PARALLEL_MIN_ROWS 131072u
#define SPARSE_STEP 64u /* every 64th row's bucket decides the way */

struct compact_job {
	const struct grid *gr;
	unsigned char *x;
	float *t;
	int f64;
	unsigned stripes;
	uint64_t edge[SPLIT_STRIPES + 1], kept[SPLIT_STRIPES];
	uint64_t front[SPLIT_STRIPES]; /* where each stripe's near rows are after the close-up */
	uint64_t slab[SPLIT_STRIPES][DIST_MAX_BUCKETS]; /* the near rows of each stripe and x slab */
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
	for (i = 0; i < n; i += BUCKET_RUN) {
		const uint64_t m = n - i < BUCKET_RUN ? n - i : BUCKET_RUN;
		uint16_t bk[BUCKET_RUN];
		uint64_t j;

		run_buckets(gr, x + xs * i, m, 0, f64, 1, bk);
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

static void compact_part(void *arg, unsigned part, unsigned parts)
{
	struct compact_job *J = arg;
	unsigned s;

	(void)part;
	(void)parts;
	while ((s = atomic_fetch_add(&J->next, 1)) < J->stripes) {
		if (J->f64)
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
	const unsigned parts = sm__pl_threads() < SPLIT_STRIPES ? sm__pl_threads() : SPLIT_STRIPES;
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
	sm__pl_parallel(compact_part, J, parts);
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

/* Stripe s's near rows (at J->front[s], J->kept[s] of them) to their x slabs' next places
 * J->slab[s][c], rows from J->x (the near rows' space is J->gap rows further on). */
static ALWAYS_INLINE void scatter_stripe(struct compact_job *J, unsigned s, const int f64)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const uint64_t a = J->front[s], b = a + J->kept[s];
	uint64_t *pos = J->slab[s], i;
	uint32_t bx[BUCKET_RUN];

	for (i = a; i < b; i += BUCKET_RUN) {
		const uint64_t m = b - i < BUCKET_RUN ? b - i : BUCKET_RUN;
		uint64_t j;

		sm__pl_grid_bins(J->gr, J->x + xs * i, f64, 0, m, bx, NULL, NULL);
		for (j = 0; j < m; j++) {
			const uint64_t p = pos[bx[j]]++;

			memcpy(J->x + xs * p, J->x + xs * (i + j), xs);
			J->t[p] = J->t[i + j];
		}
	}
}

static void scatter_part(void *arg, unsigned part, unsigned parts)
{
	struct compact_job *J = arg;
	unsigned s;

	(void)part;
	(void)parts;
	while ((s = atomic_fetch_add(&J->next, 1)) < J->stripes) {
		if (J->f64)
			scatter_stripe(J, s, 1);
		else
			scatter_stripe(J, s, 0);
	}
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
	sm__pl_parallel(scatter_part, J, J->stripes);
}

/* 1 when fewer than three fifths of every SPARSE_STEP-th row of [lo, lo + n) are near. */
static int near_few(const struct grid *gr, const void *xv, int f64, uint64_t lo, uint64_t n)
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
	return 5 * near < 3 * m;
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

	if (n < SPLIT_PARALLEL_MIN_ROWS)
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

void sm__pl_split_near(const struct grid *gr, void *x, float *t, int f64, uint64_t *bounds,
		       uint64_t lo, uint64_t n)
{
	struct compact_job J;
	uint64_t nnear;

	if (n >= SPLIT_PARALLEL_MIN_ROWS && near_few(gr, x, f64, lo, n)) {
		nnear = compact_near(&J, gr, x, t, f64, lo, n);
		if (nnear <= n - nnear)
			slabs_apart(&J, bounds, lo, nnear);
		else if (!stripes_pass(gr, x, t, f64, 0, bounds, lo, nnear))
			sm__pl_distribute(gr, x, t, f64, NULL, bounds, lo, nnear, 1, 0);
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
