/*
 * The grid indices of many rows at once (grid.h), for build_index's sort (build_index_sort.c,
 * build_index_compact.c, build_index_slab.c): each row's sm__pl_axis_bin along one axis or all
 * three, a slab sort's key (the grid cell y g + z) and the near split's bucket (the x slab of a
 * row whose grid cell the cover flags, g when not). Each gives
 * the one-row arithmetic's numbers; for float32 rows where the CPU has AVX2, eight rows an
 * instruction, in float arithmetic where that is exact (fbins8_f32), else in double; float64
 * rows four an instruction in double. The classification is much of the sort's time.
 */
#include <stdint.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "common/parallel.h"
#include "grid.h"

#define BINS_RUN 256u /* rows whose grid indices sm__pl_near_buckets' other loop finds at once */

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

/* The eight-row loops' constants for grid gr: bins8_f32's (inv_w, gd, top) and fbins8_f32's (fw,
 * lo, hi, g, gtop). */
struct bins8_k {
	__m256d inv_w, gd, top;
	__m256 fw, lo, hi;
	__m256i g, gtop;
};

__attribute__((target("avx2"))) static inline struct bins8_k bins8_consts(const struct grid *gr)
{
	struct bins8_k k;

	k.inv_w = _mm256_set1_pd(gr->inv_w);
	k.gd = _mm256_set1_pd(gr->gd);
	k.top = _mm256_set1_pd(gr->gd - 1.0);
	k.fw = _mm256_set1_ps((float)gr->inv_w);
	k.lo = _mm256_set1_ps(fbins_guard(gr->g));
	k.hi = _mm256_set1_ps(1.0f - fbins_guard(gr->g));
	k.g = _mm256_set1_epi32((int)gr->g);
	k.gtop = _mm256_set1_epi32((int)gr->g - 1);
	return k;
}

/* The grid indices of eight float32 rows (their 24 floats at r) along y and z, and along x when
 * bx is not NULL: fbins8_f32's when it is exact for every lane of every axis asked (fast), else
 * bins8_f32's for all of them. One decision for the eight rows: deciding axis by axis cost the
 * near split 3.40 against 2.47-2.69 ns a row. */
__attribute__((target("avx2"), always_inline)) static inline void
rows8_bins(const struct bins8_k *k, const float *r, int fast, __m256i *bx, __m256i *by,
	   __m256i *bz)
{
	const __m256 a = _mm256_loadu_ps(r), b = _mm256_loadu_ps(r + 8);
	const __m256 c = _mm256_loadu_ps(r + 16);
	const __m256 vy = axis8_f32(a, b, c, 1), vz = axis8_f32(a, b, c, 2);
	const __m256 vx = bx != NULL ? axis8_f32(a, b, c, 0) : vy;
	__m256 bad = _mm256_setzero_ps();

	if (fast) {
		if (bx != NULL)
			*bx = fbins8_f32(vx, k->fw, k->lo, k->hi, k->g, k->gtop, &bad);
		*by = fbins8_f32(vy, k->fw, k->lo, k->hi, k->g, k->gtop, &bad);
		*bz = fbins8_f32(vz, k->fw, k->lo, k->hi, k->g, k->gtop, &bad);
	}
	if (!fast || _mm256_movemask_ps(bad) != 0) {
		if (bx != NULL)
			*bx = bins8_f32(vx, k->inv_w, k->gd, k->top);
		*by = bins8_f32(vy, k->inv_w, k->gd, k->top);
		*bz = bins8_f32(vz, k->inv_w, k->gd, k->top);
	}
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
		const struct bins8_k k8 = bins8_consts(gr);

		for (; i + 8 <= n; i += 8) {
			const float *r = xf + 3 * i;
			const __m256 a = _mm256_loadu_ps(r), b = _mm256_loadu_ps(r + 8);
			const __m256 c = _mm256_loadu_ps(r + 16);
			const __m256 v = axis8_f32(a, b, c, axis);
			__m256 bad = _mm256_setzero_ps();
			__m256i bins = sm__pl_bins_float
					       ? fbins8_f32(v, k8.fw, k8.lo, k8.hi, k8.g, k8.gtop, &bad)
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
	const struct bins8_k k = bins8_consts(gr);
	const __m256i g = k.g, one = _mm256_set1_epi32(1), seven = _mm256_set1_epi32(7);
	const int fast = sm__pl_bins_float;
	uint64_t i = 0;

	for (; i + 8 <= n; i += 8) {
		__m256i bx, by, bz;

		rows8_bins(&k, x + 3 * i, fast, &bx, &by, &bz);
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

/* Rows [0, n) of float32 x eight at a time: y g + z from one load of the rows, y and z by
 * fbins8_f32 (bins8_f32 for eight rows it flags); returns the rows done. Until 2026-12-02 the
 * slab sort found y and z in two calls of grid_bins_avx2, each loading and permuting the rows
 * (one binary against the other, serial runs at 1e7 cells, 30 halos, 16 pairs twice:
 * build_index 75.8 -> 69.9 and 78.1 -> 72.2 ms, pair ratios 0.918 and 0.894). */
__attribute__((target("avx2"))) static uint64_t slab_keys_avx2(const struct grid *gr,
							      const float *x, uint64_t n,
							      uint32_t *key)
{
	const struct bins8_k k = bins8_consts(gr);
	const int fast = sm__pl_bins_float;
	uint64_t i = 0;

	for (; i + 8 <= n; i += 8) {
		__m256i by, bz;

		rows8_bins(&k, x + 3 * i, fast, NULL, &by, &bz);
		_mm256_storeu_si256((__m256i *)(void *)(key + i),
				    _mm256_add_epi32(_mm256_mullo_epi32(by, k.g), bz));
	}
	return i;
}
#endif

int sm__pl_bins_avx2 = 1;
int sm__pl_bins_float = 1;

void sm__pl_slab_keys(const struct grid *gr, const void *x, int f64, uint64_t n, uint32_t *key)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	const uint32_t g = (uint32_t)gr->g;
	uint64_t i = 0;

#if defined(__x86_64__) && defined(__GNUC__)
	if (!f64 && sm__pl_bins_avx2 != 0 && sm__cpu_avx2())
		i = slab_keys_avx2(gr, x, n, key);
#endif
	for (; i < n; i += BINS_RUN) { /* float64 and the tail: axis by axis */
		const uint64_t m = n - i < BINS_RUN ? n - i : BINS_RUN;
		uint32_t by[BINS_RUN], bz[BINS_RUN];
		uint64_t j;

		sm__pl_grid_bins(gr, (const unsigned char *)x + xs * i, f64, 1, m, by, NULL, NULL);
		sm__pl_grid_bins(gr, (const unsigned char *)x + xs * i, f64, 2, m, bz, NULL, NULL);
		for (j = 0; j < m; j++)
			key[i + j] = by[j] * g + bz[j];
	}
}

void sm__pl_near_buckets(const struct grid *gr, const void *x, int f64, uint64_t n, uint16_t *bk)
{
	const size_t xs = f64 ? 3 * sizeof(double) : 3 * sizeof(float);
	uint64_t i = 0;

#if defined(__x86_64__) && defined(__GNUC__)
	if (!f64 && sm__pl_bins_avx2 != 0 && sm__cpu_avx2())
		i = near_buckets_avx2(gr, x, n, bk);
#endif
	for (; i < n; i += BINS_RUN) { /* float64 and the tail: the grid indices four rows an
					   * instruction with AVX2, the cover bits one at a time */
		const uint64_t m = n - i < BINS_RUN ? n - i : BINS_RUN;
		uint32_t bx[BINS_RUN], by[BINS_RUN], bz[BINS_RUN];
		uint64_t j;

		sm__pl_grid_bins(gr, (const unsigned char *)x + xs * i, f64, 3, m, bx, by, bz);
		for (j = 0; j < m; j++)
			bk[i + j] = (uint16_t)sm__pl_near_bucket(gr, bx[j], by[j], bz[j]);
	}
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
				out[i] = (uint32_t)sm__pl_row_bin(gr, r, f64, k);
		}
	}
}

