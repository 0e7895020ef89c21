/*
 * Tests of the stage profiler (include/snapmem/profiler.h): exact requested figures for known arrays
 * in known (nested) stages, allocated sizes by jemalloc's size-class rules, stage peaks against
 * jemalloc's own figures, a second thread, the sampling layer (no recursion, thresholds, the
 * sampled rate), fault injection, the JSON document and the NULL profiler. Measurement tests skip
 * themselves under sanitizers (no jemalloc there).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/profiler.h"
#include "util.h"

#define MiB (1024ull * 1024)

static sm_prof *make(int timeline_hz, int sample)
{
	sm_prof_options o;
	sm_prof_options_init(&o);
	o.timeline_hz = timeline_hz;
	o.sample_untracked = sample;
	sm_prof *p = NULL;
	sm_error err = { 0 };
	assert_int_equal(sm_prof_create(&o, &p, &err), 0);
	assert_non_null(p);
	return p;
}

static json_t *doc_of(sm_prof *p)
{
	char *s = sm_prof_json(p);
	assert_non_null(s);
	json_error_t je;
	json_t *d = json_loads(s, 0, &je);
	free(s);
	assert_non_null(d);
	return d;
}

static sm_prof_stage_info stage(sm_prof *p, size_t i)
{
	sm_prof_stage_info s;
	assert_int_equal(sm_prof_stage_get(p, i, &s), 0);
	return s;
}

static void test_null_profiler(void **state)
{
	sm_error err = { 0 };
	char *a = sm_prof_alloc(NULL, "a", 100, &err);
	assert_non_null(a);
	memset(a, 1, 100);
	char *z = sm_prof_calloc(NULL, "z", 10, 10, &err);
	assert_non_null(z);
	for (int i = 0; i < 100; i++)
		assert_int_equal(z[i], 0);
	assert_int_equal(sm_prof_stage_begin(NULL, "s", -1), 0);
	assert_int_equal(sm_prof_stage_end(NULL), 0);
	assert_int_equal(sm_prof_live_requested(NULL), 0);
	assert_int_equal(sm_prof_stage_count(NULL), 0);
	assert_null(sm_prof_json(NULL));
	sm_prof_release(NULL, a);
	sm_prof_release(NULL, z);
	sm_prof_release(NULL, NULL);
	sm_prof_free(NULL);
	assert_int_equal(sm_prof_write_json(NULL, "x", &err), SM_EINVAL);
}

/* Arrays of 2 MiB and more start on a 2 MiB boundary (transparent huge pages can back all of
 * their whole 2 MiB), profiling on or off, zero-filled or not; their allocated size is the size
 * class of the request, as unaligned. */
static void test_large_arrays_aligned(void **state)
{
	(void)state;
	const uint64_t big = 3 * MiB + 1;
	sm_error err = { 0 };
	unsigned char *a = sm_prof_alloc(NULL, "a", big, &err);
	unsigned char *z = sm_prof_calloc(NULL, "z", big, 1, &err);
	assert_non_null(a);
	assert_non_null(z);
	assert_int_equal((uintptr_t)a % (2 * MiB), 0);
	assert_int_equal((uintptr_t)z % (2 * MiB), 0);
	for (uint64_t i = 0; i < big; i += 4096)
		assert_int_equal(z[i], 0);
	assert_int_equal(z[big - 1], 0);
	sm_prof_release(NULL, a);
	sm_prof_release(NULL, z);

	sm_prof *p = make(0, 0);
	assert_int_equal(sm_prof_stage_begin(p, "s", -1), 0);
	a = sm_prof_alloc(p, "a", big, &err);
	z = sm_prof_calloc(p, "z", big, 1, &err);
	unsigned char *s = sm_prof_alloc(p, "s", 100, &err);
	assert_non_null(a);
	assert_non_null(z);
	assert_non_null(s);
	assert_int_equal((uintptr_t)a % (2 * MiB), 0);
	assert_int_equal((uintptr_t)z % (2 * MiB), 0);
	assert_int_equal(z[big - 1], 0);
	memset(a, 1, big);
	sm_prof_release(p, a);
	sm_prof_release(p, z);
	sm_prof_release(p, s);
	assert_int_equal(sm_prof_stage_end(p), 0);
	json_t *d = doc_of(p), *arr;
	size_t k;
	int seen = 0;
	json_array_foreach(json_object_get(d, "arrays"), k, arr) {
		const char *name = json_string_value(json_object_get(arr, "name"));
		uint64_t want = strcmp(name, "s") == 0 ? 100 : big;
		assert_int_equal(json_integer_value(json_object_get(arr, "allocated")),
				 sm_prof_nallocx(want));
		seen++;
	}
	assert_int_equal(seen, 3);
	json_decref(d);
	sm_prof_free(p);
}

static void test_tracked_exact(void **state)
{
	sm_prof *p = make(0, 0);
	sm_error err = { 0 };
	assert_int_equal(sm_prof_stage_end(p), SM_EINVAL);
	assert_int_equal(sm_prof_stage_begin(p, "outer", -1), 0);
	void *x = sm_prof_alloc(p, "x", 1000, &err);
	void *y = sm_prof_alloc(p, "y", 3000, &err);
	assert_int_equal(sm_prof_stage_begin(p, "inner", 7), 0);
	void *z = sm_prof_calloc(p, "z", 1250, 4, &err);
	sm_prof_release(p, x);
	void *w = sm_prof_alloc(p, "w", 0, &err);
	void *w2 = sm_prof_alloc(p, "w2", 0, &err);
	assert_non_null(w);
	assert_ptr_not_equal(w, w2);
	assert_int_equal(sm_prof_live_requested(p), 8000);
	assert_int_equal(sm_prof_stage_end(p), 0);
	sm_prof_release(p, y);
	assert_int_equal(sm_prof_stage_end(p), 0);
	sm_prof_release(p, z);
	sm_prof_release(p, w);
	sm_prof_release(p, w2);
	assert_int_equal(sm_prof_live_requested(p), 0);

	assert_int_equal(sm_prof_stage_count(p), 2);
	sm_prof_stage_info o = stage(p, 0), in = stage(p, 1);
	assert_string_equal(o.id, "outer");
	assert_int_equal(o.depth, 0);
	assert_int_equal(o.parent, -1);
	assert_int_equal(o.requested_live_begin, 0);
	assert_int_equal(o.requested_peak, 9000); /* x + y + z before x is freed */
	assert_int_equal(o.requested_live_end, 5000);
	assert_string_equal(in.id, "inner");
	assert_int_equal(in.instance, 7);
	assert_int_equal(in.depth, 1);
	assert_int_equal(in.parent, 0);
	assert_int_equal(in.requested_live_begin, 4000);
	assert_int_equal(in.requested_peak, 9000);
	assert_int_equal(in.requested_live_end, 8000);
	assert_int_equal(o.open, 0);

	assert_int_equal(sm_prof_array_count(p), 5);
	const char *names[] = { "x", "y", "z", "w", "w2" };
	const char *stages[] = { "outer", "outer", "inner", "inner", "inner" };
	uint64_t req[] = { 1000, 3000, 5000, 0, 0 };
	uint64_t sum_alloc_at_peak = 0;
	for (size_t i = 0; i < 5; i++) {
		sm_prof_array_info a;
		assert_int_equal(sm_prof_array_get(p, i, &a), 0);
		assert_string_equal(a.name, names[i]);
		assert_string_equal(a.stage, stages[i]);
		assert_int_equal(a.requested, req[i]);
		assert_int_equal(a.live, 0);
		assert_true(a.site >= 0);
		if (tu_sanitized())
			assert_int_equal(a.allocated, req[i]);
		else
			assert_int_equal(a.allocated, sm_prof_nallocx(req[i]));
		if (i < 3)
			sum_alloc_at_peak += a.allocated;
	}
	assert_int_equal(o.tracked_allocated_peak, sum_alloc_at_peak);
	sm_prof_array_info a;
	assert_int_equal(sm_prof_array_get(p, 5, &a), SM_EINVAL);
	assert_int_equal(sm_prof_stage_get(p, 2, &o), SM_EINVAL);
	sm_prof_free(p);
}

static void test_size_classes(void **state)
{
	if (tu_sanitized()) {
		assert_int_equal(sm_prof_nallocx(1000), 1000);
		skip();
	}
	assert_int_equal(sm_prof_nallocx(1), 8);
	assert_int_equal(sm_prof_nallocx(0), 8);
	assert_int_equal(sm_prof_nallocx(17), 32);
	assert_int_equal(sm_prof_nallocx(100), 112);
	assert_int_equal(sm_prof_nallocx(4097), 5120);
	assert_int_equal(sm_prof_nallocx(64 * MiB), 64 * MiB);
	assert_int_equal(sm_prof_nallocx(64 * MiB + 1), 80 * MiB);
	/* the design's example: 4 bytes x 14,454,722,210 cells (53.85 GiB) takes a 56 GiB class */
	assert_int_equal(sm_prof_nallocx(4ull * 14454722210ull), 56ull << 30);
	assert_int_equal(sm_prof_nallocx(UINT64_MAX), 0);
	assert_int_equal(sm_prof_have_jemalloc(), 1);
}

static void test_jemalloc_stage_peaks(void **state)
{
	if (tu_sanitized())
		skip();
	sm_prof *p = make(0, 1);
	sm_error err = { 0 };
	sm_prof_stage_begin(p, "outer", -1);
	sm_prof_stage_begin(p, "big", -1);
	char *a = sm_prof_alloc(p, "a", 64 * MiB, &err);
	assert_non_null(a);
	sm_prof_release(p, a);
	sm_prof_stage_end(p);
	sm_prof_stage_begin(p, "small", -1);
	char *b = sm_prof_alloc(p, "b", 8 * MiB, &err);
	sm_prof_release(p, b);
	sm_prof_stage_end(p);
	sm_prof_stage_end(p);

	sm_prof_stage_info o = stage(p, 0), big = stage(p, 1), small = stage(p, 2);
	assert_true(big.allocated_peak >= big.je_begin.allocated + 64 * MiB);
	assert_true(big.allocated_peak <= big.je_begin.allocated + 65 * MiB);
	assert_true(big.allocated_peak >= big.tracked_allocated_peak);
	assert_int_equal(big.tracked_allocated_peak, 64 * MiB);
	/* the reset between stages: the 8 MiB stage does not inherit the 64 MiB peak */
	assert_true(small.allocated_peak >= small.je_begin.allocated + 8 * MiB);
	assert_true(small.allocated_peak <= small.je_begin.allocated + 9 * MiB);
	/* the inner peaks fold into the outer stage */
	assert_true(o.allocated_peak >= big.allocated_peak);
	assert_true(o.allocated_peak <= o.je_begin.allocated + 65 * MiB);
	assert_true(o.je_begin.active >= o.je_begin.allocated);
	assert_true(o.je_begin.resident > 0 && o.je_begin.mapped > 0);
	assert_true(o.vm_rss_begin > 0 && o.vm_hwm_end >= o.vm_rss_end);
	assert_true(big.wall_s >= 0 && big.cpu_s >= 0);
	sm_prof_free(p);
}

typedef struct helper {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int step;
	void *mem;
} helper;

static void wait_step(helper *h, int s)
{
	pthread_mutex_lock(&h->mu);
	while (h->step < s)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

static void set_step(helper *h, int s)
{
	pthread_mutex_lock(&h->mu);
	h->step = s;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static void *other_thread(void *arg)
{
	helper *h = arg;
	wait_step(h, 1);
	h->mem = malloc(32 * MiB);
	memset(h->mem, 1, 32 * MiB);
	set_step(h, 2);
	wait_step(h, 3);
	free(h->mem);
	set_step(h, 4);
	return NULL;
}

static void test_second_thread(void **state)
{
	if (tu_sanitized())
		skip();
	sm_prof *p = make(0, 1);
	helper h = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, other_thread, &h), 0);
	sm_prof_stage_begin(p, "outer", -1);
	sm_prof_stage_begin(p, "inner", -1);
	set_step(&h, 1);
	wait_step(&h, 2); /* the other thread holds 32 MiB now */
	sm_prof_stage_end(p);
	set_step(&h, 3);
	wait_step(&h, 4); /* and has freed it */
	sm_prof_stage_end(p);
	pthread_join(t, NULL);
	sm_prof_stage_info o = stage(p, 0), in = stage(p, 1);
	/* rule: a stage's peak is at least what stats.allocated showed at its boundaries, and an
	 * inner stage's peak counts toward its parent */
	assert_true(in.je_end.allocated >= in.je_begin.allocated + 32 * MiB);
	assert_true(in.allocated_peak >= in.je_end.allocated);
	assert_true(o.allocated_peak >= in.allocated_peak);
	assert_true(o.je_end.allocated < o.je_begin.allocated + 32 * MiB);
	/* the other thread's 32 MiB is untracked: it is the unexplained part of the stage */
	json_t *d = doc_of(p);
	json_t *js = json_array_get(json_object_get(d, "stages"), 1);
	assert_true(json_integer_value(json_object_get(js, "unexplained_bytes")) >= (json_int_t)(32 * MiB));
	assert_true(json_integer_value(json_object_get(json_object_get(js, "allocated"), "others_net")) >=
		    (json_int_t)(32 * MiB));
	json_decref(d);
	sm_prof_free(p);
}

static void *quick_thread(void *arg)
{
	helper *h = arg;
	wait_step(h, 1);
	h->mem = malloc(4 * MiB);
	set_step(h, 2);
	wait_step(h, 3);
	free(h->mem);
	set_step(h, 4);
	return NULL;
}

/* A stage boundary may reuse the previous boundary's reading (a pipeline does nothing between one
 * stage's end and the next one's begin), never when something allocated or freed in between: the
 * calling thread (its jemalloc counters), or another thread (a block the sampler recorded). */
static void test_boundary_readings(void **state)
{
	if (tu_sanitized())
		skip();
	sm_prof *p = make(0, 1);
	helper h = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, quick_thread, &h), 0);
	sm_prof_stage_begin(p, "a", -1);
	sm_prof_stage_end(p);
	set_step(&h, 1);
	wait_step(&h, 2); /* another thread took 4 MiB between a's end and b's begin */
	sm_prof_stage_begin(p, "b", -1);
	sm_prof_stage_end(p);
	void *volatile q = malloc(100000); /* this thread, outside any stage */
	sm_prof_stage_begin(p, "c", -1);
	sm_prof_stage_end(p);
	free(q);
	sm_prof_stage_begin(p, "d", -1);
	sm_prof_stage_end(p);
	set_step(&h, 3);
	wait_step(&h, 4); /* and gave it back */
	sm_prof_stage_begin(p, "e", -1);
	sm_prof_stage_end(p);
	pthread_join(t, NULL);
	sm_prof_stage_info a = stage(p, 0), b = stage(p, 1), c = stage(p, 2), d = stage(p, 3),
			    e = stage(p, 4);
	assert_true(b.je_begin.allocated >= a.je_end.allocated + 4 * MiB);
	assert_true(c.je_begin.allocated >= b.je_end.allocated + 100000);
	assert_true(d.je_begin.allocated + 100000 <= c.je_end.allocated);
	assert_true(e.je_begin.allocated + 4 * MiB <= d.je_end.allocated);
	assert_true(e.vm_rss_begin > 0 && e.vm_hwm_end >= e.vm_rss_end);
	sm_prof_free(p);
}

/* Not static, so that dladdr finds its name in the executable (linked -rdynamic). */
__attribute__((noinline)) void *tp_big_alloc(size_t n)
{
	void *q = malloc(n);
	__asm__ volatile("" ::: "memory");
	return q;
}

static json_t *site_with_function(json_t *d, const char *fn)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(d, "sites"), i, s)
	{
		json_t *f0 = json_array_get(json_object_get(s, "frames"), 0);
		const char *name = json_string_value(json_object_get(f0, "function"));
		if (name && strcmp(name, fn) == 0)
			return s;
	}
	return NULL;
}

static void test_threshold_site(void **state)
{
	if (tu_sanitized())
		skip();
	sm_prof *p = make(0, 1);
	sm_prof_stage_begin(p, "s", -1);
	char *volatile big = tp_big_alloc(2 * MiB);
	big[0] = 1;
	sm_prof_stage_end(p);
	json_t *d = doc_of(p);
	json_t *s = site_with_function(d, "tp_big_alloc");
	assert_non_null(s);
	assert_false(json_boolean_value(json_object_get(s, "tracked")));
	assert_int_equal(json_integer_value(json_object_get(s, "bytes")), 2 * MiB);
	assert_int_equal(json_integer_value(json_object_get(s, "live_bytes")), 2 * MiB);
	json_int_t id = json_integer_value(json_object_get(s, "id"));
	json_t *top = json_object_get(json_array_get(json_object_get(d, "stages"), 0), "top_sites");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(top, 0), "site")), id);
	json_decref(d);
	free(big);
	d = doc_of(p);
	s = site_with_function(d, "tp_big_alloc");
	assert_int_equal(json_integer_value(json_object_get(s, "live_bytes")), 0);
	json_decref(d);
	sm_prof_free(p);
}

__attribute__((noinline)) void *tp_small_alloc(size_t n)
{
	void *q = malloc(n);
	__asm__ volatile("" ::: "memory");
	return q;
}

static void test_sampled_rate(void **state)
{
	if (tu_sanitized())
		skip();
	sm_prof_options o;
	sm_prof_options_init(&o);
	o.timeline_hz = 0;
	o.sample_interval_bytes = 16 * 1024;
	sm_prof *p = NULL;
	assert_int_equal(sm_prof_create(&o, &p, NULL), 0);
	enum { N = 200000, SZ = 100 };
	void **v = malloc(N * sizeof(void *));
	for (int i = 0; i < N; i++)
		v[i] = tp_small_alloc(SZ);
	json_t *d = doc_of(p);
	json_t *s = site_with_function(d, "tp_small_alloc");
	assert_non_null(s);
	double live = (double)json_integer_value(json_object_get(s, "live_bytes"));
	double want = (double)N * SZ; /* 20 MB: ~1200 samples expected, 15% is > 5 sigma */
	assert_true(live > 0.85 * want && live < 1.15 * want);
	json_int_t count = json_integer_value(json_object_get(s, "count"));
	assert_true(count > 900 && count < 1600);
	json_decref(d);
	for (int i = 0; i < N; i++)
		free(v[i]);
	free(v);
	d = doc_of(p);
	s = site_with_function(d, "tp_small_alloc");
	assert_int_equal(json_integer_value(json_object_get(s, "live_bytes")), 0);
	json_decref(d);
	sm_prof_free(p);
}

/* 10,000 live samples: the sampled-pointer table grows from 4096 entries (three doublings, each a
 * rehash into a new mapping) and still finds every one at its free. */
static void test_many_live_samples(void **state)
{
	if (tu_sanitized())
		skip();
	sm_prof_options o;
	sm_prof_options_init(&o);
	o.timeline_hz = 0;
	o.sample_interval_bytes = 1; /* every allocation is a sample of its own size */
	sm_prof *p = NULL;
	assert_int_equal(sm_prof_create(&o, &p, NULL), 0);
	enum { N = 10000, SZ = 100 };
	void **v = malloc(N * sizeof(void *));
	for (int i = 0; i < N; i++)
		v[i] = tp_small_alloc(SZ);
	json_t *d = doc_of(p);
	json_t *s = site_with_function(d, "tp_small_alloc");
	assert_non_null(s);
	assert_int_equal(json_integer_value(json_object_get(s, "count")), N);
	assert_int_equal(json_integer_value(json_object_get(s, "live_bytes")), (json_int_t)N * SZ);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "profiler"),
							    "samples_dropped")), 0);
	json_decref(d);
	for (int i = 0; i < N; i++)
		free(v[i]);
	free(v);
	d = doc_of(p);
	s = site_with_function(d, "tp_small_alloc");
	assert_int_equal(json_integer_value(json_object_get(s, "live_bytes")), 0);
	json_decref(d);
	sm_prof_free(p);
}

/* A profiler's sampling starts afresh on the thread that creates it: what is left of the countdown
 * a profiler with a huge interval drew (mean 1 GiB) does not hold off the samples of the next one,
 * at interval 1 every allocation of its own. Without the restart it fails (no sample of ten). */
static void test_interval_restart(void **state)
{
	if (tu_sanitized())
		skip();
	sm_prof_options o;
	sm_prof_options_init(&o);
	o.timeline_hz = 0;
	o.sample_interval_bytes = UINT64_C(1) << 30;
	sm_prof *p = NULL;
	assert_int_equal(sm_prof_create(&o, &p, NULL), 0);
	void *v[10];
	for (int i = 0; i < 10; i++)
		v[i] = tp_small_alloc(100);
	for (int i = 0; i < 10; i++)
		free(v[i]);
	sm_prof_free(p);
	o.sample_interval_bytes = 1;
	assert_int_equal(sm_prof_create(&o, &p, NULL), 0);
	for (int i = 0; i < 10; i++)
		v[i] = tp_small_alloc(100);
	json_t *d = doc_of(p);
	json_t *s = site_with_function(d, "tp_small_alloc");
	assert_non_null(s);
	assert_int_equal(json_integer_value(json_object_get(s, "count")), 10);
	json_decref(d);
	for (int i = 0; i < 10; i++)
		free(v[i]);
	sm_prof_free(p);
}

static void test_no_recursion(void **state)
{
	if (tu_sanitized())
		skip();
	sm_prof_options o;
	sm_prof_options_init(&o);
	o.sample_interval_bytes = 1; /* every allocation is sampled, and unwinds */
	o.timeline_hz = 1000;
	sm_prof *p = NULL;
	assert_int_equal(sm_prof_create(&o, &p, NULL), 0);
	sm_prof_stage_begin(p, "many", -1);
	void *keep[64] = { 0 };
	for (int i = 0; i < 20000; i++) {
		int k = i & 63;
		free(keep[k]);
		keep[k] = (i & 1) ? malloc((size_t)(i % 700) + 1) : calloc(3, (size_t)(i % 50) + 1);
		if (i % 7 == 0)
			keep[k] = realloc(keep[k], (size_t)(i % 3000) + 1);
		assert_non_null(keep[k]);
	}
	void *al = NULL;
	assert_int_equal(posix_memalign(&al, 64, 1000), 0);
	assert_int_equal((uintptr_t)al % 64, 0);
	free(al);
	al = aligned_alloc(4096, 8192);
	assert_int_equal((uintptr_t)al % 4096, 0);
	free(al);
	for (int k = 0; k < 64; k++)
		free(keep[k]);
	sm_prof_stage_end(p);
	json_t *d = doc_of(p);
	json_t *prof = json_object_get(d, "profiler");
	assert_true(json_integer_value(json_object_get(prof, "samples")) >= 20000);
	assert_int_equal(json_integer_value(json_object_get(prof, "unwind_failures")), 0);
	json_decref(d);
	sm_prof_free(p);
}

static void test_one_sampler(void **state)
{
	if (tu_sanitized())
		skip();
	sm_prof *a = make(0, 1), *b = make(0, 1);
	json_t *d = doc_of(b);
	const char *why = json_string_value(
		json_object_get(json_object_get(d, "allocator"), "untracked_sampling"));
	assert_non_null(strstr(why, "another profiler"));
	json_decref(d);
	sm_prof_free(b);
	sm_prof_free(a);
}

static void test_fault_injection(void **state)
{
	sm_prof *p = make(0, 0);
	sm_error err = { 0 };
	sm_prof_stage_begin(p, "load", -1);
	sm_prof_inject_failure(p, "b", 2);
	void *a1 = sm_prof_alloc(p, "a", 10, &err);
	void *b1 = sm_prof_alloc(p, "b", 10, &err);
	void *a2 = sm_prof_alloc(p, "a", 10, &err);
	assert_non_null(a1);
	assert_non_null(b1);
	assert_non_null(a2);
	void *b2 = sm_prof_alloc(p, "b", 4096, &err);
	assert_null(b2);
	assert_int_equal(err.code, SM_ENOMEM);
	assert_int_equal(err.needed_bytes, 4096);
	assert_string_equal(err.msg, "'b': cannot allocate 4096 bytes (4.00 KiB) in stage 'load'");
	assert_int_equal(sm_prof_live_requested(p), 30);
	sm_error err2 = { 0 };
	void *b3 = sm_prof_alloc(p, "b", 10, &err2); /* disarmed after firing */
	assert_non_null(b3);
	assert_int_equal(err2.code, 0);
	sm_prof_inject_failure(p, NULL, 1);
	assert_null(sm_prof_calloc(p, "c", 2, 8, &err2));
	assert_int_equal(err2.code, SM_ENOMEM);
	assert_int_equal(err2.needed_bytes, 16);
	sm_prof_inject_failure(p, "never", 1);
	sm_prof_inject_failure(p, NULL, 0); /* disarms */
	void *c = sm_prof_alloc(p, "never", 1, &err2);
	assert_non_null(c);
	/* a real failure looks the same */
	sm_error err3 = { 0 };
	assert_null(sm_prof_alloc(p, "huge", UINT64_MAX / 2, &err3));
	assert_int_equal(err3.code, SM_ENOMEM);
	assert_int_equal(err3.needed_bytes, UINT64_MAX / 2);
	assert_non_null(strstr(err3.msg, "'huge': cannot allocate 9223372036854775807 bytes"));
	sm_error err4 = { 0 };
	assert_null(sm_prof_calloc(p, "ovf", UINT64_MAX / 2, 3, &err4));
	assert_int_equal(err4.code, SM_EOVERFLOW);
	assert_int_equal(sm_prof_array_count(p), 5);
	sm_prof_release(p, a1);
	sm_prof_release(p, b1);
	sm_prof_release(p, a2);
	sm_prof_release(p, b3);
	sm_prof_release(p, c);
	sm_prof_stage_end(p);
	sm_prof_free(p);
}

static void test_json_schema(void **state)
{
	sm_prof *p = make(1000, 1);
	sm_error err = { 0 };
	assert_int_equal(sm_prof_set_meta(p, "run", "{\"gas_cells\": 5}"), 0);
	assert_int_equal(sm_prof_set_meta(p, "run", "{\"gas_cells\": 6}"), 0);
	assert_int_equal(sm_prof_set_meta(p, "run", "[1]"), SM_EINVAL);
	assert_int_equal(sm_prof_set_meta(p, "run", "{bad"), SM_EINVAL);
	assert_int_equal(sm_prof_set_meta(p, "stages", "{}"), SM_EINVAL);
	sm_prof_stage_begin(p, "a", -1);
	void *x = sm_prof_alloc(p, "x", 100, &err);
	sm_prof_stage_begin(p, "b", 3);
	sm_prof_release(p, x);
	sm_prof_stage_end(p);
	sm_prof_stage_end(p);
	char *dir = tu_tmpdir();
	char *path = tu_path(dir, "memory.json");
	assert_int_equal(sm_prof_write_json(p, path, &err), 0);
	size_t len;
	char *text = tu_read_file(path, &len);
	assert_non_null(text);
	json_t *d = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(d);
	assert_string_equal(json_string_value(json_object_get(d, "schema")), "snapmem.memory/1");
	assert_true(json_is_true(json_object_get(d, "complete")));
	assert_true(json_is_null(json_object_get(d, "incomplete_reason")));
	const char *top[] = { "allocator", "options", "baseline", "stages", "arrays", "sites",
			      "timeline", "profiler", "run" };
	for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
		assert_non_null(json_object_get(d, top[i]));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "run"), "gas_cells")), 6);
	json_t *al = json_object_get(d, "allocator");
	assert_string_equal(json_string_value(json_object_get(al, "name")),
			    tu_sanitized() ? "none" : "jemalloc");
	assert_true(json_is_string(json_object_get(al, "untracked_sampling")));
	const char *base[] = { "allocated", "active", "resident", "mapped", "vm_rss", "vm_hwm" };
	for (size_t i = 0; i < 6; i++)
		assert_true(json_is_integer(json_object_get(json_object_get(d, "baseline"), base[i])));
	json_t *stages = json_object_get(d, "stages");
	assert_int_equal(json_array_size(stages), 2);
	json_t *b = json_array_get(stages, 1);
	assert_string_equal(json_string_value(json_object_get(b, "id")), "b");
	assert_int_equal(json_integer_value(json_object_get(b, "instance")), 3);
	assert_int_equal(json_integer_value(json_object_get(b, "parent")), 0);
	const char *sk[] = { "depth", "t_begin", "wall_s", "cpu_s", "requested",
			     "tracked_allocated_peak", "allocated", "active", "resident", "mapped",
			     "vm_rss", "vm_hwm", "unexplained_bytes", "top_sites" };
	for (size_t i = 0; i < sizeof(sk) / sizeof(sk[0]); i++)
		assert_non_null(json_object_get(b, sk[i]));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "requested"), "live_begin")), 100);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "requested"), "live_end")), 0);
	assert_non_null(json_object_get(json_object_get(b, "allocated"), "peak"));
	json_t *arr = json_array_get(json_object_get(d, "arrays"), 0);
	assert_string_equal(json_string_value(json_object_get(arr, "name")), "x");
	assert_string_equal(json_string_value(json_object_get(arr, "stage")), "a");
	assert_string_equal(json_string_value(json_object_get(arr, "freed_in")), "b");
	assert_true(json_is_number(json_object_get(arr, "t_free")));
	json_int_t site = json_integer_value(json_object_get(arr, "site"));
	json_t *s = json_array_get(json_object_get(d, "sites"), (size_t)site);
	assert_true(json_is_true(json_object_get(s, "tracked")));
	json_t *f0 = json_array_get(json_object_get(s, "frames"), 0);
	const char *fk[] = { "function", "offset", "address", "file", "line" };
	for (size_t i = 0; i < 5; i++)
		assert_non_null(json_object_get(f0, fk[i]));
	json_t *tl = json_object_get(d, "timeline");
	size_t nt = json_array_size(json_object_get(tl, "t"));
	assert_int_equal(json_array_size(json_object_get(tl, "allocated")), nt);
	assert_int_equal(json_array_size(json_object_get(tl, "resident")), nt);
	assert_int_equal(json_array_size(json_object_get(tl, "marks")), 4);
	const char *pk[] = { "self_bytes", "sites", "samples", "unwind_failures" };
	for (size_t i = 0; i < 4; i++)
		assert_true(json_is_integer(json_object_get(json_object_get(d, "profiler"), pk[i])));
	assert_true(json_integer_value(json_object_get(json_object_get(d, "profiler"), "self_bytes")) > 0);
	/* two stages begun and ended: four boundaries, their time and their readings */
	json_t *pr = json_object_get(d, "profiler");
	assert_int_equal(json_integer_value(json_object_get(pr, "boundaries")), 4);
	assert_true(json_is_real(json_object_get(pr, "boundary_s")));
	assert_true(json_real_value(json_object_get(pr, "boundary_s")) > 0);
	assert_true(json_real_value(json_object_get(pr, "boundary_s")) <
		    json_real_value(json_object_get(b, "wall_s")) +
			    json_real_value(json_object_get(json_array_get(stages, 0), "wall_s")) + 1);
	assert_int_equal(json_integer_value(json_object_get(pr, "boundary_readings")) +
				 json_integer_value(json_object_get(pr, "boundary_reused")),
			 4);
	json_decref(d);

	/* an unwritable path is an I/O error naming the file */
	char *bad = tu_path(dir, "missing/memory.json");
	assert_int_equal(sm_prof_write_json(p, bad, &err), SM_EIO);
	assert_non_null(strstr(err.msg, "missing/memory.json"));
	free(bad);
	free(path);
	tu_rmtree(dir);
	free(dir);
	sm_prof_free(p);
}

/* The frames of the site of document d's first array, and how they were named
 * (profiler.symbolizer). */
static json_t *first_array_frames(json_t *d, const char **how)
{
	json_t *arr = json_array_get(json_object_get(d, "arrays"), 0);
	json_t *s = json_array_get(json_object_get(d, "sites"),
				   (size_t)json_integer_value(json_object_get(arr, "site")));

	*how = json_string_value(json_object_get(json_object_get(d, "profiler"), "symbolizer"));
	return json_object_get(s, "frames");
}

/* Frames in the C library and the entry frames below main are named without file and line
 * (src/profiler/symbolize.c: their lines are glibc's own sources, and looking them up made libdw
 * decompress libc6-dbg's debug sections for every document); this file's frame keeps its file and
 * line (with libdw: not under the sanitizers, where frames are named by dladdr). */
static void test_frames_c_library(void **state)
{
	(void)state;
	sm_prof *p = make(0, 0);
	sm_error err = { 0 };
	void *x = sm_prof_alloc(p, "x", 100, &err);
	assert_non_null(x);
	json_t *d = doc_of(p);
	const char *how;
	json_t *frames = first_array_frames(d, &how);
	size_t i, libc = 0, mine = 0;
	assert_non_null(how);
	for (i = 0; i < json_array_size(frames); i++) {
		json_t *f = json_array_get(frames, i);
		const char *fn = json_string_value(json_object_get(f, "function"));
		const char *obj = json_string_value(json_object_get(f, "object"));
		const char *base = obj ? strrchr(obj, '/') : NULL;
		const char *file = json_string_value(json_object_get(f, "file"));
		base = base ? base + 1 : obj;
		if ((base && strncmp(base, "libc.so", 7) == 0) ||
		    (fn && strncmp(fn, "__libc_start", 12) == 0)) {
			libc++;
			if (file != NULL)
				fail_msg("frame %zu (%s in %s) has file %s", i, fn, obj, file);
			assert_true(json_is_null(json_object_get(f, "line")));
		}
		if (fn && strcmp(fn, "test_frames_c_library") == 0) {
			mine++;
			if (strcmp(how, "libdw") == 0) {
				assert_non_null(file);
				assert_non_null(strstr(file, "test-profiler.c"));
				assert_true(json_integer_value(json_object_get(f, "line")) > 0);
			}
		}
	}
	assert_true(libc >= 1); /* the stack reaches main's caller */
	if (strcmp(how, "libdw") == 0) /* dladdr names exported functions only */
		assert_int_equal(mine, 1);
	json_decref(d);
	sm_prof_release(p, x);
	sm_prof_free(p);
}

/* 1 when the object named is mapped into this process (/proc/self/maps). */
static int mapped_here(const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int found = 0;

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, name) != NULL;
	fclose(f);
	return found;
}

/* Frames are named from this machine's files only: a stripped library without a debug file on
 * the stack (libcmocka's frames below this test) is named from its own symbol table (its exported
 * functions; the static ones stay unnamed, as before), and libdwfl's last resort for it,
 * debuginfod, is never loaded (src/profiler/symbolize.c: elfutils dlopens libdebuginfod, and with
 * it curl, GnuTLS and Kerberos, 15-20 ms of every such document). */
static void test_frames_local_debug_only(void **state)
{
	(void)state;
	sm_prof *p = make(0, 0);
	sm_error err = { 0 };
	void *x = sm_prof_alloc(p, "x", 100, &err);
	size_t i, stripped = 0, named = 0;
	int libdw;

	assert_non_null(x);
	json_t *d = doc_of(p);
	const char *how;
	json_t *frames = first_array_frames(d, &how);

	assert_non_null(how);
	for (i = 0; i < json_array_size(frames); i++) {
		const char *obj = json_string_value(json_object_get(json_array_get(frames, i),
								    "object"));
		const char *fn = json_string_value(json_object_get(json_array_get(frames, i),
								   "function"));
		if (obj != NULL && strstr(obj, "libcmocka") != NULL) {
			stripped++;
			named += fn != NULL; /* its exported functions, from its own symbol table */
		}
	}
	libdw = strcmp(how, "libdw") == 0; /* how is the document's: read before it is freed */
	json_decref(d);
	sm_prof_release(p, x);
	sm_prof_free(p);
	if (!libdw)
		skip(); /* dladdr names frames: libdw and its search are not loaded */
	assert_true(stripped >= 1);
	assert_true(named >= 1);
	assert_false(mapped_here("libdebuginfod"));
}

static void test_incomplete(void **state)
{
	sm_prof *p = make(0, 0);
	sm_prof_stage_begin(p, "a", -1);
	sm_prof_stage_begin(p, "b", -1);
	sm_prof_mark_incomplete(p, "interrupted by signal 2");
	json_t *d = doc_of(p);
	assert_true(json_is_false(json_object_get(d, "complete")));
	assert_string_equal(json_string_value(json_object_get(d, "incomplete_reason")),
			    "interrupted by signal 2");
	json_t *b = json_array_get(json_object_get(d, "stages"), 1);
	assert_true(json_is_true(json_object_get(b, "closed_at_write")));
	json_decref(d);
	assert_int_equal(sm_prof_stage_end(p), SM_EINVAL); /* closed by the writer */
	sm_prof_free(p);

	p = make(0, 0);
	sm_prof_stage_begin(p, "left_open", -1);
	d = doc_of(p);
	assert_true(json_is_false(json_object_get(d, "complete")));
	assert_non_null(strstr(json_string_value(json_object_get(d, "incomplete_reason")), "left_open"));
	json_decref(d);
	sm_prof_free(p);
}

static void test_timeline_bounded(void **state)
{
	sm_prof_options o;
	sm_prof_options_init(&o);
	o.timeline_hz = 2000;
	o.max_timeline_samples = 8;
	sm_prof *p = NULL;
	assert_int_equal(sm_prof_create(&o, &p, NULL), 0);
	struct timespec ts = { 0, 30 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	json_t *d = doc_of(p);
	json_t *tl = json_object_get(d, "timeline");
	assert_true(json_array_size(json_object_get(tl, "t")) <= 8);
	assert_true(json_real_value(json_object_get(tl, "rate_hz")) <= 2000.0);
	json_decref(d);
	sm_prof_free(p);
	o.max_frames = 0;
	sm_error err = { 0 };
	assert_int_equal(sm_prof_create(&o, &p, &err), SM_EINVAL);
	assert_null(p);
}

/* This process's VmRSS in bytes (/proc/self/status). */
static uint64_t vm_rss(void)
{
	char line[256];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
			break;
	fclose(f);
	assert_true(kb > 0);
	return (uint64_t)kb * 1024;
}

static void *touched(sm_prof *p, const char *name, uint64_t bytes)
{
	void *q = sm_prof_alloc(p, name, bytes, NULL);

	assert_non_null(q);
	memset(q, 1, bytes);
	return q;
}

/* A repeated stage's end keeps the pages its arrays freed for the next iteration (below 1/32 of
 * jemalloc's resident bytes: a 192 MiB live array makes room for 6 MiB), and the next iteration
 * takes them back; but an array jemalloc maps from fresh pages while they are kept (too large for
 * them) purges them first: kept and fresh pages are never resident together, so the resident
 * peak stays the live arrays' (docs/MODEL.md "The four peaks"). */
static void test_kept_pages(void **state)
{
	if (tu_sanitized())
		skip();
	sm_prof *p = make(0, 0);
	void *base = touched(p, "base", 192 * MiB);
	uint64_t r_base = vm_rss();
	sm_prof_stage_begin(p, "halo", 0);
	sm_prof_release(p, touched(p, "x", 3 * MiB));
	sm_prof_stage_end(p);
	uint64_t r_kept = vm_rss();
	assert_true(r_kept >= r_base + 3 * MiB - 256 * 1024); /* kept, not purged */
	sm_prof_stage_begin(p, "halo", 1);
	void *z = touched(p, "z", 3 * MiB);
	uint64_t r_reused = vm_rss();
	sm_prof_release(p, z);
	sm_prof_stage_end(p);
	assert_true(r_reused <= r_kept + 512 * 1024); /* the same pages again */
	sm_prof_stage_begin(p, "halo", 2);
	void *y = touched(p, "y", 5 * MiB);
	uint64_t r_fresh = vm_rss();
	sm_prof_release(p, y);
	sm_prof_stage_end(p);
	/* 5 MiB live where 3 MiB were kept: 2 MiB more, not 5 */
	assert_true(r_fresh <= r_kept + 2 * MiB + 512 * 1024);
	assert_true(r_fresh >= r_kept + 2 * MiB - 512 * 1024);
	sm_prof_release(p, base);
	sm_prof_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_null_profiler),
		cmocka_unit_test(test_tracked_exact),
		cmocka_unit_test(test_large_arrays_aligned),
		cmocka_unit_test(test_size_classes),
		cmocka_unit_test(test_jemalloc_stage_peaks),
		cmocka_unit_test(test_second_thread),
		cmocka_unit_test(test_boundary_readings),
		cmocka_unit_test(test_kept_pages),
		cmocka_unit_test(test_threshold_site),
		cmocka_unit_test(test_sampled_rate),
		cmocka_unit_test(test_many_live_samples),
		cmocka_unit_test(test_interval_restart),
		cmocka_unit_test(test_no_recursion),
		cmocka_unit_test(test_one_sampler),
		cmocka_unit_test(test_fault_injection),
		cmocka_unit_test(test_json_schema),
		cmocka_unit_test(test_frames_c_library),
		cmocka_unit_test(test_frames_local_debug_only),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_timeline_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
