/*
 * A scientist's path through a pipeline description of their own, as README.md and
 * docs/PIPELINES.md tell it: `snapmem estimate --pipeline FILE --set NAME=VALUE --format json`
 * beside a program measured by `snapmem profile`, then `snapmem report DIR`; and `--format slurm`
 * for the same description. Checked: the report's header names the description's options with the
 * values estimated (not the radial-profile pipeline's positions/select/temperature, which the
 * description does not declare), and the job script never tells the user to `snapmem run` a
 * description (`run` executes only the radial-profile pipeline and has no --pipeline) nor gives a
 * wall time timed on that pipeline with --calibrate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

/* tests/progs/lib-markers: stage "load" (an 8 MiB "grid"), stage "reduce" (a 2 MiB "partial") */
static const char desc[] =
	"pipeline: markers\n"
	"options:\n"
	"  ngrid: {default: 64, min: 1}\n"
	"  method: {values: [whole, chunked], default: whole}\n"
	"stages:\n"
	"  - id: load\n"
	"    arrays:\n"
	"      - {name: grid, dtype: uint8, count: 8388608, free: reduce}\n"
	"  - id: reduce\n"
	"    arrays:\n"
	"      - {name: partial, dtype: uint8, count: 2097152, free: end}\n";

static char *write_desc(const char *dir)
{
	char *p = tu_path(dir, "markers.yaml");
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	assert_int_equal(fputs(desc, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return p;
}

static void test_report_header_options(void **state)
{
	const char *progs = getenv("SNAPMEM_TEST_PROGS");
	char *dir, *run, *yaml, *est, *prog;
	tu_result r;

	(void)state;
	if (tu_sanitized())
		skip();  /* snapmem profile needs the preload library (not built under sanitizers) */
	if (progs == NULL)
		fail_msg("SNAPMEM_TEST_PROGS is not set (run the tests through make check)");
	dir = tu_tmpdir();
	run = tu_path(dir, "run");
	yaml = write_desc(dir);
	est = tu_path(run, "estimate.json");
	prog = tu_path(progs, "lib-markers");
	r = tu_run("profile", "--out", run, "--", prog, NULL);
	if (r.status != 0)
		fail_msg("profile: exit %d: %s", r.status, r.err);
	tu_result_free(&r);
	r = tu_run("estimate", "--pipeline", yaml, "--set", "ngrid=128", "--set", "method=chunked",
		   "--format", "json", "-o", est, NULL);
	if (r.status != 0)
		fail_msg("estimate: exit %d: %s", r.status, r.err);
	tu_result_free(&r);
	r = tu_run("report", run, NULL);
	if (r.status != 0 && r.status != 1)
		fail_msg("report: exit %d: %s", r.status, r.err);
	if (strstr(r.out, "pipeline markers, ngrid 128, method chunked") == NULL)
		tu_soft_fail("header", "no 'pipeline markers, ngrid 128, method chunked' in:\n%.600s",
			     r.out);
	if (strstr(r.out, "positions") != NULL || strstr(r.out, "temperature in-memory") != NULL)
		tu_soft_fail("header", "the radial-profile pipeline's options in:\n%.600s", r.out);
	tu_result_free(&r);
	/* the resident line: the description's estimate as given, no sphere sizes (it has none,
	 * and a profiled program's estimate is not re-made with measured ones) */
	r = tu_run("report", run, "--format", "markdown", NULL);
	if (strstr(r.out, "resident peak, the whole process: estimated ") == NULL ||
	    strstr(r.out, "sphere sizes") != NULL)
		tu_soft_fail("resident wording", "want the resident line without sphere sizes:\n%s",
			     r.out);
	tu_result_free(&r);
	tu_soft_done("report header");
	tu_rmtree(dir);
	free(prog);
	free(est);
	free(yaml);
	free(run);
	free(dir);
}

static void test_slurm_description(void **state)
{
	char *dir = tu_tmpdir(), *yaml = write_desc(dir), *mock = tu_path(dir, "mock");
	char *run = tu_path(dir, "run");
	tu_result r;

	(void)state;
	r = tu_run("mock", mock, "--gas", "2e4", "--halos", "2", "--files", "2", "--seed", "1", NULL);
	if (r.status != 0)
		fail_msg("mock: exit %d: %s", r.status, r.err);
	tu_result_free(&r);
	r = tu_run("run", "--base-path", mock, "--snap", "99", "--out", run, NULL);
	if (r.status != 0)
		fail_msg("run: exit %d: %s", r.status, r.err);
	tu_result_free(&r);
	r = tu_run("estimate", "--pipeline", yaml, "--node-mem", "1G", "--format", "slurm", NULL);
	if (r.status != 0)
		fail_msg("estimate --format slurm: exit %d: %s", r.status, r.err);
	if (strstr(r.out, "#SBATCH --mem=") == NULL)
		tu_soft_fail("slurm", "no #SBATCH --mem in:\n%s", r.out);
	if (strstr(r.out, "\nsnapmem run ") != NULL || strstr(r.out, "\nsrun snapmem run ") != NULL)
		tu_soft_fail("slurm", "'snapmem run' of a description (run has no --pipeline):\n%s",
			     r.out);
	if (strstr(r.out, "not snapmem run") == NULL)
		tu_soft_fail("slurm", "no line telling where the program goes:\n%s", r.out);
	tu_result_free(&r);
	/* --calibrate times snapmem run's radial-profile pipeline: no wall time for a description */
	r = tu_run("estimate", "--pipeline", yaml, "--base-path", mock, "--snap", "99", "--node-mem",
		   "1G", "--format", "slurm", "--calibrate", run, NULL);
	if (r.status != 0)
		fail_msg("estimate --format slurm --calibrate: exit %d: %s", r.status, r.err);
	if (strstr(r.out, "#SBATCH --time") != NULL ||
	    strstr(r.out, "# wall time: not predicted for a description") == NULL)
		tu_soft_fail("slurm --calibrate", "a wall time for a description:\n%s", r.out);
	tu_result_free(&r);
	tu_soft_done("slurm");
	tu_rmtree(dir);
	free(run);
	free(mock);
	free(yaml);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_header_options),
		cmocka_unit_test(test_slurm_description),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
