/*
 * `snapmem report` from the command line: exit 0/1 at the tolerance boundaries, exit 2 with one
 * line naming the file for malformed, foreign or missing JSON and for usage errors, the formats
 * and -o, --scale-to with the notebook's figures, --tradeoff, and an end-to-end run of the pipeline
 * on a small mock snapshot. The hand-written run directories come from test-report.c's fixtures.
 */
#define TEST_REPORT_FIXTURES_ONLY
#pragma GCC diagnostic ignored "-Wunused-function" /* the other file's tests */
#include "test-report.c"

static void check_fail_line(tu_result *r, int status, const char *needle)
{
	assert_int_equal(r->status, status);
	assert_int_equal(tu_count_lines(r->err), 1);
	assert_non_null(strstr(r->err, needle));
}

static void test_cli_verdicts(void **state)
{
	char *dir = tu_tmpdir(), *d1 = tu_path(dir, "pass"), *d2 = tu_path(dir, "fail"),
	     *d3 = tu_path(dir, "small");
	tu_result r;

	(void)state;
	simple_run(d1, 101 * MIB, 576 * KIB, 0);
	simple_run(d2, 101 * MIB + 1, 512 * KIB, 0);
	simple_run(d3, 100 * MIB, 576 * KIB + 1, 0);
	r = tu_run("report", d1, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "verdict: PASS"));
	tu_result_free(&r);
	r = tu_run("report", d1, "--tolerance", "0.99", NULL);
	assert_int_equal(r.status, 1);
	tu_result_free(&r);
	r = tu_run("report", d2, NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "verdict: FAIL, 1 stage miss"));
	tu_result_free(&r);
	r = tu_run("report", d3, NULL);
	assert_int_equal(r.status, 1);
	tu_result_free(&r);
	r = tu_run("report", d3, "--abs-bound", "1MiB", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	tu_rmtree(dir);
	free(d1);
	free(d2);
	free(d3);
	free(dir);
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char *p = tu_path(dir, name);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

static void test_cli_bad_input(void **state)
{
	char *dir = tu_tmpdir(), *d = tu_path(dir, "run");
	tu_result r;

	(void)state;
	simple_run(d, 100 * MIB, 512 * KIB, 0);
	write_text(d, "memory.json", "{\"schema\": ");
	r = tu_run("report", d, NULL);
	check_fail_line(&r, 2, "memory.json': malformed JSON");
	tu_result_free(&r);
	write_text(d, "memory.json", "{\"schema\": \"snapmem.estimate/1\"}");
	r = tu_run("report", d, NULL);
	check_fail_line(&r, 2, "memory.json': schema is 'snapmem.estimate/1'");
	tu_result_free(&r);
	write_text(d, "estimate.json", "{\"x\": 1}");
	r = tu_run("report", d, NULL);
	check_fail_line(&r, 2, "estimate.json': no \"schema\"");
	tu_result_free(&r);
	r = tu_run("report", dir, NULL);
	check_fail_line(&r, 2, "estimate.json': no such file");
	tu_result_free(&r);
	/* usage */
	r = tu_run("report", NULL);
	check_fail_line(&r, 2, "missing RUNDIR");
	tu_result_free(&r);
	r = tu_run("report", d, "--format", "pdf", NULL);
	check_fail_line(&r, 2, "'pdf'");
	tu_result_free(&r);
	r = tu_run("report", d, "--tolerance", "-1", NULL);
	check_fail_line(&r, 2, "--tolerance");
	tu_result_free(&r);
	r = tu_run("report", d, "--bogus", NULL);
	check_fail_line(&r, 2, "unknown option '--bogus'");
	tu_result_free(&r);
	r = tu_run("report", "--scale-to", "TNG100-1", d, d, NULL);
	check_fail_line(&r, 2, "TNG100-1");
	tu_result_free(&r);
	r = tu_run("report", "--scale-to", "TNG300-1", d, NULL);
	check_fail_line(&r, 2, "two run directories");
	tu_result_free(&r);
	r = tu_run("report", "--tradeoff", d, NULL);
	check_fail_line(&r, 2, "--tradeoff needs");
	tu_result_free(&r);
	r = tu_run("report", "--tradeoff", d, d, "--format", "html", NULL);
	check_fail_line(&r, 2, "html");
	tu_result_free(&r);
	r = tu_run("report", "-h", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "--scale-to"));
	tu_result_free(&r);
	tu_rmtree(dir);
	free(d);
	free(dir);
}

static void test_cli_formats(void **state)
{
	char *dir = tu_tmpdir(), *d = tu_path(dir, "run"), *o = tu_path(dir, "r.html"), *text;
	tu_result r;
	json_t *j;
	size_t len;

	(void)state;
	simple_run(d, 100 * MIB, 512 * KIB, 2 * MIB);
	r = tu_run("report", d, "--format", "json", NULL);
	assert_int_equal(r.status, 0); /* the 2 MiB no array explains is a finding, not a miss */
	tu_result_free(&r);
	r = tu_run("report", d, "--format", "json", "--strict", NULL);
	assert_int_equal(r.status, 1);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "schema")), "snapmem.report/1");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "baseline"),
							    "measured_bytes")), BASE_ALLOC);
	json_decref(j);
	tu_result_free(&r);
	r = tu_run("report", d, "--format", "markdown", NULL);
	assert_true(strncmp(r.out, "# snapmem report", 16) == 0);
	assert_true(strstr(r.out, "## Findings") < strstr(r.out, "## Stages"));
	tu_result_free(&r);
	r = tu_run("report", d, "--format", "html", "--strict", "-o", o, NULL);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.out, "");
	text = tu_read_file(o, &len);
	assert_non_null(text);
	assert_null(strstr(text, "http"));
	assert_null(strstr(text, "<script"));
	assert_non_null(strstr(text, "</html>"));
	free(text);
	tu_result_free(&r);
	tu_rmtree(dir);
	free(o);
	free(d);
	free(dir);
}

static void test_cli_scale(void **state)
{
	char *dir = tu_tmpdir(), *a = tu_path(dir, "a"), *b = tu_path(dir, "b");
	tu_result r;

	(void)state;
	model_run(a, 2000000, "float32");
	model_run(b, 5000000, "float32");
	r = tu_run("report", "--scale-to", "TNG300-1", a, b, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "161.54410924762487 GB"));
	assert_non_null(strstr(r.out, "FLAGGED: 20.06 GiB"));
	assert_non_null(strstr(r.out, "FLAGGED: 40.11 GiB"));
	tu_result_free(&r);
	r = tu_run("report", "--scale-to", "TNG300-1", a, b, "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"schema\": \"snapmem.scale/1\""));
	tu_result_free(&r);
	tu_rmtree(dir);
	free(a);
	free(b);
	free(dir);
}

/* The pipeline writes a run directory and its reports; report reads it back. */
static void test_cli_end_to_end(void **state)
{
	char *dir = tu_tmpdir(), *mock = tu_path(dir, "mock"), *run = tu_path(dir, "run"),
	     *run64 = tu_path(dir, "run64"), *mask64 = tu_path(dir, "mask64"), *p;
	tu_result r;
	json_t *j, *st;
	size_t i;

	(void)state;
	r = tu_run("mock", mock, "--gas", "200000", "--halos", "4", "--files", "2", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("run", "--base-path", mock, "--snap", "99", "--out", run, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	p = tu_path(run, "report.html");
	assert_true(tu_exists(p));
	free(p);
	r = tu_run("report", run, "--format", "json", NULL);
	assert_true(r.status == 0 || r.status == 1);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_true(json_array_size(json_object_get(j, "stages")) >= 8);
	json_array_foreach(json_object_get(j, "stages"), i, st) {
		/* requested bytes are the model's exactly */
		assert_string_equal(json_string_value(json_object_get(json_object_get(st, "requested"),
								      "verdict")), "pass");
		assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "requested"),
								    "difference_bytes")), 0);
	}
	json_decref(j);
	tu_result_free(&r);
	r = tu_run("run", "--base-path", mock, "--snap", "99", "--out", run64, "--positions",
		   "float64", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("report", "--tradeoff", run, run64, NULL);
	assert_true(r.status == 0 || r.status == 1);
	assert_true(strncmp(r.out, "recommendation: ", 16) == 0);
	assert_non_null(strstr(r.out, "largest radius difference"));
	tu_result_free(&r);
	/* float64 with --select mask against float32 with the index: refused, each difference named
	 * once (memory.json and estimate.json both record --select) */
	r = tu_run("run", "--base-path", mock, "--snap", "99", "--out", mask64, "--positions",
		   "float64", "--select", "mask", "--stream-block", "4096", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("report", "--tradeoff", run, mask64, NULL);
	check_fail_line(&r, 2, "differ in more than --positions: ");
	tu_result_free(&r);
	r = tu_run("report", "--tradeoff", run, mask64, NULL);
	{
		const char *sel = strstr(r.err, "--select index vs mask");

		assert_non_null(sel);
		assert_null(strstr(sel + 1, "--select"));
		assert_non_null(strstr(r.err, "--stream-block 131072 vs 4096"));
	}
	assert_string_equal(r.out, "");
	tu_result_free(&r);
	tu_rmtree(dir);
	free(mock);
	free(run);
	free(run64);
	free(mask64);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_verdicts),
		cmocka_unit_test(test_cli_bad_input),
		cmocka_unit_test(test_cli_formats),
		cmocka_unit_test(test_cli_scale),
		cmocka_unit_test(test_cli_end_to_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
