/*
 * The sampling layer: malloc, free, calloc, realloc, posix_memalign, aligned_alloc, memalign,
 * valloc and malloc_usable_size defined over jemalloc's own definitions (looked up in the object
 * that defines mallocx, never "the next malloc" in the lookup order: linked as libsnapmem.so, the
 * next one is glibc's), or over mallocx/dallocx when jemalloc's cannot be found. A program that
 * links libsnapmem gets these definitions early in the lookup order, so they interpose for every
 * shared library too (HDF5 included); libsnapmem-preload.so does the same for any program.
 *
 * Why not jemalloc's experimental.hooks: installing even no-op hooks forces every thread onto
 * jemalloc's slow path (measured 4.5x on a malloc/free microbenchmark). Here the cost with sampling
 * off is one predictable branch per call; with it on, a thread-local byte countdown per malloc and
 * one byte of a counting filter per free. Sampling: an allocation of at least site_threshold_bytes is
 * always recorded with its own size; a smaller one is recorded when the thread's countdown crosses
 * zero, after which the countdown restarts at an exponentially distributed draw of mean
 * sample_interval_bytes (a Poisson process over allocated bytes, as in tcmalloc), and the sample
 * stands for n / (1 - exp(-n / interval)) bytes, which makes the estimate unbiased.
 *
 * Large blocks: once libsnapmem-preload.so turned large.c on (only under `snapmem profile`), a
 * request of sm__large_min bytes or more, through any entry point, goes to glibc's malloc family
 * instead (large.c says why); free, realloc and malloc_usable_size recognise such a block by the
 * registry's filter, one load. Elsewhere sm__large_min is SIZE_MAX and the test never passes.
 *
 * Compiled only when jemalloc is linked (not under SM_NO_JEMALLOC, where ASan owns malloc).
 */
#ifndef SM_NO_JEMALLOC

#include "profiler/prof-internal.h"
#include "snapmem/limits.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct real_fns {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	size_t (*malloc_usable_size)(void *);
} real_fns;

static real_fns real;
static int resolved;
static int resolving;

#define TLS __thread __attribute__((tls_model("initial-exec")))
static TLS int64_t countdown;
static TLS int countdown_ready;
static TLS uint64_t rng;
static TLS int thread_entered;
uint64_t sm__je_refused_limit, sm__je_refused_used;

int sm__je_thread_enter(void)
{
	uint64_t lim, used;

	if (__builtin_expect(thread_entered, 1))
		return 1;
	if (sm__vm_headroom(&lim, &used) < SM__JE_THREAD_NEED) {
		__atomic_store_n(&sm__je_refused_limit, lim, __ATOMIC_RELAXED);
		__atomic_store_n(&sm__je_refused_used, used, __ATOMIC_RELAXED);
		return 0;
	}
	thread_entered = 1;
	return 1;
}

/* jemalloc's definition of name; the mallocx-based one when jemalloc's own cannot be found or
 * would be this file's (a lookup that comes back to us would recurse forever). */
static void *pick(const char *name, void *ours)
{
	void *f = sm__je_own(name);
	if (!f || f == ours)
		f = sm__je_explicit(name);
	return f;
}

static void resolve(void)
{
	resolving = 1;
	real_fns r;
	r.malloc = (void *(*)(size_t))pick("malloc", (void *)malloc);
	r.free = (void (*)(void *))pick("free", (void *)free);
	r.calloc = (void *(*)(size_t, size_t))pick("calloc", (void *)calloc);
	r.realloc = (void *(*)(void *, size_t))pick("realloc", (void *)realloc);
	r.posix_memalign = (int (*)(void **, size_t, size_t))pick("posix_memalign",
								    (void *)posix_memalign);
	r.aligned_alloc = (void *(*)(size_t, size_t))pick("aligned_alloc", (void *)aligned_alloc);
	r.memalign = (void *(*)(size_t, size_t))pick("memalign", (void *)memalign);
	r.valloc = (void *(*)(size_t))pick("valloc", (void *)valloc);
	r.malloc_usable_size = (size_t(*)(void *))pick("malloc_usable_size",
							(void *)malloc_usable_size);
	if (r.malloc && r.free && r.calloc && r.realloc && r.posix_memalign && r.aligned_alloc &&
	    r.memalign && r.valloc && r.malloc_usable_size) {
		real = r;
		__atomic_store_n(&resolved, 1, __ATOMIC_RELEASE);
	}
	resolving = 0;
}

__attribute__((constructor)) static void interpose_init(void)
{
	if (!resolved)
		resolve();
}

/* 1 when the real functions are usable; otherwise callers fall back to jemalloc directly. */
static inline int ready(void)
{
	if (__builtin_expect(resolved, 1))
		return 1;
	if (!resolving)
		resolve();
	return resolved;
}

static double uniform01(void)
{
	if (rng == 0)
		rng = ((uint64_t)(uintptr_t)&rng * 0x9E3779B97F4A7C15ull) ^ (uint64_t)sm__now() ^ 1;
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

static int64_t draw_countdown(void)
{
	double d = -log(uniform01()) * (double)sm__interval;
	if (d > 9e18)
		d = 9e18;
	return (int64_t)d + 1;
}

/* The barrier keeps the slow path's frame (no tail call): sm__sample_record skips a fixed count. */
#define NO_TAIL_CALL() __asm__ volatile("" ::: "memory")

__attribute__((noinline)) static void slow_small(void *p, size_t n)
{
	int64_t over = countdown;
	countdown = draw_countdown();
	if (!countdown_ready) {
		/* the thread's first countdown: start the process here without a sample */
		countdown_ready = 1;
		(void)over;
		return;
	}
	double I = (double)sm__interval;
	double w = (double)n / -expm1(-(double)n / I);
	sm__sample_record(p, n, (uint64_t)(w + 0.5));
	NO_TAIL_CALL();
}

/* A profiler starts sampling (sm__sampling_start, on its creating thread): that thread's countdown
 * is drawn afresh with the new interval. What was left of the last one, drawn with the previous
 * profiler's interval, would otherwise hold off the first samples: 83 KB of a 16 KiB-mean draw left
 * 33 of test_many_live_samples' 10,000 allocations at interval 1 unsampled (once in a few hundred
 * runs). Other threads keep theirs until it crosses zero. */
void sm__sample_thread_restart(void)
{
	countdown = draw_countdown();
	countdown_ready = 1;
}

__attribute__((noinline)) static void slow_big(void *p, size_t n)
{
	sm__sample_record(p, n, n);
	NO_TAIL_CALL();
}

static inline void sample(void *p, size_t n)
{
	if (n >= sm__threshold) {
		slow_big(p, n);
		return;
	}
	int64_t c = countdown - (int64_t)n;
	countdown = c;
	if (__builtin_expect(c < 0, 0))
		slow_small(p, n);
}

/* A thread's first call goes through the headroom gate (prof-internal.h, sm__je_thread_enter). */
#define ENTER() (__builtin_expect(thread_entered, 1) || sm__je_thread_enter())

static void *enomem(void)
{
	errno = ENOMEM;
	return NULL;
}

/*
 * The reserve: while a thread may not enter jemalloc, its allocations come from one arena of
 * RESERVE_BYTES mapped on the first such allocation, bump-allocated and never reused, so that the
 * libraries' constructors before main get their few KiB (GnuTLS prints an error of its own when
 * refused) and main can say in one line why it stops. A block's size sits in the 16 bytes before
 * it; free() of a reserve block does nothing; realloc moves it out.
 */
#define RESERVE_BYTES (256u * 1024u)
static char *reserve;
static size_t reserve_used;

static void *reserve_alloc(size_t n, size_t align)
{
	char *base = __atomic_load_n(&reserve, __ATOMIC_ACQUIRE);
	size_t off, start, end;

	if (align < 16)
		align = 16;
	if (n > RESERVE_BYTES || align > 4096 || (align & (align - 1)) != 0)
		return enomem();
	if (base == NULL) {
		void *m = mmap(NULL, RESERVE_BYTES, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		char *expect = NULL;

		if (m == MAP_FAILED)
			return enomem();
		if (!__atomic_compare_exchange_n(&reserve, &expect, (char *)m, 0, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			munmap(m, RESERVE_BYTES);
		base = __atomic_load_n(&reserve, __ATOMIC_ACQUIRE);
	}
	off = __atomic_load_n(&reserve_used, __ATOMIC_RELAXED);
	do {
		start = (off + 16 + align - 1) & ~(align - 1);
		end = start + n;
		if (end > RESERVE_BYTES)
			return enomem();
	} while (!__atomic_compare_exchange_n(&reserve_used, &off, end, 1, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	((size_t *)(void *)(base + start))[-1] = n;
	return base + start; /* zeroed: fresh anonymous pages, never reused */
}

static inline int in_reserve(const void *p)
{
	const char *base = __atomic_load_n(&reserve, __ATOMIC_RELAXED);

	return __builtin_expect(base != NULL, 0) && (const char *)p >= base &&
	       (const char *)p < base + RESERVE_BYTES;
}

static size_t reserve_size(const void *p)
{
	return ((const size_t *)p)[-1];
}

#define ON() __builtin_expect(__atomic_load_n(&sm__sampling, __ATOMIC_RELAXED), 0)

static inline int filter_hit(const void *p)
{
	uint32_t h = sm__ptr_hash(p);
	return (int)((sm__filter[h >> 6] >> (h & 63)) & 1);
}

static inline void maybe_forget(void *p)
{
	if (__builtin_expect(__atomic_load_n(&sm__filter_on, __ATOMIC_RELAXED), 0) && p &&
	    filter_hit(p))
		sm__sample_forget(p);
}

/* A request for glibc (large.c): never true unless the preload library turned the large path on. */
static inline int go_large(size_t n)
{
	return __builtin_expect(n >= __atomic_load_n(&sm__large_min, __ATOMIC_ACQUIRE), 0);
}

static inline int pow2(size_t a)
{
	return a != 0 && (a & (a - 1)) == 0;
}

/* free() of a large block: its sample forgotten before glibc may hand the address out again. */
static int large_free(void *p)
{
	if (!sm__large_lookup(p, NULL))
		return 0;
	maybe_forget(p);
	return sm__large_free(p);
}

void *malloc(size_t n)
{
	if (!ENTER())
		return reserve_alloc(n, 0);
	void *p = go_large(n)  ? sm__large_alloc(n, 0, 0)
		  : ready()    ? real.malloc(n)
			       : sm__je_bootstrap_alloc(n, 0, 0);
	if (ON() && p)
		sample(p, n);
	return p;
}

void free(void *p)
{
	if (in_reserve(p))
		return;
	if (sm__large_maybe(p) && large_free(p))
		return;
	if (!ENTER())
		return; /* this thread cannot enter jemalloc: the block is left (see sm__je_thread_enter) */
	maybe_forget(p);
	if (ready())
		real.free(p);
	else
		sm__je_bootstrap_free(p);
}

void *calloc(size_t a, size_t b)
{
	size_t n;
	if (__builtin_mul_overflow(a, b, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	if (!ENTER())
		return reserve_alloc(n, 0);
	void *p = go_large(n)  ? sm__large_alloc(n, 0, 1) /* fresh glibc chunks skip the memset */
		  : ready()    ? real.calloc(a, b)
			       : sm__je_bootstrap_alloc(n, 0, 1);
	if (ON() && p)
		sample(p, n);
	return p;
}

void *realloc(void *old, size_t n)
{
	if (old != NULL && in_reserve(old)) {
		void *p = malloc(n);
		size_t keep = reserve_size(old);

		if (p != NULL)
			memcpy(p, old, keep < n ? keep : n);
		return p;
	}
	if (!ENTER()) /* a block of jemalloc's cannot be moved by a thread kept out of it */
		return old == NULL ? reserve_alloc(n, 0) : enomem();
	if (!ready()) {
		/* only reachable while dlsym answers; jemalloc serves every pointer here */
		void *p = sm__je_bootstrap_alloc(n, 0, 0);
		if (p && old) {
			size_t keep = sm__raw_usable(old);
			memcpy(p, old, keep < n ? keep : n);
			sm__je_bootstrap_free(old);
		}
		return p;
	}
	maybe_forget(old);
	void *p;
	size_t keep;
	if (sm__large_maybe(old) && sm__large_lookup(old, &keep)) {
		if (n == 0 || go_large(n)) {
			p = sm__large_realloc(old, n); /* glibc's own: mremap for a mapped chunk */
		} else if ((p = real.malloc(n)) != NULL) { /* shrunk below the threshold: jemalloc */
			memcpy(p, old, keep < n ? keep : n);
			sm__large_free(old);
		}
	} else if (go_large(n)) {
		if ((p = sm__large_alloc(n, 0, 0)) != NULL && old) {
			keep = real.malloc_usable_size(old);
			memcpy(p, old, keep < n ? keep : n);
			real.free(old);
		}
	} else {
		p = real.realloc(old, n);
	}
	if (ON() && p)
		sample(p, n);
	return p;
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (!ENTER()) {
		*out = reserve_alloc(n, align);
		return *out ? 0 : ENOMEM;
	}
	if (!ready()) {
		*out = sm__je_bootstrap_alloc(n, align, 0);
		return *out ? 0 : ENOMEM;
	}
	int rc;
	if (go_large(n) && pow2(align) && align % sizeof(void *) == 0) {
		void *q = sm__large_alloc(n, align, 0);
		rc = q ? 0 : ENOMEM;
		if (q)
			*out = q;
	} else {
		rc = real.posix_memalign(out, align, n);
	}
	if (ON() && rc == 0 && *out)
		sample(*out, n);
	return rc;
}

void *aligned_alloc(size_t align, size_t n)
{
	if (!ENTER())
		return reserve_alloc(n, align);
	void *p = go_large(n) && pow2(align) ? sm__large_alloc(n, align, 0)
		  : ready()		     ? real.aligned_alloc(align, n)
					     : sm__je_bootstrap_alloc(n, align, 0);
	if (ON() && p)
		sample(p, n);
	return p;
}

void *memalign(size_t align, size_t n)
{
	if (!ENTER())
		return reserve_alloc(n, align);
	void *p = go_large(n) && pow2(align) ? sm__large_alloc(n, align, 0)
		  : ready()		     ? real.memalign(align, n)
					     : sm__je_bootstrap_alloc(n, align, 0);
	if (ON() && p)
		sample(p, n);
	return p;
}

void *valloc(size_t n)
{
	if (!ENTER())
		return reserve_alloc(n, 4096);
	void *p = go_large(n)  ? sm__large_alloc(n, 4096, 0)
		  : ready()    ? real.valloc(n)
			       : sm__je_bootstrap_alloc(n, 4096, 0);
	if (ON() && p)
		sample(p, n);
	return p;
}

size_t malloc_usable_size(void *p)
{
	size_t u;
	if (p != NULL && in_reserve(p))
		return reserve_size(p);
	if (sm__large_maybe(p) && sm__large_lookup(p, &u))
		return u;
	return ENTER() && ready() ? real.malloc_usable_size(p) : 0;
}

#else
typedef int sm__interpose_unused;
#endif
