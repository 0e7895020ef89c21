/*
 * Allocation sites: call stacks captured with libunwind, interned in a fixed-size site table, and
 * the sampled-pointer table that lets a free find the sample it ends.
 *
 * Capture uses unw_backtrace (frame addresses only, fast); symbols are looked up lazily when the
 * JSON is written (dladdr: object and exported function, offset; file:line is left null because it
 * would need DWARF parsing or spawning addr2line). A failed unwind is counted, never fatal.
 *
 * The sampling layer (interpose.c) calls sm__sample_record for the allocations it picks; the
 * pointer goes into an open-addressing table (linear probing, backward-shift deletion) mapped with
 * mmap, never through malloc: 4096 entries at first, doubled (a new mapping, under the lock) while
 * half full, up to LIVE_CAP, so that a program with few live samples does not keep 1.5 MiB of
 * randomly touched table pages resident. Beside it, mapped once per process, a one-bit-per-hash
 * filter (32 KiB, and a count per bit): free() reads one bit and only takes the lock when it is
 * set. Both tables are bounded; what does not fit is counted as dropped. One profiler at a time
 * drives the sampling layer.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "profiler/prof-internal.h"

#include <math.h>
#include <string.h>
#include <sys/mman.h>

pthread_mutex_t sm__lock = PTHREAD_MUTEX_INITIALIZER;

int sm__sampling;
int sm__filter_on;
uint64_t *sm__filter;
static unsigned char *fcount; /* how many live entries share each filter bit (under the lock) */
uint64_t sm__threshold = 1 << 20, sm__interval = 512 << 10;
uint64_t sm__sample_gen;
int (*sm__py_frames)(void **frames, int n, int max, int keep);
int (*sm__py_name)(void *addr, const char **function, const char **file, int *line);

#define LIVE_BITS 16
#define LIVE_CAP ((size_t)1 << LIVE_BITS)
#define LIVE_BITS0 12

typedef struct live_entry {
	uintptr_t ptr;     /* 0 = empty */
	int32_t site;
	uint64_t weight;
} live_entry;

static uint64_t py_min = 1 << 20; /* --python-lines names allocations of site_threshold_bytes up */
static live_entry *live;
static size_t live_n, live_cap, live_bits, live_map_bytes; /* the table's current size */
static void *filter_map;
static size_t filter_map_bytes;
static uint64_t live_bytes, n_samples, n_dropped;
static sm_prof *active;

static __thread int guard __attribute__((tls_model("initial-exec")));

int *sm__guard(void)
{
	return &guard;
}

static uint64_t hash_frames(void *const *f, int n, int tracked)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)tracked;
	for (int i = 0; i < n; i++) {
		h ^= (uint64_t)(uintptr_t)f[i];
		h *= 1099511628211ull;
		h ^= h >> 29;
	}
	return h ? h : 1;
}

int sm__sites_init(sm__sites *s, size_t max_sites, int max_frames)
{
	memset(s, 0, sizeof(*s));
	if (max_frames < 1)
		max_frames = 1;
	if (max_frames > SM__MAX_FRAMES)
		max_frames = SM__MAX_FRAMES;
	if (max_sites < 1)
		max_sites = 1;
	if (max_sites > (1u << 24))
		max_sites = 1u << 24;
	size_t cap = 16;
	while (cap < 2 * max_sites)
		cap <<= 1;
	size_t bytes = max_sites * sizeof(sm__site) + max_sites * (size_t)max_frames * sizeof(void *) +
		       cap * sizeof(uint32_t);
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	s->max = max_sites;
	s->max_frames = max_frames;
	s->v = m;
	s->pool = (void **)((char *)m + max_sites * sizeof(sm__site));
	s->index = (uint32_t *)((char *)s->pool + max_sites * (size_t)max_frames * sizeof(void *));
	s->index_cap = cap;
	s->map_bytes = bytes;
	return 0;
}

void sm__sites_release(sm__sites *s)
{
	if (s->v)
		munmap(s->v, s->map_bytes);
	memset(s, 0, sizeof(*s));
}

__attribute__((noinline)) int sm__capture(void **frames, int max, int skip)
{
	void *buf[SM__MAX_FRAMES + 8];
	int want = max + skip + 1;
	if (want > (int)(sizeof(buf) / sizeof(buf[0])))
		want = (int)(sizeof(buf) / sizeof(buf[0]));
	int n = unw_backtrace(buf, want);
	skip += 1; /* this function */
	if (n <= skip)
		return 0;
	n -= skip;
	if (n > max)
		n = max;
	memcpy(frames, buf + skip, (size_t)n * sizeof(void *));
	__asm__ volatile("" ::: "memory");
	return n;
}

int sm__site_intern(sm__sites *s, void *const *frames, int n, int tracked)
{
	if (!s->v)
		return -1;
	if (n > s->max_frames)
		n = s->max_frames;
	uint64_t h = hash_frames(frames, n, tracked);
	size_t mask = s->index_cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint32_t e = s->index[i];
		if (e == 0) {
			if (s->n >= s->max) {
				s->dropped++;
				return -1;
			}
			sm__site *st = &s->v[s->n];
			st->hash = h;
			st->frames = s->pool + s->n * (size_t)s->max_frames;
			memcpy(st->frames, frames, (size_t)n * sizeof(void *));
			st->nframes = (uint16_t)n;
			st->tracked = (uint8_t)tracked;
			st->bytes = st->count = st->live = 0;
			s->index[i] = (uint32_t)(++s->n);
			return (int)(s->n - 1);
		}
		sm__site *st = &s->v[e - 1];
		if (st->hash == h && st->nframes == n && st->tracked == tracked &&
		    memcmp(st->frames, frames, (size_t)n * sizeof(void *)) == 0)
			return (int)(e - 1);
	}
}

int sm__sites_top(const sm__sites *s, sm__top *out, int n)
{
	int k = 0;
	for (size_t i = 0; i < s->n; i++) {
		uint64_t b = s->v[i].live;
		if (b == 0 || (k == n && b <= out[k - 1].bytes))
			continue;
		int j = k < n ? k++ : n - 1;
		while (j > 0 && out[j - 1].bytes < b) {
			out[j] = out[j - 1];
			j--;
		}
		out[j].site = (int32_t)i;
		out[j].bytes = b;
	}
	return k;
}

/* ---- the sampled-pointer table ------------------------------------------------------------ */

static size_t live_slot(uintptr_t p)
{
	return (size_t)(((uint64_t)p * 0x9E3779B97F4A7C15ull) >> (64 - live_bits));
}

/* Under the lock: the table with twice the entries (a new mapping). 0, or -1 (left as it was). */
static int live_grow(void)
{
	size_t cap = live_cap * 2, b = cap * sizeof(live_entry);
	live_entry *t = mmap(NULL, b, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	live_entry *old = live;
	size_t old_cap = live_cap, old_bytes = live_map_bytes;
	if (t == MAP_FAILED)
		return -1;
	live = t;
	live_cap = cap;
	live_bits++;
	live_map_bytes = b;
	for (size_t k = 0; k < old_cap; k++) {
		if (old[k].ptr == 0)
			continue;
		size_t i = live_slot(old[k].ptr);
		while (live[i].ptr != 0)
			i = (i + 1) & (live_cap - 1);
		live[i] = old[k];
	}
	munmap(old, old_bytes);
	return 0;
}

static live_entry *live_find(uintptr_t p)
{
	for (size_t i = live_slot(p);; i = (i + 1) & (live_cap - 1)) {
		if (live[i].ptr == p)
			return &live[i];
		if (live[i].ptr == 0)
			return NULL;
	}
}

static void live_remove(live_entry *e)
{
	size_t i = (size_t)(e - live);
	uint32_t fh = sm__ptr_hash((void *)e->ptr);
	if (fcount[fh] != 255 && --fcount[fh] == 0)
		sm__filter[fh >> 6] &= ~(1ull << (fh & 63));
	live_n--;
	/* backward-shift deletion keeps probe chains intact without tombstones */
	size_t j = i;
	for (;;) {
		live[i].ptr = 0;
		for (;;) {
			j = (j + 1) & (live_cap - 1);
			if (live[j].ptr == 0)
				return;
			size_t k = live_slot(live[j].ptr);
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;
			break;
		}
		live[i] = live[j];
		i = j;
	}
}

static void forget_locked(uintptr_t p)
{
	live_entry *e = live_find(p);
	if (!e)
		return;
	__atomic_store_n(&sm__sample_gen, sm__sample_gen + 1, __ATOMIC_RELAXED);
	if (active && e->site >= 0 && (size_t)e->site < active->sites.n)
		active->sites.v[e->site].live -= e->weight;
	live_bytes -= e->weight;
	live_remove(e);
}

void sm__sample_record(void *ptr, uint64_t size, uint64_t weight)
{
	if (guard)
		return;
	guard = 1;
	void *frames[SM__MAX_FRAMES];
	int max = active ? active->sites.max_frames : 16; /* racy read: only a size */
	int n = sm__capture(frames, max, 3); /* skip this function, the slow path, the interposed malloc */
	if (sm__py_frames && size >= py_min && n > 0)
		n = sm__py_frames(frames, n, max, 2); /* the allocating C function and its caller */
	pthread_mutex_lock(&sm__lock);
	if (!active || !sm__sampling)
		goto out;
	uintptr_t p = (uintptr_t)ptr;
	forget_locked(p); /* a stale entry (freed behind our back) */
	n_samples++;
	__atomic_store_n(&sm__sample_gen, sm__sample_gen + 1, __ATOMIC_RELAXED);
	if (n == 0) {
		active->sites.unwind_failures++;
		goto out;
	}
	int site = sm__site_intern(&active->sites, frames, n, 0);
	if (site < 0 || ((live_n + 1) * 2 > live_cap && (live_cap >= LIVE_CAP || live_grow() != 0))) {
		n_dropped++;
		goto out;
	}
	sm__site *st = &active->sites.v[site];
	st->bytes += weight;
	st->count++;
	st->live += weight;
	live_bytes += weight;
	size_t i = live_slot(p);
	while (live[i].ptr != 0)
		i = (i + 1) & (live_cap - 1);
	live[i].ptr = p;
	live[i].site = site;
	live[i].weight = weight;
	live_n++;
	uint32_t fh = sm__ptr_hash(ptr);
	if (fcount[fh] != 255)
		fcount[fh]++;
	sm__filter[fh >> 6] |= 1ull << (fh & 63);
	sm__prof_live_changed(active);
out:
	pthread_mutex_unlock(&sm__lock);
	guard = 0;
}

void sm__sample_forget(void *p)
{
	if (guard)
		return; /* the profiler's own frees never hold samples */
	pthread_mutex_lock(&sm__lock);
	if (live)
		forget_locked((uintptr_t)p);
	pthread_mutex_unlock(&sm__lock);
}

void sm__sample_forget_locked(void *p)
{
	if (live)
		forget_locked((uintptr_t)p);
}

uint64_t sm__sampled_live(void)
{
	return live_bytes;
}

int sm__sampling_start(sm_prof *p, const char **why)
{
	int rc = -1;
	pthread_mutex_lock(&sm__lock);
	if (active) {
		*why = "off: another profiler in this process samples untracked allocations";
		goto out;
	}
	if (!filter_map) {
		size_t fb = (size_t)1 << SM__FILTER_BITS, bb = fb / 8;
		void *m = mmap(NULL, fb + bb, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) {
			*why = "off: cannot map the sampled-pointer filter";
			goto out;
		}
		filter_map = m;
		filter_map_bytes = fb + bb;
		fcount = (unsigned char *)m;
		sm__filter = (uint64_t *)((char *)m + fb);
	}
	if (!live) {
		size_t lb = ((size_t)1 << LIVE_BITS0) * sizeof(live_entry);
		void *m = mmap(NULL, lb, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) {
			*why = "off: cannot map the sampled-pointer table";
			goto out;
		}
		live = m;
		live_bits = LIVE_BITS0;
		live_cap = (size_t)1 << LIVE_BITS0;
		live_map_bytes = lb;
	}
	active = p;
	live_n = 0;
	live_bytes = n_samples = n_dropped = 0;
	sm__threshold = p->o.site_threshold_bytes ? p->o.site_threshold_bytes : 1;
	py_min = sm__threshold;
	/* under snapmem profile every block glibc serves (large.c) is recorded with its own size */
	if (__atomic_load_n(&sm__large_on, __ATOMIC_ACQUIRE) && sm__large_min < sm__threshold)
		sm__threshold = sm__large_min;
	sm__interval = p->o.sample_interval_bytes ? p->o.sample_interval_bytes : 1;
	sm__sample_thread_restart();
	__atomic_store_n(&sm__filter_on, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&sm__sampling, 1, __ATOMIC_RELEASE);
	rc = 0;
out:
	pthread_mutex_unlock(&sm__lock);
	return rc;
}

void sm__sampling_stop(sm_prof *p)
{
	pthread_mutex_lock(&sm__lock);
	if (active == p) {
		__atomic_store_n(&sm__sampling, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&sm__filter_on, 0, __ATOMIC_RELEASE);
		/* the maps stay for the life of the process: a free racing with this reads valid memory.
		 * MADV_DONTNEED gives back zero pages without touching the ones never used (a memset
		 * would fault them all in). */
		if (madvise(live, live_map_bytes, MADV_DONTNEED) != 0)
			memset(live, 0, live_map_bytes);
		if (madvise(filter_map, filter_map_bytes, MADV_DONTNEED) != 0)
			memset(filter_map, 0, filter_map_bytes);
		live_n = 0;
		live_bytes = 0;
		active = NULL;
	}
	pthread_mutex_unlock(&sm__lock);
}

void sm__sampling_counts(uint64_t *samples, uint64_t *dropped, uint64_t *lb, size_t *self_bytes)
{
	*samples = n_samples;
	*dropped = n_dropped;
	*lb = live_bytes;
	*self_bytes = filter_map_bytes + live_map_bytes;
}
