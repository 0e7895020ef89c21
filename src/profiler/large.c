/*
 * Large blocks under `snapmem profile`: requests of sm__large_min bytes and more (128 KiB, glibc's
 * initial mmap threshold, unless SNAPMEM_PROFILE_LARGE says otherwise) are served by the C
 * library's own malloc family instead of jemalloc, so that a profiled program's large arrays sit
 * where they sit when it runs plainly: glibc's dynamic mmap threshold decides, as it does plainly,
 * whether a block is a mapping of its own (page-granular, unmapped at free) or a chunk of the heap
 * (16-byte granular, its pages kept by the heap after free). Measured on the numpy notebook example
 * (docs/PROFILE.md "Large blocks"): jemalloc's size classes added up to 16.5 % to a large array's
 * allocated bytes, and jemalloc serving the whole process gave a VmHWM 6 % below the plain run's;
 * mappings of the profiler's own for every block of 1 MiB or more gave 7 % below, because glibc
 * plainly puts most blocks below 32 MiB in its heap after the first large free.
 *
 * Only libsnapmem-preload.so turns this on (sm__large_enable from its constructor); elsewhere
 * (`snapmem run`, programs linked with libsnapmem) sm__large_on stays 0 and every request goes to
 * jemalloc as before.
 *
 * The registry: every block served here is in an open-addressing table (address -> usable bytes,
 * glibc's malloc_usable_size) mapped with mmap and guarded by one mutex, behind a counting filter
 * (one byte per hash of the address) that free, realloc and malloc_usable_size read without the
 * lock: a zero byte means "not a large block", the common case, one load. The accounting: the live
 * blocks' usable bytes (sm__large_live, added to jemalloc's stats.allocated by jemalloc.c) and per
 * thread the bytes allocated and freed here (added to jemalloc's thread counters, and folded into
 * its thread.peak at every large event, so a stage's peak sees a large temporary however short).
 * Nothing here allocates through malloc.
 *
 * Compiled only with jemalloc (under SM_NO_JEMALLOC ASan owns malloc and this is never on).
 */
#ifndef SM_NO_JEMALLOC

#include "profiler/prof-internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int sm__large_on;
size_t sm__large_min = SIZE_MAX;
unsigned char sm__large_filter[(size_t)1 << SM__LARGE_FILTER_BITS];

static struct {
	void *(*malloc)(size_t);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*memalign)(size_t, size_t);
	void (*free)(void *);
	size_t (*usable)(void *);
} libc;

typedef struct slot {
	void *p;           /* NULL empty, TOMB a removed entry */
	size_t usable;
} slot;
#define TOMB ((void *)1)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static slot *tab;
static size_t cap, used; /* used counts tombstones too */
static size_t map_bytes;
static uint64_t live, blocks, bytes_served;

#define TLS __thread __attribute__((tls_model("initial-exec")))
static TLS uint64_t thr_alloc, thr_freed;

static size_t slot_of(const void *p, size_t c)
{
	return (size_t)((((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) >> 32) & (c - 1);
}

/* Under mu: a table of c slots holding the live entries of the old one. 0 or -1. */
static int rehash(size_t c)
{
	size_t b = c * sizeof(slot);
	slot *t = mmap(NULL, b, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t n = 0;
	if (t == MAP_FAILED)
		return -1;
	for (size_t i = 0; i < cap; i++) {
		if (tab[i].p == NULL || tab[i].p == TOMB)
			continue;
		size_t j = slot_of(tab[i].p, c);
		while (t[j].p)
			j = (j + 1) & (c - 1);
		t[j] = tab[i];
		n++;
	}
	if (tab)
		munmap(tab, map_bytes);
	tab = t;
	cap = c;
	used = n;
	map_bytes = b;
	return 0;
}

static int room(void);

/* Under mu. 0, or -1 when the table cannot grow. */
static int insert(void *p, size_t usable)
{
	if (room() != 0)
		return -1;
	size_t j = slot_of(p, cap);
	while (tab[j].p != NULL && tab[j].p != TOMB)
		j = (j + 1) & (cap - 1);
	used += tab[j].p == NULL;
	tab[j].p = p;
	tab[j].usable = usable;
	unsigned char *f = &sm__large_filter[sm__large_hash(p)];
	if (*f != UINT8_MAX)
		__atomic_store_n(f, (unsigned char)(*f + 1), __ATOMIC_RELAXED);
	return 0;
}

/* Under mu: the entry of p, or NULL. */
static slot *find(const void *p)
{
	if (!cap)
		return NULL;
	for (size_t j = slot_of(p, cap);; j = (j + 1) & (cap - 1)) {
		if (tab[j].p == NULL)
			return NULL;
		if (tab[j].p == p)
			return &tab[j];
	}
}

/* Under mu: forgets p's entry (a saturated filter byte stays: the table says no). */
static void remove_slot(slot *s)
{
	unsigned char *f = &sm__large_filter[sm__large_hash(s->p)];
	if (*f != UINT8_MAX)
		__atomic_store_n(f, (unsigned char)(*f - 1), __ATOMIC_RELAXED);
	s->p = TOMB;
	s->usable = 0;
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&mu);
}

static void fork_after(void)
{
	pthread_mutex_unlock(&mu);
}

int sm__large_enable(size_t min_bytes)
{
	void *h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	if (!h || min_bytes == 0 || min_bytes == SIZE_MAX)
		return -1;
	libc.malloc = (void *(*)(size_t))dlsym(h, "malloc");
	libc.calloc = (void *(*)(size_t, size_t))dlsym(h, "calloc");
	libc.realloc = (void *(*)(void *, size_t))dlsym(h, "realloc");
	libc.memalign = (void *(*)(size_t, size_t))dlsym(h, "memalign");
	libc.free = (void (*)(void *))dlsym(h, "free");
	libc.usable = (size_t(*)(void *))dlsym(h, "malloc_usable_size");
	/* the handle stays open: libc is never unloaded */
	if (!libc.malloc || !libc.calloc || !libc.realloc || !libc.memalign || !libc.free ||
	    !libc.usable || (void *)libc.malloc == (void *)malloc)
		return -1;
	pthread_mutex_lock(&mu);
	int rc = tab ? 0 : rehash(1024);
	pthread_mutex_unlock(&mu);
	if (rc != 0)
		return -1;
	if (!__atomic_load_n(&sm__large_on, __ATOMIC_RELAXED))
		pthread_atfork(fork_prepare, fork_after, fork_after);
	__atomic_store_n(&sm__large_on, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&sm__large_min, min_bytes, __ATOMIC_RELEASE);
	return 0;
}

/* The thread's large net bytes changed from `before` to `after`: jemalloc.c folds it into the
 * thread's peak. */
static void account(uint64_t add, uint64_t sub)
{
	uint64_t before = thr_alloc - thr_freed;
	thr_alloc += add;
	thr_freed += sub;
	if (add)
		__atomic_add_fetch(&live, add, __ATOMIC_RELAXED);
	if (sub)
		__atomic_sub_fetch(&live, sub, __ATOMIC_RELAXED);
	sm__je_large_event(before, thr_alloc - thr_freed);
}

void *sm__large_alloc(size_t n, size_t align, int zero)
{
	void *p;
	if (zero)
		p = libc.calloc(n, 1);
	else if (align > 16)
		p = libc.memalign(align, n);
	else
		p = libc.malloc(n);
	if (!p)
		return NULL;
	size_t u = libc.usable(p);
	pthread_mutex_lock(&mu);
	int rc = insert(p, u);
	if (rc == 0) {
		blocks++;
		bytes_served += u;
	}
	pthread_mutex_unlock(&mu);
	if (rc != 0) {
		libc.free(p);
		errno = ENOMEM;
		return NULL;
	}
	account(u, 0);
	return p;
}

int sm__large_lookup(const void *p, size_t *usable)
{
	pthread_mutex_lock(&mu);
	slot *s = find(p);
	if (s && usable)
		*usable = s->usable;
	pthread_mutex_unlock(&mu);
	return s != NULL;
}

int sm__large_free(void *p)
{
	size_t u = 0;
	pthread_mutex_lock(&mu);
	slot *s = find(p);
	if (s) {
		u = s->usable;
		remove_slot(s);
	}
	pthread_mutex_unlock(&mu);
	if (!s)
		return 0;
	libc.free(p);
	account(0, u);
	return 1;
}

/* Under mu: room for one more entry without failing (0), or -1. */
static int room(void)
{
	if ((used + 1) * 2 <= cap)
		return 0;
	size_t n = 0, c = 1024;
	for (size_t i = 0; i < cap; i++)
		n += tab[i].p != NULL && tab[i].p != TOMB;
	while (c < (n + 1) * 4)
		c *= 2;
	return rehash(c);
}

/*
 * glibc's realloc of a large block (n >= sm__large_min, or 0: freed). The lock is held across it,
 * with room for the new entry made first, so that the block is never out of the table while it may
 * still be the program's: when there is no room, p stays as it was (NULL, ENOMEM).
 */
void *sm__large_realloc(void *p, size_t n)
{
	void *q = NULL;
	size_t old = 0, u = 0;
	pthread_mutex_lock(&mu);
	slot *s;
	if (room() != 0 || !(s = find(p))) {
		pthread_mutex_unlock(&mu);
		errno = ENOMEM;
		return NULL;
	}
	old = s->usable;
	q = libc.realloc(p, n);
	if (q || n == 0) {
		remove_slot(s);
		if (q) {
			u = libc.usable(q);
			insert(q, u); /* cannot fail: room() made space and the lock was kept */
			blocks++;
			bytes_served += u;
		}
	}
	pthread_mutex_unlock(&mu);
	if (q)
		account(u, old);
	else if (n == 0)
		account(0, old); /* realloc(p, 0): glibc freed it */
	return q;
}

void sm__large_thread(uint64_t *allocated, uint64_t *freed)
{
	*allocated = thr_alloc;
	*freed = thr_freed;
}

uint64_t sm__large_live(void)
{
	return __atomic_load_n(&live, __ATOMIC_RELAXED);
}

void sm__large_stats(sm__large_info *out)
{
	memset(out, 0, sizeof(*out));
	out->on = __atomic_load_n(&sm__large_on, __ATOMIC_ACQUIRE);
	if (!out->on)
		return;
	pthread_mutex_lock(&mu);
	out->min_bytes = sm__large_min;
	out->blocks = blocks;
	out->bytes = bytes_served;
	out->live_bytes = live;
	out->table_bytes = map_bytes;
	for (size_t i = 0; i < cap; i++)
		out->live_blocks += tab[i].p != NULL && tab[i].p != TOMB;
	pthread_mutex_unlock(&mu);
}

#else /* SM_NO_JEMALLOC: never on */

#include "profiler/prof-internal.h"

#include <errno.h>
#include <string.h>

int sm__large_on;
size_t sm__large_min = SIZE_MAX;
unsigned char sm__large_filter[(size_t)1 << SM__LARGE_FILTER_BITS];

int sm__large_enable(size_t min_bytes)
{
	(void)min_bytes;
	return -1;
}

void *sm__large_alloc(size_t n, size_t align, int zero)
{
	(void)n;
	(void)align;
	(void)zero;
	errno = ENOMEM;
	return NULL;
}

int sm__large_lookup(const void *p, size_t *usable)
{
	(void)p;
	(void)usable;
	return 0;
}

int sm__large_free(void *p)
{
	(void)p;
	return 0;
}

void *sm__large_realloc(void *p, size_t n)
{
	(void)p;
	(void)n;
	errno = ENOMEM;
	return NULL;
}

uint64_t sm__large_live(void)
{
	return 0;
}

void sm__large_thread(uint64_t *allocated, uint64_t *freed)
{
	*allocated = *freed = 0;
}

void sm__large_stats(sm__large_info *out)
{
	memset(out, 0, sizeof(*out));
}
#endif
