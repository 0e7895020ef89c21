/*
 * `snapmem run` through the binary: the files of a run directory and their agreement (memory.json's
 * measured stage peaks equal estimate.json's, which is recomputed with the measured sphere counts),
 * --max-mem refused before anything is read, an existing run directory refused without --force,
 * injected allocation failure (exit 3, the bytes needed and the estimate, no file left), signals
 * (memory.json marked incomplete, exit 130/143), an empty mass cut and usage errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "snapmem/mock.h"

#include "util.h"

static char *dir, *base;

static int setup(void **state)
{
	tu_result r;

	(void)state;
	dir = tu_tmpdir();
	base = tu_path(dir, "mock");
	r = tu_run("mock", base, "--gas", "120000", "--halos", "5", "--files", "3", "--seed", "3",
		   NULL);
	if (r.status != 0)
		fail_msg("mock: %s", r.err);
	tu_result_free(&r);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	free(dir);
	free(base);
	return 0;
}

static json_t *load_json(const char *rundir, const char *name)
{
	char *p = tu_path(rundir, name);
	json_error_t e;
	json_t *j = json_load_file(p, 0, &e);

	if (j == NULL)
		fail_msg("%s: %s", p, e.text);
	free(p);
	return j;
}

static int only_file(const char *rundir, const char *name)
{
	char *p = tu_path(rundir, name);
	int e = tu_exists(p);

	free(p);
	return e;
}

static void test_run_writes_the_run_directory(void **state)
{
	char *out = tu_path(dir, "run1");
	json_t *mem, *est, *run, *stages, *es, *ms;
	tu_result r;
	size_t i, j;

	(void)state;
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, NULL);
	if (r.status != 0)
		fail_msg("run: %s", r.err);
	assert_non_null(strstr(r.out, "5 halos"));
	tu_result_free(&r);
	assert_true(only_file(out, "profiles.hdf5"));
	assert_true(only_file(out, "estimate.json"));
	assert_true(only_file(out, "memory.json"));

	mem = load_json(out, "memory.json");
	est = load_json(out, "estimate.json");
	assert_true(json_is_true(json_object_get(mem, "complete")));
	run = json_object_get(mem, "run");
	assert_true(json_is_object(run));
	assert_int_equal(json_integer_value(json_object_get(run, "gas_cells")), 120000);
	assert_int_equal(json_array_size(json_object_get(run, "halos")), 5);
	assert_true(json_integer_value(json_object_get(json_array_get(json_object_get(run, "halos"),
								      0), "sphere_cells")) > 0);
	assert_true(json_integer_value(json_object_get(run, "estimate_peak_bytes")) > 0);
	assert_true(json_is_object(json_object_get(run, "options")));
	assert_true(json_is_object(json_object_get(run, "files")));
	assert_true(json_is_number(json_object_get(run, "wall_s")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(est, "halos"),
							      "sphere_cells_source")), "calibrated");

	/* Every estimated stage equals the measured one (the largest halo for per-halo stages). */
	stages = json_object_get(mem, "stages");
	json_array_foreach(json_object_get(est, "stages"), i, es) {
		const char *id = json_string_value(json_object_get(es, "id"));
		json_t *inst = json_object_get(es, "instance");
		int found = 0;

		json_array_foreach(stages, j, ms) {
			if (strcmp(json_string_value(json_object_get(ms, "id")), id) != 0)
				continue;
			if (json_is_integer(inst) &&
			    json_integer_value(json_object_get(ms, "instance")) !=
				    json_integer_value(inst))
				continue;
			found = 1;
			assert_int_equal(json_integer_value(json_object_get(
						 json_object_get(ms, "requested"), "peak")),
					 json_integer_value(json_object_get(es, "peak_bytes")));
			assert_int_equal(json_integer_value(json_object_get(
						 json_object_get(ms, "requested"), "live_end")),
					 json_integer_value(json_object_get(es, "live_after_bytes")));
		}
		if (!found)
			fail_msg("stage %s not measured", id);
	}
	json_decref(mem);
	json_decref(est);

	/* The same directory again: refused without --force, accepted with it. */
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "not empty"));
	assert_int_equal(tu_count_lines(r.err), 1);
	tu_result_free(&r);
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--force",
		   "--positions", "float64", "--select", "mask", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	tu_rmtree(out);
	free(out);
}

static void test_max_mem_refused_before_reading(void **state)
{
	char *out = tu_path(dir, "run-maxmem");
	tu_result r;

	(void)state;
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--max-mem", "1M",
		   NULL);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.err, "needs "));
	assert_non_null(strstr(r.err, "--max-mem"));
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_false(tu_exists(out));
	tu_result_free(&r);
	free(out);
}

static void test_injected_oom(void **state)
{
	char *out = tu_path(dir, "run-oom");
	tu_result r;

	(void)state;
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--inject-oom",
		   "Coordinates", NULL);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.err, "'Coordinates': cannot allocate 1440000 bytes"));
	assert_non_null(strstr(r.err, "the estimate for this run is"));
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_false(tu_exists(out));   /* created by the run, removed with nothing in it */
	tu_result_free(&r);

	/* An existing empty directory stays, empty. */
	assert_int_equal(mkdir(out, 0777), 0);
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--inject-oom",
		   "histogram:3", NULL);
	assert_int_equal(r.status, 3);
	assert_true(tu_exists(out));
	assert_false(only_file(out, "profiles.hdf5"));
	assert_false(only_file(out, "memory.json"));
	tu_result_free(&r);
	tu_rmtree(out);
	free(out);
}

static void test_signals(void **state)
{
	char *out = tu_path(dir, "run-int");
	json_t *mem;
	tu_result r;

	(void)state;
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--inject-signal",
		   "build_index", NULL);
	assert_int_equal(r.status, 130);
	assert_non_null(strstr(r.err, "interrupted"));
	tu_result_free(&r);
	assert_false(only_file(out, "profiles.hdf5"));
	mem = load_json(out, "memory.json");
	assert_true(json_is_false(json_object_get(mem, "complete")));
	assert_true(json_array_size(json_object_get(mem, "stages")) >= 4);
	json_decref(mem);
	tu_rmtree(out);

	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--inject-signal",
		   "mask_arrays:15", NULL);
	assert_int_equal(r.status, 143);
	tu_result_free(&r);
	assert_false(only_file(out, "profiles.hdf5"));
	assert_true(only_file(out, "memory.json"));
	tu_rmtree(out);
	free(out);
}

static void test_empty_cut(void **state)
{
	char *out = tu_path(dir, "run-empty");
	json_t *mem;
	tu_result r;

	(void)state;
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--mass-min", "1e19",
		   NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "empty result"));
	tu_result_free(&r);
	assert_true(only_file(out, "profiles.hdf5"));
	mem = load_json(out, "memory.json");
	assert_true(json_is_true(json_object_get(json_object_get(mem, "run"), "empty")));
	assert_int_equal(json_array_size(json_object_get(json_object_get(mem, "run"), "halos")), 0);
	json_decref(mem);
	tu_rmtree(out);
	free(out);
}

static void test_usage_errors(void **state)
{
	char *out = tu_path(dir, "run-usage"), *missing = tu_path(dir, "nothing-here");
	tu_result r;

	(void)state;
	r = tu_run("run", "--base-path", base, NULL);
	assert_int_equal(r.status, 2);
	tu_result_free(&r);
	r = tu_run("run", "--base-path", base, "--snap", "99", "--positions", "float16", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "float16"));
	tu_result_free(&r);
	r = tu_run("run", "--base-path", base, "--snap", "99", "--max-mem", "lots", NULL);
	assert_int_equal(r.status, 2);
	tu_result_free(&r);
	r = tu_run("run", "--base-path", base, "--snap", "99", "--bogus", "1", NULL);
	assert_int_equal(r.status, 2);
	tu_result_free(&r);
	r = tu_run("run", "--base-path", missing, "--snap", "99", "--out", out, NULL);
	assert_int_equal(r.status, 2);
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_false(tu_exists(out));
	tu_result_free(&r);
	r = tu_run("run", "-h", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "--max-mem"));
	tu_result_free(&r);
	free(out);
	free(missing);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_writes_the_run_directory),
		cmocka_unit_test(test_max_mem_refused_before_reading),
		cmocka_unit_test(test_injected_oom),
		cmocka_unit_test(test_signals),
		cmocka_unit_test(test_empty_cut),
		cmocka_unit_test(test_usage_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
