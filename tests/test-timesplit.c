/*
 * Where a stage's time goes (docs/PROFILER.md, memory.json stages[].time): sm_prof_time_add
 * counts in the innermost open stage and in every enclosing one, frees of tracked arrays are timed
 * by the profiler, compute_s is the rest of wall_s; and a real run's memory.json splits its
 * reading stages into read and prefault time (the parts never exceed the stage's wall time) and
 * reports the timeline sampler's own CPU time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "snapmem/mock.h"
#include "snapmem/profiler.h"

#include "util.h"

static void spin(double s)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9 < s);
}

static json_t *stage_json(json_t *doc, size_t i, const char *id)
{
	json_t *st = json_array_get(json_object_get(doc, "stages"), i);

	assert_non_null(st);
	assert_string_equal(json_string_value(json_object_get(st, "id")), id);
	return json_object_get(st, "time");
}

static double num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	assert_true(json_is_number(v));
	return json_number_value(v);
}

static void test_parts(void **state)
{
	sm_prof_options o;
	sm_prof *p;
	sm_error err;
	sm_prof_stage_info si;
	json_error_t je;
	json_t *doc, *t;
	char *s;
	void *a;

	(void)state;
	sm_prof_options_init(&o);
	o.timeline_hz = 0;
	assert_int_equal(sm_prof_create(&o, &p, &err), 0);
	sm_prof_time_add(p, SM_PROF_PART_READ, 5.0); /* no stage open: nowhere to count */
	assert_int_equal(sm_prof_stage_begin(p, "outer", -1), 0);
	sm_prof_time_add(p, SM_PROF_PART_READ, 0.25);
	assert_int_equal(sm_prof_stage_begin(p, "inner", 3), 0);
	sm_prof_time_add(p, SM_PROF_PART_PREFAULT, 0.5);
	sm_prof_time_add(p, SM_PROF_PART_READ, -1.0);    /* ignored */
	sm_prof_time_add(p, SM_PROF_NPARTS, 1.0);        /* ignored */
	a = sm_prof_alloc(p, "block", 1 << 20, &err);
	assert_non_null(a);
	sm_prof_release(p, a);
	spin(0.002);
	assert_int_equal(sm_prof_stage_end(p), 0);
	assert_int_equal(sm_prof_stage_end(p), 0);
	sm_prof_time_add(NULL, SM_PROF_PART_READ, 1.0); /* NULL profiler: nothing */

	assert_int_equal(sm_prof_stage_get(p, 0, &si), 0);
	assert_true(si.part_s[SM_PROF_PART_READ] == 0.25);
	assert_true(si.part_s[SM_PROF_PART_PREFAULT] == 0.5);
	assert_true(si.part_s[SM_PROF_PART_FREE] > 0);
	assert_int_equal(sm_prof_stage_get(p, 1, &si), 0);
	assert_true(si.part_s[SM_PROF_PART_READ] == 0);
	assert_true(si.part_s[SM_PROF_PART_PREFAULT] == 0.5);
	assert_true(si.part_s[SM_PROF_PART_FREE] > 0);

	s = sm_prof_json(p);
	assert_non_null(s);
	doc = json_loads(s, 0, &je);
	assert_non_null(doc);
	t = stage_json(doc, 0, "outer");
	assert_true(num(t, "read_s") == 0.25);
	assert_true(num(t, "prefault_s") == 0.5);
	/* The parts exceed the measured wall here (they were made up): compute is 0, not negative. */
	assert_true(num(t, "compute_s") == 0);
	t = stage_json(doc, 1, "inner");
	assert_true(num(t, "read_s") == 0);
	assert_true(num(t, "free_s") > 0 && num(t, "free_s") < 0.5);
	json_decref(doc);
	free(s);
	sm_prof_free(p);
}

/* compute_s is wall_s less the parts, when they fit. */
static void test_compute_is_the_rest(void **state)
{
	sm_prof_options o;
	sm_prof *p;
	sm_error err;
	json_error_t je;
	json_t *doc, *st, *t;
	double wall, rest;
	char *s;

	(void)state;
	sm_prof_options_init(&o);
	o.timeline_hz = 0;
	assert_int_equal(sm_prof_create(&o, &p, &err), 0);
	assert_int_equal(sm_prof_stage_begin(p, "work", -1), 0);
	spin(0.02);
	sm_prof_time_add(p, SM_PROF_PART_READ, 0.005);
	assert_int_equal(sm_prof_stage_end(p), 0);
	s = sm_prof_json(p);
	doc = json_loads(s, 0, &je);
	assert_non_null(doc);
	st = json_array_get(json_object_get(doc, "stages"), 0);
	wall = num(st, "wall_s");
	t = json_object_get(st, "time");
	rest = num(t, "compute_s");
	assert_true(wall >= 0.02);
	assert_true(num(t, "read_s") == 0.005);
	assert_true(rest > 0.0149 && rest <= wall - 0.005 + 1e-9);
	assert_true(rest >= wall - 0.005 - num(t, "free_s") - num(t, "prefault_s") - 1e-9);
	json_decref(doc);
	free(s);
	sm_prof_free(p);
}

/* A run: the reading stages report their reads, every stage's parts fit in its wall time. */
static void test_run_splits(void **state)
{
	char *d = tu_tmpdir(), *snap = tu_path(d, "mock"), *out = tu_path(d, "run"), *mj;
	sm_mock_options mo;
	sm_error err;
	tu_result r;
	json_error_t je;
	json_t *doc, *stages, *st;
	size_t i;
	int seen_read = 0;

	(void)state;
	sm_mock_options_init(&mo);
	mo.gas = 100000;
	mo.halos = 4;
	mo.files = 3;
	assert_int_equal(sm_mock_write(snap, &mo, &err), 0);
	r = tu_run("run", "--base-path", snap, "--snap", "99", "--out", out, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	mj = tu_path(out, "memory.json");
	doc = json_load_file(mj, 0, &je);
	assert_non_null(doc);
	stages = json_object_get(doc, "stages");
	assert_true(json_array_size(stages) > 0);
	json_array_foreach(stages, i, st) {
		const char *id = json_string_value(json_object_get(st, "id"));
		json_t *t = json_object_get(st, "time");
		double wall = num(st, "wall_s");
		double parts = num(t, "read_s") + num(t, "prefault_s") + num(t, "free_s") +
			       num(t, "compute_s");

		assert_true(num(t, "read_s") >= 0 && num(t, "prefault_s") >= 0 &&
			    num(t, "free_s") >= 0 && num(t, "compute_s") >= 0);
		/* The parts add up to the wall time (compute_s is the rest), to rounding. */
		assert_true(parts <= wall * 1.000001 + 1e-6);
		assert_true(parts >= wall * 0.999999 - 1e-6);
		if (strcmp(id, "load_gas_fields") == 0 || strcmp(id, "load_positions") == 0 ||
		    strcmp(id, "load_halos") == 0) {
			assert_true(num(t, "read_s") > 0);
			seen_read++;
		}
		if (strcmp(id, "build_index") == 0)
			assert_true(num(t, "read_s") == 0);
	}
	assert_int_equal(seen_read, 3);
	/* The timeline sampler's own cost: its CPU time over the samples it took (none thinned in
	 * a run this short, so every sample is in the document). */
	{
		json_t *tl = json_object_get(doc, "timeline");

		assert_true(num(tl, "sampler_cpu_s") >= 0);
		assert_int_equal((size_t)num(tl, "sampler_ticks"),
				 json_array_size(json_object_get(tl, "t")));
		if (num(tl, "sampler_ticks") > 0)
			assert_true(num(tl, "sampler_cpu_s") > 0);
		/* a reading is reused at most 8 samples running: at least one fresh in 9 */
		assert_true(num(tl, "sampler_stats_reads") <= num(tl, "sampler_ticks"));
		assert_true(9 * num(tl, "sampler_stats_reads") >= num(tl, "sampler_ticks"));
	}
	json_decref(doc);
	free(mj);
	free(snap);
	free(out);
	tu_rmtree(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parts),
		cmocka_unit_test(test_compute_is_the_rest),
		cmocka_unit_test(test_run_splits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
