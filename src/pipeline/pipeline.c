/*
 * The radial-profile pipeline (include/snapmem/pipeline.h): the notebook's steps, stage by stage,
 * with every large array allocated through the profiler under docs/MODEL.md's name, in MODEL.md's
 * order, and freed where MODEL.md frees it. The estimator replays the same event list; any change
 * here that adds, renames, resizes or moves an allocation must change docs/MODEL.md and
 * estimator/model.c with it. Names, constants and the arithmetic both sides share (grid side,
 * halo order) are the model contract's (snapmem/model.h).
 *
 * Science (DESIGN.md): T = (gamma-1) u / k_B UnitVelocity^2 mu, computed in double and stored as
 * float32, with star-forming cells stored as -T (the sign bit is the flag, no extra array);
 * periodic minimum-image distances in the positions' own type (float32 arithmetic for float32, as
 * numpy does), one distance function for both selection strategies so that they decide every cell
 * identically; r/R200 and log10 T binned in double.
 *
 * The spatial index: a uniform grid of g^3 cells over the box. First the grid cells some halo's
 * sphere scan will visit are flagged (in index_cell_fill's first g^3 bytes) and the cells lying
 * in them are moved to the front (split_near_*, each thread its own stretch, the stretches then
 * closed up): only those are sorted, the rest stay unsorted behind them, in no grid cell's range
 * (at TNG scale a few percent of the cells lie near the selected halos). Then Coordinates and
 * temperature of the near cells are permuted in place into grid-cell order by an MSD radix sort,
 * one axis per level (x slabs, then y rows inside a slab, then z cells inside a row), each level
 * an in-place block distribution (distribute_*, after IPS4o) with 64 KiB of block buffers on the
 * sorting thread's stack. The slab pass finds the slab sizes itself; each slab's cell counts go
 * into its own stretch of index_cell_fill and become its index_cell_start entries. No per-cell
 * memory besides the two arrays the model names.
 *
 * Speed: the large arrays are asked for transparent huge pages and mapped in on all CPUs before
 * they are filled (prefault): first-touch faults, not copying, dominate reading from the page
 * cache. Fields are read by the snapshot reader's fast path (pread on the worker threads, see
 * src/snapshot/fastread.c); Coordinates kept as float32 are narrowed from float64 through
 * io_buffer and range-checked in the same pass (sm_snapshot_read_range_checked).
 *
 * Threads (parallel.c): the temperature kernel, the per-slab sorts and, for halos of more than
 * HALO_PART_MIN_CELLS cells a part, the sphere scan, distances and gather run on all usable CPUs;
 * worker threads never allocate (docs/PROFILER.md), and every result is independent of the
 * number of threads (the histogram's sums stay one sequential loop in sphere order).
 *
 * Only the caller's result table (32 bytes per selected halo) and small HDF5/stack state are
 * allocated outside the profiler.
 */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/mman.h>

#include <hdf5.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "snapmem/pipeline.h"
#include "snapmem/units.h"

#include "internal.h"
#include "run.h"

#define HALO_PART_MIN_CELLS 1000000u /* a halo step runs on threads from this many cells a part */
#define DIST_SCRATCH_BYTES 65536u /* a distribution pass's block buffers, on its thread's stack */
#define DIST_MAX_BUCKETS SM_MODEL_GRID_MAX_SIDE


double sm__pl_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void sm_pipeline_options_init(sm_pipeline_options *o)
{
	memset(o, 0, sizeof(*o));
	sm_model_options_init(&o->model);
	o->snap = 99;
}

void sm_pipeline_result_release(sm_pipeline_result *r)
{
	if (r == NULL)
		return;
	free(r->halos);
	r->halos = NULL;
	r->nhalos = 0;
}

/* ---- tracked arrays, stages, progress, cancellation ------------------------------------------ */

int sm__pl_cancelled(struct run *R)
{
	const volatile sig_atomic_t *c = R->o->cancel;

	if (c == NULL || *c == 0)
		return 0;
	sm_error_set(R->err, SM_EINTR, "interrupted by signal %d in stage '%s'", (int)*c,
		     R->r->stage[0] ? R->r->stage : "start");
	if (R->err != NULL)
		R->err->signal = (int)*c;
	return SM_EINTR;
}

void sm__pl_progress(struct run *R, const char *stage, int64_t halo, uint64_t done,
		     uint64_t total)
{
	sm_pipeline_progress pr;

	if (R->o->progress == NULL)
		return;
	pr.stage = stage;
	pr.halo = halo;
	pr.halos = R->k;
	pr.done = done;
	pr.total = total;
	pr.elapsed_s = sm__pl_now_s() - R->t0;
	R->o->progress(&pr, R->o->progress_ctx);
}

int sm__pl_stage_begin(struct run *R, const char *id, int64_t instance, uint64_t total)
{
	int rc;

	snprintf(R->r->stage, sizeof(R->r->stage), "%s", id);
	R->r->instance = instance;
	sm__pl_progress(R, id, instance, 0, total);
	if ((rc = sm__pl_cancelled(R)) != 0)
		return rc;
	if (sm_prof_stage_begin(R->p, id, instance) != 0)
		return sm_error_set(R->err, SM_ENOMEM, "profiler: cannot begin stage '%s'", id);
	R->stage_open = 1;
	return 0;
}

void sm__pl_stage_end(struct run *R)
{
	if (R->stage_open)
		sm_prof_stage_end(R->p);
	R->stage_open = 0;
}

/* A tracked array: checks --max-mem, then sm_prof_alloc. *slot receives the pointer. */
int sm__pl_palloc(struct run *R, void *slot, const char *name, uint64_t bytes)
{
	void *q;
	uint64_t want;

	if (R->nlive >= MAX_LIVE)
		return sm_error_set(R->err, SM_EINVAL, "pipeline: too many live arrays at '%s'", name);
	if (R->o->max_mem > 0 &&
	    (sm_add_u64(R->live_bytes, bytes, &want) != 0 || want > R->o->max_mem)) {
		char a[32], b[32];

		sm_format_iec(want, a, sizeof(a));
		sm_format_iec(R->o->max_mem, b, sizeof(b));
		sm_error_set(R->err, SM_ELIMIT,
			     "'%s': %llu bytes in stage '%s' would bring the live arrays to %llu bytes "
			     "(%s), over --max-mem %llu bytes (%s)", name, (unsigned long long)bytes,
			     R->r->stage, (unsigned long long)want, a,
			     (unsigned long long)R->o->max_mem, b);
		if (R->err != NULL)
			R->err->needed_bytes = want;
		return SM_ELIMIT;
	}
	q = sm_prof_alloc(R->p, name, bytes, R->err);
	if (q == NULL)
		return R->err != NULL && R->err->code != 0 ? R->err->code : SM_ENOMEM;
	R->live[R->nlive].ptr = q;
	R->live[R->nlive].bytes = bytes;
	R->nlive++;
	R->live_bytes += bytes;
	memcpy(slot, &q, sizeof(q));
	return 0;
}

/* Frees the tracked array in *slot (NULL is fine) and clears the slot. */
void sm__pl_pfree(struct run *R, void *slot)
{
	void *q;
	size_t i;

	memcpy(&q, slot, sizeof(q));
	if (q == NULL)
		return;
	for (i = 0; i < R->nlive; i++) {
		if (R->live[i].ptr != q)
			continue;
		R->live_bytes -= R->live[i].bytes;
		R->live[i] = R->live[--R->nlive];
		break;
	}
	sm_prof_release(R->p, q);
	q = NULL;
	memcpy(slot, &q, sizeof(q));
}

/* ---- first touch ------------------------------------------------------------------------------ */

#define PREFAULT_MIN_BYTES (UINT64_C(8) << 20) /* smaller arrays fault in on their own */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

struct prefault_job {
	unsigned char *p;
	uint64_t bytes, page;
};

static void prefault_part(void *arg, unsigned part, unsigned parts)
{
	struct prefault_job *J = arg;
	uint64_t np = J->bytes / J->page;
	uint64_t a = np * part / parts * J->page, b = np * (part + 1) / parts * J->page, i;

	if (b <= a)
		return;
	if (madvise(J->p + a, b - a, MADV_POPULATE_WRITE) == 0)
		return;
	for (i = a; i < b; i += J->page) /* older kernels: one write per page (fresh memory) */
		((volatile unsigned char *)J->p)[i] = 0;
}

/* SNAPMEM_HUGEPAGES=0 turns the transparent-huge-page hint off. */
static int huge_pages_wanted(void)
{
	const char *e = getenv("SNAPMEM_HUGEPAGES");

	return e == NULL || strcmp(e, "0") != 0;
}

/*
 * Maps in the pages of a fresh large array before it is filled, on all usable CPUs at once, asking
 * for transparent huge pages first (MADV_HUGEPAGE; the kernel gives them where it can): first-
 * touch page faults, not the copy, are most of the cost of reading from the page cache (about
 * 2.6 GB/s a core here with 4 KiB pages), they run in parallel, and 2 MiB pages take a fault each
 * per 2 MiB and fewer TLB misses in the sort and the gathers. Only whole pages inside the array
 * are touched; its contents are undefined before and after. Resident memory may round up to the
 * huge pages at the array's two ends. Arrays of PREFAULT_MIN_BYTES and more only.
 */
static void prefault(struct run *R, void *ptr, uint64_t bytes)
{
	struct prefault_job J;
	double t0 = sm__pl_now_s();
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t a, b;
	unsigned parts = sm__pl_threads();

	if (ptr == NULL || bytes < PREFAULT_MIN_BYTES || parts < 2 || pg <= 0)
		return;
	a = ((uintptr_t)ptr + (uintptr_t)pg - 1) / (uintptr_t)pg * (uintptr_t)pg;
	b = ((uintptr_t)ptr + bytes) / (uintptr_t)pg * (uintptr_t)pg;
	if (b <= a)
		return;
	J.p = (unsigned char *)a;
	J.bytes = b - a;
	J.page = (uint64_t)pg;
	if (huge_pages_wanted())
		(void)madvise(J.p, J.bytes, MADV_HUGEPAGE); /* a hint: no huge pages is fine */
	sm__pl_parallel(prefault_part, &J, parts);
	sm__pl_part_since(R, SM_PROF_PART_PREFAULT, t0);
}

/* ---- file and cell locations for messages ---------------------------------------------------- */

/* The chunk file and local index of global gas cell i. */
void sm__pl_cell_location(struct run *R, uint64_t i, char *path, size_t len, uint64_t *local)
{
	int64_t f;
	uint64_t first = 0;

	*local = i;
	snprintf(path, len, "snapshot %d", R->s.snap);
	if (R->s.chunk_counts == NULL)
		return;
	for (f = 0; f < R->s.nfiles; f++) {
		uint64_t c = R->s.chunk_counts[f * SM_NTYPES + 0];

		if (i < first + c) {
			*local = i - first;
			if (sm_snapshot_chunk_path(&R->s, f, path, len, NULL) != 0)
				snprintf(path, len, "snapshot %d chunk %lld", R->s.snap, (long long)f);
			return;
		}
		first += c;
	}
}

/* The catalogue chunk file holding group gi (opens the chunks' headers; error path only). */
void sm__pl_group_location(struct run *R, uint64_t gi, char *path, size_t len)
{
	sm_catalog_group_file(&R->c, gi, path, len);
}

const char *sm__pl_snap_file(struct run *R)
{
	static _Thread_local char buf[SM_PATH_MAX];

	if (sm_snapshot_chunk_path(&R->s, 0, buf, sizeof(buf), NULL) != 0)
		snprintf(buf, sizeof(buf), "%s", R->o->base_path);
	return buf;
}

const char *sm__pl_cat_file(struct run *R)
{
	static _Thread_local char buf[SM_PATH_MAX];

	if ((size_t)snprintf(buf, sizeof(buf), R->c.pattern, 0LL) >= sizeof(buf))
		snprintf(buf, sizeof(buf), "%s", R->o->base_path);
	return buf;
}

/* ---- load_halos ------------------------------------------------------------------------------ */

int sm__pl_check_halo(struct run *R, uint64_t i, uint64_t gi, double m200, double r200,
		      double c[3])
{
	char where[SM_PATH_MAX];
	int d, rc;

	if ((rc = sm_catalog_check_halo(&R->c, gi, i, R->box, m200, r200, R->err)) != 0)
		return rc;
	if (!isfinite(c[0]) || !isfinite(c[1]) || !isfinite(c[2])) {
		sm__pl_group_location(R, gi, where, sizeof(where));
		return sm_error_set(R->err, SM_EFORMAT, "'%s': group %llu (selected halo %llu) has "
				    "a non-finite GroupPos", where, (unsigned long long)gi,
				    (unsigned long long)i);
	}
	for (d = 0; d < 3; d++) {
		double x = c[d];

		/* The same rule as for Coordinates: a centre slightly outside [0, box) is wrapped,
		 * one more than half a box out is a broken catalogue. */
		if (x < -0.5 * R->box || x >= 1.5 * R->box) {
			sm__pl_group_location(R, gi, where, sizeof(where));
			return sm_error_set(R->err, SM_EFORMAT,
					    "'%s': group %llu (selected halo %llu) has GroupPos %g, more "
					    "than half a box (BoxSize %g) outside the box", where,
					    (unsigned long long)gi, (unsigned long long)i, x, R->box);
		}
		if (x < 0 || x >= R->box)
			c[d] = x - R->box * floor(x / R->box);
	}
	return 0;
}

int sm__pl_halos_done(struct run *R, uint64_t k)
{
	uint64_t i;

	if (k > 0) {
		R->r->halos = calloc(k, sizeof(*R->r->halos));
		if (R->r->halos == NULL)
			return sm_error_set(R->err, SM_ENOMEM, "pipeline: cannot allocate the result "
					    "table of %llu halos", (unsigned long long)k);
		for (i = 0; i < k; i++) {
			sm_pipeline_halo *hh = &R->r->halos[i];

			hh->group_index = R->halo_index[i];
			hh->m200_msun = R->halo_m200[i];
			hh->r200 = R->halo_r200[i];
			memcpy(hh->center, &R->halo_center[3 * i], sizeof(hh->center));
		}
	}
	R->r->nhalos = k;
	R->r->empty = k == 0;
	sm__pl_stage_end(R);
	return 0;
}


/* Halo a ranks before halo b: the model's halo order (sm_model_halo_cmp). */
static int better(const float *m, int64_t a, int64_t b)
{
	return sm_model_halo_cmp(m[a], a, m[b], b) < 0;
}

/* Sift down in a heap whose top is the element that ranks LAST (worst first). */
static void sift_worst(const float *m, int64_t *h, uint64_t n, uint64_t i)
{
	for (;;) {
		uint64_t l = 2 * i + 1, r = l + 1, w = i;

		if (l < n && better(m, h[w], h[l]))
			w = l;
		if (r < n && better(m, h[w], h[r]))
			w = r;
		if (w == i)
			return;
		int64_t t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

/* Orders h[0..n) best first, in place: a heap sort with the worst on top moves the worst to the
 * end first. */
static void sort_best_first(const float *m, int64_t *h, uint64_t n)
{
	uint64_t i;

	for (i = n / 2; i-- > 0;)
		sift_worst(m, h, n, i);
	for (i = n; i > 1; i--) {
		int64_t t = h[0];
		h[0] = h[i - 1];
		h[i - 1] = t;
		sift_worst(m, h, i - 1, 0);
	}
}

int sm__pl_load_halos(struct run *R)
{
	const sm_model_options *mo = &R->o->model;
	uint64_t g = R->gtot, i, k = 0, b;
	double t0;
	int rc;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_LOAD_HALOS, -1, g)) != 0)
		return rc;
	if (g > UINT64_MAX / 12)
		return sm_error_set(R->err, SM_EOVERFLOW, "'%s': Ngroups_Total %llu is too large",
				    sm__pl_cat_file(R), (unsigned long long)g);
	if ((rc = sm__pl_palloc(R, &R->gm, SM_ARRAY_GROUP_M_CRIT200, 4 * g)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->gr, SM_ARRAY_GROUP_R_CRIT200, 4 * g)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->gp, SM_ARRAY_GROUP_POS, 12 * g)) != 0)
		return rc;
	t0 = sm__pl_now_s();
	if (g > 0 &&
	    ((rc = sm_catalog_read_group_field(&R->c, SM_ARRAY_GROUP_M_CRIT200, SM_DTYPE_F32, 1, R->gm,
					       R->err)) != 0 ||
	     (rc = sm_catalog_read_group_field(&R->c, SM_ARRAY_GROUP_R_CRIT200, SM_DTYPE_F32, 1, R->gr,
					       R->err)) != 0 ||
	     (rc = sm_catalog_read_group_field(&R->c, SM_ARRAY_GROUP_POS, SM_DTYPE_F32, 3, R->gp,
					       R->err)) != 0))
		return rc;
	sm__pl_part_since(R, SM_PROF_PART_READ, t0);
	if (mo->halos >= 0) {
		k = (uint64_t)mo->halos < g ? (uint64_t)mo->halos : g;
	} else {
		for (i = 0; i < g; i++)
			k += sm_model_halo_above(R->gm[i], R->h, mo->mass_min);
	}
	R->k = k;
	if ((rc = sm__pl_palloc(R, &R->halo_index, SM_ARRAY_HALO_INDEX, 8 * k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->halo_center, SM_ARRAY_HALO_CENTER, 24 * k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->halo_m200, SM_ARRAY_HALO_M200, 8 * k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->halo_r200, SM_ARRAY_HALO_R200, 8 * k)) != 0)
		return rc;
	if (mo->halos >= 0) {
		/* The k best of g: a bounded heap with the worst kept on top. */
		uint64_t n = 0;

		for (i = 0; i < g && k > 0; i++) {
			if (n < k) {
				uint64_t j = n++;

				R->halo_index[j] = (int64_t)i;
				while (j > 0 && better(R->gm, R->halo_index[(j - 1) / 2],
						       R->halo_index[j])) {
					int64_t t = R->halo_index[j];
					R->halo_index[j] = R->halo_index[(j - 1) / 2];
					R->halo_index[(j - 1) / 2] = t;
					j = (j - 1) / 2;
				}
			} else if (better(R->gm, (int64_t)i, R->halo_index[0])) {
				R->halo_index[0] = (int64_t)i;
				sift_worst(R->gm, R->halo_index, n, 0);
			}
		}
	} else {
		for (i = 0, b = 0; i < g; i++)
			if (sm_model_halo_above(R->gm[i], R->h, mo->mass_min))
				R->halo_index[b++] = (int64_t)i;
	}
	sort_best_first(R->gm, R->halo_index, k);
	for (i = 0; i < k; i++) {
		uint64_t gi = (uint64_t)R->halo_index[i];
		double *c = &R->halo_center[3 * i];
		int d;

		for (d = 0; d < 3; d++)
			c[d] = R->gp[3 * gi + d];
		if ((rc = sm__pl_check_halo(R, i, gi, R->gm[gi], R->gr[gi], c)) != 0)
			return rc;
		R->halo_m200[i] = sm_model_m200_msun(R->gm[gi], R->h);
		R->halo_r200[i] = R->gr[gi];
	}
	sm__pl_pfree(R, &R->gm);
	sm__pl_pfree(R, &R->gr);
	sm__pl_pfree(R, &R->gp);
	return sm__pl_halos_done(R, k);
}

/* ---- temperature ----------------------------------------------------------------------------- */

#define TEMP_BLOCK 4096u  /* cells per validity check in the temperature kernel */

/* gcc's -O2 vectorises only loops its "very cheap" cost model accepts; the flat kernels below
 * ask for the ordinary model. */
#if defined(__GNUC__) && !defined(__clang__)
#define VECTORISE __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#else
#define VECTORISE
#endif

/* The definition's temperature, term for term, in double. */
static inline double temperature_of(double uu, double x, double uv2)
{
	const double gm1 = SM_PIPELINE_GAMMA - 1.0, xh = SM_PIPELINE_XH;
	const double kb = SM_PIPELINE_KB, mp4 = 4.0 * SM_PIPELINE_MP;
	double mu = mp4 / (1.0 + 3.0 * xh + 4.0 * xh * x);

	return gm1 * uu / kb * uv2 * mu;
}

/* The temperature of cells [0, n): vectorisable (no branch, no libm call); returns nonzero when
 * a value is bad (non-finite or negative u or x_e, NaN SFR, or a finite u whose temperature
 * overflows float32), the cells' temperatures then being meaningless. */
VECTORISE static int temperature_kernel(const float *restrict u, const float *restrict xe,
			      const float *restrict sfr, float *restrict t, uint64_t n, double uv2)
{
	uint32_t ok = 1;
	uint64_t i;

	for (i = 0; i < n; i++) {
		double T = temperature_of(u[i], xe[i], uv2);
		float f;
		uint32_t bits;

		ok &= (uint32_t)(u[i] >= 0.0f) & (uint32_t)(u[i] <= FLT_MAX) &
		      (uint32_t)(xe[i] >= 0.0f) & (uint32_t)(xe[i] <= FLT_MAX) &
		      (uint32_t)(sfr[i] == sfr[i]);
		f = (float)T;
		ok &= (uint32_t)(f <= FLT_MAX);
		memcpy(&bits, &f, 4);
		bits ^= (uint32_t)(sfr[i] > 0) << 31;
		memcpy(&t[i], &bits, 4);
	}
	return ok == 0;
}

/* The first bad cell of [0, n) (the scalar definition of "bad"), or n. */
static uint64_t temperature_first_bad(const float *u, const float *xe, const float *sfr,
				      uint64_t n, double uv2)
{
	uint64_t i;

	for (i = 0; i < n; i++) {
		double uu = u[i], x = xe[i];

		if (!(uu >= 0) || !(x >= 0) || isinf(uu) || isinf(x) || isnan(sfr[i]) ||
		    !((float)temperature_of(uu, x, uv2) <= FLT_MAX))
			return i;
	}
	return n;
}

struct temp_job {
	const float *u, *xe, *sfr;
	float *t;
	uint64_t n;
	double uv2;
	uint64_t bad_block[SM__PL_MAX_THREADS]; /* first block with a bad value, or UINT64_MAX */
};

static void temperature_part(void *arg, unsigned part, unsigned parts)
{
	struct temp_job *J = arg;
	uint64_t nb = (J->n + TEMP_BLOCK - 1) / TEMP_BLOCK;
	uint64_t b0 = nb * part / parts, b1 = nb * (part + 1) / parts, b;

	J->bad_block[part] = UINT64_MAX;
	for (b = b0; b < b1; b++) {
		uint64_t a = b * TEMP_BLOCK, m = J->n - a < TEMP_BLOCK ? J->n - a : TEMP_BLOCK;

		if (temperature_kernel(J->u + a, J->xe + a, J->sfr + a, J->t + a, m, J->uv2)) {
			J->bad_block[part] = b;
			return;
		}
	}
}

/* Temperatures of cells [first, first + n) from the three fields, on the worker threads;
 * SM_EFORMAT naming the first bad value. */
int sm__pl_temperature_block(struct run *R, uint64_t first, uint64_t n, const float *u,
			     const float *xe, const float *sfr, float *t)
{
	struct temp_job J;
	unsigned parts = sm__pl_threads(), p;

	if (n < 65536)
		parts = 1;
	memset(&J, 0, sizeof(J));
	J.u = u;
	J.xe = xe;
	J.sfr = sfr;
	J.t = t;
	J.n = n;
	J.uv2 = R->uv2;
	sm__pl_parallel(temperature_part, &J, parts);
	for (p = 0; p < parts; p++) {
		uint64_t a, i;

		if (J.bad_block[p] == UINT64_MAX)
			continue;
		a = J.bad_block[p] * TEMP_BLOCK;
		i = a + temperature_first_bad(u + a, xe + a, sfr + a, n - a, R->uv2);
		if (i < n) {
			char where[SM_PATH_MAX];
			uint64_t local;
			double uu = u[i], x = xe[i];
			int overflow = uu >= 0 && x >= 0 && !isinf(uu) && !isinf(x) &&
				       !isnan(sfr[i]);
			const char *what = !(uu >= 0) || isinf(uu) || overflow
					   ? SM_ARRAY_INTERNAL_ENERGY
					   : !(x >= 0) || isinf(x) ? SM_ARRAY_ELECTRON_ABUNDANCE
								   : SM_ARRAY_STAR_FORMATION_RATE;
			double v = what[0] == 'I' ? uu : what[0] == 'E' ? x : (double)sfr[i];

			sm__pl_cell_location(R, first + i, where, sizeof(where), &local);
			if (overflow)
				return sm_error_set(R->err, SM_EFORMAT,
						    "'%s': /PartType0/InternalEnergy[%llu] is %g (gas "
						    "cell %llu): its temperature, %g K, does not "
						    "fit float32", where, (unsigned long long)local, v,
						    (unsigned long long)(first + i),
						    temperature_of(uu, x, R->uv2));
			return sm_error_set(R->err, SM_EFORMAT,
					    "'%s': /PartType0/%s[%llu] is %g (gas cell %llu): must be "
					    "finite and non-negative", where, what,
					    (unsigned long long)local, v,
					    (unsigned long long)(first + i));
		}
	}
	return 0;
}

static int gas_and_temperature(struct run *R)
{
	static const char *const names[3] = {SM_ARRAY_INTERNAL_ENERGY, SM_ARRAY_ELECTRON_ABUNDANCE,
					     SM_ARRAY_STAR_FORMATION_RATE};
	uint64_t n = R->n, b, first;
	float **f[3] = {&R->u, &R->xe, &R->sfr};
	int rc, j;

	if (R->o->model.temperature == SM_TEMP_IN_MEMORY) {
		if ((rc = sm__pl_stage_begin(R, SM_STAGE_LOAD_GAS_FIELDS, -1, 3 * n)) != 0)
			return rc;
		for (j = 0; j < 3; j++)
			if ((rc = sm__pl_palloc(R, f[j], names[j], 4 * n)) != 0)
				return rc;
		for (j = 0; j < 3; j++)
			prefault(R, *f[j], 4 * n);
		for (j = 0; j < 3; j++) {
			if ((rc = sm__pl_cancelled(R)) != 0)
				return rc;
			if (n > 0 && (rc = sm__pl_read_gas(R, names[j], 0, n, *f[j])) != 0)
				return rc;
			sm__pl_progress(R, SM_STAGE_LOAD_GAS_FIELDS, -1, (uint64_t)(j + 1) * n, 3 * n);
		}
		sm__pl_stage_end(R);
		if ((rc = sm__pl_stage_begin(R, SM_STAGE_COMPUTE_TEMPERATURE, -1, n)) != 0 ||
		    (rc = sm__pl_palloc(R, &R->temp, SM_ARRAY_TEMPERATURE, 4 * n)) != 0)
			return rc;
		prefault(R, R->temp, 4 * n);
		if ((rc = sm__pl_temperature_block(R, 0, n, R->u, R->xe, R->sfr, R->temp)) != 0)
			return rc;
		for (j = 0; j < 3; j++)
			sm__pl_pfree(R, f[j]);
		sm__pl_stage_end(R);
		return 0;
	}
	/* Streaming: the stage load_gas_fields is recorded, empty. */
	if ((rc = sm__pl_stage_begin(R, SM_STAGE_LOAD_GAS_FIELDS, -1, 0)) != 0)
		return rc;
	sm__pl_stage_end(R);
	b = R->o->model.stream_block < n ? R->o->model.stream_block : n;
	if ((rc = sm__pl_stage_begin(R, SM_STAGE_COMPUTE_TEMPERATURE, -1, n)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->temp, SM_ARRAY_TEMPERATURE, 4 * n)) != 0)
		return rc;
	prefault(R, R->temp, 4 * n);
	for (j = 0; j < 3; j++)
		if ((rc = sm__pl_palloc(R, f[j], names[j], 4 * b)) != 0)
			return rc;
	for (first = 0; first < n; first += b) {
		uint64_t cnt = n - first < b ? n - first : b;

		if ((rc = sm__pl_cancelled(R)) != 0)
			return rc;
		for (j = 0; j < 3; j++)
			if ((rc = sm__pl_read_gas(R, names[j], first, cnt, *f[j])) != 0)
				return rc;
		if ((rc = sm__pl_temperature_block(R, first, cnt, R->u, R->xe, R->sfr,
					    R->temp + first)) != 0)
			return rc;
		sm__pl_progress(R, SM_STAGE_COMPUTE_TEMPERATURE, -1, first + cnt, n);
	}
	for (j = 0; j < 3; j++)
		sm__pl_pfree(R, f[j]);
	sm__pl_stage_end(R);
	return 0;
}

/* ---- kernels in the positions' type ---------------------------------------------------------- */

/* Grid index along one axis of a coordinate in [-box/2, 3 box/2) (load_positions checks that). */
static inline uint64_t axis_bin(const struct grid *gr, double x)
{
	double t = x * gr->inv_w;
	int64_t i;

	if (t < 0)
		t += gr->gd;
	else if (t >= gr->gd)
		t -= gr->gd;
	i = (int64_t)t;
	return i < 0 ? 0 : (uint64_t)i >= gr->g ? gr->g - 1 : (uint64_t)i;
}

/* One visit of a sphere scan: the contiguous cells [a, b) of the permuted arrays. */
typedef struct scan_out {
	uint64_t count;
	void *idx;        /* NULL: count only */
	int idx64;
} scan_out;

#define DEFINE_KERNELS(SUF, T, SQRT)                                                              \
	static inline uint64_t key_##SUF(const struct grid *gr, const T *x)                       \
	{                                                                                         \
		return (axis_bin(gr, x[0]) * gr->g + axis_bin(gr, x[1])) * gr->g +                \
		       axis_bin(gr, x[2]);                                                        \
	}                                                                                         \
                                                                                                  \
	static void count_cells_##SUF(const struct grid *gr, const T *x, uint64_t n,             \
				      uint64_t *cnt)                                              \
	{                                                                                         \
		uint64_t i;                                                                       \
		for (i = 0; i < n; i++)                                                           \
			cnt[key_##SUF(gr, x + 3 * i)]++;                                          \
	}                                                                                         \
                                                                                                  \
	static void scan_range_##SUF(const T *x, uint64_t a, uint64_t b, const T *c, T box,      \
				     T half, T r2, scan_out *so)                                  \
	{                                                                                         \
		uint64_t i;                                                                       \
		for (i = a; i < b; i++) {                                                         \
			if (!(sm__pl_dist_##SUF(x + 3 * i, c, box, half) < r2))                          \
				continue;                                                         \
			if (so->idx != NULL) {                                                    \
				if (so->idx64)                                                    \
					((uint64_t *)so->idx)[so->count] = i;                     \
				else                                                              \
					((uint32_t *)so->idx)[so->count] = (uint32_t)i;           \
			}                                                                         \
			so->count++;                                                              \
		}                                                                                 \
	}                                                                                         \
                                                                                                  \
	static uint64_t mask_fill_##SUF(const T *x, uint64_t n, const T *c, T box, T half, T r2,  \
					unsigned char *m)                                         \
	{                                                                                         \
		uint64_t i, s = 0;                                                                \
		for (i = 0; i < n; i++) {                                                         \
			m[i] = sm__pl_dist_##SUF(x + 3 * i, c, box, half) < r2;                          \
			s += m[i];                                                                \
		}                                                                                 \
		return s;                                                                         \
	}

DEFINE_KERNELS(f32, float, sqrtf)
DEFINE_KERNELS(f64, double, sqrt)

/*
 * One in-place distribution pass of build_index's sort: the rows [lo, lo + n) of x (3 per cell)
 * and t go to buckets c = 0..nb-1 by their grid index along `axis`, bucket c ending up in
 * [start[c stride], start[(c+1) stride]); with bounds != NULL the bucket sizes are counted in
 * phase 1 and the boundaries written to bounds[c stride] (and used) instead. Block-wise, after IPS4o
 * (Axtmann et al. 2017), so that cells move in runs of B rather than one dependent cache miss at
 * a time:
 *   1. classify: one scan moves every cell into its bucket's B-row buffer (stack); a full buffer
 *      is written back behind the scan, so [0, F B) ends up as F blocks of one bucket each;
 *   2. permute: the blocks go to their bucket's block slots (slots are B-aligned: bucket c owns
 *      slots [ceil(S_c / B), ceil(S_c+1 / B))), swapping out the block found there; a block that
 *      would end past the range keeps its tail in an overflow buffer;
 *   3. clean up, bucket by bucket: a bucket's blocks may reach up to B-1 rows into the next
 *      bucket (those rows move into its own head), and its head and tail gaps take its buffer.
 * Scratch: DIST_SCRATCH_BYTES of stack for nb + 3 blocks, plus ~28 bytes per bucket.
 */
#define DEFINE_DISTRIBUTE(NAME, SUF, T, BUCKET)                                                   \
	static void NAME##_##SUF(const struct grid *gr, T *xall, float *tall,                    \
				     const uint64_t *start, uint64_t *bounds, uint64_t lo,        \
				     uint64_t n, uint64_t stride, unsigned nb, int axis)          \
	{                                                                                         \
		_Alignas(16) unsigned char scratch[DIST_SCRATCH_BYTES];                           \
		uint32_t cnt[DIST_MAX_BUCKETS];                                                   \
		uint64_t nfull[DIST_MAX_BUCKETS], w[DIST_MAX_BUCKETS], r[DIST_MAX_BUCKETS];       \
		const size_t row = 3 * sizeof(T) + sizeof(float);                                 \
		const uint64_t B = DIST_SCRATCH_BYTES / ((nb + 3) * row);                         \
		T *x = xall + 3 * lo, *bx, *ax, *sx, *ox;                                         \
		float *t = tall + lo, *bt, *at, *st, *ot;                                         \
		uint64_t i, wpos = 0, F, c, j;                                                    \
                                                                                                  \
		if (n < 2 || nb < 2) {                                                            \
			if (bounds != NULL)                                                       \
				for (c = 0; c <= nb; c++)                                         \
					bounds[c * stride] = c == 0 ? lo : lo + n;                \
			return;                                                                   \
		}                                                                                 \
		if (bounds != NULL)                                                               \
			start = bounds;                                                           \
		bx = (T *)scratch;                   /* [nb + 3][B][3]: buckets, A, swap, ovf */  \
		bt = (float *)(bx + 3 * B * (nb + 3)); /* [nb + 3][B] */                          \
		ax = bx + 3 * B * nb;                                                             \
		at = bt + B * nb;                                                                 \
		sx = ax + 3 * B;                                                                  \
		st = at + B;                                                                      \
		ox = sx + 3 * B;                                                                  \
		ot = st + B;                                                                      \
		memset(cnt, 0, nb * sizeof(cnt[0]));                                              \
		memset(nfull, 0, nb * sizeof(nfull[0]));                                          \
		/* 1. classify */                                                                 \
		for (i = 0; i < n; i++) {                                                         \
			uint64_t b = BUCKET(gr, x + 3 * i, axis), k = cnt[b]++;                 \
			T *d = bx + 3 * (B * b + k);                                              \
			d[0] = x[3 * i];                                                          \
			d[1] = x[3 * i + 1];                                                      \
			d[2] = x[3 * i + 2];                                                      \
			bt[B * b + k] = t[i];                                                     \
			if (k + 1 == B) {                                                         \
				memcpy(x + 3 * wpos, bx + 3 * B * b, 3 * B * sizeof(T));          \
				memcpy(t + wpos, bt + B * b, B * sizeof(float));                  \
				wpos += B;                                                        \
				cnt[b] = 0;                                                       \
				nfull[b]++;                                                       \
			}                                                                         \
		}                                                                                 \
		F = wpos / B;                                                                     \
		if (bounds != NULL) { /* the bucket sizes are what phase 1 saw */                 \
			uint64_t pos = lo;                                                        \
			for (c = 0; c < nb; c++) {                                                \
				bounds[c * stride] = pos;                                         \
				pos += nfull[c] * B + cnt[c];                                     \
			}                                                                         \
			bounds[(uint64_t)nb * stride] = pos;                                      \
		}                                                                                 \
		/* 2. permute the F blocks into their buckets' slots */                           \
		for (c = 0; c < nb; c++) {                                                        \
			uint64_t s0 = (start[c * stride] - lo + B - 1) / B;                       \
			uint64_t s1 = (start[(c + 1) * stride] - lo + B - 1) / B;                 \
			w[c] = s0;                                                                \
			r[c] = F < s0 ? s0 : F > s1 ? s1 : F;                                     \
		}                                                                                 \
		for (c = 0; c < nb; c++) {                                                        \
			while (w[c] < r[c]) {                                                     \
				T *tx;                                                            \
				float *tf;                                                        \
				j = --r[c];                                                       \
				memcpy(ax, x + 3 * B * j, 3 * B * sizeof(T));                     \
				memcpy(at, t + B * j, B * sizeof(float));                         \
				for (;;) {                                                        \
					uint64_t b = BUCKET(gr, ax, axis), q;                   \
					while (w[b] < r[b] &&                                     \
					       BUCKET(gr, x + 3 * B * w[b], axis) == b)         \
						w[b]++;                                           \
					q = w[b]++;                                               \
					if (q < r[b]) {                                           \
						memcpy(sx, x + 3 * B * q, 3 * B * sizeof(T));     \
						memcpy(st, t + B * q, B * sizeof(float));         \
						memcpy(x + 3 * B * q, ax, 3 * B * sizeof(T));     \
						memcpy(t + B * q, at, B * sizeof(float));         \
						tx = ax, ax = sx, sx = tx;                        \
						tf = at, at = st, st = tf;                        \
						continue;                                         \
					}                                                         \
					if ((q + 1) * B <= n) {                                   \
						memcpy(x + 3 * B * q, ax, 3 * B * sizeof(T));     \
						memcpy(t + B * q, at, B * sizeof(float));         \
					} else { /* the slot crossing the end: tail to ovf */     \
						uint64_t in = n - q * B;                          \
						memcpy(x + 3 * B * q, ax, 3 * in * sizeof(T));    \
						memcpy(t + B * q, at, in * sizeof(float));        \
						memcpy(ox, ax + 3 * in, 3 * (B - in) * sizeof(T)); \
						memcpy(ot, at + in, (B - in) * sizeof(float));    \
					}                                                         \
					break;                                                    \
				}                                                                 \
			}                                                                         \
		}                                                                                 \
		/* 3. clean up: overflow rows into the head, the buffer into the gaps */          \
		for (c = 0; c < nb; c++) {                                                        \
			uint64_t S = start[c * stride] - lo, Se = start[(c + 1) * stride] - lo;   \
			uint64_t A = (S + B - 1) / B * B, E = A + nfull[c] * B, p = S, k = 0;     \
			const T *bxc = bx + 3 * B * c;                                            \
			const float *btc = bt + B * c;                                            \
			if (nfull[c] == 0) {                                                      \
				A = E = Se; /* the whole range is the head */                     \
			} else if (E > Se) {                                              \
				/* rows [Se, E): in the array below n, in ovf from n on */        \
				uint64_t ov = E - Se, in = E <= n ? ov : n - Se;                  \
				memcpy(x + 3 * p, x + 3 * Se, 3 * in * sizeof(T));               \
				memcpy(t + p, t + Se, in * sizeof(float));                        \
				memcpy(x + 3 * (p + in), ox, 3 * (ov - in) * sizeof(T));          \
				memcpy(t + p + in, ot, (ov - in) * sizeof(float));                \
				p += ov;                                                          \
			}                                                                         \
			for (; p < A; p++, k++) {                                                 \
				x[3 * p] = bxc[3 * k];                                            \
				x[3 * p + 1] = bxc[3 * k + 1];                                    \
				x[3 * p + 2] = bxc[3 * k + 2];                                    \
				t[p] = btc[k];                                                    \
			}                                                                         \
			for (p = E; p < Se; p++, k++) {                                           \
				x[3 * p] = bxc[3 * k];                                            \
				x[3 * p + 1] = bxc[3 * k + 1];                                    \
				x[3 * p + 2] = bxc[3 * k + 2];                                    \
				t[p] = btc[k];                                                    \
			}                                                                         \
		}                                                                                 \
	}

/* The bucket of a row: its grid index along `axis` (the sort's levels), or 0 when its grid cell is
 * flagged in gr->cover and 1 when not (the near/far split). */
#define AXIS_BUCKET(gr, row, axis) axis_bin((gr), (row)[(axis)])
#define COVER_BUCKET_f32(gr, row, axis) ((uint64_t)!(gr)->cover[key_f32((gr), (row))])
#define COVER_BUCKET_f64(gr, row, axis) ((uint64_t)!(gr)->cover[key_f64((gr), (row))])

DEFINE_DISTRIBUTE(distribute, f32, float, AXIS_BUCKET)
DEFINE_DISTRIBUTE(distribute, f64, double, AXIS_BUCKET)
DEFINE_DISTRIBUTE(split_near, f32, float, COVER_BUCKET_f32)
DEFINE_DISTRIBUTE(split_near, f64, double, COVER_BUCKET_f64)

/* Swaps the k rows at a with the k rows at b (the two ranges do not overlap). */
#define DEFINE_SWAP_ROWS(SUF, T)                                                                  \
	static void swap_rows_##SUF(T *x, float *t, uint64_t a, uint64_t b, uint64_t k)           \
	{                                                                                         \
		uint64_t r, c;                                                                    \
		for (r = 0; r < k; r++) {                                                         \
			float tt = t[a + r];                                                      \
			t[a + r] = t[b + r];                                                      \
			t[b + r] = tt;                                                            \
			for (c = 0; c < 3; c++) {                                                 \
				T v = x[3 * (a + r) + c];                                         \
				x[3 * (a + r) + c] = x[3 * (b + r) + c];                          \
				x[3 * (b + r) + c] = v;                                           \
			}                                                                         \
		}                                                                                 \
	}

DEFINE_SWAP_ROWS(f32, float)
DEFINE_SWAP_ROWS(f64, double)

/* ---- load_positions, build_index ------------------------------------------------------------- */

/* Coordinates are read this many cells a call, so that a signal stops a long read soon. */
#define POSITIONS_PIECE (UINT64_C(16) << 20)

void sm__pl_part_since(struct run *R, sm_prof_part part, double t0)
{
	sm_prof_time_add(R->p, part, sm__pl_now_s() - t0);
}

int sm__pl_read_gas(struct run *R, const char *name, uint64_t first, uint64_t n, float *out)
{
	double t0 = sm__pl_now_s();
	int rc = sm_snapshot_read_range(&R->s, 0, name, SM_DTYPE_F32, 1, first, n, out, NULL,
					R->err);

	sm__pl_part_since(R, SM_PROF_PART_READ, t0);
	return rc;
}

int sm__pl_read_positions(struct run *R, uint64_t first, uint64_t n, void *out, uint64_t *bad)
{
	sm_io_buffer iob = {R->iobuf, R->iobuf != NULL ? SM_MODEL_IO_BUFFER_BYTES : 0};
	uint64_t done, k, b;
	double t0;
	int rc;

	*bad = n;
	for (done = 0; done < n; done += k) {
		k = n - done < POSITIONS_PIECE ? n - done : POSITIONS_PIECE;
		if ((rc = sm__pl_cancelled(R)) != 0)
			return rc;
		t0 = sm__pl_now_s();
		rc = sm_snapshot_read_range_checked(&R->s, 0, SM_ARRAY_COORDINATES, R->pt, 3, first + done,
						    k, (char *)out + done * 3 * R->psz,
						    R->iobuf != NULL ? &iob : NULL, -0.5 * R->box,
						    1.5 * R->box, &b, R->err);
		sm__pl_part_since(R, SM_PROF_PART_READ, t0);
		if (rc != 0)
			return rc;
		if (b < k) {
			*bad = done + b;
			return 0;
		}
	}
	return 0;
}

int sm__pl_bad_coordinate(struct run *R, uint64_t cell)
{
	char where[SM_PATH_MAX];
	uint64_t local;

	sm__pl_cell_location(R, cell, where, sizeof(where), &local);
	return sm_error_set(R->err, SM_EFORMAT,
			    "'%s': /PartType0/Coordinates[%llu] is not finite or lies more than half a "
			    "box (BoxSize %g) outside the box (gas cell %llu)", where,
			    (unsigned long long)local, R->box, (unsigned long long)cell);
}

static int load_positions(struct run *R)
{
	uint64_t n = R->n, bytes, bad = n;
	int rc;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_LOAD_POSITIONS, -1, n)) != 0)
		return rc;
	if (sm_mul_u64(n, 3 * (uint64_t)R->psz, &bytes) != 0)
		return sm_error_set(R->err, SM_EOVERFLOW, "'%s': Coordinates of %llu cells: byte "
				    "count does not fit in 64 bits", sm__pl_snap_file(R),
				    (unsigned long long)n);
	if ((rc = sm__pl_palloc(R, &R->coords, SM_ARRAY_COORDINATES, bytes)) != 0)
		return rc;
	prefault(R, R->coords, bytes);
	if (R->pt == SM_DTYPE_F32) {
		if ((rc = sm__pl_palloc(R, &R->iobuf, SM_ARRAY_IO_BUFFER, SM_MODEL_IO_BUFFER_BYTES)) != 0)
			return rc;
	}
	if ((rc = sm__pl_read_positions(R, 0, n, R->coords, &bad)) != 0)
		return rc;
	if (bad < n)
		return sm__pl_bad_coordinate(R, bad);
	sm__pl_pfree(R, &R->iobuf);
	sm__pl_progress(R, SM_STAGE_LOAD_POSITIONS, -1, n, n);
	sm__pl_stage_end(R);
	return 0;
}

/* build_index's parallel parts. The x-slab pass runs on the calling thread and finds the slab
 * boundaries itself (index_cell_start[s g^2]); then all parts take slabs one at a time: count the
 * slab's cells into its own stretch of index_cell_fill, turn them into its index_cell_start
 * entries, and sort the slab into rows and the rows into cells. A slab's cells and counters are
 * its own, and its order does not depend on who sorts it. */
struct index_job {
	const struct grid *gr;
	void *x;
	float *t;
	int f64;
	uint64_t *start, *fill;
	atomic_uint_fast64_t next;
};

static void distribute(const struct index_job *J, const uint64_t *start, uint64_t *bounds,
		       uint64_t lo, uint64_t n, uint64_t stride, int axis)
{
	if (J->f64)
		distribute_f64(J->gr, J->x, J->t, start, bounds, lo, n, stride,
			       (unsigned)J->gr->g, axis);
	else
		distribute_f32(J->gr, J->x, J->t, start, bounds, lo, n, stride,
			       (unsigned)J->gr->g, axis);
}

static void slab_part(void *arg, unsigned part, unsigned parts)
{
	struct index_job *J = arg;
	uint64_t g = J->gr->g, g2 = g * g, sl, y, k;

	while ((sl = atomic_fetch_add(&J->next, 1)) < g) {
		uint64_t *st = J->start + sl * g2, *cnt = J->fill + sl * g2;
		uint64_t a = st[0], b = st[g2], at;

		/* count_cells indexes by the global cell id: the slab's own g^2 entries */
		memset(cnt, 0, g2 * sizeof(*cnt));
		if (J->f64)
			count_cells_f64(J->gr, (const double *)J->x + 3 * a, b - a, J->fill);
		else
			count_cells_f32(J->gr, (const float *)J->x + 3 * a, b - a, J->fill);
		/* st[0] and st[g2] are the slab pass's (st[g2] is the next slab's st[0]) */
		for (k = 1, at = a + cnt[0]; k < g2; k++) {
			st[k] = at;
			at += cnt[k];
		}
		if (b - a < 2)
			continue;
		distribute(J, st, NULL, a, b - a, g, 1);
		for (y = 0; y < g; y++)
			if (st[(y + 1) * g] - st[y * g] > 1)
				distribute(J, st + y * g, NULL, st[y * g], st[(y + 1) * g] - st[y * g],
					   1, 2);
	}
}

/* Ranges of grid indices along one axis covering [c - r, c + r] (periodic, each index once). */
struct axis_range {
	uint64_t a[2], b[2];  /* up to two runs [a, b] */
	int n;
};

static void axis_cover(const struct grid *gr, double c, double r, struct axis_range *ar)
{
	double pad = 1e-5 * r + 1e-6 * gr->box;
	double flo = floor((c - r - pad) * gr->inv_w), fhi = floor((c + r + pad) * gr->inv_w);
	int64_t g = (int64_t)gr->g;
	int64_t lo, hi, wl, wh;

	/* Decided in double before any integer conversion: a span of g cells or more (or one that
	 * is not a number) covers the axis, and whatever is left lies within a few grid widths of
	 * [0, g), the centre being in the box. */
	if (!(fhi - flo + 1 < gr->gd) || !(flo > -4.0 * gr->gd && fhi < 5.0 * gr->gd)) {
		ar->n = 1;
		ar->a[0] = 0;
		ar->b[0] = (uint64_t)g - 1;
		return;
	}
	lo = (int64_t)flo;
	hi = (int64_t)fhi;
	if (hi - lo + 1 >= g) {
		ar->n = 1;
		ar->a[0] = 0;
		ar->b[0] = (uint64_t)g - 1;
		return;
	}
	wl = ((lo % g) + g) % g;
	wh = ((hi % g) + g) % g;
	if (wl <= wh) {
		ar->n = 1;
		ar->a[0] = (uint64_t)wl;
		ar->b[0] = (uint64_t)wh;
	} else {
		ar->n = 2;
		ar->a[0] = (uint64_t)wl;
		ar->b[0] = (uint64_t)g - 1;
		ar->a[1] = 0;
		ar->b[1] = (uint64_t)wh;
	}
}

/* The grid cells the halos' sphere scans visit (sphere_scan's own cover), flagged in cover[m]. */
static void mark_cover(const struct run *R, unsigned char *cover)
{
	const struct grid *gr = &R->grid;
	uint64_t h, g = gr->g, x, y;
	struct axis_range ax, ay, az;
	int i, j, l;

	memset(cover, 0, g * g * g);
	for (h = 0; h < R->k; h++) {
		const double *cd = &R->halo_center[3 * h];
		double r2 = 2.0 * R->halo_r200[h];

		axis_cover(gr, cd[0], r2, &ax);
		axis_cover(gr, cd[1], r2, &ay);
		axis_cover(gr, cd[2], r2, &az);
		for (i = 0; i < ax.n; i++)
			for (x = ax.a[i]; x <= ax.b[i]; x++)
				for (j = 0; j < ay.n; j++)
					for (y = ay.a[j]; y <= ay.b[j]; y++)
						for (l = 0; l < az.n; l++)
							memset(cover + (x * g + y) * g + az.a[l], 1,
							       az.b[l] - az.a[l] + 1);
	}
}

struct part_job {
	const struct grid *gr;
	const unsigned char *cover;
	void *x;
	float *t;
	int f64;
	uint64_t n;
	uint64_t lo[SM__PL_MAX_THREADS], near[SM__PL_MAX_THREADS];
};

static void cover_part(void *arg, unsigned part, unsigned parts)
{
	struct part_job *J = arg;
	uint64_t lo = J->n * part / parts, hi = J->n * (part + 1) / parts;

	uint64_t b[3];

	J->lo[part] = lo;
	if (hi - lo < 2) { /* split_near puts a single row in bucket 0 unclassified */
		J->near[part] = hi > lo && !(J->f64 ? COVER_BUCKET_f64(J->gr, (const double *)J->x + 3 * lo, 0)
						    : COVER_BUCKET_f32(J->gr, (const float *)J->x + 3 * lo, 0));
		return;
	}
	if (J->f64)
		split_near_f64(J->gr, J->x, J->t, NULL, b, lo, hi - lo, 1, 2, 0);
	else
		split_near_f32(J->gr, J->x, J->t, NULL, b, lo, hi - lo, 1, 2, 0);
	J->near[part] = b[1] - lo;
}

/* Cells in covered grid cells to the front, on the worker threads: each part partitions its own
 * stretch, then the parts' near blocks are closed up (swapping with the far rows between).
 * Returns the number of near cells. */
static uint64_t partition_near(struct run *R, const unsigned char *cover)
{
	struct part_job J;
	unsigned parts = R->n >= 65536 ? sm__pl_threads() : 1, p;
	uint64_t e = 0;

	memset(&J, 0, sizeof(J));
	J.gr = &R->grid;
	J.cover = cover;
	J.x = R->coords;
	J.t = R->temp;
	J.f64 = R->pt == SM_DTYPE_F64;
	J.n = R->n;
	sm__pl_parallel(cover_part, &J, parts);
	for (p = 0; p < parts; p++) {
		uint64_t gap = J.lo[p] - e, k = gap < J.near[p] ? gap : J.near[p];

		if (k > 0) {
			uint64_t b = J.lo[p] + J.near[p] - k;

			if (J.f64)
				swap_rows_f64(R->coords, R->temp, e, b, k);
			else
				swap_rows_f32(R->coords, R->temp, e, b, k);
		}
		e += J.near[p];
	}
	return e;
}

static int build_index(struct run *R)
{
	uint64_t g = sm_model_grid_side(R->n), m = g * g * g, nnear;
	struct index_job J;
	int rc;

	R->grid.g = g;
	R->grid.gd = (double)g;
	R->grid.box = R->box;
	R->grid.inv_w = (double)g / R->box;
	R->r->grid_side = g;
	if ((rc = sm__pl_stage_begin(R, SM_STAGE_BUILD_INDEX, -1, R->n)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->cstart, SM_ARRAY_INDEX_CELL_START, 8 * (m + 1))) != 0 ||
	    (rc = sm__pl_palloc(R, &R->cfill, SM_ARRAY_INDEX_CELL_FILL, 8 * m)) != 0)
		return rc;
	/* Only cells some sphere scan can visit are sorted; index_cell_fill holds the cover flags
	 * (m bytes of its 8m) until the slab counts need it. */
	mark_cover(R, (unsigned char *)R->cfill);
	R->grid.cover = (const unsigned char *)R->cfill;
	nnear = partition_near(R, (const unsigned char *)R->cfill);
	R->r->indexed_cells = nnear;
	if ((rc = sm__pl_cancelled(R)) != 0)
		return rc;
	memset(&J, 0, sizeof(J));
	J.gr = &R->grid;
	J.x = R->coords;
	J.t = R->temp;
	J.f64 = R->pt == SM_DTYPE_F64;
	J.start = R->cstart;
	J.fill = R->cfill;
	memset(R->cstart, 0, 8 * (m + 1));
	distribute(&J, NULL, R->cstart, 0, nnear, g * g, 0);
	if ((rc = sm__pl_cancelled(R)) != 0)
		return rc;
	atomic_init(&J.next, 0);
	sm__pl_parallel(slab_part, &J, nnear >= 65536 ? sm__pl_threads() : 1);
	sm__pl_pfree(R, &R->cfill);
	sm__pl_progress(R, SM_STAGE_BUILD_INDEX, -1, R->n, R->n);
	sm__pl_stage_end(R);
	return 0;
}

/* ---- per halo -------------------------------------------------------------------------------- */


/* Cells of halo h within 2 R200 through the grid: counted (so->idx NULL) or listed. Only the
 * x columns [xa, xb) of the visit order (the columns the sphere touches, in the order they are
 * visited) are scanned, so that parts of one scan can run at once and still list the cells in
 * the one order. */
static void sphere_scan(const struct run *R, uint64_t h, scan_out *so, uint64_t xa, uint64_t xb)
{
	const struct grid *gr = &R->grid;
	const double *cd = &R->halo_center[3 * h];
	double r2 = 2.0 * R->halo_r200[h];
	struct axis_range ax, ay, az;
	int i, j, l;
	uint64_t x, y, g = gr->g, v = 0;

	so->count = 0;
	axis_cover(gr, cd[0], r2, &ax);
	axis_cover(gr, cd[1], r2, &ay);
	axis_cover(gr, cd[2], r2, &az);
	for (i = 0; i < ax.n; i++)
		for (x = ax.a[i]; x <= ax.b[i]; x++, v++) {
			if (v < xa || v >= xb)
				continue;
			for (j = 0; j < ay.n; j++)
				for (y = ay.a[j]; y <= ay.b[j]; y++)
					for (l = 0; l < az.n; l++) {
						uint64_t base = (x * g + y) * g;
						uint64_t a = R->cstart[base + az.a[l]];
						uint64_t b = R->cstart[base + az.b[l] + 1];

						if (R->pt == SM_DTYPE_F32) {
							float c[3] = {(float)cd[0], (float)cd[1],
								      (float)cd[2]};
							float box = (float)R->box;

							scan_range_f32(R->coords, a, b, c, box,
								       box / 2, (float)r2, so);
						} else {
							scan_range_f64(R->coords, a, b, cd, R->box,
								       R->box / 2, r2, so);
						}
					}
		}
}

/* The number of x columns a sphere scan visits. */
static uint64_t sphere_columns(const struct run *R, uint64_t h)
{
	struct axis_range ax;
	uint64_t n = 0;
	int i;

	axis_cover(&R->grid, R->halo_center[3 * h], 2.0 * R->halo_r200[h], &ax);
	for (i = 0; i < ax.n; i++)
		n += ax.b[i] - ax.a[i] + 1;
	return n;
}

/* A halo's parallel parts: part p owns the p-th share of the scan's columns (select_sphere) or
 * of the selected cells (radial_distance, mask_arrays). */
struct halo_job {
	const struct run *R;
	uint64_t h, cols, s;
	int step;                               /* 0 count, 1 list, 2 radius, 3 gather */
	uint64_t count[SM__PL_MAX_THREADS];     /* per part (step 0), offsets (step 1) */
};

static void halo_part(void *arg, unsigned part, unsigned parts);

static uint64_t idx_at(const struct run *R, uint64_t j)
{
	return R->idx64 ? ((const uint64_t *)R->sphere)[j] : ((const uint32_t *)R->sphere)[j];
}

/* Calls the body for the j-th selected cell i, in order, through the index list or the mask. */
#define FOR_SELECTED(R, j, i, body)                                                               \
	do {                                                                                      \
		if ((R)->o->model.select == SM_SELECT_INDEX) {                                    \
			for ((j) = 0; (j) < s; (j)++) {                                           \
				(i) = idx_at((R), (j));                                           \
				body;                                                             \
			}                                                                         \
		} else {                                                                          \
			for ((i) = 0, (j) = 0; (i) < (R)->n; (i)++) {                             \
				if (!(R)->mask[(i)])                                              \
					continue;                                                 \
				body;                                                             \
				(j)++;                                                            \
			}                                                                         \
		}                                                                                 \
	} while (0)

static void halo_part(void *arg, unsigned part, unsigned parts)
{
	struct halo_job *J = arg;
	const struct run *R = J->R;
	uint64_t j, i;

	if (J->step <= 1) {
		scan_out so = {0, NULL, R->idx64};
		uint64_t xa = J->cols * part / parts, xb = J->cols * (part + 1) / parts;

		if (J->step == 1) {
			so.idx = R->idx64 ? (void *)((uint64_t *)R->sphere + J->count[part])
					  : (void *)((uint32_t *)R->sphere + J->count[part]);
		}
		sphere_scan(R, J->h, &so, xa, xb);
		if (J->step == 0)
			J->count[part] = so.count;
		return;
	}
	{
		uint64_t ja = J->s * part / parts, jb = J->s * (part + 1) / parts;
		const double *cd = &R->halo_center[3 * J->h];

		if (J->step == 2 && R->pt == SM_DTYPE_F32) {
			float c[3] = {(float)cd[0], (float)cd[1], (float)cd[2]};
			float box = (float)R->box, *rad = R->radius;
			const float *x = R->coords;

			for (j = ja; j < jb; j++) {
				i = idx_at(R, j);
				rad[j] = sm__pl_dist_f32(x + 3 * i, c, box, box / 2);
			}
		} else if (J->step == 2) {
			double *rad = R->radius;
			const double *x = R->coords;

			for (j = ja; j < jb; j++) {
				i = idx_at(R, j);
				rad[j] = sm__pl_dist_f64(x + 3 * i, cd, R->box, R->box / 2);
			}
		} else {
			unsigned char *dst = R->sel_pos;
			const unsigned char *src = R->coords;
			size_t row = 3 * R->psz;

			for (j = ja; j < jb; j++) {
				i = idx_at(R, j);
				R->sel_t[j] = R->temp[i];
				memcpy(dst + j * row, src + i * row, row);
			}
		}
	}
}

/* Parts worth running for a halo step over `work` cells or columns. */
static unsigned halo_parts(uint64_t work, uint64_t min_per_part)
{
	unsigned p = sm__pl_threads();

	while (p > 1 && work / p < min_per_part)
		p--;
	return p;
}

/* The T-bin table (no log10 per cell): th[b] is the smallest non-negative float (as bits) whose
 * exact bin is >= b, found by bisection over the float bit patterns (ordered like the values);
 * tab[key] the bin of the floats with top bits `key` below their range's threshold (a range of
 * 2^19 patterns spans a factor 2^(1/16), a bin 10^(1/10): at most one threshold per range).
 * Values within TBIN_GUARD patterns of a threshold are binned with log10, so the result equals
 * tbin_exact even where log10 is not monotonic to the last bit. */
void sm__pl_tbin_table_init(struct tbin_table *tt)
{
	uint32_t b, key;

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
	for (key = 0, b = 0; key < TBIN_KEYS; key++) {
		while (b + 1 < SM_MODEL_TBINS && tt->th[b + 1] <= key << TBIN_SHIFT)
			b++;
		tt->tab[key] = (unsigned char)b;
	}
}

static void histogram(const struct run *R, uint64_t s, double r200, unsigned char *hist)
{
	uint64_t j;

	memset(hist, 0, SM_MODEL_HISTOGRAM_BYTES);
	for (j = 0; j < s; j++) {
		double rr = R->pt == SM_DTYPE_F32 ? (double)((const float *)R->radius)[j]
						  : ((const double *)R->radius)[j];

		sm__pl_hist_add(hist, &R->tbins, rr, r200, R->sel_t[j]);
	}
	sm__pl_hist_finish(hist);
}

static int one_halo(struct run *R, uint64_t h)
{
	const int64_t inst = (int64_t)h;
	const double *cd = &R->halo_center[3 * h];
	double r2 = 2.0 * R->halo_r200[h];
	uint64_t s = 0, j, i;
	int rc;

	/* select_sphere */
	if ((rc = sm__pl_stage_begin(R, SM_STAGE_SELECT_SPHERE, inst, R->k)) != 0)
		return rc;
	if (R->o->model.select == SM_SELECT_INDEX) {
		struct halo_job J;
		unsigned parts, p;

		memset(&J, 0, sizeof(J));
		J.R = R;
		J.h = h;
		J.cols = sphere_columns(R, h);
		parts = halo_parts(J.cols * R->n / R->grid.g, HALO_PART_MIN_CELLS);
		sm__pl_parallel(halo_part, &J, parts);
		for (p = 0; p < parts; p++) {
			uint64_t c = J.count[p];

			J.count[p] = s;
			s += c;
		}
		if ((rc = sm__pl_palloc(R, &R->sphere, SM_ARRAY_SPHERE_CELLS, s * (R->idx64 ? 8 : 4))) != 0)
			return rc;
		J.step = 1;
		sm__pl_parallel(halo_part, &J, parts);
	} else {
		if ((rc = sm__pl_palloc(R, &R->mask, SM_ARRAY_SPHERE_MASK, R->n)) != 0)
			return rc;
		if (R->pt == SM_DTYPE_F32) {
			float c[3] = {(float)cd[0], (float)cd[1], (float)cd[2]};
			float box = (float)R->box;

			s = mask_fill_f32(R->coords, R->n, c, box, box / 2, (float)r2, R->mask);
		} else {
			s = mask_fill_f64(R->coords, R->n, cd, R->box, R->box / 2, r2, R->mask);
		}
	}
	R->r->halos[h].sphere_cells = s;
	sm__pl_stage_end(R);

	/* radial_distance */
	if ((rc = sm__pl_stage_begin(R, SM_STAGE_RADIAL_DISTANCE, inst, R->k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->radius, SM_ARRAY_RADIUS, s * R->psz)) != 0)
		return rc;
	if (R->o->model.select == SM_SELECT_INDEX) {
		struct halo_job J;

		memset(&J, 0, sizeof(J));
		J.R = R;
		J.h = h;
		J.s = s;
		J.step = 2;
		sm__pl_parallel(halo_part, &J, halo_parts(s, HALO_PART_MIN_CELLS));
	} else if (R->pt == SM_DTYPE_F32) {
		float c[3] = {(float)cd[0], (float)cd[1], (float)cd[2]};
		float box = (float)R->box, *rad = R->radius;
		const float *x = R->coords;

		FOR_SELECTED(R, j, i, rad[j] = sm__pl_dist_f32(x + 3 * i, c, box, box / 2));
	} else {
		double *rad = R->radius;
		const double *x = R->coords;

		FOR_SELECTED(R, j, i, rad[j] = sm__pl_dist_f64(x + 3 * i, cd, R->box, R->box / 2));
	}
	sm__pl_stage_end(R);

	/* mask_arrays */
	if ((rc = sm__pl_stage_begin(R, SM_STAGE_MASK_ARRAYS, inst, R->k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->sel_t, SM_ARRAY_SELECTED_TEMPERATURE, 4 * s)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->sel_pos, SM_ARRAY_SELECTED_POSITIONS, 3 * s * R->psz)) != 0)
		return rc;
	if (R->o->model.select == SM_SELECT_INDEX) {
		struct halo_job J;

		memset(&J, 0, sizeof(J));
		J.R = R;
		J.h = h;
		J.s = s;
		J.step = 3;
		sm__pl_parallel(halo_part, &J, halo_parts(s, HALO_PART_MIN_CELLS));
	} else {
		unsigned char *dst = R->sel_pos;
		const unsigned char *src = R->coords;
		size_t row = 3 * R->psz;

		FOR_SELECTED(R, j, i, {
			R->sel_t[j] = R->temp[i];
			memcpy(dst + j * row, src + i * row, row);
		});
	}
	sm__pl_stage_end(R);

	/* histogram_write */
	if ((rc = sm__pl_stage_begin(R, SM_STAGE_HISTOGRAM_WRITE, inst, R->k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->hist, SM_ARRAY_HISTOGRAM, SM_MODEL_HISTOGRAM_BYTES)) != 0)
		return rc;
	histogram(R, s, R->halo_r200[h], R->hist);
	if ((rc = sm__pl_out_append(R->out, R->halo_index[h], cd, R->halo_r200[h], R->halo_m200[h],
				    R->hist, R->err)) != 0)
		return rc;
	sm__pl_pfree(R, &R->sphere);
	sm__pl_pfree(R, &R->mask);
	sm__pl_pfree(R, &R->radius);
	sm__pl_pfree(R, &R->sel_t);
	sm__pl_pfree(R, &R->sel_pos);
	sm__pl_pfree(R, &R->hist);
	sm__pl_progress(R, SM_STAGE_HISTOGRAM_WRITE, inst, h + 1, R->k);
	sm__pl_stage_end(R);
	return 0;
}

/* ---- the run --------------------------------------------------------------------------------- */

int sm__pl_create_output(struct run *R)
{
	const sm_model_options *mo = &R->o->model;
	sm__pl_attr a[24];
	size_t n = 0;

#define S(nm, v) (a[n].name = (nm), a[n].s = (v), n++)
#define I(nm, v) (a[n].name = (nm), a[n].s = NULL, a[n].is_int = 1, a[n].i = (int64_t)(v), n++)
#define D(nm, v) (a[n].name = (nm), a[n].s = NULL, a[n].is_int = 0, a[n].d = (v), n++)
	memset(a, 0, sizeof(a));
	S("creator", "snapmem run 0.1.0");
	if (R->o->run_id != NULL)
		S("run_id", R->o->run_id);
	if (R->o->run_started != NULL)
		S("run_started", R->o->run_started);
	S("base_path", R->o->base_path);
	I("snap", R->o->snap);
	S(SM_OPT_POSITIONS, sm_model_positions_name(mo->positions));
	S(SM_OPT_SELECT, sm_model_select_name(mo->select));
	S(SM_OPT_TEMPERATURE, sm_model_temperature_name(mo->temperature));
	I("stream_block", mo->stream_block);
	I("halos_option", mo->halos);
	D("mass_min_msun", mo->mass_min);
	I("ranks", mo->ranks);
	I("halos_selected", R->k);
	I("gas_cells", R->n);
	I("groups_total", R->gtot);
	D("box_size", R->box);
	D("hubble_param", R->h);
	I("grid_side", R->r->grid_side);
	S("selection", mo->halos >= 0 ? "the N most massive by Group_M_Crit200"
				      : "Group_M_Crit200 * 1e10 / h strictly above mass_min_msun");
	S("result", R->k == 0 ? "empty: no halo matched the selection (K = 0)"
			      : "one row per selected halo, by mass descending");
#undef S
#undef I
#undef D
	return sm__pl_out_create(&R->out, R->o->out_dir, a, n, R->err);
}

/* Opens the snapshot and the catalogue and checks the header facts every strategy needs. */
int sm__pl_open_inputs(struct run *R)
{
	static const struct {
		const char *name;
		int ncomp;
	} needed[] = {{SM_ARRAY_INTERNAL_ENERGY, 1}, {SM_ARRAY_ELECTRON_ABUNDANCE, 1}, {SM_ARRAY_STAR_FORMATION_RATE, 1},
		      {SM_ARRAY_COORDINATES, 3}};
	const sm_pipeline_options *o = R->o;
	size_t i;
	int rc;

	if ((rc = sm_snapshot_open_base(&R->s, o->base_path, o->snap, R->err)) != 0)
		return rc;
	R->s_open = 1;
	if ((rc = sm_snapshot_scan(&R->s, R->err)) != 0)
		return rc;
	if ((rc = sm_catalog_open_base(&R->c, o->base_path, o->snap, R->err)) != 0) {
		if (rc == SM_ENOTFOUND)
			sm_error_set(R->err, SM_ENOTFOUND,
				     "'%s': no group catalogue for snapshot %d: the pipeline needs "
				     "halo centres and radii", o->base_path, o->snap);
		return rc;
	}
	R->c_open = 1;
	if ((rc = sm_catalog_match_snapshot(&R->c, &R->s, R->err)) != 0)
		return rc;
	R->n = R->s.header.npart_total[0];
	R->gtot = R->c.ngroups_total;
	R->box = R->s.header.box_size;
	R->h = R->s.header.hubble_param > 0 ? R->s.header.hubble_param : R->c.hubble_param;
	R->uv2 = R->s.header.unit_velocity_cm_s * R->s.header.unit_velocity_cm_s;
	R->idx64 = R->n > UINT64_C(4294967295);
	R->r->gas_cells = R->n;
	R->r->groups_total = R->gtot;
	R->r->snapshot_files = R->s.nfiles;
	R->r->catalog_files = R->c.nfiles;
	R->r->box_size = R->box;
	R->r->hubble_param = R->h;
	if (!(R->box > 0) || !isfinite(R->box))
		return sm_error_set(R->err, SM_EFORMAT, "'%s': /Header attribute 'BoxSize' is %g: "
				    "must be positive", sm__pl_snap_file(R), R->box);
	if (!(R->h > 0) || !isfinite(R->h))
		return sm_error_set(R->err, SM_EFORMAT, "'%s': HubbleParam is missing or not "
				    "positive: cannot convert Group_M_Crit200 to Msun",
				    sm__pl_snap_file(R));
	if (!(R->uv2 > 0) || !isfinite(R->uv2))
		return sm_error_set(R->err, SM_EFORMAT, "'%s': /Header attribute "
				    "'UnitVelocity_in_cm_per_s' is %g: its square must be positive "
				    "and finite", sm__pl_snap_file(R),
				    R->s.header.unit_velocity_cm_s);
	if (R->n > UINT64_MAX / 24)
		return sm_error_set(R->err, SM_EOVERFLOW, "'%s': %llu gas cells: byte counts do not "
				    "fit in 64 bits", sm__pl_snap_file(R), (unsigned long long)R->n);
	/* The particle data exists, in every chunk that holds gas, before anything large is
	 * allocated: a headers-only snapshot of TNG300-1's size would otherwise take (and touch)
	 * tens of GiB before its first read fails. */
	for (i = 0; i < sizeof(needed) / sizeof(needed[0]) && R->n > 0; i++) {
		float row[3];

		/* the first row as the run reads it (a type that is not a float fails here, naming
		 * the chunk), then every chunk's dataset: present, as many rows, the same type */
		if ((rc = sm_snapshot_read_range(&R->s, 0, needed[i].name, SM_DTYPE_F32,
						 needed[i].ncomp, 0, 1, row, NULL, R->err)) != 0 ||
		    (rc = sm_snapshot_check_field(&R->s, 0, needed[i].name, needed[i].ncomp,
						  R->err)) != 0)
			return rc;
	}

	return 0;
}

static int run_all(struct run *R)
{
	const sm_pipeline_options *o = R->o;
	uint64_t h;
	int rc;

	if ((rc = sm__pl_cancelled(R)) != 0 || (rc = sm__pl_open_inputs(R)) != 0)
		return rc;
	if ((rc = sm__pl_load_halos(R)) != 0 || (rc = gas_and_temperature(R)) != 0 ||
	    (rc = load_positions(R)) != 0)
		return rc;
	if (o->model.select == SM_SELECT_INDEX && (rc = build_index(R)) != 0)
		return rc;
	if ((rc = sm__pl_create_output(R)) != 0)
		return rc;
	for (h = 0; h < R->k; h++)
		if ((rc = one_halo(R, h)) != 0)
			return rc;
	if ((rc = sm__pl_cancelled(R)) != 0)
		return rc;
	return 0;
}

int sm_pipeline_run(const sm_pipeline_options *o, sm_prof *p, sm_pipeline_result *r,
		    sm_error *err)
{
	struct run run, *R = &run;
	int rc;

	memset(r, 0, sizeof(*r));
	r->instance = -1;
	memset(R, 0, sizeof(*R));
	R->o = o;
	R->p = p;
	R->r = r;
	R->err = err;
	R->t0 = sm__pl_now_s();
	sm_hdf5_quiet();
	if (o == NULL || o->base_path == NULL || o->out_dir == NULL) {
		rc = sm_error_set(err, SM_EINVAL, "pipeline: base path and output directory needed");
		goto out;
	}
	if (o->model.positions != SM_DTYPE_F32 && o->model.positions != SM_DTYPE_F64) {
		rc = sm_error_set(err, SM_EINVAL, "pipeline: positions must be float32 or float64");
		goto out;
	}
	if (o->model.mpi || o->model.ranks != 1) {
		rc = sm_error_set(err, SM_EUNSUPPORTED, "--mpi / --ranks %u: the serial pipeline runs "
				  "on one rank; the distributed strategy is its own entry point",
				  (unsigned)o->model.ranks);
		goto out;
	}
	if (o->model.stream_block == 0) {
		rc = sm_error_set(err, SM_EINVAL, "--stream-block: must be at least 1 cell");
		goto out;
	}
	R->pt = o->model.positions;
	R->psz = sm_dtype_size(R->pt);
	sm__pl_tbin_table_init(&R->tbins);

	rc = run_all(R);
	if (rc == 0) {
		rc = sm__pl_out_commit(R->out, r->profiles_path, sizeof(r->profiles_path), err);
		R->out = NULL;
		if (rc == 0)
			r->stage[0] = '\0';
	}
out:
	/* Undo in reverse: the open stage's arrays, the stage, the output, the files. */
	while (R->nlive > 0) {
		void *q = R->live[R->nlive - 1].ptr;

		sm__pl_pfree(R, &q);
	}
	sm__pl_stage_end(R);
	sm__pl_out_abort(R->out);
	if (R->c_open)
		sm_catalog_release(&R->c);
	if (R->s_open)
		sm_snapshot_release(&R->s);
	r->wall_s = sm__pl_now_s() - R->t0;
	if (rc != 0 && err != NULL && err->code == 0)
		sm_error_set(err, rc, "pipeline: %s", sm_strerror(rc));
	return rc;
}
