/*
 * `snapmem report DIR` on a program measured by `snapmem profile` beside the estimate of a
 * pipeline description that is not the built-in one (estimate.json "pipeline" names it): stage ids
 * and array names are whatever the program and the description use. Checked on
 * tests/progs/lib-markers (stage "load" with a tracked 8 MiB "grid", per-halo-like stage "reduce"
 * instance 3 with a 2 MiB "partial"): a matching estimate passes (allocated judged above the
 * program's start, requested shown, not judged), a wrong figure fails (exit 1), an estimate that
 * shares no stage id with the run is one line and exit 2, a stage modelled but not run fails and
 * one run but not modelled is a finding, a malformed "pipeline" is exit 2. Then `report --scale-to
 * TNG300-1 --pipeline FILE` over two such runs, with the description itself estimating them
 * (`snapmem estimate --pipeline`): passes when it describes the program, exit 1 when it does not,
 * exit 2 for runs of another pipeline and for --pipeline without --scale-to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "util.h"

static char *dir; /* the profiled run, shared by every test */

static char *prog(const char *name)
{
	const char *d = getenv("SNAPMEM_TEST_PROGS");

	if (!d)
		fail_msg("SNAPMEM_TEST_PROGS is not set (run the tests through make check)");
	return tu_path(d, name);
}

static int setup(void **state)
{
	(void)state;
	dir = tu_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	free(dir);
	return 0;
}

/* Profiles lib-markers into dir once. */
static void profiled(void)
{
	static int done;
	char *p, *mem;
	tu_result r;

	if (done)
		return;
	p = prog("lib-markers");
	r = tu_run("profile", "--out", dir, "--", p, NULL);
	if (r.status != 0)
		fail_msg("profile: exit %d: %s", r.status, r.err);
	tu_result_free(&r);
	mem = tu_path(dir, "memory.json");
	assert_true(tu_exists(mem));
	free(mem);
	free(p);
	done = 1;
}

/* Writes dir/estimate.json: a description's estimate with the stages given as
 * "id:per_halo:peak_allocated:array=bytes" (per_halo 0/1; one array per stage). */
static void estimate(const char *pipeline, ...)
{
	json_t *root = json_object(), *stages = json_array();
	char *path = tu_path(dir, "estimate.json");
	const char *spec;
	va_list ap;

	json_object_set_new(root, "schema", json_string("snapmem.estimate/1"));
	if (pipeline != NULL)
		json_object_set_new(root, "pipeline", json_string(pipeline));
	else
		json_object_set_new(root, "pipeline", json_integer(7));
	json_object_set_new(root, "options", json_pack("{s:i}", "ngrid", 64));
	va_start(ap, pipeline);
	while ((spec = va_arg(ap, const char *)) != NULL) {
		char id[64], name[64];
		int ph;
		unsigned long long peak, bytes;

		assert_int_equal(sscanf(spec, "%63[^:]:%d:%llu:%63[^=]=%llu", id, &ph, &peak, name,
					&bytes), 5);
		json_array_append_new(stages, json_pack("{s:s, s:b, s:n, s:I, s:I, s:[{s:s, s:I, s:I}]}",
							"id", id, "per_halo", ph, "instance",
							"peak_bytes", (json_int_t)peak,
							"peak_allocated_bytes", (json_int_t)peak,
							"arrays", "name", name, "requested_bytes",
							(json_int_t)bytes, "allocated_bytes",
							(json_int_t)bytes));
	}
	va_end(ap);
	json_object_set_new(root, "stages", stages);
	assert_int_equal(json_dump_file(root, path, 0), 0);
	json_decref(root);
	free(path);
}

#define MIB "1048576"

static void test_matching_description(void **state)
{
	tu_result r;
	json_t *doc, *st, *s;
	json_error_t je;
	size_t i;
	int seen = 0;

	(void)state;
	if (tu_sanitized())
		skip();
	profiled();
	/* load: the 8 MiB grid; reduce: grid and the 2 MiB partial */
	estimate("markers", "load:0:8388608:grid=8388608", "reduce:1:10485760:partial=2097152",
		 NULL);
	r = tu_run("report", dir, "--tolerance", "3", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "pipeline markers, ngrid 64"));
	assert_non_null(strstr(r.out, "PASS, every stage within the tolerance"));
	assert_non_null(strstr(r.out, "first modelled stage"));
	/* the whole process is not a stage of the program: no finding names it */
	assert_null(strstr(r.out, "stage 'process'"));
	tu_result_free(&r);

	r = tu_run("report", dir, "--tolerance", "3", "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	doc = json_loads(r.out, 0, &je);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "pipeline")), "markers");
	assert_true(json_is_true(json_object_get(doc, "profiled")));
	json_array_foreach(json_object_get(doc, "stages"), i, st) {
		const char *id = json_string_value(json_object_get(st, "id"));

		s = json_object_get(st, "allocated");
		assert_string_equal(json_string_value(json_object_get(s, "verdict")), "pass");
		s = json_object_get(st, "requested");
		assert_string_equal(json_string_value(json_object_get(s, "verdict")), "n/a");
		if (strcmp(id, "reduce") == 0) {
			assert_true(json_is_true(json_object_get(st, "per_halo")));
			assert_int_equal(json_integer_value(json_object_get(st, "instance")), 3);
		}
		seen++;
	}
	assert_int_equal(seen, 2);
	json_decref(doc);
	tu_result_free(&r);

	/* markdown and html say how the program is judged */
	r = tu_run("report", dir, "--tolerance", "3", "--format", "markdown", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "A program measured by snapmem profile"));
	tu_result_free(&r);
}

static void test_wrong_figure_fails(void **state)
{
	tu_result r;

	(void)state;
	if (tu_sanitized())
		skip();
	profiled();
	/* reduce modelled at 20 MiB: the run's 10 MiB misses by half */
	estimate("markers", "load:0:8388608:grid=8388608", "reduce:1:20971520:partial=12582912",
		 NULL);
	r = tu_run("report", dir, "--tolerance", "3", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "FAIL, 1 stage miss the tolerance"));
	tu_result_free(&r);
}

static void test_no_common_stage(void **state)
{
	tu_result r;

	(void)state;
	if (tu_sanitized())
		skip();
	profiled();
	estimate("dm-projection", "read_coordinates:0:8388608:Coordinates=8388608",
		 "project:0:10485760:sample=2097152", NULL);
	r = tu_run("report", dir, NULL);
	assert_int_equal(r.status, 2);
	assert_string_equal(r.out, "");
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_non_null(strstr(r.err, "share no stage id"));
	assert_non_null(strstr(r.err, "read_coordinates, project"));
	assert_non_null(strstr(r.err, "load, reduce"));
	assert_non_null(strstr(r.err, "estimate.json"));
	tu_result_free(&r);
}

static void test_partial_mismatch(void **state)
{
	tu_result r;

	(void)state;
	if (tu_sanitized())
		skip();
	profiled();
	/* "load" matches; "write" was never run (fails); "reduce" ran unmodelled (a finding) */
	estimate("markers", "load:0:8388608:grid=8388608", "write:0:" MIB ":out=" MIB, NULL);
	r = tu_run("report", dir, "--tolerance", "3", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "stage 'reduce' ran but is not in the model"));
	assert_non_null(strstr(r.out, "not run"));
	tu_result_free(&r);
}

static void test_bad_pipeline_key(void **state)
{
	tu_result r;

	(void)state;
	if (tu_sanitized())
		skip();
	profiled();
	estimate(NULL, "load:0:8388608:grid=8388608", NULL);   /* "pipeline": 7 */
	r = tu_run("report", dir, NULL);
	assert_int_equal(r.status, 2);
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_non_null(strstr(r.err, "pipeline is not a pipeline id"));
	tu_result_free(&r);
	estimate("bad id!", "load:0:8388608:grid=8388608", NULL);
	r = tu_run("report", dir, NULL);
	assert_int_equal(r.status, 2);
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_non_null(strstr(r.err, "pipeline"));
	tu_result_free(&r);
}

/* Writes dir/NAME: a description of lib-markers whose grid is grid_mib MiB. */
static char *markers_yaml(const char *name, int grid_mib)
{
	char *path = tu_path(dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "pipeline: markers\n"
		   "options:\n"
		   "  scale: {default: 1, min: 1}\n"
		   "stages:\n"
		   "  - id: load\n"
		   "    arrays:\n"
		   "      - {name: grid, dtype: uint8, count: %d * 1048576 * scale, free: reduce}\n"
		   "  - id: reduce\n"
		   "    arrays:\n"
		   "      - {name: partial, dtype: uint8, count: 2097152, free: end}\n", grid_mib);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* Profiles lib-markers into dir/NAME and estimates desc beside it. */
static char *markers_run(const char *name, const char *desc)
{
	char *run = tu_path(dir, name), *est = tu_path(run, "estimate.json"), *p = prog("lib-markers");
	tu_result r;

	r = tu_run("profile", "--out", run, "--", p, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("estimate", "--pipeline", desc, "--format", "json", "-o", est, NULL);
	if (r.status != 0)
		fail_msg("estimate: exit %d: %s", r.status, r.err);
	tu_result_free(&r);
	free(p);
	free(est);
	return run;
}

static void test_scale_to_with_description(void **state)
{
	char *good, *bad, *r1, *r2, *r3;
	tu_result r;
	json_t *doc;
	json_error_t je;

	(void)state;
	if (tu_sanitized())
		skip();
	good = markers_yaml("markers.yaml", 8);
	bad = markers_yaml("markers-wrong.yaml", 16);
	r1 = markers_run("s1", good);
	r2 = markers_run("s2", good);
	r = tu_run("report", "--scale-to", "TNG300-1", "--pipeline", good, r1, r2, "--tolerance",
		   "3", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "PASS, every stage's fit within the tolerance"));
	assert_non_null(strstr(r.out, "load"));
	tu_result_free(&r);
	r = tu_run("report", "--scale-to", "TNG300-1", "--pipeline", good, r1, r2, "--format",
		   "json", NULL);
	assert_int_equal(r.status, 0);
	doc = json_loads(r.out, 0, &je);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "schema")),
			    "snapmem.scale-pipeline/1");
	assert_string_equal(json_string_value(json_object_get(doc, "pipeline")), "markers");
	assert_int_equal(json_array_size(json_object_get(doc, "stages")), 2);
	json_decref(doc);
	tu_result_free(&r);

	/* a description of a 16 MiB grid: the runs measured 8 MiB, the fit misses at the target */
	r3 = markers_run("s3", bad);
	free(markers_run("s4", bad));
	{
		char *r4 = tu_path(dir, "s4");

		r = tu_run("report", "--scale-to", "TNG300-1", "--pipeline", bad, r3, r4,
			   "--tolerance", "3", NULL);
		free(r4);
	}
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "FAIL"));
	tu_result_free(&r);

	/* runs estimated from another description: one line, exit 2 */
	r = tu_run("report", "--scale-to", "TNG300-1", "--pipeline",
		   "estimator/pipelines/notebook-numpy.yaml", r1, r2, NULL);
	assert_int_equal(r.status, 2);
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_non_null(strstr(r.err, "pipeline 'markers', not 'notebook-numpy'"));
	tu_result_free(&r);
	/* --pipeline belongs to --scale-to */
	r = tu_run("report", "--pipeline", good, r1, NULL);
	assert_int_equal(r.status, 2);
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_non_null(strstr(r.err, "--pipeline goes with --scale-to"));
	tu_result_free(&r);
	free(r3);
	free(r2);
	free(r1);
	free(bad);
	free(good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matching_description),
		cmocka_unit_test(test_wrong_figure_fails),
		cmocka_unit_test(test_no_common_stage),
		cmocka_unit_test(test_partial_mismatch),
		cmocka_unit_test(test_bad_pipeline_key),
		cmocka_unit_test(test_scale_to_with_description),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
