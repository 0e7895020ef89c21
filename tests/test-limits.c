/*
 * Memory limits (include/snapmem/limits.h, docs/PIPELINE.md "Memory limits"): the pure check with
 * made-up figures (every limit, their order, the boundaries); the reading of rlimits, cgroups (v2
 * and v1 layouts in a fake /proc + /sys tree) and MemAvailable; then the binary under real limits
 * set in a child with setrlimit: `run` refused with exit 3 and the figure under RLIMIT_AS, a sweep
 * of `ulimit -v` values over --version, estimate and run (never a signal), small stacks, and a
 * headers-only snapshot refused before anything is allocated. Address-space limits are skipped under
 * the sanitizers (ASan reserves terabytes of shadow memory).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "snapmem/limits.h"

#include "util.h"

static char *dir, *base;

static int setup(void **state)
{
	tu_result r;

	(void)state;
	dir = tu_tmpdir();
	base = tu_path(dir, "mock");
	r = tu_run("mock", base, "--gas", "60000", "--halos", "4", "--files", "2", "--seed", "5",
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

/* ---- the pure check ------------------------------------------------------------------------ */

static void test_check_none(void **state)
{
	sm_mem_limits l;
	sm_error e;

	(void)state;
	sm_mem_limits_init(&l);
	sm_error_clear(&e);
	assert_int_equal(sm_mem_limits_check(&l, UINT64_MAX, UINT64_MAX, NULL, &e), 0);
	assert_int_equal(e.code, 0);
}

static void test_check_as(void **state)
{
	sm_mem_limits l;
	sm_error e;

	(void)state;
	sm_mem_limits_init(&l);
	l.as_max = 100 << 20;
	l.as_used = 40 << 20;
	sm_error_clear(&e);
	/* the need is the whole process's, not added to what is mapped now: exactly at the limit
	 * fits; one byte more does not */
	assert_int_equal(sm_mem_limits_check(&l, 0, 100 << 20, "the run", &e), 0);
	assert_int_equal(sm_mem_limits_check(&l, 0, (100 << 20) + 1, "the run", &e), SM_ELIMIT);
	assert_int_equal(e.code, SM_ELIMIT);
	assert_int_equal(e.needed_bytes, (100 << 20) + 1);
	assert_non_null(strstr(e.msg, "the run needs 104857601 bytes (100.00 MiB) of address space "
				      "at least (estimate, the whole process)"));
	assert_non_null(strstr(e.msg, "RLIMIT_AS (ulimit -v) allows 100.00 MiB"));
	assert_null(strchr(e.msg, '\n'));
	assert_int_equal(sm_mem_limits_check(&l, 0, UINT64_MAX, "the run", &e), SM_ELIMIT);
	assert_int_equal(e.needed_bytes, UINT64_MAX);
}

static void test_check_data(void **state)
{
	sm_mem_limits l;
	sm_error e;

	(void)state;
	sm_mem_limits_init(&l);
	l.data_max = 1 << 30;
	l.data_used = 10 << 20;
	l.as_used = 40 << 20;
	sm_error_clear(&e);
	assert_int_equal(sm_mem_limits_check(&l, 5ull << 30, 1 << 20, "x", &e), 0);
	/* VmData now + what the address space grows by from now: 10 MiB + (1 GiB - 40 MiB) */
	assert_int_equal(sm_mem_limits_check(&l, 0, (1ull << 30) + (30 << 20), "x", &e), 0);
	assert_int_equal(sm_mem_limits_check(&l, 0, (1ull << 30) + (30 << 20) + 1, "x", &e),
			 SM_ELIMIT);
	assert_int_equal(e.needed_bytes, (1ull << 30) + 1);
	assert_non_null(strstr(e.msg, "x needs 1073741825 bytes (1.00 GiB) of data segment at least"));
	assert_non_null(strstr(e.msg, "RLIMIT_DATA (ulimit -d) allows 1.00 GiB"));
	/* an address need below what is mapped now adds nothing to VmData */
	l.data_max = 10 << 20;
	assert_int_equal(sm_mem_limits_check(&l, 0, 20 << 20, "x", &e), 0);
}

static void test_check_cgroup(void **state)
{
	sm_mem_limits l;
	sm_error e;

	(void)state;
	sm_mem_limits_init(&l);
	l.cg_max = 16ull << 30;
	snprintf(l.cg_file, sizeof(l.cg_file), "/sys/fs/cgroup/job/memory.max");
	sm_error_clear(&e);
	assert_int_equal(sm_mem_limits_check(&l, 16ull << 30, 1ull << 40, "the run", &e), 0);
	assert_int_equal(sm_mem_limits_check(&l, 30388285849ull, 0, "the run", &e), SM_ELIMIT);
	assert_string_equal(e.msg, "the run needs 30388285849 bytes (28.30 GiB) resident (estimate, "
			    "process baseline included) but the memory cgroup allows 16.00 GiB "
			    "('/sys/fs/cgroup/job/memory.max')");
	assert_int_equal(e.needed_bytes, 30388285849ull);
	/* what the rest of the cgroup holds is taken off */
	l.cg_other = 4ull << 30;
	assert_int_equal(sm_mem_limits_check(&l, 13ull << 30, 0, "the run", &e), SM_ELIMIT);
	assert_non_null(strstr(e.msg, "allows 12.00 GiB ('/sys/fs/cgroup/job/memory.max': 16.00 "
				      "GiB, less 4.00 GiB held by the rest of the cgroup)"));
	/* others holding more than the limit: nothing is allowed */
	l.cg_other = 20ull << 30;
	assert_int_equal(sm_mem_limits_check(&l, 1, 0, "the run", &e), SM_ELIMIT);
}

static void test_check_available(void **state)
{
	sm_mem_limits l;
	sm_error e;

	(void)state;
	sm_mem_limits_init(&l);
	l.avail = 8ull << 30;
	l.rss = 1ull << 30;
	sm_error_clear(&e);
	assert_int_equal(sm_mem_limits_check(&l, 9ull << 30, 0, "the run", &e), 0);
	assert_int_equal(sm_mem_limits_check(&l, (9ull << 30) + 1, 0, "the run", &e), SM_ELIMIT);
	assert_non_null(strstr(e.msg, "but the machine has 9.00 GiB available ('/proc/meminfo' "
				      "MemAvailable 8.00 GiB, plus 1.00 GiB this process holds)"));
}

static void test_check_order(void **state)
{
	sm_mem_limits l;
	sm_error e;

	(void)state;
	sm_mem_limits_init(&l);
	l.as_max = 1 << 20;
	l.data_max = 1 << 20;
	l.cg_max = 1 << 20;
	l.avail = 1 << 20;
	sm_error_clear(&e);
	assert_int_equal(sm_mem_limits_check(&l, 2 << 20, 2 << 20, "r", &e), SM_ELIMIT);
	assert_non_null(strstr(e.msg, "RLIMIT_AS"));
	l.as_max = SM_LIMIT_NONE;
	assert_int_equal(sm_mem_limits_check(&l, 2 << 20, 2 << 20, "r", &e), SM_ELIMIT);
	assert_non_null(strstr(e.msg, "RLIMIT_DATA"));
	l.data_max = SM_LIMIT_NONE;
	assert_int_equal(sm_mem_limits_check(&l, 2 << 20, 2 << 20, "r", &e), SM_ELIMIT);
	assert_non_null(strstr(e.msg, "memory cgroup"));
	l.cg_max = SM_LIMIT_NONE;
	assert_int_equal(sm_mem_limits_check(&l, 2 << 20, 2 << 20, "r", &e), SM_ELIMIT);
	assert_non_null(strstr(e.msg, "MemAvailable"));
	l.avail = SM_LIMIT_NONE;
	assert_int_equal(sm_mem_limits_check(&l, 2 << 20, 2 << 20, "r", &e), 0);
}

/* ---- reading ------------------------------------------------------------------------------- */

static void put(const char *root, const char *rel, const char *text)
{
	char *p = tu_path(root, rel), *slash;
	FILE *f;

	for (slash = strchr(p + strlen(dir) + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(p, 0777);
		*slash = '/';
	}
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

static const char status_text[] = "Name:\tsnapmem\nVmPeak:\t  50000 kB\nVmSize:\t   41384 kB\n"
				  "VmHWM:\t 3000 kB\nVmRSS:\t    2048 kB\nVmData:\t   11168 kB\n";

static void test_read_v2(void **state)
{
	char *root = tu_path(dir, "fake-v2");
	sm_mem_limits l;

	(void)state;
	put(root, "proc/self/status", status_text);
	put(root, "proc/meminfo", "MemTotal:  1000 kB\nMemFree: 10 kB\nMemAvailable:    524288 kB\n");
	put(root, "proc/self/cgroup", "0::/jobs/j1\n");
	put(root, "sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
	put(root, "sys/fs/cgroup/jobs/j1/memory.max", "max\n");
	put(root, "sys/fs/cgroup/jobs/memory.max", "1073741824\n");
	put(root, "sys/fs/cgroup/jobs/memory.current", "536870912\n");
	put(root, "sys/fs/cgroup/jobs/memory.stat", "anon 100\nfile 268435456\nkernel 5\n");
	sm_mem_limits_read(&l, root);
	assert_int_equal(l.as_used, 41384ull * 1024);
	assert_int_equal(l.data_used, 11168ull * 1024);
	assert_int_equal(l.rss, 2048ull * 1024);
	assert_int_equal(l.avail, 524288ull * 1024);
	assert_int_equal(l.cg_max, 1ull << 30);
	/* 512 MiB used - 256 MiB page cache - 2 MiB this process */
	assert_int_equal(l.cg_other, (256ull << 20) - (2ull << 20));
	assert_non_null(strstr(l.cg_file, "/sys/fs/cgroup/jobs/memory.max"));
	/* a tighter limit deeper down binds */
	put(root, "sys/fs/cgroup/jobs/j1/memory.max", "104857600\n");
	sm_mem_limits_read(&l, root);
	assert_int_equal(l.cg_max, 104857600);
	assert_int_equal(l.cg_other, 0);
	assert_non_null(strstr(l.cg_file, "/jobs/j1/memory.max"));
	free(root);
}

static void test_read_v1_and_missing(void **state)
{
	char *root = tu_path(dir, "fake-v1"), *empty = tu_path(dir, "fake-empty");
	sm_mem_limits l;

	(void)state;
	put(root, "proc/self/status", status_text);
	put(root, "proc/self/cgroup", "5:devices:/\n4:cpu,memory:/batch\n0::/\n");
	put(root, "sys/fs/cgroup/memory/batch/memory.limit_in_bytes", "2147483648\n");
	put(root, "sys/fs/cgroup/memory/batch/memory.usage_in_bytes", "1073741824\n");
	put(root, "sys/fs/cgroup/memory/batch/memory.stat", "cache 1\nrss 5\ntotal_cache 0\n");
	put(root, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
	sm_mem_limits_read(&l, root);
	assert_int_equal(l.cg_max, 2ull << 30);
	assert_int_equal(l.cg_other, (1ull << 30) - (2ull << 20));
	assert_non_null(strstr(l.cg_file, "/memory/batch/memory.limit_in_bytes"));
	assert_int_equal(l.avail, SM_LIMIT_NONE); /* no meminfo */
	/* nothing readable: no limits, and no failure */
	mkdir(empty, 0777);
	assert_int_equal(sm_mem_limits_read(&l, empty), 0);
	assert_int_equal(l.cg_max, SM_LIMIT_NONE);
	assert_int_equal(l.avail, SM_LIMIT_NONE);
	assert_int_equal(l.as_used, 0);
	free(root);
	free(empty);
}

static void test_read_this_machine(void **state)
{
	sm_mem_limits l;
	struct rlimit rl;
	uint64_t lim, used;

	(void)state;
	sm_mem_limits_read(&l, NULL);
	assert_true(l.as_used > 1 << 20);
	assert_true(l.rss > 0);
	assert_true(l.avail == SM_LIMIT_NONE || l.avail > 0);
	assert_int_equal(getrlimit(RLIMIT_AS, &rl), 0);
	assert_int_equal(l.as_max, rl.rlim_cur == RLIM_INFINITY ? SM_LIMIT_NONE : rl.rlim_cur);
	assert_int_equal(getrlimit(RLIMIT_DATA, &rl), 0);
	assert_int_equal(l.data_max, rl.rlim_cur == RLIM_INFINITY ? SM_LIMIT_NONE : rl.rlim_cur);
	if (l.cg_max != SM_LIMIT_NONE)
		assert_true(l.cg_file[0] == '/');
	if (l.as_max == SM_LIMIT_NONE && l.data_max == SM_LIMIT_NONE)
		assert_int_equal(sm__vm_headroom(&lim, &used), SM_LIMIT_NONE);
}

/* sm__vm_headroom in a child under RLIMIT_AS: the limit less what is mapped. */
static void test_headroom(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	if (tu_sanitized())
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {UINT64_C(4) << 30, UINT64_C(4) << 30};
		uint64_t lim, used, h;

		if (setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(10);
		h = sm__vm_headroom(&lim, &used);
		if (lim != rl.rlim_cur || used == 0 || h != lim - used)
			_exit(11);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- the binary under limits --------------------------------------------------------------- */

/*
 * Runs $SNAPMEM_BIN with argv in a child whose resource `res` is set to `lim` bytes (none when
 * res < 0), its output in files, under a 60-second alarm (a hang fails as signal 14).
 */
static tu_result run_limited(int res, uint64_t lim, char *const argv[])
{
	const char *bin = getenv("SNAPMEM_BIN");
	char *outp = tu_path(dir, "lim.out"), *errp = tu_path(dir, "lim.err");
	tu_result r = {0, NULL, NULL};
	char *args[32];
	pid_t pid;
	int st, i;

	assert_non_null(bin);
	args[0] = (char *)bin;
	for (i = 0; argv[i] != NULL && i < 30; i++)
		args[i + 1] = argv[i];
	args[i + 1] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0666);

		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(120);
		if (tu_sanitized()) {
			/* HDF5 1.10 keeps a file whose close failed (ulimit -f) for good: not ours */
			char *sp = tu_path(dir, "lsan.supp"), opt[4200];
			FILE *f = fopen(sp, "w");

			if (f == NULL)
				_exit(123);
			fputs("leak:libhdf5\n", f);
			fclose(f);
			snprintf(opt, sizeof(opt), "suppressions=%s:print_suppressions=0", sp);
			setenv("LSAN_OPTIONS", opt, 1);
		}
		if (res >= 0) {
			struct rlimit rl = {lim, lim};

			if (setrlimit(res, &rl) != 0)
				_exit(121);
		}
		alarm(60);
		execv(bin, args);
		_exit(122);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r.out = tu_read_file(outp, NULL);
	r.err = tu_read_file(errp, NULL);
	assert_non_null(r.out);
	assert_non_null(r.err);
	free(outp);
	free(errp);
	return r;
}

/* estimate.json's least_address_space_bytes for a mock: what the run's check compares. */
static uint64_t least_address_space(const char *mock)
{
	tu_result r = tu_run("estimate", "--base-path", mock, "--snap", "99", "--format", "json",
			     NULL);
	json_error_t jerr;
	json_t *root;
	uint64_t v;

	assert_int_equal(r.status, 0);
	root = json_loads(r.out, 0, &jerr);
	assert_non_null(root);
	v = (uint64_t)json_integer_value(json_object_get(root, "least_address_space_bytes"));
	assert_true(v > 0);
	json_decref(root);
	tu_result_free(&r);
	return v;
}

static void test_run_rlimit_as(void **state)
{
	char *out, *argv[] = {"run", "--base-path", base, "--snap", "99", "--out", NULL, NULL};
	char want[64];
	tu_result r;

	(void)state;
	if (tu_sanitized())
		skip();
	out = argv[6] = tu_path(dir, "run-as");
	/* 29 MiB: the binary starts (the libraries and the allocator take about 27 MiB) but the
	 * estimate's least address space (at least the baseline's, 30.63 MiB) does not fit */
	r = run_limited(RLIMIT_AS, UINT64_C(29) << 20, argv);
	assert_int_equal(r.status, 3);
	assert_int_equal(tu_count_lines(r.err), 1);
	snprintf(want, sizeof(want), "snapmem: the run needs %llu bytes",
		 (unsigned long long)least_address_space(base));
	assert_non_null(strstr(r.err, want));
	assert_non_null(strstr(r.err, "of address space at least (estimate, the whole process)"));
	assert_non_null(strstr(r.err, "but RLIMIT_AS (ulimit -v) allows 29.00 MiB"));
	assert_non_null(strstr(r.err, "nothing was read"));
	assert_false(tu_exists(out));
	tu_result_free(&r);
	/* the same run with room: done */
	r = run_limited(RLIMIT_AS, UINT64_C(400) << 20, argv);
	assert_int_equal(r.status, 0);
	assert_true(tu_exists(out));
	tu_result_free(&r);
	tu_rmtree(out);
	/* SNAPMEM_LIMIT_CHECK=0 skips the check: the run goes ahead, and either fits after all or
	 * fails cleanly on an allocation (exit 3, nothing left) */
	setenv("SNAPMEM_LIMIT_CHECK", "0", 1);
	r = run_limited(RLIMIT_AS, UINT64_C(30) << 20, argv);
	unsetenv("SNAPMEM_LIMIT_CHECK");
	assert_null(strstr(r.err, "RLIMIT_AS"));
	if (r.status == 3) {
		assert_non_null(strstr(r.err, "cannot allocate"));
		assert_false(tu_exists(out));
	} else {
		assert_int_equal(r.status, 0);
		tu_rmtree(out);
	}
	tu_result_free(&r);
	free(out);
}

/*
 * The check never refuses a run that fits: a 500,000-cell run measured without a limit, then run
 * again under `ulimit -v` 10 % above its VmPeak (passes the check and completes), and well below it
 * (refused by the check: exit 3 with the estimate's least address space, nothing read).
 */
static void test_run_rlimit_as_fits(void **state)
{
	char *mock, *out, *mem, *text, want[64];
	char *argv[] = {"run", "--base-path", NULL, "--snap", "99", "--out", NULL, NULL};
	json_error_t jerr;
	json_t *root;
	uint64_t vm_peak, least;
	tu_result r;

	(void)state;
	if (tu_sanitized())
		skip();
	mock = argv[2] = tu_path(dir, "mock-5e5");
	out = argv[6] = tu_path(dir, "run-5e5");
	r = tu_run("mock", mock, "--gas", "500000", "--halos", "4", "--files", "2", "--seed", "5",
		   NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = run_limited(-1, 0, argv);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	mem = tu_path(out, "memory.json");
	text = tu_read_file(mem, NULL);
	assert_non_null(text);
	root = json_loads(text, 0, &jerr);
	assert_non_null(root);
	vm_peak = (uint64_t)json_integer_value(json_object_get(json_object_get(root, "process"),
								"vm_peak"));
	json_decref(root);
	free(text);
	free(mem);
	tu_rmtree(out);
	least = least_address_space(mock);
	assert_true(vm_peak > least);
	/* the check never refuses it; under a limit the run's own mappings vary a little with
	 * which arena holds which freed extent (1 run in 40 failed an allocation at + 5 % with
	 * one worker thread, none at + 8 %): + 10 %, one worker, and an allocation failure would be
	 * exit 3 naming the array, nothing left */
	setenv("SNAPMEM_THREADS", "1", 1);
	r = run_limited(RLIMIT_AS, vm_peak + vm_peak / 10, argv);
	unsetenv("SNAPMEM_THREADS");
	assert_null(strstr(r.err, "of address space at least"));
	if (r.status != 0) {
		if (r.status != 3 || strstr(r.err, "cannot allocate") == NULL)
			fail_msg("ulimit -v %llu bytes (VmPeak %llu + 10 %%): exit %d: %s",
				 (unsigned long long)(vm_peak + vm_peak / 10),
				 (unsigned long long)vm_peak, r.status, r.err);
		assert_false(tu_exists(out));
		print_message("ulimit -v VmPeak + 10 %%: an allocation failed (exit 3): %s", r.err);
	}
	tu_result_free(&r);
	if (tu_exists(out))
		tu_rmtree(out);
	r = run_limited(RLIMIT_AS, UINT64_C(30) << 20, argv);
	assert_int_equal(r.status, 3);
	assert_int_equal(tu_count_lines(r.err), 1);
	snprintf(want, sizeof(want), "snapmem: the run needs %llu bytes", (unsigned long long)least);
	assert_non_null(strstr(r.err, want));
	assert_non_null(strstr(r.err, "RLIMIT_AS (ulimit -v) allows 30.00 MiB"));
	assert_false(tu_exists(out));
	tu_result_free(&r);
	free(out);
	tu_rmtree(mock);
	free(mock);
}

/*
 * The sweep: --version, estimate and run under `ulimit -v` from 20 to 120 MiB. Never a signal.
 * Below about 17 MiB the dynamic loader cannot map the libraries and exits 127 with its own line
 * (the floor, docs/PIPELINE.md); from there to about 26 MiB the allocator cannot start: exit 3
 * with one line (the libraries' constructors are served from the malloc layer's reserve).
 */
static void test_ulimit_v_sweep(void **state)
{
	static const unsigned mib[] = {20, 30, 34, 36, 38, 40, 42, 45, 50, 55, 57, 60, 70, 90, 120};
	char *out, *ver[] = {"--version", NULL};
	char *est[] = {"estimate", "--base-path", base, "--snap", "99", NULL};
	char *run[] = {"run", "--base-path", base, "--snap", "99", "--out", NULL, NULL};
	char *const *cmds[] = {ver, est, run};
	const char *last;
	size_t i, c;
	int ok[3] = {0, 0, 0};

	(void)state;
	if (tu_sanitized())
		skip();
	out = run[6] = tu_path(dir, "sweep");
	for (i = 0; i < sizeof(mib) / sizeof(mib[0]); i++) {
		for (c = 0; c < 3; c++) {
			tu_result r = run_limited(RLIMIT_AS, (uint64_t)mib[i] << 20, cmds[c]);
			size_t n = strlen(r.err);

			if (r.status >= 128 || (r.status != 0 && r.status != 2 && r.status != 3 &&
						r.status != 127))
				fail_msg("ulimit -v %u MiB, %s: exit %d, stderr: %s", mib[i], cmds[c][0],
					 r.status, r.err);
			if (r.status == 127)
				assert_non_null(strstr(r.err, "error while loading shared libraries"));
			if (r.status == 2 || r.status == 3) {
				while (n > 0 && r.err[n - 1] == '\n')
					r.err[--n] = '\0';
				last = strrchr(r.err, '\n');
				if (last != NULL || strncmp(r.err, "snapmem: ", 9) != 0)
					fail_msg("ulimit -v %u MiB, %s: exit %d, not one line: %s", mib[i],
						 cmds[c][0], r.status, r.err);
				assert_false(tu_exists(out));
			}
			if (r.status == 0)
				ok[c]++;
			tu_result_free(&r);
			if (tu_exists(out))
				tu_rmtree(out);
		}
	}
	/* the top of the sweep works for all three */
	assert_true(ok[0] > 0 && ok[1] > 0 && ok[2] > 0);
	free(out);
}

/* Small stacks: the subcommand moves to a thread of its own (src/cli/main.c). */
static void test_small_stack(void **state)
{
	static const unsigned kib[] = {32, 64, 128};
	char *out = tu_path(dir, "stack");
	char *est[] = {"estimate", "--base-path", base, "--snap", "99", NULL};
	char *trd[] = {"tradeoff", "--base-path", base, "--snap", "99", NULL};
	char *run[] = {"run", "--base-path", base, "--snap", "99", "--out", out, NULL};
	char *rep[] = {"report", out, NULL};
	char *const *cmds[] = {est, trd, run, rep};
	size_t i, c;

	(void)state;
	for (i = 0; i < sizeof(kib) / sizeof(kib[0]); i++) {
		for (c = 0; c < 4; c++) {
			tu_result r = run_limited(RLIMIT_STACK, (uint64_t)kib[i] << 10, cmds[c]);

			if (r.status != 0 && r.status != 1)
				fail_msg("ulimit -s %u, %s: exit %d: %s", kib[i], cmds[c][0], r.status,
					 r.err);
			tu_result_free(&r);
		}
		tu_rmtree(out);
	}
	free(out);
}

/*
 * The distributed run: every rank checks its own limits against rank 0's per-rank estimate. An
 * MPMD job where rank 1 alone runs under `ulimit -v` ~68 MiB (enough for MPI_Init, not for the
 * run's 71.88 MiB; at 58.6 MiB MPI_Init failed here, and a job at 63.5 MiB hung): exit 3 on every rank, rank 0 printing rank 1's line, no run directory. Skipped without
 * mpirun on PATH or MPI in the binary, and under the sanitizers.
 */
static void test_mpi_rank_limit(void **state)
{
	const char *bin = getenv("SNAPMEM_BIN"), *path = getenv("PATH");
	char mpirun[4096] = "", *copy, *d, *save = NULL, *out, *errp, shell[8192];
	char *argv[40];
	int argc = 0, st;
	pid_t pid;
	char *err;

	(void)state;
	if (tu_sanitized() || path == NULL)
		skip();
	copy = strdup(path);
	for (d = strtok_r(copy, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
		snprintf(mpirun, sizeof(mpirun), "%s/mpirun", d);
		if (access(mpirun, X_OK) == 0)
			break;
		mpirun[0] = '\0';
	}
	free(copy);
	if (mpirun[0] == '\0')
		skip();
	out = tu_path(dir, "run-mpi");
	errp = tu_path(dir, "mpi.err");
	snprintf(shell, sizeof(shell), "ulimit -v 70000 && exec '%s' run --mpi --base-path '%s' "
		 "--snap 99 --out '%s'", bin, base, out);
	argv[argc++] = mpirun;
	argv[argc++] = "-q";
	argv[argc++] = "--oversubscribe";
	if (geteuid() == 0)
		argv[argc++] = "--allow-run-as-root";
	argv[argc++] = "-np";
	argv[argc++] = "1";
	argv[argc++] = (char *)bin;
	argv[argc++] = "run";
	argv[argc++] = "--mpi";
	argv[argc++] = "--base-path";
	argv[argc++] = base;
	argv[argc++] = "--snap";
	argv[argc++] = "99";
	argv[argc++] = "--out";
	argv[argc++] = out;
	argv[argc++] = ":";
	argv[argc++] = "-np";
	argv[argc++] = "1";
	argv[argc++] = "/bin/sh";
	argv[argc++] = "-c";
	argv[argc++] = shell;
	argv[argc] = NULL;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
		int n = open("/dev/null", O_WRONLY);

		if (e < 0 || n < 0 || dup2(n, 1) < 0 || dup2(e, 2) < 0)
			_exit(120);
		alarm(120);
		execv(mpirun, argv);
		_exit(122);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	err = tu_read_file(errp, NULL);
	assert_non_null(err);
	if (strstr(err, "built without MPI") != NULL || strstr(err, "MPI_Init") != NULL ||
	    strstr(err, "pmix") != NULL || strstr(err, "PMIX") != NULL) {
		print_message("MPI not usable here (%.200s): skipped\n", err);
		free(err);
		free(out);
		free(errp);
		skip();
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 3)
		fail_msg("mpirun: status %d, stderr: %s", st, err);
	assert_non_null(strstr(err, "snapmem: rank 1 of 2: the run needs "));
	assert_non_null(strstr(err, "RLIMIT_AS (ulimit -v) allows 68.36 MiB"));
	assert_false(tu_exists(out));
	free(err);
	free(out);
	free(errp);
}

/* `ulimit -f`: SIGXFSZ is ignored by snapmem itself, so a file past the limit is exit 2, not death
 * by the signal with a temporary file left (the parent here leaves SIGXFSZ at its default). */
static void test_file_size_limit(void **state)
{
	char *out = tu_path(dir, "run-fsize");
	char *argv[] = {"run", "--base-path", base, "--snap", "99", "--out", out, NULL};
	tu_result r;

	(void)state;
	r = run_limited(RLIMIT_FSIZE, UINT64_C(16) << 10, argv);
	assert_int_equal(r.status, 2);
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_non_null(strstr(r.err, "snapmem: '"));
	assert_false(tu_exists(out));
	tu_result_free(&r);
	free(out);
}

/* `ulimit -n 6`: no descriptor left for the first chunk: exit 2 naming it, and the run directory
 * with its empty staging directory removed again (found by make hostile). */
static void test_few_descriptors(void **state)
{
	char *out = tu_path(dir, "run-nofile");
	char *argv[] = {"run", "--base-path", base, "--snap", "99", "--out", out, NULL};
	tu_result r;

	(void)state;
	r = run_limited(RLIMIT_NOFILE, 6, argv);
	assert_int_equal(r.status, 2);
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_non_null(strstr(r.err, "Too many open files"));
	assert_false(tu_exists(out));
	tu_result_free(&r);
	free(out);
}

/* A headers-only snapshot: refused (exit 2, naming the chunk) before anything large is allocated. */
static void test_headers_only(void **state)
{
	char *h = tu_path(dir, "headers"), *out = tu_path(dir, "run-h");
	char *argv[] = {"run", "--base-path", h, "--snap", "99", "--out", out, NULL};
	tu_result r;

	(void)state;
	r = tu_run("mock", h, "--header-only", "--gas-total", "100000000", "--files", "8", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	/* 1e8 cells would take 1.2 GiB of gas fields: under a 1 GiB address-space limit the data
	 * check must come first (the limit check is off here) */
	setenv("SNAPMEM_LIMIT_CHECK", "0", 1);
	r = run_limited(tu_sanitized() ? -1 : RLIMIT_AS, UINT64_C(1) << 30, argv);
	unsetenv("SNAPMEM_LIMIT_CHECK");
	assert_int_equal(r.status, 2);
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_non_null(strstr(r.err, "snap_099.0.hdf5': no /PartType0 group"));
	assert_false(tu_exists(out));
	tu_result_free(&r);
	free(h);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_none),
		cmocka_unit_test(test_check_as),
		cmocka_unit_test(test_check_data),
		cmocka_unit_test(test_check_cgroup),
		cmocka_unit_test(test_check_available),
		cmocka_unit_test(test_check_order),
		cmocka_unit_test(test_read_v2),
		cmocka_unit_test(test_read_v1_and_missing),
		cmocka_unit_test(test_read_this_machine),
		cmocka_unit_test(test_headroom),
		cmocka_unit_test(test_run_rlimit_as),
		cmocka_unit_test(test_run_rlimit_as_fits),
		cmocka_unit_test(test_ulimit_v_sweep),
		cmocka_unit_test(test_small_stack),
		cmocka_unit_test(test_mpi_rank_limit),
		cmocka_unit_test(test_file_size_limit),
		cmocka_unit_test(test_few_descriptors),
		cmocka_unit_test(test_headers_only),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
