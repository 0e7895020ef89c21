/*
 * Python's own allocators, counted per stage, for `snapmem profile --python-lines`: the bytes
 * CPython's three allocator domains (PyMem_RawMalloc, PyMem_Malloc, PyObject_Malloc) and numpy's
 * array data hand out, by requested size: the quantity tracemalloc counts (it hooks the same
 * domains and numpy reports its data to it), measured here without tracebacks, so that each
 * stage's allocated peak (everything the process allocated) can be set beside what Python saw and
 * the rest named: C libraries' own malloc calls (HDF5's metadata cache of an open file, h5py's C
 * code) and the allocator's rounding.
 *
 * How: at the snapmem module's import (sm_preload_python in preload.c, with the GIL held) each domain's
 * allocator is wrapped with PyMem_GetAllocator/PyMem_SetAllocator, as tracemalloc does, and, once
 * numpy is imported, numpy's data allocations get a memory handler of ours (NEP 49:
 * PyDataMem_SetHandler, through numpy's C-API table, which the module passes; numpy >= 1.22)
 * that calls malloc/calloc/realloc/free as numpy's default one does (huge pages asked for blocks of
 * 4 MiB and more), without its cache of small blocks. Every block handed out after that is entered in a table (pointer -> requested bytes,
 * open addressing in mmap'd memory, under a mutex: the raw domain is called without the GIL);
 * blocks from before are not counted, at allocation or at free (tracemalloc started then would do
 * the same). Nothing of Python is linked: the functions are found with dlsym.
 *
 * Per stage (the markers' begin/end, through the preload): the live bytes when it began and the
 * highest while it was open, folded at every boundary as examples/notebook/tracemalloc_stages.py
 * folds tracemalloc's. Limits: numpy's handler is set in the importing thread's context (arrays
 * made in other threads' contexts keep numpy's default handler and are not counted); up to
 * MAX_RECORDS stage instances are recorded (then "truncated").
 */
#include "preload/pydomains.h"

#include <dlfcn.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_RECORDS 8192
#define MAX_OPEN 64
#define INITIAL_CAP ((size_t)1 << 16)

typedef struct pymem_allocator { /* CPython's PyMemAllocatorEx */
	void *ctx;
	void *(*malloc)(void *ctx, size_t size);
	void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
	void *(*realloc)(void *ctx, void *ptr, size_t size);
	void (*free)(void *ctx, void *ptr);
} pymem_allocator;

typedef struct npy_handler { /* numpy's PyDataMem_Handler, version 1 */
	char name[127];
	uint8_t version;
	struct {
		void *ctx;
		void *(*malloc)(void *ctx, size_t size);
		void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
		void *(*realloc)(void *ctx, void *ptr, size_t size);
		void (*free)(void *ctx, void *ptr, size_t size);
	} allocator;
} npy_handler;

typedef struct record {
	char id[64];
	int64_t instance;
	int64_t begin, peak;
} record;

static int enabled;
static int domains_on, numpy_on;
static pymem_allocator old[3];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *keys;
static uint64_t *vals;
static size_t cap, count;
static int64_t cur, peak_since_fold;
static uint64_t blocks;
static record *records;
static size_t nrecords, nopen;
static size_t open_idx[MAX_OPEN];
static int truncated;

static size_t home(uintptr_t k)
{
	return (size_t)(((uint64_t)(k >> 4) * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

static int table_alloc(size_t n, uintptr_t **k, uint64_t **v)
{
	void *m = mmap(NULL, n * (sizeof(uintptr_t) + sizeof(uint64_t)), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	*k = m;
	*v = (uint64_t *)((char *)m + n * sizeof(uintptr_t));
	return 0;
}

/* under mu */
static void put(uintptr_t k, uint64_t v)
{
	if ((count + 1) * 2 > cap) {
		uintptr_t *nk;
		uint64_t *nv;
		size_t oc = cap;
		if (table_alloc(cap * 2, &nk, &nv) != 0)
			return; /* not counted: the figures say less, never crash the program */
		uintptr_t *ok = keys;
		uint64_t *ov = vals;
		keys = nk;
		vals = nv;
		cap = oc * 2;
		for (size_t i = 0; i < oc; i++) {
			if (!ok[i])
				continue;
			size_t j = home(ok[i]);
			while (keys[j])
				j = (j + 1) & (cap - 1);
			keys[j] = ok[i];
			vals[j] = ov[i];
		}
		munmap(ok, oc * (sizeof(uintptr_t) + sizeof(uint64_t)));
	}
	size_t i = home(k);
	while (keys[i] && keys[i] != k)
		i = (i + 1) & (cap - 1);
	if (keys[i])
		cur -= (int64_t)vals[i]; /* an address handed out twice: a free we did not see */
	else
		count++;
	keys[i] = k;
	vals[i] = v;
	cur += (int64_t)v;
	if (cur > peak_since_fold)
		peak_since_fold = cur;
	blocks++;
}

/* under mu: removes k (backward-shift deletion), subtracting its bytes; absent keys are blocks
 * from before the accounting started */
static void drop(uintptr_t k)
{
	size_t i = home(k);
	while (keys[i] && keys[i] != k)
		i = (i + 1) & (cap - 1);
	if (!keys[i])
		return;
	cur -= (int64_t)vals[i];
	count--;
	for (size_t j = (i + 1) & (cap - 1); keys[j]; j = (j + 1) & (cap - 1)) {
		size_t h = home(keys[j]);
		/* keys[j] may move into the hole at i when its home is not in (i, j] cyclically */
		if ((i <= j) ? (h <= i || h > j) : (h <= i && h > j)) {
			keys[i] = keys[j];
			vals[i] = vals[j];
			i = j;
		}
	}
	keys[i] = 0;
}

static void note_alloc(void *p, size_t n)
{
	pthread_mutex_lock(&mu);
	put((uintptr_t)p, n);
	pthread_mutex_unlock(&mu);
}

static void note_free(void *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&mu);
	drop((uintptr_t)p);
	pthread_mutex_unlock(&mu);
}

/* from: the old block's address, as a key only (never read through; the pragma reaches the
 * realloc wrappers below, into which this is inlined) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuse-after-free"
static void note_realloc(uintptr_t from, void *to, size_t n)
{
	pthread_mutex_lock(&mu);
	if (from)
		drop(from);
	put((uintptr_t)to, n);
	pthread_mutex_unlock(&mu);
}

/* ---- the domains' hooks: ctx is the wrapped allocator ---------------------------------------- */

static void *h_malloc(void *ctx, size_t n)
{
	pymem_allocator *o = ctx;
	void *p = o->malloc(o->ctx, n);
	if (p)
		note_alloc(p, n);
	return p;
}

static void *h_calloc(void *ctx, size_t nel, size_t el)
{
	pymem_allocator *o = ctx;
	void *p = o->calloc(o->ctx, nel, el);
	if (p)
		note_alloc(p, nel * el);
	return p;
}

static void *h_realloc(void *ctx, void *ptr, size_t n)
{
	pymem_allocator *o = ctx;
	uintptr_t from = (uintptr_t)ptr; /* a key only, once realloc has run */
	void *p = o->realloc(o->ctx, ptr, n);
	if (p)
		note_realloc(from, p, n);
	return p;
}

static void h_free(void *ctx, void *ptr)
{
	pymem_allocator *o = ctx;
	note_free(ptr); /* before: once freed, the address may be another thread's new block */
	o->free(o->ctx, ptr);
}

/* ---- numpy's array data: the process's malloc family, as numpy's default handler ------------- */

/* numpy's default handler asks for transparent huge pages on blocks of 4 MiB and more (its
 * indicate_hugepages, on by default since Linux 4.6): without it the same program took 12 times
 * the page faults (754,206 against 63,993) and 1.33x the wall time */
static void hugepages(void *p, size_t n)
{
	if (n >= ((size_t)1 << 22)) {
		uintptr_t offset = 4096u - (uintptr_t)p % 4096u;
		madvise((char *)p + offset, n - offset, MADV_HUGEPAGE);
	}
}

static void *n_malloc(void *ctx, size_t n)
{
	(void)ctx;
	void *p = malloc(n);
	if (p) {
		hugepages(p, n);
		note_alloc(p, n);
	}
	return p;
}

static void *n_calloc(void *ctx, size_t nel, size_t el)
{
	(void)ctx;
	void *p = calloc(nel, el);
	if (p) {
		hugepages(p, nel * el);
		note_alloc(p, nel * el);
	}
	return p;
}

static void *n_realloc(void *ctx, void *ptr, size_t n)
{
	(void)ctx;
	uintptr_t from = (uintptr_t)ptr;
	void *p = realloc(ptr, n);
	if (p)
		note_realloc(from, p, n);
	return p;
}
#pragma GCC diagnostic pop

static void n_free(void *ctx, void *ptr, size_t n)
{
	(void)ctx;
	(void)n;
	note_free(ptr);
	free(ptr);
}

static npy_handler handler = {
	"snapmem", 1, { NULL, n_malloc, n_calloc, n_realloc, n_free },
};

void sm__pydomains_enable(void)
{
	enabled = 1;
}

int sm__pydomains_start(void *const *numpy_api)
{
	if (!enabled)
		return 0;
	if (!domains_on) {
		void (*get)(int, pymem_allocator *) = (void (*)(int, pymem_allocator *))dlsym(
			RTLD_DEFAULT, "PyMem_GetAllocator");
		void (*set)(int, pymem_allocator *) = (void (*)(int, pymem_allocator *))dlsym(
			RTLD_DEFAULT, "PyMem_SetAllocator");
		if (!get || !set)
			return 0;
		pthread_mutex_lock(&mu);
		int ok = keys || table_alloc(INITIAL_CAP, &keys, &vals) == 0;
		if (ok && !cap)
			cap = INITIAL_CAP;
		if (ok && !records) {
			void *m = mmap(NULL, MAX_RECORDS * sizeof(record), PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			records = m == MAP_FAILED ? NULL : m;
			ok = records != NULL;
		}
		pthread_mutex_unlock(&mu);
		if (!ok)
			return 0;
		for (int d = 0; d < 3; d++) { /* PYMEM_DOMAIN_RAW, _MEM, _OBJ */
			pymem_allocator hook = { &old[d], h_malloc, h_calloc, h_realloc, h_free };
			get(d, &old[d]);
			set(d, &hook);
		}
		domains_on = 1;
	}
	if (!numpy_on && numpy_api) {
		void *(*capsule)(void *, const char *, void *) = (void *(*)(void *, const char *, void *))
			dlsym(RTLD_DEFAULT, "PyCapsule_New");
		void *(*set_handler)(void *) = (void *(*)(void *))numpy_api[304]; /* PyDataMem_SetHandler */
		void *c = capsule ? capsule(&handler, "mem_handler", NULL) : NULL;
		/* the previous handler (a new reference) is kept: arrays made with it still free through it */
		if (c && set_handler && set_handler(c) != NULL)
			numpy_on = 1;
	}
	return (domains_on ? 1 : 0) | (numpy_on ? 2 : 0);
}

/* under mu: the live bytes now, the highest since the last fold into every open stage */
static int64_t fold(void)
{
	for (size_t i = 0; i < nopen; i++)
		if (open_idx[i] < nrecords && records[open_idx[i]].peak < peak_since_fold)
			records[open_idx[i]].peak = peak_since_fold;
	peak_since_fold = cur;
	return cur;
}

void sm__pydomains_begin(const char *id, int64_t instance)
{
	if (!domains_on)
		return;
	pthread_mutex_lock(&mu);
	int64_t now = fold();
	size_t idx = MAX_RECORDS;
	if (nrecords < MAX_RECORDS) {
		record *r = &records[nrecords];
		snprintf(r->id, sizeof(r->id), "%s", id ? id : "?");
		r->instance = instance;
		r->begin = r->peak = now;
		idx = nrecords++;
	} else {
		truncated = 1;
	}
	if (nopen < MAX_OPEN)
		open_idx[nopen] = idx;
	nopen++;
	pthread_mutex_unlock(&mu);
}

void sm__pydomains_end(void)
{
	if (!domains_on)
		return;
	pthread_mutex_lock(&mu);
	fold();
	if (nopen > 0)
		nopen--;
	pthread_mutex_unlock(&mu);
}

char *sm__pydomains_json(void)
{
	if (!domains_on)
		return NULL;
	pthread_mutex_lock(&mu);
	fold();
	json_t *st = json_array();
	for (size_t i = 0; i < nrecords; i++)
		json_array_append_new(st, json_pack("{s:s,s:I,s:I,s:I}", "id", records[i].id,
						    "instance", (json_int_t)records[i].instance,
						    "begin", (json_int_t)records[i].begin, "peak",
						    (json_int_t)records[i].peak));
	json_t *o = json_pack("{s:s,s:b,s:I,s:I,s:I,s:b,s:o}", "counts",
			      "requested bytes of PyMem_RawMalloc, PyMem_Malloc, PyObject_Malloc and "
			      "numpy's array data handed out after the snapmem module's import",
			      "numpy", numpy_on, "live_end", (json_int_t)cur, "blocks",
			      (json_int_t)blocks, "table_bytes",
			      (json_int_t)(cap * (sizeof(uintptr_t) + sizeof(uint64_t))), "truncated",
			      truncated, "stages", st);
	pthread_mutex_unlock(&mu);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return text;
}

void sm__pydomains_prefork(void)
{
	pthread_mutex_lock(&mu);
}

void sm__pydomains_postfork(int child)
{
	if (child) { /* a followed child's stages are its own */
		nrecords = 0;
		nopen = 0;
		truncated = 0;
	}
	pthread_mutex_unlock(&mu);
}
