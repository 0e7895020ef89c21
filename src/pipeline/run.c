/*
 * The serial radial-profile pipeline's run (include/snapmem/pipeline.h): the notebook's steps, stage
 * by stage, each stage's code in the file named after its stage id (load_halos.c,
 * load_gas_fields.c, compute_temperature.c, load_positions.c, build_index.c, then per halo
 * select_sphere.c, radial_distance.c, mask_arrays.c, histogram_write.c), with every large array
 * allocated through the profiler under docs/MODEL.md's name, in MODEL.md's order, and freed where
 * MODEL.md frees it. The estimator replays the same event list; any change to an allocation
 * changes docs/MODEL.md and estimator/pipelines/radial-profiles.yaml with it. Names, constants and
 * the arithmetic both
 * sides share (grid side, halo order) are the model contract's (snapmem/model.h).
 *
 * This file holds the run's state shared by both strategies (the distributed driver is
 * distributed.c): stages and progress, cancellation, tracked arrays under --max-mem, the first
 * touch of large arrays (prefault), the files named in messages, the inputs' checks, the output's
 * attributes, and the serial driver, sm_pipeline_run.
 *
 * Science (DESIGN.md): T = (gamma-1) u / k_B UnitVelocity^2 mu, computed in double and stored as
 * float32, with star-forming cells stored as -T (the sign bit is the flag, no extra array);
 * periodic minimum-image distances in the positions' own type (float32 arithmetic for float32, as
 * numpy does), one distance function for both selection strategies so that they decide every cell
 * identically; r/R200 and log10 T binned in double.
 *
 * Speed: every array written whole after its allocation is mapped in before it is filled
 * (sm__pl_palloc_filled), those from 2 MiB asked for transparent huge pages (sm__pl_prefault;
 * 4 KiB pages once a huge page is slow to come): first touches of memory, not copying, dominate
 * reading from the page cache. Fields are read by the snapshot reader's fast path (pread on the
 * worker threads, see src/snapshot/fastread.c); Coordinates kept
 * as float32 are narrowed from float64 through io_buffer and range-checked in the same pass
 * (sm_snapshot_read_range_checked).
 *
 * Threads (parallel.c, a pool kept for the process): the temperature kernel, the per-slab sorts
 * and, for halos of more than SM__PL_HALO_PART_MIN_CELLS cells a part, the sphere scan, distances
 * and gather run on all usable CPUs; worker threads never allocate (docs/PROFILER.md), and every
 * result is independent of the number of threads (the histogram's sums stay one sequential loop
 * in sphere order).
 *
 * Only the caller's result table (32 bytes per selected halo) and small HDF5/stack state are
 * allocated outside the profiler.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/mman.h>

#include <hdf5.h>

#include "snapmem/pipeline.h"
#include "snapmem/units.h"

#include "internal.h"
#include "run.h"

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

/* The whole pages inside [p, p + bytes): [*a, *b) (empty when *b <= *a). */
static void inner_pages(const void *p, uint64_t bytes, uintptr_t *a, uintptr_t *b)
{
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t u = pg > 0 ? (uintptr_t)pg : 4096;

	*a = ((uintptr_t)p + u - 1) / u * u;
	*b = ((uintptr_t)p + bytes) / u * u;
}

#define HUGE_MIN_BYTES SM_MODEL_HUGE_PAGE_BYTES /* smaller arrays take 4 KiB pages */

/* A hinted array's range back from the huge-page hint before jemalloc hands it out again, so that a
 * small array later placed there does not take a whole 2 MiB page (its pages resident beyond its
 * own; docs/MODEL.md "The four peaks"). */
static void unhint(const void *p, uint64_t bytes)
{
	uintptr_t a, b;

	inner_pages(p, bytes, &a, &b);
	if (b > a)
		(void)madvise((void *)a, b - a, MADV_NOHUGEPAGE);
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
	R->live[R->nlive].hinted = 0;
	R->nlive++;
	R->live_bytes += bytes;
	memcpy(slot, &q, sizeof(q));
	return 0;
}

/* A tracked array whose first `touched` bytes are written next: those mapped in before they are
 * filled (no more, so that resident stays what the model counts), and, when they took the
 * huge-page hint, the array marked for sm__pl_pfree to take the hint back. */
int sm__pl_palloc_touched(struct run *R, void *slot, const char *name, uint64_t bytes,
			  uint64_t touched)
{
	void *q;
	int rc = sm__pl_palloc(R, slot, name, bytes);

	if (rc != 0)
		return rc;
	memcpy(&q, slot, sizeof(q));
	if (touched > bytes)
		touched = bytes;
	R->live[R->nlive - 1].hinted =
		sm__pl_prefault(R, q, touched, touched >= HUGE_MIN_BYTES ? sm_prof_usable(R->p, q) : 0);
	return 0;
}

int sm__pl_palloc_filled(struct run *R, void *slot, const char *name, uint64_t bytes)
{
	return sm__pl_palloc_touched(R, slot, name, bytes, bytes);
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
		if (R->live[i].hinted > 0)
			unhint(q, R->live[i].hinted);
		R->live_bytes -= R->live[i].bytes;
		R->live[i] = R->live[--R->nlive];
		break;
	}
	sm_prof_release(R->p, q);
	q = NULL;
	memcpy(slot, &q, sizeof(q));
}

/* ---- first touch ------------------------------------------------------------------------------ */

#define PARALLEL_MIN_BYTES (UINT64_C(256) << 10) /* smaller arrays on the calling thread */
#define HUGE_STEP SM_MODEL_HUGE_PAGE_BYTES /* huge pages are mapped in this many bytes at a time */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* A HUGE_STEP that takes longer than this to map in may be a slow one: the kernel compacting
 * memory to make the page (or the hypervisor backing it). Here (a VM with nested
 * paravirtualisation) a 2 MiB page took 75-215 us when the kernel had one ready, 9-25 ms on
 * average, single steps up to 78 ms, when it had not (after 20 s idle), and 5.0-5.8 ms (23 steps
 * of one run at 1e7 cells) on a day whose 4 KiB faults took 11.4 us. Tests set it (0: every step
 * is looked at). */
double sm__pl_huge_slow_s = 5e-3;

/* Nanoseconds a 4 KiB page fault takes here, measured the first time a step is slower than
 * sm__pl_huge_slow_s (fault_4k_ns); 0 until then. Tests set it. */
atomic_uint_fast64_t sm__pl_fault_4k_ns;

#define PROBE_PAGES 32

/* The time of one 4 KiB page fault (0: unknown): PROBE_PAGES fresh pages, not huge, written once
 * each, the first time it is asked for. */
static uint64_t fault_4k_ns(void)
{
	uint64_t ns = atomic_load_explicit(&sm__pl_fault_4k_ns, memory_order_relaxed);
	long pg = sysconf(_SC_PAGESIZE);
	size_t i, len = (size_t)(pg > 0 ? pg : 4096) * PROBE_PAGES;
	unsigned char *m = MAP_FAILED;
	double t0;

	if (ns == 0 && pg > 0)
		m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m != MAP_FAILED) {
		(void)madvise(m, len, MADV_NOHUGEPAGE);
		t0 = sm__pl_now_s();
		for (i = 0; i < len; i += (size_t)pg)
			((volatile unsigned char *)m)[i] = 1;
		ns = (uint64_t)((sm__pl_now_s() - t0) * 1e9 / PROBE_PAGES) + 1;
		munmap(m, len);
		atomic_store_explicit(&sm__pl_fault_4k_ns, ns, memory_order_relaxed);
	}
	return ns;
}

/*
 * Whether a huge step that took `s` seconds is slow: longer than sm__pl_huge_slow_s and than
 * twice the faults of the small pages (512 of 4 KiB) it replaces. Twice, because a populated
 * 4 KiB page is then first touched again, by the kernel's read into it and by the program (here
 * 0.7 us the populate, 8 and 5 us the touches, against 11.4 us the fault), where a huge page is
 * not. When the 2 MiB steps took 5.0-5.8 ms here, one above 5 ms sent the rest of a run at 1e7
 * cells to 4 KiB pages: 0.56 s against 0.36 s with the hint kept.
 */
static int step_slow(double s, uint64_t page)
{
	uint64_t ns;

	if (s <= sm__pl_huge_slow_s)
		return 0;
	ns = fault_4k_ns();
	return ns == 0 || s > 2.0 * (double)(HUGE_STEP / page) * (double)ns * 1e-9;
}

struct prefault_job {
	unsigned char *p;
	uint64_t bytes, page;
	uint64_t own;     /* bytes from p that are the array's own (the rest: its rounded tail) */
	int huge;         /* huge pages asked for: mapped step by step, timed */
	atomic_int slow;  /* a step was slow: the rest in 4 KiB pages */
};

/* Pages [a, b) of the job's array mapped in. */
static void populate(const struct prefault_job *J, uint64_t a, uint64_t b)
{
	uint64_t i;

	if (madvise(J->p + a, b - a, MADV_POPULATE_WRITE) == 0)
		return;
	for (i = a; i < b; i += J->page) /* older kernels: one write per page (fresh memory) */
		((volatile unsigned char *)J->p)[i] = 0;
}

static void prefault_part(void *arg, unsigned part, unsigned parts)
{
	struct prefault_job *J = arg;
	uint64_t np = J->bytes / J->page;
	uint64_t a = np * part / parts * J->page, b = np * (part + 1) / parts * J->page, e;

	if (b <= a)
		return;
	if (!J->huge) {
		populate(J, a, b);
		return;
	}
	for (; a < b; a = e) {
		double t0;

		if (atomic_load_explicit(&J->slow, memory_order_relaxed)) {
			(void)madvise(J->p + a, b - a, MADV_NOHUGEPAGE);
			if (b > J->own) /* 4 KiB pages: the rounded tail is not wanted */
				b = J->own > a ? J->own : a;
			if (b > a)
				populate(J, a, b);
			return;
		}
		/* up to the next 2 MiB boundary of the address: one huge page a step */
		e = a + HUGE_STEP - ((uintptr_t)(J->p + a) & (HUGE_STEP - 1));
		if (e > b)
			e = b;
		t0 = sm__pl_now_s();
		populate(J, a, e);
		/* timed when it can be a huge page: a whole 2 MiB (the array's ends take 4 KiB pages) */
		if (e - a == HUGE_STEP && step_slow(sm__pl_now_s() - t0, J->page))
			atomic_store_explicit(&J->slow, 1, memory_order_relaxed);
	}
}

/* SNAPMEM_HUGEPAGES=0 turns the transparent-huge-page hint off. */
static int huge_pages_wanted(void)
{
	const char *e = getenv("SNAPMEM_HUGEPAGES");

	return e == NULL || strcmp(e, "0") != 0;
}

/*
 * Maps in the pages of a fresh array before it is filled (every byte of it is written next), in
 * one madvise(MADV_POPULATE_WRITE) a range instead of a page fault a page. Here (a VM with nested
 * paravirtualisation) a fault took 2.5-3.1 us a 4 KiB page on a quiet day and 11.5-16.8 us on a
 * busy one; the populate 0.8-1.9 us, after which the first touch of the page from user space, and
 * the first write into it by the kernel (a pread), still cost 5-9 us each (the hypervisor's shadow
 * page tables); a 2 MiB page 0.1-1.5 ms in all when the kernel had one ready, 0.02 us a 4 KiB part
 * after it. Pages already mapped (memory jemalloc hands back) cost next to nothing. Arrays of
 * PARALLEL_MIN_BYTES and more are shared out to all usable CPUs; those of HUGE_MIN_BYTES and more
 * (which start on a 2 MiB boundary: sm_prof_alloc) are asked for transparent huge pages first
 * (MADV_HUGEPAGE; the kernel gives them where it can), which also spare the TLB misses of the sort
 * and the gathers; the return says so (sm__pl_palloc_filled marks the array for sm__pl_pfree to
 * take the hint back).
 * The huge pages are mapped in 2 MiB at a time and timed: a step slower than sm__pl_huge_slow_s
 * and than twice the 4 KiB faults it replaces (step_slow; the kernel compacting memory to make
 * the page, a stall far longer than the 4 KiB pages would take) turns the hint off for the rest
 * of the array and for the later arrays of the run (R->huge_slow). Only whole pages inside the
 * array are touched, and, with the hint, its tail beyond the last whole huge page rounded up to
 * the next one when the allocation owns that much and the tail is 1 MiB or more
 * (sm_model_huge_extent; the model counts those pages, docs/MODEL.md "The four peaks"): here the
 * first user touch of each 4 KiB page of a populated tail cost 5 us, a 2 MiB page 0.1-2 ms in all,
 * so a run at 1e6 cells, whose 4 MB gas fields and 12 MB positions ended in 1.5-1.8 MiB tails of
 * 4 KiB pages, took 0.638 of its time (10 alternating pairs, 68.8 -> 43.0 ms; the temperature
 * kernel 9.6 ms -> under 1 ms) for 0.8 MB more resident. Its contents are undefined before and
 * after.
 */
uint64_t sm__pl_prefault(struct run *R, void *ptr, uint64_t bytes, uint64_t usable)
{
	struct prefault_job J;
	double t0 = sm__pl_now_s();
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t a, b;
	unsigned parts = sm__pl_threads();
	uint64_t hinted = 0, ext;

	if (ptr == NULL || pg <= 0)
		return 0;
	inner_pages(ptr, bytes, &a, &b);
	if (b <= a)
		return 0;
	J.p = (unsigned char *)a;
	J.bytes = b - a;
	J.own = b - a;
	J.page = (uint64_t)pg;
	J.huge = bytes >= HUGE_MIN_BYTES && huge_pages_wanted() && !R->huge_slow;
	/* the tail up to the next huge page, on a 2 MiB boundary from the array's start */
	ext = sm_model_huge_extent(bytes, usable);
	if (J.huge && ext > bytes && ((uintptr_t)ptr & (HUGE_STEP - 1)) == 0)
		J.bytes = (uintptr_t)ptr + ext - a;
	J.huge = J.huge && madvise(J.p, J.bytes, MADV_HUGEPAGE) == 0; /* a hint: none is fine */
	if (!J.huge)
		J.bytes = J.own;
	atomic_init(&J.slow, 0);
	if (parts < 2 || bytes < PARALLEL_MIN_BYTES)
		prefault_part(&J, 0, 1);
	else
		sm__pl_parallel(prefault_part, &J, parts);
	if (atomic_load(&J.slow))
		R->huge_slow = 1;
	if (J.huge)
		hinted = (uint64_t)(a - (uintptr_t)ptr) + J.bytes;
	sm__pl_part_since(R, SM_PROF_PART_PREFAULT, t0);
	return hinted;
}

/* ---- the worker threads' share of a halo step ----------------------------------------------- */

unsigned sm__pl_halo_parts(uint64_t work, uint64_t min_per_part)
{
	unsigned p = sm__pl_threads();

	while (p > 1 && work / p < min_per_part)
		p--;
	return p;
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
void sm__pl_part_since(struct run *R, sm_prof_part part, double t0)
{
	sm_prof_time_add(R->p, part, sm__pl_now_s() - t0);
}

/* ---- the run --------------------------------------------------------------------------------- */

static void attr_s(sm__pl_attr *a, size_t *n, const char *name, const char *v)
{
	a[*n].name = name;
	a[*n].s = v;
	(*n)++;
}

static void attr_i(sm__pl_attr *a, size_t *n, const char *name, int64_t v)
{
	a[*n].name = name;
	a[*n].is_int = 1;
	a[*n].i = v;
	(*n)++;
}

static void attr_d(sm__pl_attr *a, size_t *n, const char *name, double v)
{
	a[*n].name = name;
	a[*n].d = v;
	(*n)++;
}

void sm__pl_attrs_head(const struct run *R, sm__pl_attr *a, size_t *n)
{
	attr_s(a, n, "creator", "snapmem run 0.1.0");
	if (R->o->run_id != NULL)
		attr_s(a, n, "run_id", R->o->run_id);
	if (R->o->run_started != NULL)
		attr_s(a, n, "run_started", R->o->run_started);
	attr_s(a, n, "base_path", R->o->base_path);
	attr_i(a, n, "snap", R->o->snap);
	attr_s(a, n, SM_OPT_POSITIONS, sm_model_positions_name(R->o->model.positions));
}

void sm__pl_attrs_tail(const struct run *R, sm__pl_attr *a, size_t *n, int with_ranks,
		       const char *grid_name, uint64_t grid_side)
{
	const sm_model_options *mo = &R->o->model;

	attr_i(a, n, "stream_block", (int64_t)mo->stream_block);
	attr_i(a, n, "halos_option", mo->halos);
	attr_d(a, n, "mass_min_msun", mo->mass_min);
	if (with_ranks)
		attr_i(a, n, "ranks", mo->ranks);
	attr_i(a, n, "halos_selected", (int64_t)R->k);
	attr_i(a, n, "gas_cells", (int64_t)R->n);
	attr_i(a, n, "groups_total", (int64_t)R->gtot);
	attr_d(a, n, "box_size", R->box);
	attr_d(a, n, "hubble_param", R->h);
	attr_i(a, n, grid_name, (int64_t)grid_side);
	attr_s(a, n, "selection", mo->halos >= 0 ? "the N most massive by Group_M_Crit200"
				 : "Group_M_Crit200 * 1e10 / h strictly above mass_min_msun");
	attr_s(a, n, "result", R->k == 0 ? "empty: no halo matched the selection (K = 0)"
				 : "one row per selected halo, by mass descending");
}

int sm__pl_create_output(struct run *R)
{
	sm__pl_attr a[24];
	size_t n = 0;

	memset(a, 0, sizeof(a));
	sm__pl_attrs_head(R, a, &n);
	attr_s(a, &n, SM_OPT_SELECT, sm_model_select_name(R->o->model.select));
	attr_s(a, &n, SM_OPT_TEMPERATURE, sm_model_temperature_name(R->o->model.temperature));
	sm__pl_attrs_tail(R, a, &n, 1, "grid_side", R->r->grid_side);
	return sm__pl_out_create(&R->out, R->o->out_dir, R->k, R->o->sync_later, a, n,
				 R->err);
}

/* Opens the snapshot and the catalogue and checks the header facts every strategy needs. */
int sm__pl_open_inputs(struct run *R)
{
	static const sm_field_check needed[] = {
		{SM_ARRAY_INTERNAL_ENERGY, 1}, {SM_ARRAY_ELECTRON_ABUNDANCE, 1},
		{SM_ARRAY_STAR_FORMATION_RATE, 1}, {SM_ARRAY_COORDINATES, 3}};
	const size_t nneeded = sizeof(needed) / sizeof(needed[0]);
	unsigned char scratch[4096];
	sm_io_buffer iob = {scratch, sizeof(scratch)};
	sm_error cerr;
	const sm_pipeline_options *o = R->o;
	size_t i;
	int rc, crc;

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
	if (R->n == 0)
		return 0;
	/* The first row of each field as the run reads it (a type that is not a float fails here,
	 * naming the chunk), then every chunk's datasets: present, as many rows, the same type. The
	 * error is the first field's that fails, its read's before its check's (as if each field
	 * were read and checked in turn); the chunk files are opened once for all four checks. */
	for (i = 0; i < nneeded; i++) {
		float row[3];

		/* with a conversion buffer of its own: without one, HDF5 would allocate (and clear)
		 * its 1 MiB default for the row of float64 Coordinates */
		if ((rc = sm_snapshot_read_range(&R->s, 0, needed[i].name, SM_DTYPE_F32,
						 needed[i].ncomp, 0, 1, row, &iob, R->err)) != 0)
			break;
	}
	sm_error_clear(&cerr);
	if (i > 0 && (crc = sm_snapshot_check_fields(&R->s, 0, needed, i, &cerr)) != 0) {
		if (R->err != NULL)
			*R->err = cerr;
		return crc;
	}
	return rc;
}

/* Steps 5 to 8 for halo h, each its own stage; histogram_write frees the halo's arrays. */
static int one_halo(struct run *R, uint64_t h)
{
	uint64_t s = 0;
	int rc;

	if ((rc = sm__pl_select_sphere(R, h, &s)) != 0 ||
	    (rc = sm__pl_radial_distance(R, h, s)) != 0 ||
	    (rc = sm__pl_mask_arrays(R, h, s)) != 0 ||
	    (rc = sm__pl_histogram_write(R, h, s)) != 0)
		return rc;
	return 0;
}

static int run_all(struct run *R)
{
	const sm_pipeline_options *o = R->o;
	uint64_t h;
	int rc;

	if ((rc = sm__pl_cancelled(R)) != 0 || (rc = sm__pl_open_inputs(R)) != 0)
		return rc;
	if ((rc = sm__pl_load_halos(R)) != 0 || (rc = sm__pl_load_gas_fields(R)) != 0 ||
	    (rc = sm__pl_compute_temperature(R)) != 0 || (rc = sm__pl_load_positions(R)) != 0)
		return rc;
	if (o->model.select == SM_SELECT_INDEX && (rc = sm__pl_build_index(R)) != 0)
		return rc;
	if ((rc = sm__pl_create_output(R)) != 0)
		return rc;
	/* the halos' stages come back to back, each with parallel sections of a few milliseconds
	 * or less: the worker threads' waits may spin (sm__parallel_spin) */
	sm__parallel_spin(1);
	for (h = 0; h < R->k; h++)
		if ((rc = one_halo(R, h)) != 0)
			break;
	sm__parallel_spin(0);
	if (rc != 0)
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

