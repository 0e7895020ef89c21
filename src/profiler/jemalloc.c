/*
 * Everything the profiler knows about jemalloc, in one place (as Redis keeps it in zmalloc.c).
 *
 * stats.* are read by MIB (resolved once with mallctlnametomib) after writing `epoch`, which makes
 * jemalloc refresh its merged statistics. thread.peak.read/reset (jemalloc 5.3) give the calling
 * thread's highest (allocated - deallocated) since the last reset; jemalloc updates it on peak
 * events (every 64 KiB of allocation activity) and on read, so it is exact to within 64 KiB.
 * thread.allocatedp/deallocatedp give the calling thread's cumulative counters (pointers fetched once
 * per thread, then plain loads). thread.peak.* are also called by MIB.
 * Tracked arrays come from mallocx and report sallocx (jemalloc's usable size, equal to nallocx of
 * the request). The profiler's own bookkeeping also goes straight to mallocx so that the sampling
 * layer (interpose.c) never sees it.
 *
 * Under SM_NO_JEMALLOC (sanitizer builds) every jemalloc call is compiled out: figures read as
 * "not measured", tracked arrays come from malloc and their allocated size is the request.
 */
#include "profiler/prof-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/limits.h"
#include "snapmem/units.h"

#ifndef SM_NO_JEMALLOC
#include <dlfcn.h>
#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <sys/mman.h>
#include <unistd.h>

enum { MIB_EPOCH, MIB_ALLOCATED, MIB_ACTIVE, MIB_RESIDENT, MIB_MAPPED, MIB_PEAK_READ,
       MIB_PEAK_RESET, MIB_N };
static const char *const mib_names[MIB_N] = { "epoch", "stats.allocated", "stats.active",
					       "stats.resident", "stats.mapped", "thread.peak.read",
					       "thread.peak.reset" };
int sm_prof_allocator_ready(sm_error *err)
{
	char a[32], b[32], c[32];

	if (sm__je_thread_enter())
		return 0;
	return sm_error_set(err, SM_ELIMIT,
			    "the address-space limit (ulimit -v or -d) is %s and %s is mapped "
			    "already (the libraries): the allocator needs %s more to start",
			    sm_format_iec(__atomic_load_n(&sm__je_refused_limit, __ATOMIC_RELAXED),
					  a, sizeof(a)),
			    sm_format_iec(__atomic_load_n(&sm__je_refused_used, __ATOMIC_RELAXED),
					  b, sizeof(b)),
			    sm_format_iec(SM__JE_THREAD_NEED, c, sizeof(c)));
}

static size_t mibs[MIB_N][4];
static size_t miblen[MIB_N];
static int je_state; /* 0 unknown, 1 ok, -1 unavailable */
static int peak_ok;  /* thread.peak.* resolved (jemalloc >= 5.3) */
static int peak_armed; /* set once init is complete, read by large events on any thread */
static pthread_mutex_t je_init_lock = PTHREAD_MUTEX_INITIALIZER;

int sm__je_init(void)
{
	int rc = 0;
	if (!sm__je_thread_enter())
		return -1;
	pthread_mutex_lock(&je_init_lock);
	if (je_state == 0) {
		je_state = 1;
		peak_ok = 1;
		for (int i = 0; i < MIB_N; i++) {
			miblen[i] = 4;
			if (mallctlnametomib(mib_names[i], mibs[i], &miblen[i]) != 0) {
				if (i >= MIB_PEAK_READ)
					peak_ok = 0;
				else
					je_state = -1;
			}
		}
		bool stats = false;
		size_t sz = sizeof(stats);
		if (mallctl("config.stats", &stats, &sz, NULL, 0) != 0 || !stats)
			je_state = -1;
	}
	rc = je_state == 1 ? 0 : -1;
	if (rc == 0 && peak_ok)
		__atomic_store_n(&peak_armed, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&je_init_lock);
	return rc;
}

static int read_u64(int which, uint64_t *out)
{
	size_t v = 0, sz = sizeof(v);
	if (mallctlbymib(mibs[which], miblen[which], &v, &sz, NULL, 0) != 0)
		return -1;
	*out = v;
	return 0;
}

static int refresh(void)
{
	uint64_t e = 1;
	size_t sz = sizeof(e);
	return mallctlbymib(mibs[MIB_EPOCH], miblen[MIB_EPOCH], &e, &sz, &e, sz) == 0 ? 0 : -1;
}

int sm__je_read(sm_prof_je *out)
{
	memset(out, 0, sizeof(*out));
	if (je_state != 1 || !sm__je_thread_enter() || refresh() != 0)
		return -1;
	if (read_u64(MIB_ALLOCATED, &out->allocated) || read_u64(MIB_ACTIVE, &out->active) ||
	    read_u64(MIB_RESIDENT, &out->resident) || read_u64(MIB_MAPPED, &out->mapped))
		return -1;
	uint64_t l = sm__large_live();
	out->allocated += l;
	out->active += l;
	out->resident += l;
	out->mapped += l;
	return 0;
}

/*
 * Returns every arena's dirty and muzzy pages to the kernel now (arena.<ALL>.purge): what the
 * process keeps resident is then what is live, not what the allocator kept after earlier frees
 * (up to dirty_decay_ms, 10 s by default), so that the resident peak is predictable
 * (docs/MODEL.md "The four peaks"). Costs a few microseconds when nothing is dirty.
 */
void sm__je_purge(void)
{
	static size_t mib[3];
	static size_t len;
	static int state; /* 0 unknown, 1 resolved, -1 unavailable */

	if (je_state != 1)
		return;
	if (state == 0) {
		char name[64];

		len = 3;
		snprintf(name, sizeof(name), "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
		state = mallctlnametomib(name, mib, &len) == 0 ? 1 : -1;
	}
	if (state == 1)
		(void)mallctlbymib(mib, len, NULL, NULL, NULL, 0);
}

/* Every arena's dirty and muzzy bytes (pdirty + pmuzzy pages of stats.arenas.<ALL>, times
 * arenas.page); fresh: the epoch was just written. 0 or -1 (unknown). */
static int dirty_read(uint64_t *bytes, int fresh)
{
	static size_t mib[3][6], len[3];
	static int state; /* 0 unknown, 1 resolved, -1 unavailable */
	size_t v[3] = {0, 0, 0}, sz;
	int i;

	if (state == 0) {
		char name[3][64];

		snprintf(name[0], sizeof(name[0]), "stats.arenas.%u.pdirty",
			 (unsigned)MALLCTL_ARENAS_ALL);
		snprintf(name[1], sizeof(name[1]), "stats.arenas.%u.pmuzzy",
			 (unsigned)MALLCTL_ARENAS_ALL);
		snprintf(name[2], sizeof(name[2]), "arenas.page");
		state = 1;
		for (i = 0; i < 3; i++) {
			len[i] = 6;
			if (mallctlnametomib(name[i], mib[i], &len[i]) != 0)
				state = -1;
		}
	}
	if (state != 1 || (!fresh && refresh() != 0))
		return -1;
	for (i = 0; i < 3; i++) {
		sz = sizeof(v[i]);
		if (mallctlbymib(mib[i], len[i], &v[i], &sz, NULL, 0) != 0)
			return -1;
	}
	*bytes = (uint64_t)(v[0] + v[1]) * (uint64_t)v[2];
	return 0;
}

/*
 * sm__je_purge when the arenas' dirty and muzzy pages add up to more than keep bytes; otherwise
 * they stay for the next allocations to reuse. A stage end purges through this: always purging
 * made every stage refault and zero the pages of arrays that the next stage (the next halo's
 * sphere, mask and histogram arrays) would have taken straight back from the dirty pages, which
 * cost the stages ~15-20 % at 1e7 cells. What is kept never adds to the resident peak: the next
 * tracked array that jemalloc maps from fresh pages instead purges it first (sm__je_reuse_check).
 * Returns the dirty bytes left (0: purged, or nothing to keep). When the figures cannot be read
 * it purges.
 */
uint64_t sm__je_purge_above(uint64_t keep, int fresh)
{
	uint64_t d;

	if (je_state != 1)
		return 0;
	if (keep > 0 && dirty_read(&d, fresh) == 0 && d <= keep)
		return d;
	sm__je_purge();
	return 0;
}

/*
 * Whether a tracked block of usable size u can take pages that jemalloc keeps dirty: an extent of
 * an ordinary arena (not the thread cache's, at most arenas.tcache_max, nor the oversize arena's,
 * from opt.oversize_threshold up, which returns its pages at once) and not a glibc block (large.c).
 */
int sm__je_reusable(void *p, uint64_t u)
{
	static size_t tmax, over;
	static int state; /* 0 unknown, 1 read, -1 unavailable */

	if (je_state != 1 || p == NULL || sm__large_maybe(p))
		return 0;
	if (state == 0) {
		size_t sz = sizeof(tmax);

		state = mallctl("arenas.tcache_max", &tmax, &sz, NULL, 0) == 0 &&
				(sz = sizeof(over),
				 mallctl("opt.oversize_threshold", &over, &sz, NULL, 0) == 0)
			? 1
			: -1;
		if (state == 1 && over == 0)
			over = SIZE_MAX;
	}
	return state == 1 && u > tmax && u < over;
}

/* Pages of a block sm__je_reusable lets take dirty pages: below opt.oversize_threshold (8 MiB by
 * default), 2,048 of 4 KiB; for a larger block (a raised threshold) mincore is not asked and
 * sm__je_reuse_check purges. */
#define REUSE_PAGES_MAX 2048u

/* The bytes of [p, p + u)'s pages that are resident (mincore), or -1 when that is unknown. */
static int64_t resident_bytes(const void *p, uint64_t u)
{
	unsigned char vec[REUSE_PAGES_MAX];
	const long pg = sysconf(_SC_PAGESIZE);
	uintptr_t a, b;
	size_t n, i;
	int64_t r = 0;

	if (pg <= 0 || u == 0)
		return -1;
	a = (uintptr_t)p & ~(uintptr_t)(pg - 1);
	b = (uintptr_t)p + (uintptr_t)u;
	n = (size_t)((b - a + (uintptr_t)pg - 1) / (uintptr_t)pg);
	if (n > sizeof(vec) || mincore((void *)a, (size_t)(b - a), vec) != 0)
		return -1;
	for (i = 0; i < n; i++)
		r += (vec[i] & 1) ? pg : 0;
	return r;
}

/*
 * After a tracked block q of usable size u that could have reused dirty pages was allocated
 * (sm__je_reusable), before it is touched, with *dirty the dirty bytes kept (the last reading
 * plus the tracked frees since): when none of its pages is resident (mincore), the block came
 * from fresh pages while the dirty ones could not serve it (too small, split): they are purged
 * now, before the block is touched, so that kept pages and fresh ones are never resident
 * together, and *dirty becomes 0; so too when mincore cannot tell (a block above 2,048 pages,
 * under a raised opt.oversize_threshold). When some are, the block took kept pages and *dirty
 * goes down by them (to 1, not 0: the next block is checked too). This took jemalloc's dirty
 * bytes before (an epoch write, merging every arena's statistics: 20-50 us here, where mincore
 * takes about one).
 */
void sm__je_reuse_check(void *q, uint64_t u, uint64_t *dirty)
{
	int64_t r;

	if (je_state != 1 || *dirty == 0)
		return;
	r = resident_bytes(q, u);
	if (r > 0) {
		*dirty = *dirty > (uint64_t)r ? *dirty - (uint64_t)r : 1;
		return;
	}
	sm__je_purge();
	*dirty = 0;
}

int sm__je_read_allocated(uint64_t *allocated, uint64_t *resident)
{
	if (je_state != 1 || !sm__je_thread_enter() || refresh() != 0)
		return -1;
	if (read_u64(MIB_ALLOCATED, allocated) || read_u64(MIB_RESIDENT, resident))
		return -1;
	uint64_t l = sm__large_live();
	*allocated += l;
	*resident += l;
	return 0;
}

const char *sm__je_version(void)
{
	const char *v = NULL;
	size_t sz = sizeof(v);
	if (!sm__je_thread_enter() || mallctl("version", &v, &sz, NULL, 0) != 0)
		return NULL;
	return v;
}

/* jemalloc's own cumulative counters of the calling thread (large blocks not included). */
static int je_counters(uint64_t *allocated, uint64_t *deallocated)
{
	static __thread uint64_t *ap, *dp;
	if (!ap) {
		size_t sz = sizeof(ap);
		if (!sm__je_thread_enter() || mallctl("thread.allocatedp", &ap, &sz, NULL, 0) != 0 ||
		    mallctl("thread.deallocatedp", &dp, &sz, NULL, 0) != 0) {
			ap = NULL;
			return -1;
		}
	}
	*allocated = *ap;
	*deallocated = *dp;
	return 0;
}

int sm__je_thread_counters(uint64_t *allocated, uint64_t *deallocated)
{
	uint64_t la, lf;
	if (je_counters(allocated, deallocated) != 0)
		return -1;
	sm__large_thread(&la, &lf);
	*allocated += la;
	*deallocated += lf;
	return 0;
}

/* The calling thread's counters themselves (valid while it lives), for the sampler thread. */
int sm__je_thread_counter_ptrs(const uint64_t **allocated, const uint64_t **deallocated)
{
	uint64_t *ap = NULL, *dp = NULL;
	size_t sz = sizeof(ap);

	if (je_state != 1 || !sm__je_thread_enter() ||
	    mallctl("thread.allocatedp", &ap, &sz, NULL, 0) != 0 ||
	    mallctl("thread.deallocatedp", &dp, &sz, NULL, 0) != 0 || ap == NULL || dp == NULL)
		return -1;
	*allocated = ap;
	*deallocated = dp;
	return 0;
}

int sm__je_thread_net(uint64_t *net)
{
	uint64_t a, d;
	if (sm__je_thread_counters(&a, &d) != 0)
		return -1;
	*net = a - d;
	return 0;
}

/*
 * The calling thread's peak of jemalloc's net bytes J plus its large net bytes B (large.c), since
 * the last sm__je_peak_read_reset. jemalloc's thread.peak follows J alone, relative to J at its last
 * reset (pk_jr); B changes only at large events, where thread.peak is read and reset and the
 * highest J + B so far kept (pk_max). pk_w: J + B at the last sm__je_peak_read_reset, what the
 * caller reads as its window's start. Arithmetic modulo 2^64 (counters, as jemalloc's).
 */
static __thread uint64_t pk_jr, pk_max, pk_w;

static int je_peak_take(uint64_t *v)
{
	size_t sz = sizeof(*v);
	*v = 0;
	if (mallctlbymib(mibs[MIB_PEAK_READ], miblen[MIB_PEAK_READ], v, &sz, NULL, 0) != 0)
		return -1;
	return mallctlbymib(mibs[MIB_PEAK_RESET], miblen[MIB_PEAK_RESET], NULL, NULL, NULL, 0) == 0
		       ? 0
		       : -1;
}

static void keep_max(uint64_t v)
{
	if ((int64_t)(v - pk_max) > 0)
		pk_max = v;
}

void sm__je_large_event(uint64_t before, uint64_t after)
{
	uint64_t jp, a, d;
	if (!__atomic_load_n(&peak_armed, __ATOMIC_ACQUIRE) || !sm__je_thread_enter() || je_peak_take(&jp) != 0 || je_counters(&a, &d) != 0)
		return;
	keep_max(pk_jr + jp + before);
	pk_jr = a - d;
	keep_max(pk_jr + after);
}

int sm__je_peak_read_reset(uint64_t *peak)
{
	uint64_t jp, a, d, la, lf;
	if (je_state != 1 || !peak_ok || !sm__je_thread_enter())
		return -1;
	if (je_peak_take(&jp) != 0 || je_counters(&a, &d) != 0)
		return -1;
	sm__large_thread(&la, &lf);
	uint64_t b = la - lf;
	keep_max(pk_jr + jp + b);
	*peak = (int64_t)(pk_max - pk_w) > 0 ? pk_max - pk_w : 0;
	pk_jr = a - d;
	pk_w = pk_max = pk_jr + b;
	return 0;
}

/* Tracked arrays: large ones from glibc under `snapmem profile` (large.c), as the program's own
 * large mallocs are, else jemalloc's size classes, from SM__ARRAY_ALIGN bytes on aligned to it
 * (the same size class: sallocx equal to nallocx of the request). */
void *sm__mem_alloc(size_t n, int zero)
{
	int align = n >= SM__ARRAY_ALIGN ? MALLOCX_ALIGN(SM__ARRAY_ALIGN) : 0;

	if (!sm__je_thread_enter())
		return NULL;
	if (__atomic_load_n(&sm__large_on, __ATOMIC_RELAXED) && n >= sm__large_min)
		return sm__large_alloc(n, 0, zero);
	return mallocx(n ? n : 1, (zero ? MALLOCX_ZERO : 0) | align);
}

void sm__mem_free(void *p)
{
	if (sm__large_maybe(p) && sm__large_free(p))
		return;
	if (p && sm__je_thread_enter())
		dallocx(p, 0);
}

uint64_t sm__mem_usable(void *p, uint64_t requested)
{
	size_t u;
	if (sm__large_maybe(p) && sm__large_lookup(p, &u))
		return u;
	return p && sm__je_thread_enter() ? sallocx(p, 0) : 0;
}

void *sm__raw_alloc(size_t n)
{
	if (!sm__je_thread_enter())
		return NULL;
	return mallocx(n ? n : 1, 0);
}

void *sm__raw_realloc(void *p, size_t n)
{
	if (!sm__je_thread_enter())
		return NULL;
	return p ? rallocx(p, n ? n : 1, 0) : mallocx(n ? n : 1, 0);
}

void sm__raw_free(void *p)
{
	if (p && sm__je_thread_enter())
		dallocx(p, 0);
}

size_t sm__raw_usable(void *p)
{
	return p && sm__je_thread_enter() ? sallocx(p, 0) : 0;
}

void *sm__je_bootstrap_alloc(size_t n, size_t align, int zero)
{
	int flags = (zero ? MALLOCX_ZERO : 0) | (align > 1 ? MALLOCX_ALIGN(align) : 0);
	if (!sm__je_thread_enter())
		return NULL;
	return mallocx(n ? n : 1, flags);
}

void sm__je_bootstrap_free(void *p)
{
	if (p && sm__je_thread_enter())
		dallocx(p, 0);
}

/*
 * jemalloc's own definition of a malloc-family function, found in the object that defines mallocx
 * (dladdr, then dlopen of that object with RTLD_NOLOAD). Not dlsym(RTLD_NEXT): when libsnapmem.so is
 * linked the documented way the executable's direct dependencies come first in the lookup order,
 * so "the next malloc" after libsnapmem.so is glibc's, not jemalloc's (issue 14). NULL when jemalloc
 * is not a separate shared object; the caller then uses the explicit mallocx family below.
 */
void *sm__je_own(const char *name)
{
	static void *handle;
	static int tried;
	if (!tried) {
		Dl_info di, self;
		tried = 1;
		/* jemalloc linked into this very object (a static libjemalloc): no separate definitions */
		if (dladdr((void *)&mallocx, &di) != 0 && dladdr((void *)&sm__je_own, &self) != 0 &&
		    di.dli_fname && di.dli_fname[0] && di.dli_fbase != self.dli_fbase)
			handle = dlopen(di.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
	}
	return handle ? dlsym(handle, name) : NULL;
}

/* The malloc family written with jemalloc's non-standard API, for when sm__je_own has no answer. */
static void *x_malloc(size_t n)
{
	void *p = mallocx(n ? n : 1, 0);
	if (!p)
		errno = ENOMEM;
	return p;
}

static void x_free(void *p)
{
	if (p)
		dallocx(p, 0);
}

static void *x_calloc(size_t a, size_t b)
{
	size_t n;
	void *p = NULL;
	if (!__builtin_mul_overflow(a, b, &n))
		p = mallocx(n ? n : 1, MALLOCX_ZERO);
	if (!p)
		errno = ENOMEM;
	return p;
}

static void *x_realloc(void *p, size_t n)
{
	if (!p)
		return x_malloc(n);
	if (n == 0) {
		dallocx(p, 0);
		return NULL;
	}
	void *q = rallocx(p, n, 0);
	if (!q)
		errno = ENOMEM;
	return q;
}

static int align_ok(size_t a)
{
	return a != 0 && (a & (a - 1)) == 0;
}

static int x_posix_memalign(void **out, size_t a, size_t n)
{
	if (!align_ok(a) || a % sizeof(void *) != 0)
		return EINVAL;
	void *p = mallocx(n ? n : 1, MALLOCX_ALIGN(a));
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

static void *x_aligned(size_t a, size_t n)
{
	if (!align_ok(a)) {
		errno = EINVAL;
		return NULL;
	}
	void *p = mallocx(n ? n : 1, MALLOCX_ALIGN(a));
	if (!p)
		errno = ENOMEM;
	return p;
}

static void *x_valloc(size_t n)
{
	return x_aligned((size_t)sysconf(_SC_PAGESIZE), n);
}

static size_t x_usable(void *p)
{
	return p ? sallocx(p, 0) : 0;
}

void *sm__je_explicit(const char *name)
{
	static const struct { const char *name; void *fn; } t[] = {
		{ "malloc", (void *)x_malloc }, { "free", (void *)x_free },
		{ "calloc", (void *)x_calloc }, { "realloc", (void *)x_realloc },
		{ "posix_memalign", (void *)x_posix_memalign },
		{ "aligned_alloc", (void *)x_aligned }, { "memalign", (void *)x_aligned },
		{ "valloc", (void *)x_valloc }, { "malloc_usable_size", (void *)x_usable },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].name, name) == 0)
			return t[i].fn;
	return NULL;
}

uint64_t sm_prof_nallocx(uint64_t bytes)
{
	if (bytes > (uint64_t)PTRDIFF_MAX)
		return 0;
	if (!sm__je_thread_enter())
		return bytes; /* the request itself, as without jemalloc */
	return nallocx(bytes ? (size_t)bytes : 1, 0);
}

int sm_prof_have_jemalloc(void)
{
	return sm__je_init() == 0;
}

#else /* SM_NO_JEMALLOC */

#include <malloc.h>

int sm__je_init(void) { return -1; }
int sm__je_read(sm_prof_je *out) { memset(out, 0, sizeof(*out)); return -1; }
int sm__je_read_allocated(uint64_t *a, uint64_t *r) { return -1; }
void sm__je_purge(void) {}
uint64_t sm__je_purge_above(uint64_t keep, int fresh) { (void)keep; (void)fresh; return 0; }
int sm__je_reusable(void *p, uint64_t u) { (void)p; (void)u; return 0; }
void sm__je_reuse_check(void *q, uint64_t u, uint64_t *dirty) { (void)q; (void)u; *dirty = 0; }
int sm__je_thread_counter_ptrs(const uint64_t **a, const uint64_t **d) { (void)a; (void)d; return -1; }
const char *sm__je_version(void) { return NULL; }
int sm__je_thread_net(uint64_t *net) { return -1; }
int sm__je_thread_counters(uint64_t *a, uint64_t *d) { return -1; }
int sm__je_peak_read_reset(uint64_t *peak) { return -1; }

/* AddressSanitizer aborts on requests above 1 TiB instead of returning NULL: refuse them here */
#define ASAN_MAX ((size_t)1 << 40)

void *sm__mem_alloc(size_t n, int zero)
{
	return n > ASAN_MAX ? NULL : sm__plain_alloc(n, zero);
}

void sm__mem_free(void *p) { free(p); }
uint64_t sm__mem_usable(void *p, uint64_t requested) { return requested; }
void *sm__raw_alloc(size_t n) { return malloc(n ? n : 1); }
void *sm__raw_realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }
void sm__raw_free(void *p) { free(p); }
size_t sm__raw_usable(void *p) { return p ? malloc_usable_size(p) : 0; }
void *sm__je_bootstrap_alloc(size_t n, size_t align, int zero) { return NULL; }
void sm__je_bootstrap_free(void *p) { (void)p; }

uint64_t sm_prof_nallocx(uint64_t bytes)
{
	return bytes;
}

int sm_prof_have_jemalloc(void)
{
	return 0;
}

int sm__je_thread_enter(void)
{
	return 1;
}

void sm__sample_thread_restart(void)
{
}

int sm_prof_allocator_ready(sm_error *err)
{
	(void)err;
	return 0;
}

#endif

uint64_t sm_prof_profile_allocated(uint64_t bytes)
{
	uint64_t nb;
	if (bytes < SM_PROF_LARGE_MIN)
		return sm_prof_nallocx(bytes);
	if (bytes > UINT64_MAX - 8192)
		return bytes;
	nb = (bytes + 8 + 15) & ~(uint64_t)15;          /* glibc's chunk: request + size field */
	return ((nb + 8 + 4095) & ~(uint64_t)4095) - 16; /* mapped: + prev_size, to the page */
}
