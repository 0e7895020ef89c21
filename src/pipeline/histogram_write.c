/*
 * Stage histogram_write (step 8; docs/MODEL.md, docs/MPI.md): a halo's profile (DESIGN.md: 50 r/R200
 * bins of counts, sf_counts and mean temperature, 50 x 60 hist2d over log10 T), 25,200 bytes,
 * appended to profiles.hdf5 as one row. The serial run makes it per halo from radius and
 * selected_temperature (histogram), then frees the halo's arrays; the distributed run adds every
 * rank's sums to rank 0 (reduce_sums) and rank 0 writes the K rows at once. The log10 T bin is
 * found by table (sm__pl_tbin_table_init), equal to the definition for every float: one 8-byte
 * entry a key since 2026-12 (one load a cell instead of three dependent ones; checked against
 * log10 on all 2^32 patterns once by hand, and by tests/test-tbin.c where the rules change; the
 * same binary with the two-threshold table switched in, 16 alternating runs each at 1e7 cells:
 * stream_cells 0.1414 -> 0.1385 s, the serial histogram_write 0.0218 -> 0.0212 s, medians: the
 * records' loop overlaps the dependent loads of consecutive cells well).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "distributed.h"
#include "run.h"

#define HIST_I64 (SM_MODEL_HISTOGRAM_BYTES / 8u) /* 8-byte words of one halo's sums */

/* The T-bin table (no log10 per cell): th[b] is the smallest non-negative float (as bits) whose
 * exact bin is >= b, found by bisection over the float bit patterns (ordered like the values);
 * tab[key] the bin of the floats with top bits `key` below their range's threshold (a range of
 * 2^19 patterns spans a factor 2^(1/16), a bin 10^(1/10): at most one threshold per range).
 * Values within TBIN_GUARD patterns of a threshold are binned with log10, so the result equals
 * tbin_exact even where log10 is not monotonic to the last bit. */
void sm__pl_tbin_table_init(struct tbin_table *tt)
{
	uint32_t b;

	tt->th[0] = 0;
	for (b = 1; b < SM_MODEL_TBINS; b++) {
		uint32_t lo = 0, hi = TBIN_INF_BITS; /* exact(hi) >= b: inf is in the last bin */

		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;

			if (sm__pl_tbin_exact(sm__pl_bits_float(mid)) >= (int)b)
				hi = mid;
			else
				lo = mid + 1;
		}
		tt->th[b] = lo;
	}
	tt->th[SM_MODEL_TBINS] = UINT32_MAX;
	sm__pl_tbin_table_keys(tt);
}

void sm__pl_tbin_table_keys(struct tbin_table *tt)
{
	uint32_t b, key;

	for (key = 0, b = 0; key < TBIN_KEYS; key++) {
		while (b + 1 < SM_MODEL_TBINS && tt->th[b + 1] <= key << TBIN_SHIFT)
			b++;
		tt->tab[key] = (unsigned char)b;
	}
	/* One entry a key: its bin b at the range's start and the threshold above, th[b + 1]
	 * (a cell at or above it is in b + 1; at most one threshold lies in a range); slow where
	 * the thresholds either side of that one come within TBIN_GUARD of the range: th[b] near
	 * its start, th[b + 2] near its end when th[b + 1] lies inside it. */
	for (key = 0; key < TBIN_KEYS; key++) {
		const uint64_t lo = (uint64_t)key << TBIN_SHIFT, hi = lo + (UINT64_C(1) << TBIN_SHIFT);
		const uint32_t k = tt->tab[key];
		const uint64_t above = tt->th[k + 1];
		int slow = (uint64_t)tt->th[k] + TBIN_GUARD > lo;

		if (above < hi && k + 2 <= SM_MODEL_TBINS && (uint64_t)tt->th[k + 2] < hi + TBIN_GUARD)
			slow = 1;
		tt->key[key] = above | (uint64_t)k << 32 | (slow ? TBIN_KEY_SLOW : 0);
	}
}

/* The serial run's histogram is made in chunks of at least HIST_CHUNK_MIN cells, at most
 * HIST_CHUNKS of them, shared out to the worker threads: each part keeps its own counts and adds
 * them to the halo's at the end (integers: the order does not matter), and each chunk's
 * temperature sums are its own, added in chunk order afterwards. The chunks depend on the number
 * of cells only, so the sums are the same bit for bit whatever the threads (SNAPMEM_THREADS=1
 * included); a sphere of one chunk sums as one loop over its cells. */
#define HIST_CHUNK_MIN 16384u
#define HIST_CHUNKS 64u
#define HIST_SUM_AT (2u * SM_MODEL_RBINS) /* the temperature sums' first 8-byte word */

struct hist_job {
	const struct run *R;
	uint64_t s, chunk, nchunks;
	double r200;
	int64_t *hist;                          /* the halo's counts, added to atomically */
	double (*csum)[SM_MODEL_RBINS];         /* each chunk's temperature sums */
	atomic_uint_fast64_t next;
};

/* The r/R200 bins (sm__pl_rbin) of a batch of HIST_BATCH radii (float32 or float64) in a loop
 * that vectorises, built for AVX2 too; then each cell into the sums (sm__pl_hist_add_rb) in
 * order. */
#define HIST_BATCH 256u

__attribute__((target_clones("avx2", "default")))
SM__PL_VECTORISE static void rbins_f32(const float *restrict r, unsigned n, double r200,
				       int32_t *restrict rb)
{
	unsigned q;

	for (q = 0; q < n; q++)
		rb[q] = sm__pl_rbin(r[q], r200);
}

__attribute__((target_clones("avx2", "default")))
SM__PL_VECTORISE static void rbins_f64(const double *restrict r, unsigned n, double r200,
				       int32_t *restrict rb)
{
	unsigned q;

	for (q = 0; q < n; q++)
		rb[q] = sm__pl_rbin(r[q], r200);
}

static void hist_part(void *arg, unsigned part, unsigned parts)
{
	struct hist_job *J = arg;
	const struct run *R = J->R;
	_Alignas(8) unsigned char loc[SM_MODEL_HISTOGRAM_BYTES];
	const int64_t *li = (const int64_t *)(void *)loc;
	double *sum = (double *)(void *)(loc + HIST_SUM_AT * 8u);
	uint64_t c, j, w;

	(void)part;
	(void)parts;
	memset(loc, 0, sizeof(loc));
	while ((c = atomic_fetch_add(&J->next, 1)) < J->nchunks) {
		const uint64_t a = c * J->chunk, b = a + J->chunk < J->s ? a + J->chunk : J->s;

		memset(sum, 0, SM_MODEL_RBINS * sizeof(double));
		for (j = a; j < b; j += HIST_BATCH) {
			const unsigned n = b - j < HIST_BATCH ? (unsigned)(b - j) : HIST_BATCH;
			int32_t rb[HIST_BATCH];
			unsigned q;

			if (R->pt == SM_DTYPE_F32)
				rbins_f32((const float *)R->radius + j, n, J->r200, rb);
			else
				rbins_f64((const double *)R->radius + j, n, J->r200, rb);
			for (q = 0; q < n; q++)
				sm__pl_hist_add_rb(loc, &R->tbins, rb[q], R->sel_t[j + q]);
		}
		memcpy(J->csum[c], sum, SM_MODEL_RBINS * sizeof(double));
	}
	for (w = 0; w < HIST_I64; w++)
		if ((w < HIST_SUM_AT || w >= HIST_SUM_AT + SM_MODEL_RBINS) && li[w] != 0)
			__atomic_fetch_add(&J->hist[w], li[w], __ATOMIC_RELAXED);
}

static void histogram(const struct run *R, uint64_t s, double r200, unsigned char *hist)
{
	double csum[HIST_CHUNKS][SM_MODEL_RBINS];
	double *sum = (double *)(void *)(hist + HIST_SUM_AT * 8u);
	struct hist_job J;
	uint64_t c;
	int b;

	memset(hist, 0, SM_MODEL_HISTOGRAM_BYTES);
	J.R = R;
	J.s = s;
	J.chunk = (s + HIST_CHUNKS - 1) / HIST_CHUNKS;
	if (J.chunk < HIST_CHUNK_MIN)
		J.chunk = HIST_CHUNK_MIN;
	J.nchunks = (s + J.chunk - 1) / J.chunk;
	J.r200 = r200;
	J.hist = (int64_t *)(void *)hist;
	J.csum = csum;
	atomic_init(&J.next, 0);
	sm__pl_parallel(hist_part, &J, sm__pl_halo_parts(s, SM__PL_HALO_PART_MIN_CELLS));
	for (c = 0; c < J.nchunks; c++)
		for (b = 0; b < SM_MODEL_RBINS; b++)
			sum[b] += csum[c][b];
	sm__pl_hist_finish(hist);
}

/* The serial run's stage for halo h of s selected cells. */
int sm__pl_histogram_write(struct run *R, uint64_t h, uint64_t s)
{
	int rc;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_HISTOGRAM_WRITE, (int64_t)h, R->k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->hist, SM_ARRAY_HISTOGRAM, SM_MODEL_HISTOGRAM_BYTES)) != 0)
		return rc;
	histogram(R, s, R->halo_r200[h], R->hist);
	if ((rc = sm__pl_out_append(R->out, R->halo_index[h], &R->halo_center[3 * h],
				    R->halo_r200[h], R->halo_m200[h], R->hist, R->err)) != 0)
		return rc;
	sm__pl_pfree(R, &R->sphere);
	sm__pl_pfree(R, &R->mask);
	sm__pl_pfree(R, &R->radius);
	sm__pl_pfree(R, &R->sel_t);
	sm__pl_pfree(R, &R->sel_pos);
	sm__pl_pfree(R, &R->hist);
	sm__pl_progress(R, SM_STAGE_HISTOGRAM_WRITE, (int64_t)h, h + 1, R->k);
	sm__pl_stage_end(R);
	return 0;
}

/* ---- the distributed run ------------------------------------------------------------------------ */

/* The sums over ranks into rank 0's: int64 runs exactly, temperature sums in float64. Per halo
 * the layout is counts, sf_counts (int64[100]), sums (float64[50]), hist2d (int64[3000]); a
 * halo's hist2d and the next halo's counts form one int64 run. */
static int reduce_sums(struct dist *D)
{
	const sm_pipeline_comm *C = D->comm;
	uint64_t k = D->R->k, h;
	int64_t *w = (int64_t *)(void *)D->sums;
	const size_t ci = 2 * SM_MODEL_RBINS, cs = SM_MODEL_RBINS;
	int rc;

	if (C == NULL || D->size == 1 || k == 0)
		return 0;
	for (h = 0; h < k; h++) {
		int64_t *base = w + h * HIST_I64;
		/* int64 from the previous halo's hist2d (or this halo's counts) to its sums */
		int64_t *run = h == 0 ? base : base - (HIST_I64 - ci - cs);
		size_t len = h == 0 ? ci : (HIST_I64 - ci - cs) + ci;

		if ((rc = C->sum_i64(C->ctx, run, len)) != 0 ||
		    (rc = C->sum_f64(C->ctx, (double *)(void *)(base + ci), cs)) != 0)
			return sm_error_set(D->R->err, rc, "rank %d of %d: adding the profile sums "
					    "failed: %s", D->rank, D->size, sm_strerror(rc));
	}
	rc = C->sum_i64(C->ctx, w + (k - 1) * HIST_I64 + ci + cs, HIST_I64 - ci - cs);
	if (rc != 0)
		return sm_error_set(D->R->err, rc, "rank %d of %d: adding the profile sums failed: "
				    "%s", D->rank, D->size, sm_strerror(rc));
	return 0;
}


/* Stage histogram_write: rank 0's output, the agreement before the reduction, the reduction,
 * rank 0's rows (all K in one write a dataset: the sums are every halo's, back to back); then the
 * sums and the index are freed. */
int sm__pl_histogram_write_reduced(struct dist *D)
{
	struct run *R = D->R;
	uint64_t h;
	int rc = 0;

	rc = sm__pl_stage_begin(R, SM_STAGE_HISTOGRAM_WRITE, -1, R->k);
	if (rc == 0 && D->rank == 0)
		rc = sm__pl_dist_create_output(D);
	if ((rc = sm__pl_agree(D, rc)) != 0)
		return rc;
	if ((rc = reduce_sums(D)) != 0)
		return rc;
	for (h = 0; h < R->k; h++) {
		unsigned char *hist = D->sums + h * SM_MODEL_HISTOGRAM_BYTES;
		const int64_t *cnt = (const int64_t *)(void *)hist;
		uint64_t s = 0;
		int b;

		for (b = 0; b < 2 * SM_MODEL_RBINS; b++)
			s += (uint64_t)cnt[b];
		R->r->halos[h].sphere_cells = s;
		if (D->rank == 0)
			sm__pl_hist_finish(hist);
	}
	if (D->rank == 0) {
		if ((rc = sm__pl_out_append_rows(R->out, R->k, R->halo_index, R->halo_center,
						 R->halo_r200, R->halo_m200, D->sums, R->err)) != 0)
			return rc;
		sm__pl_progress(R, SM_STAGE_HISTOGRAM_WRITE, -1, R->k, R->k);
	}
	sm__pl_pfree(R, &D->sums);
	sm__pl_pfree(R, &D->hg_halos);
	sm__pl_pfree(R, &D->hg_start);
	sm__pl_stage_end(R);
	return 0;
}
