/*
 * Stage build_index of the distributed run (docs/MPI.md): the halo index, a CSR over a grid of
 * hg^3 cells, hg = sm_model_halo_grid_side(BoxSize, largest 2 R200) (the model contract's, the
 * estimator's too), a cell at least one sphere diameter wide: each halo's sphere (with the margin
 * SM_MODEL_HALO_GRID_MARGIN of the box) overlaps at most 2 cells an axis, 8 in all.
 * halo_grid_start[hg^3 + 1] and halo_grid_halos[K min(8, hg^3)] (uint32), halos ascending in each
 * cell's list; stream_cells looks every cell's halos up in it, each cell's halo-grid cell found
 * by sm__pl_grid_cells (the end of this file).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "distributed.h"
#include "run.h"

/* Halo grid cells along one axis overlapping [c - s, c + s] (s with the margin), periodic,
 * distinct: 1 or 2 of them (the cell width is at least 2 s). */
static int axis_cells(const struct dist *D, double c, double s, uint64_t out[2])
{
	int64_t g = (int64_t)D->hg;
	double flo = floor((c - s) * D->inv_w), fhi = floor((c + s) * D->inv_w);
	int64_t lo, hi, a, b;

	/* The selected halos are checked (centre in [0, box), 2 R200 + margin at most 2 box + 1e-5
	 * box): the cells lie within a few boxes of the grid, far inside int64; anything else is a
	 * programming error, answered with the whole axis' first cell rather than an overflow. */
	if (!(flo >= -4.0 * (double)g && fhi <= 5.0 * (double)g)) {
		out[0] = 0;
		return 1;
	}
	lo = (int64_t)flo;
	hi = (int64_t)fhi;

	/* Three cells only by rounding, the interval being at most one cell wide: both ends then
	 * lie within rounding of a boundary, and the margin keeps every sphere cell away from them. */
	if (hi - lo >= 2)
		lo = hi = lo + 1;
	a = ((lo % g) + g) % g;
	b = ((hi % g) + g) % g;

	out[0] = (uint64_t)a;
	if (b == a)
		return 1;
	out[1] = (uint64_t)b;
	return 2;
}


/* The halo grid cells halo h's sphere overlaps, in x, y, z order; returns how many (1 to 8). */
static int halo_cells(const struct dist *D, uint64_t h, uint64_t cells[8])
{
	const double *cd = &D->R->halo_center[3 * h];
	double s = 2.0 * D->R->halo_r200[h] + SM_MODEL_HALO_GRID_MARGIN * D->R->box;
	uint64_t ax[2], ay[2], az[2];
	int nx = axis_cells(D, cd[0], s, ax), ny = axis_cells(D, cd[1], s, ay);
	int nz = axis_cells(D, cd[2], s, az), i, j, l, n = 0;

	for (i = 0; i < nx; i++)
		for (j = 0; j < ny; j++)
			for (l = 0; l < nz; l++)
				cells[n++] = (ax[i] * D->hg + ay[j]) * D->hg + az[l];
	return n;
}

/* Stage build_index: the halo index (CSR over the hg^3 halo grid). */
int sm__pl_build_halo_index(struct dist *D)
{
	struct run *R = D->R;
	uint64_t k = R->k, h, c, cap, nent, cells[8];
	double smax = 0;
	int rc, i, n;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_BUILD_INDEX, -1, k)) != 0)
		return rc;
	for (h = 0; h < k; h++)
		if (2.0 * R->halo_r200[h] > smax)
			smax = 2.0 * R->halo_r200[h];
	D->hg = k > 0 ? sm_model_halo_grid_side(R->box, smax) : 1;
	D->hg3 = D->hg * D->hg * D->hg;
	D->inv_w = (double)D->hg / R->box;
	R->r->grid_side = D->hg;
	cap = D->hg3 < SM_MODEL_HALO_GRID_CELLS_PER_HALO ? D->hg3
							 : SM_MODEL_HALO_GRID_CELLS_PER_HALO;
	if (k > UINT32_MAX / SM_MODEL_HALO_GRID_CELLS_PER_HALO)
		return sm_error_set(R->err, SM_EOVERFLOW, "'%s': %llu halos: too many for the "
				    "halo index", sm__pl_cat_file(R), (unsigned long long)k);
	if ((rc = sm__pl_palloc_filled(R, &D->hg_start, SM_ARRAY_HALO_GRID_START,
					4 * (D->hg3 + 1))) != 0 ||
	    (rc = sm__pl_palloc(R, &D->hg_halos, SM_ARRAY_HALO_GRID_HALOS, 4 * k * cap)) != 0)
		return rc;
	/* Counts into start[c + 1], offsets, fill with start[c] as the cursor (halos ascending),
	 * then shift back: start[c] is where cell c's list begins. */
	memset(D->hg_start, 0, 4 * (D->hg3 + 1));
	for (h = 0; h < k; h++)
		for (i = 0, n = halo_cells(D, h, cells); i < n; i++)
			D->hg_start[cells[i] + 1]++;
	D->hg_lmax = 0;
	for (c = 0; c < D->hg3; c++) {
		if (D->hg_start[c + 1] > D->hg_lmax)
			D->hg_lmax = D->hg_start[c + 1];
		D->hg_start[c + 1] += D->hg_start[c];
	}
	nent = D->hg_start[D->hg3];
	if (nent > k * cap)
		return sm_error_set(R->err, SM_EINVAL, "pipeline: halo index holds %llu entries, "
				    "over its bound %llu", (unsigned long long)nent,
				    (unsigned long long)(k * cap));
	for (h = 0; h < k; h++)
		for (i = 0, n = halo_cells(D, h, cells); i < n; i++)
			D->hg_halos[D->hg_start[cells[i]]++] = (uint32_t)h;
	for (c = D->hg3; c > 0; c--)
		D->hg_start[c] = D->hg_start[c - 1];
	D->hg_start[0] = 0;
	sm__pl_progress(R, SM_STAGE_BUILD_INDEX, -1, k, k);
	sm__pl_stage_end(R);
	return 0;
}

/* ---- a cell's halo-grid cell (stream_cells looks every cell up with it) ------------------------ */

/* The halo-grid cell along one axis of a coordinate within half a box of the box: wrapped into
 * [0, box), times hg / box, truncated, at most hg - 1. */
static inline uint32_t axis_cell(double x, double box, double inv_w, double top)
{
	double v;

	x = x < 0 ? x + box : x >= box ? x - box : x;
	v = x * inv_w;
	v = v < top ? v : top;
	return (uint32_t)(int32_t)v;
}

/* Halo-grid cells of cells [0, n) of float32 or float64 positions into gc: a loop of its own; f64
 * is a constant at each call. (A float32 version, exact by falling back to this arithmetic near
 * cell boundaries, vectorised 4 cells an instruction with SSE, was no faster here; the same
 * double arithmetic four cells at a time with AVX2, sm__pl_grid_cells below, is: 13 idle-gated
 * interleaved pairs of the distributed run at 1e7 cells, 0.832 of the time; 15 at 1e6, 0.881.) */
static inline void grid_cells(const void *restrict x, const int f64, uint32_t *restrict gc,
			      uint64_t n, double box, double inv_w, uint32_t hg)
{
	const double top = (double)(hg - 1);
	const float *xf = x;
	const double *xd = x;
	uint64_t i;

	for (i = 0; i < n; i++)
		gc[i] = (axis_cell(f64 ? xd[3 * i] : xf[3 * i], box, inv_w, top) * hg +
			 axis_cell(f64 ? xd[3 * i + 1] : xf[3 * i + 1], box, inv_w, top)) * hg +
			axis_cell(f64 ? xd[3 * i + 2] : xf[3 * i + 2], box, inv_w, top);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* grid_cells four cells at a time, for CPUs with AVX2 (chosen at the first call): the same double
 * arithmetic as axis_cell (the float widened exactly, the wrap by compare and blend of the same
 * sums, the same product, min(v, top) being v < top ? v : top, the same truncation), so the same
 * grid cells; the tail by grid_cells. */
__attribute__((target("avx2"))) static inline __m128i axis_cells_avx2(__m256d x, __m256d box,
								      __m256d inv_w, __m256d top)
{
	const __m256d lt = _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_LT_OQ);
	const __m256d ge = _mm256_andnot_pd(lt, _mm256_cmp_pd(x, box, _CMP_GE_OQ));

	x = _mm256_blendv_pd(x, _mm256_add_pd(x, box), lt);
	x = _mm256_blendv_pd(x, _mm256_sub_pd(x, box), ge);
	return _mm256_cvttpd_epi32(_mm256_min_pd(_mm256_mul_pd(x, inv_w), top));
}

__attribute__((target("avx2"))) static uint64_t grid_cells_avx2(const void *x, int f64, uint32_t *gc,
								 uint64_t n, double box, double inv_w,
								 uint32_t hg)
{
	const __m256d vbox = _mm256_set1_pd(box), vinv = _mm256_set1_pd(inv_w);
	const __m256d top = _mm256_set1_pd((double)(hg - 1));
	const __m128i g = _mm_set1_epi32((int)hg);
	const float *xf = x;
	const double *xd = x;
	uint64_t i = 0;

	for (; i + 4 <= n; i += 4) {
		__m256d a, b, c;

		if (f64) {
			const double *r = xd + 3 * i;

			a = _mm256_setr_pd(r[0], r[3], r[6], r[9]);
			b = _mm256_setr_pd(r[1], r[4], r[7], r[10]);
			c = _mm256_setr_pd(r[2], r[5], r[8], r[11]);
		} else {
			const float *r = xf + 3 * i;

			a = _mm256_cvtps_pd(_mm_setr_ps(r[0], r[3], r[6], r[9]));
			b = _mm256_cvtps_pd(_mm_setr_ps(r[1], r[4], r[7], r[10]));
			c = _mm256_cvtps_pd(_mm_setr_ps(r[2], r[5], r[8], r[11]));
		}
		_mm_storeu_si128(
			(__m128i *)(void *)(gc + i),
			_mm_add_epi32(_mm_mullo_epi32(_mm_add_epi32(_mm_mullo_epi32(
								    axis_cells_avx2(a, vbox, vinv, top), g),
							    axis_cells_avx2(b, vbox, vinv, top)),
						      g),
				      axis_cells_avx2(c, vbox, vinv, top)));
	}
	return i;
}
#endif

int sm__pl_grid_avx2 = 1;

void sm__pl_grid_cells(const void *x, int f64, uint32_t *gc, uint64_t n, double box, double inv_w,
		       uint32_t hg)
{
	uint64_t i = 0;

#if defined(__x86_64__) && defined(__GNUC__)
	if (sm__pl_grid_avx2 != 0 && sm__cpu_avx2())
		i = grid_cells_avx2(x, f64, gc, n, box, inv_w, hg);
#endif
	if (f64)
		grid_cells((const double *)x + 3 * i, 1, gc + i, n - i, box, inv_w, hg);
	else
		grid_cells((const float *)x + 3 * i, 0, gc + i, n - i, box, inv_w, hg);
}
