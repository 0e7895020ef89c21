/*
 * Faults and limits through the `snapmem` binary, on a small mock:
 *   - an allocation failure injected at EACH tracked array of the run (--inject-oom NAME, the
 *     names taken from a good run's memory.json): exit 3, one stderr line with the bytes that
 *     were needed and the estimate, no run directory left;
 *   - --max-mem one byte under the estimate: exit 3 before anything is read (no --out made);
 *   - an address-space limit (setrlimit(RLIMIT_AS) in the forked child before exec, as
 *     `ulimit -v` does) ends with exit 3 and the figure (skipped under sanitizers: ASan reserves
 *     terabytes of address space);
 *   - SIGINT / SIGTERM (--inject-signal STAGE[:SIG]) at every stage: exit 130 / 143, memory.json
 *     complete = false with the stages so far, no profiles.hdf5, no temporary file;
 *   - a full disk while writing results (setrlimit(RLIMIT_FSIZE) in the child, SIGXFSZ ignored,
 *     so that writes fail with EFBIG) at several sizes: exit 2 (or 3), one stderr line, no crash,
 *     no temporary file left and every file under a final name whole (JSON parses, HDF5 opens).
 *   - the same for estimate -o, report -o (the file already there is kept) and mock (nothing left
 *     in a fresh directory, the earlier mock byte for byte in a used one).
 * The child helper forks, sets the limit, execs $SNAPMEM_BIN and captures stderr into a file.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>
#include <jansson.h>

#include "util.h"

static char *dir, *base, *goodrun;

static int setup(void **state)
{
	tu_result r;

	(void)state;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	dir = tu_tmpdir();
	base = tu_path(dir, "mock");
	r = tu_run("mock", base, "--gas", "120000", "--halos", "4", "--small-halos", "2", "--files",
		   "3", "--seed", "11", NULL);
	if (r.status != 0)
		fail_msg("mock: %s", r.err);
	tu_result_free(&r);
	goodrun = tu_path(dir, "good");
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", goodrun, NULL);
	if (r.status != 0)
		fail_msg("run: %s", r.err);
	tu_result_free(&r);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	free(dir);
	free(base);
	free(goodrun);
	return 0;
}

/* Names in d starting with '.' or holding ".tmp": temporary files left behind. */
static int temp_files(const char *d)
{
	DIR *dd = opendir(d);
	struct dirent *e;
	int n = 0;

	if (dd == NULL)
		return 0;
	while ((e = readdir(dd)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp") != NULL) {
			printf("  temporary file left: %s/%s\n", d, e->d_name);
			n++;
		}
	}
	closedir(dd);
	return n;
}

static json_t *load(const char *d, const char *name)
{
	char *p = tu_path(d, name);
	json_error_t e;
	json_t *j = json_load_file(p, 0, &e);

	free(p);
	return j;
}

/* ---- allocation failure at each tracked array ------------------------------------------------- */

static void test_oom_each_array(void **state)
{
	json_t *mem = load(goodrun, "memory.json"), *arrays, *a;
	const char *seen[64];
	size_t i, nseen = 0, k;
	tu_result r;

	(void)state;
	assert_non_null(mem);
	arrays = json_object_get(mem, "arrays");
	assert_true(json_array_size(arrays) > 10);
	json_array_foreach(arrays, i, a) {
		const char *name = json_string_value(json_object_get(a, "name"));
		json_int_t req = json_integer_value(json_object_get(a, "requested"));
		char *out, *needle;

		assert_non_null(name);
		for (k = 0; k < nseen; k++)
			if (strcmp(seen[k], name) == 0)
				break;
		if (k < nseen || nseen >= 64)
			continue;
		seen[nseen++] = name;
		out = tu_fmt("%s/oom-%s", dir, name);
		r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--inject-oom",
			   name, NULL);
		if (r.status != 3 || tu_count_lines(r.err) != 1)
			fail_msg("--inject-oom %s: status %d, stderr '%s'", name, r.status, r.err);
		/* the first allocation of the array: its bytes are named */
		needle = tu_fmt("'%s': cannot allocate %lld bytes", name, (long long)req);
		if (strstr(r.err, needle) == NULL)
			fail_msg("--inject-oom %s: '%s' not in '%s'", name, needle, r.err);
		if (strstr(r.err, "the estimate for this run is") == NULL)
			fail_msg("--inject-oom %s: no estimate in '%s'", name, r.err);
		if (tu_exists(out))
			fail_msg("--inject-oom %s: '%s' left behind", name, out);
		free(needle);
		free(out);
		tu_result_free(&r);
	}
	printf("  allocation failure injected at %zu tracked arrays\n", nseen);
	assert_true(nseen >= 15);
	json_decref(mem);
}

/* ---- --max-mem ------------------------------------------------------------------------------ */

static void test_max_mem_just_under(void **state)
{
	json_t *est = load(goodrun, "estimate.json");
	char *out = tu_path(dir, "maxmem"), *val;
	json_int_t peak;
	tu_result r;

	(void)state;
	assert_non_null(est);
	peak = json_integer_value(json_object_get(est, "peak_total_bytes"));
	if (peak <= 0)
		peak = json_integer_value(json_object_get(json_object_get(est, "peak"),
							  "total_bytes"));
	json_decref(est);
	if (peak <= 0) {
		/* the key moved: a size certainly too small still must be refused */
		peak = 4096;
	}
	val = tu_fmt("%lldB", (long long)peak - 1);
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--max-mem", val, NULL);
	if (r.status != 3 || tu_count_lines(r.err) != 1)
		fail_msg("--max-mem %s: status %d, stderr '%s'", val, r.status, r.err);
	assert_non_null(strstr(r.err, "nothing was read"));
	assert_non_null(strstr(r.err, "needs "));
	assert_false(tu_exists(out));
	tu_result_free(&r);
	free(val);
	free(out);
}

/* ---- a child with a resource limit -------------------------------------------------------------- */

typedef struct child {
	int status;
	char *err;
} child;

/* Runs $SNAPMEM_BIN argv with limit `res` set to `lim` in the child (SIGXFSZ ignored). */
static child run_limited(int res, rlim_t lim, char *const argv[])
{
	const char *bin = getenv("SNAPMEM_BIN");
	char *errp = tu_path(dir, "child.err"), *supp = NULL;
	char *args[32];
	child c = { -1, NULL };
	pid_t pid;
	int st, i;

	assert_non_null(bin);
	if (tu_sanitized()) {
		char *sp = tu_path(dir, "lsan.supp");
		FILE *f = fopen(sp, "w");

		assert_non_null(f);
		fputs("leak:libhdf5\n", f);
		fclose(f);
		supp = tu_fmt("suppressions=%s:print_suppressions=0", sp);
		free(sp);
	}
	args[0] = (char *)bin;
	for (i = 0; argv[i] != NULL && i < 30; i++)
		args[i + 1] = argv[i];
	args[i + 1] = NULL;
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { lim, lim };
		int fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644), nul = open("/dev/null", O_WRONLY);

		if (fd < 0 || nul < 0)
			_exit(120);
		dup2(fd, 2);
		dup2(nul, 1);
		/* Under LeakSanitizer: a file whose close failed on the full disk stays in libhdf5's
		 * tables (HDF5 cannot free it), so libhdf5's own allocations are not judged here. */
		if (supp != NULL)
			setenv("LSAN_OPTIONS", supp, 1);
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(res, &rl) != 0)
			_exit(121);
		execv(bin, args);
		_exit(122);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	c.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	c.err = tu_read_file(errp, NULL);
	if (c.err == NULL)
		c.err = strdup("");
	free(errp);
	free(supp);
	return c;
}

static void test_address_space_limit(void **state)
{
	static const rlim_t mib[] = { 64, 80, 96 };
	char *big;
	tu_result r;
	size_t i;
	int refused = 0;

	(void)state;
	if (tu_sanitized())
		skip();
	big = tu_path(dir, "big");
	r = tu_run("mock", big, "--gas", "1500000", "--halos", "4", "--files", "3", "--seed", "2",
		   NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	for (i = 0; i < sizeof(mib) / sizeof(mib[0]); i++) {
		char *out = tu_fmt("%s/as-%d", dir, (int)mib[i]);
		child c = run_limited(RLIMIT_AS, mib[i] << 20,
				      (char *const[]){ "run", "--base-path", big, "--snap", "99",
						       "--out", out, NULL });

		printf("  RLIMIT_AS %d MiB: status %d: %s", (int)mib[i], c.status, c.err);
		if (c.status >= 128)
			fail_msg("RLIMIT_AS %d MiB: killed (status %d), stderr '%s'", (int)mib[i],
				 c.status, c.err);
		if (c.status == 3) {
			refused++;
			assert_int_equal(tu_count_lines(c.err), 1);
			assert_non_null(strstr(c.err, "bytes"));
			/* refused by the limit check before the run (test-limits.c), or by an
			 * allocation that failed in it */
			if (strstr(c.err, "RLIMIT_AS (ulimit -v) allows") == NULL) {
				assert_non_null(strstr(c.err, "cannot allocate"));
				assert_non_null(strstr(c.err, "the estimate for this run is"));
			}
			assert_false(tu_exists(out));
		} else {
			assert_int_equal(c.status, 0);
			tu_rmtree(out);
		}
		free(c.err);
		free(out);
	}
	assert_true(refused >= 1);
	tu_rmtree(big);
	free(big);
}

/* ---- signals ---------------------------------------------------------------------------------- */

static void test_signal_every_stage(void **state)
{
	static const char *const stages[] = { "load_halos", "load_gas_fields",
					      "compute_temperature", "load_positions", "build_index",
					      "select_sphere", "radial_distance", "mask_arrays",
					      "histogram_write" };
	size_t i;
	int sig;

	(void)state;
	for (i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
		for (sig = 0; sig < 2; sig++) {
			char *out = tu_fmt("%s/sig-%s-%d", dir, stages[i], sig);
			char *spec = tu_fmt("%s:%d", stages[i], sig ? SIGTERM : SIGINT);
			char *p = tu_path(out, "profiles.hdf5");
			json_t *mem, *st;
			tu_result r;

			r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out,
				   "--inject-signal", spec, NULL);
			if (r.status != (sig ? 143 : 130) || tu_count_lines(r.err) != 1)
				fail_msg("%s: status %d, stderr '%s'", spec, r.status, r.err);
			assert_non_null(strstr(r.err, "interrupted"));
			assert_false(tu_exists(p));
			assert_int_equal(temp_files(out), 0);
			mem = load(out, "memory.json");
			if (mem == NULL)
				fail_msg("%s: no memory.json in '%s'", spec, out);
			assert_true(json_is_false(json_object_get(mem, "complete")));
			st = json_object_get(mem, "stages");
			/* the stages measured so far: every stage before the one interrupted (the
			 * first halo's instance for the per-halo stages), and the reason names it */
			assert_int_equal(json_array_size(st), i);
			if (i > 0)
				assert_string_equal(json_string_value(json_object_get(
							    json_array_get(st, i - 1), "id")),
						    stages[i - 1]);
			assert_non_null(strstr(json_string_value(json_object_get(
						       mem, "incomplete_reason")), stages[i]));
			json_decref(mem);
			tu_result_free(&r);
			tu_rmtree(out);
			free(p);
			free(spec);
			free(out);
		}
	}
}

/* ---- a full disk -------------------------------------------------------------------------------- */

/* Every file under a final name is whole; no temporary file. */
static void check_whole(const char *out, const char *what)
{
	static const char *const json[] = { "estimate.json", "memory.json" };
	char *p;
	size_t i;

	if (!tu_exists(out))
		return;
	if (temp_files(out) != 0)
		fail_msg("%s: temporary files left in '%s'", what, out);
	for (i = 0; i < 2; i++) {
		p = tu_path(out, json[i]);
		if (tu_exists(p)) {
			json_error_t e;
			json_t *j = json_load_file(p, 0, &e);

			if (j == NULL)
				fail_msg("%s: '%s' is not whole: %s", what, p, e.text);
			json_decref(j);
		}
		free(p);
	}
	p = tu_path(out, "profiles.hdf5");
	if (tu_exists(p)) {
		hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);

		if (f < 0)
			fail_msg("%s: '%s' is not whole", what, p);
		H5Fclose(f);
	}
	free(p);
}

static void test_full_disk(void **state)
{
	static const rlim_t kib[] = { 4, 32, 64, 100, 140, 180 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(kib) / sizeof(kib[0]); i++) {
		char *out = tu_fmt("%s/fsize-%d", dir, (int)kib[i]), what[64];
		child c = run_limited(RLIMIT_FSIZE, kib[i] << 10,
				      (char *const[]){ "run", "--base-path", base, "--snap", "99",
						       "--out", out, NULL });

		snprintf(what, sizeof(what), "RLIMIT_FSIZE %d KiB", (int)kib[i]);
		printf("  %s: status %d: %s", what, c.status, c.err);
		if (c.status >= 128)
			fail_msg("%s: killed (status %d), stderr '%s'", what, c.status, c.err);
		if (c.status != 0) {
			if ((c.status != 2 && c.status != 3) || tu_count_lines(c.err) != 1)
				fail_msg("%s: status %d, stderr '%s'", what, c.status, c.err);
			/* the message names the cause, whichever file hit the limit */
			if (strstr(c.err, "File too large") == NULL)
				fail_msg("%s: the cause is not named: '%s'", what, c.err);
		}
		check_whole(out, what);
		tu_rmtree(out);
		free(c.err);
		free(out);
	}
}

/* The other writers on a full disk: estimate -o and report -o keep the file already there; a
 * mock leaves nothing in a fresh directory and the earlier mock, byte for byte, in a used one. */
static void test_full_disk_writers(void **state)
{
	char *o = tu_path(dir, "kept.txt"), *m = tu_path(dir, "fsize-mock"), *got, *snap0, *before;
	size_t n0, n1;
	child c;
	tu_result r;

	(void)state;
	tu_rmtree(o);
	{
		FILE *f = fopen(o, "w");

		assert_non_null(f);
		fputs("sentinel\n", f);
		fclose(f);
	}
	c = run_limited(RLIMIT_FSIZE, 4096, (char *const[]){ "estimate", "--format", "json", "-o",
							       o, NULL });
	printf("  estimate -o, RLIMIT_FSIZE 4 KiB: status %d: %s", c.status, c.err);
	if (c.status != 2 || tu_count_lines(c.err) != 1)
		fail_msg("estimate -o: status %d, stderr '%s'", c.status, c.err);
	free(c.err);
	c = run_limited(RLIMIT_FSIZE, 4096, (char *const[]){ "report", goodrun, "-o", o, NULL });
	printf("  report -o, RLIMIT_FSIZE 4 KiB: status %d: %s", c.status, c.err);
	if (c.status != 2 || tu_count_lines(c.err) != 1)
		fail_msg("report -o: status %d, stderr '%s'", c.status, c.err);
	free(c.err);
	got = tu_read_file(o, NULL);
	assert_string_equal(got, "sentinel\n");
	free(got);
	assert_int_equal(temp_files(dir), 0);

	/* mock into a fresh directory: nothing left */
	c = run_limited(RLIMIT_FSIZE, 1200 << 10,
			(char *const[]){ "mock", m, "--gas", "100000", "--files", "4", NULL });
	printf("  mock, RLIMIT_FSIZE 1200 KiB: status %d: %s", c.status, c.err);
	if (c.status != 2 || tu_count_lines(c.err) != 1)
		fail_msg("mock: status %d, stderr '%s'", c.status, c.err);
	free(c.err);
	assert_false(tu_exists(m));

	/* mock over an earlier mock: the earlier one stays whole */
	r = tu_run("mock", m, "--gas", "100000", "--files", "4", "--seed", "1", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	snap0 = tu_fmt("%s/snapdir_099/snap_099.0.hdf5", m);
	before = tu_read_file(snap0, &n0);
	assert_non_null(before);
	c = run_limited(RLIMIT_FSIZE, 1200 << 10,
			(char *const[]){ "mock", m, "--gas", "100000", "--files", "4", "--seed",
					 "2", NULL });
	if (c.status != 2 || tu_count_lines(c.err) != 1)
		fail_msg("mock over a mock: status %d, stderr '%s'", c.status, c.err);
	free(c.err);
	got = tu_read_file(snap0, &n1);
	assert_non_null(got);
	assert_true(n0 == n1 && memcmp(got, before, n0) == 0);
	free(got);
	free(before);
	{
		char *sd = tu_path(m, "snapdir_099"), *gd = tu_path(m, "groups_099");

		assert_int_equal(temp_files(sd), 0);
		assert_int_equal(temp_files(gd), 0);
		free(sd);
		free(gd);
	}
	r = tu_run("info", "--base-path", m, "--snap", "99", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	tu_rmtree(m);
	free(snap0);
	free(m);
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oom_each_array),
		cmocka_unit_test(test_max_mem_just_under),
		cmocka_unit_test(test_address_space_limit),
		cmocka_unit_test(test_signal_every_stage),
		cmocka_unit_test(test_full_disk),
		cmocka_unit_test(test_full_disk_writers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
