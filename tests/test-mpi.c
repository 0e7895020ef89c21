/*
 * `mpirun -np R snapmem run --mpi` end to end (docs/MPI.md): profiles.hdf5 of 2 and 3 ranks
 * against the serial run's (counts, sf_counts and hist2d bit for bit, means within 1e-12),
 * memory.json's "mpi" object, only rank 0 printing and writing; a bad chunk file read by one rank
 * only, usage errors and --max-mem stop every rank with one line on stderr, the right exit status,
 * no profiles.hdf5 and no hang (each mpirun runs under a timeout and is killed past it).
 *
 * Skips itself (cmocka skip) when the binary was built without MPI or mpirun is not on PATH; a
 * build without MPI instead checks that `run --mpi` says "built without MPI" with exit 2.
 * mpirun gets --oversubscribe (2 cores, 3 ranks), -q (no banners of its own on stderr) and, as
 * root, --allow-run-as-root.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>
#include <jansson.h>

#include "snapmem/mock.h"
#include "snapmem/pipeline.h"
#include "snapmem/snapshot.h"

#include "util.h"

#define NGAS 200000u
#define NFILES 5u
#define RB SM_MODEL_RBINS
#define TB SM_MODEL_TBINS
#define TIMEOUT_S 60

static struct {
	char *dir;       /* the mock */
	char *serial;    /* the serial run's directory */
	char mpirun[4096];
	uint64_t n;
} W;

#ifdef SM_HAVE_MPI
static int find_mpirun(char *buf, size_t len)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;
	int found = 0;

	if (path == NULL)
		return 0;
	copy = strdup(path);
	for (dir = strtok_r(copy, ":", &save); dir != NULL && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(buf, len, "%s/mpirun", dir);
		found = access(buf, X_OK) == 0;
	}
	free(copy);
	return found;
}
#endif

static int setup(void **state)
{
	sm_mock_options mo;
	sm_error err;
	tu_result r;

	(void)state;
	memset(&W, 0, sizeof(W));
#ifdef SM_HAVE_MPI
	if (!find_mpirun(W.mpirun, sizeof(W.mpirun)))
		W.mpirun[0] = '\0';
#endif
	W.dir = tu_tmpdir();
	sm_mock_options_init(&mo);
	mo.gas = NGAS;
	mo.halos = 6;
	mo.files = NFILES;
	mo.seed = 5;
	if (sm_mock_write(W.dir, &mo, &err) != 0)
		fail_msg("mock: %s", err.msg);
	W.n = NGAS;
	W.serial = tu_tmpdir();
	tu_rmtree(W.serial);
	r = tu_run("run", "--base-path", W.dir, "--snap", "99", "--out", W.serial, NULL);
	if (r.status != 0)
		fail_msg("serial run: %s", r.err);
	tu_result_free(&r);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(W.dir);
	tu_rmtree(W.serial);
	free(W.dir);
	free(W.serial);
	return 0;
}

/* ---- mpirun with a timeout ------------------------------------------------------------------ */

/* Set: mpirun() leaves --mpi out (a job started by mpirun without it). */
static int omit_mpi_flag;
/* Set: mpirun() passes SNAPMEM_THREADS from this environment to the ranks (-x). */
static int export_threads;
/* Set: mpirun() passes --bind-to none (the ranks may run on every CPU). */
static int bind_none;

/* Runs mpirun -np np [flags] $SNAPMEM_BIN run --mpi ARGS... (NULL-terminated), capturing stdout
 * and stderr; fails the test when it outlives TIMEOUT_S (the job is killed). */
static tu_result mpirun(int np, ...)
{
	const char *bin = getenv("SNAPMEM_BIN");
	char *argv[64], npbuf[16], *tmp = tu_tmpdir(), *fo = tu_path(tmp, "out"), *fe = tu_path(tmp, "err");
	int argc = 0, st = 0;
	va_list ap;
	const char *a;
	pid_t pid;
	struct timespec t0, t;
	tu_result r;
	size_t len;

	assert_non_null(bin);
	snprintf(npbuf, sizeof(npbuf), "%d", np);
	argv[argc++] = W.mpirun;
	argv[argc++] = "-q";
	argv[argc++] = "--oversubscribe";
	if (geteuid() == 0)
		argv[argc++] = "--allow-run-as-root";
	if (bind_none) {
		argv[argc++] = "--bind-to";
		argv[argc++] = "none";
	}
	if (export_threads) {
		argv[argc++] = "-x";
		argv[argc++] = "SNAPMEM_THREADS";
	}
	argv[argc++] = "-np";
	argv[argc++] = npbuf;
	argv[argc++] = (char *)bin;
	argv[argc++] = "run";
	if (!omit_mpi_flag)
		argv[argc++] = "--mpi";
	va_start(ap, np);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 63)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int o = open(fo, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(fe, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		setpgid(0, 0);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		execv(W.mpirun, argv);
		_exit(127);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			break;
		assert_true(w == 0);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > TIMEOUT_S) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fail_msg("mpirun -np %d did not finish in %d s (a rank hangs)", np, TIMEOUT_S);
		}
		usleep(20000);
	}
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r.out = tu_read_file(fo, &len);
	r.err = tu_read_file(fe, &len);
	assert_non_null(r.out);
	assert_non_null(r.err);
	tu_rmtree(tmp);
	free(tmp);
	free(fo);
	free(fe);
	return r;
}

static void skip_without_mpi(void)
{
#ifndef SM_HAVE_MPI
	skip();
#else
	if (W.mpirun[0] == '\0') {
		print_message("mpirun is not on PATH: skipped\n");
		skip();
	}
#endif
}

/* ---- profiles.hdf5 -------------------------------------------------------------------------- */

static int lines_starting(const char *s, const char *prefix)
{
	int n = 0;
	const char *p = s;

	while (*p != '\0') {
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
		p = strchr(p, '\n');
		if (p == NULL)
			break;
		p++;
	}
	return n;
}

/* ---- runs ------------------------------------------------------------------------------------ */

static json_t *load_json(const char *dir, const char *name)
{
	char *path = tu_path(dir, name);
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);

	if (j == NULL)
		fail_msg("%s: %s", path, je.text);
	free(path);
	return j;
}

static void check_mpi_object(const char *out, int np)
{
	json_t *m = load_json(out, "memory.json"), *mpi = json_object_get(m, "mpi"), *per, *opt;
	json_t *e = load_json(out, "estimate.json");
	int seen[NFILES] = {0};
	uint64_t cells = 0, maxpeak = 0, maxcells = 0;
	size_t i, j;

	assert_non_null(mpi);
	assert_int_equal(json_integer_value(json_object_get(mpi, "ranks")), np);
	assert_string_equal(json_string_value(json_object_get(mpi, "assignment")),
			    "largest chunk first to the least-loaded rank");
	per = json_object_get(mpi, "per_rank");
	assert_int_equal(json_array_size(per), (size_t)np);
	for (i = 0; i < (size_t)np; i++) {
		json_t *r = json_array_get(per, i), *files = json_object_get(r, "files");
		json_t *st = json_object_get(r, "stages");
		uint64_t c = (uint64_t)json_integer_value(json_object_get(r, "cells"));
		uint64_t pk = (uint64_t)json_integer_value(json_object_get(r, "requested_peak"));
		static const char *const ids[4] = {"load_halos", "build_index", "stream_cells",
						   "histogram_write"};

		assert_int_equal(json_integer_value(json_object_get(r, "rank")), (json_int_t)i);
		assert_non_null(json_string_value(json_object_get(r, "host")));
		assert_true(json_is_number(json_object_get(r, "wall_s")));
		assert_true(json_is_integer(json_object_get(r, "baseline_allocated")));
		assert_true(json_is_integer(json_object_get(r, "tracked_allocated_peak")));
		assert_true(json_is_integer(json_object_get(r, "allocated_peak")));
		assert_true(json_is_integer(json_object_get(r, "vm_hwm")));
		for (j = 0; j < json_array_size(files); j++) {
			json_int_t f = json_integer_value(json_array_get(files, j));

			assert_true(f >= 0 && f < (json_int_t)NFILES);
			assert_int_equal(seen[f], 0);
			seen[f] = 1;
		}
		assert_int_equal(json_array_size(st), 4);
		for (j = 0; j < 4; j++)
			assert_string_equal(json_string_value(json_object_get(json_array_get(st, j),
									      "id")), ids[j]);
		/* every rank allocates the same arrays */
		if (i > 0)
			assert_int_equal(pk, (uint64_t)json_integer_value(json_object_get(
					     json_array_get(per, 0), "requested_peak")));
		assert_true(pk > 0);
		cells += c;
		maxpeak = pk > maxpeak ? pk : maxpeak;
		maxcells = c > maxcells ? c : maxcells;
	}
	assert_int_equal(cells, W.n);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(mpi, "sum"), "cells")),
			 W.n);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(mpi, "max"), "cells")),
			 maxcells);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(mpi, "max"),
							   "requested_peak")), maxpeak);
	opt = json_object_get(json_object_get(json_object_get(m, "run"), "options"), "mpi");
	assert_true(json_is_true(opt));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(m,
							   "run"), "options"), "ranks")), np);
	/* estimate.json is the estimator's (docs/MPI.md); its options say mpi once it knows. */
	opt = json_object_get(json_object_get(e, "options"), "mpi");
	if (opt != NULL)
		assert_true(json_is_true(opt));
	else
		print_message("estimate.json has no options.mpi yet (the estimator's part)\n");
	json_decref(m);
	json_decref(e);
}

/*
 * The report judges every rank's VmHWM against its own resident estimate (estimate.json
 * mpi.per_rank_peak_resident_bytes, the busiest rank's = peak_resident_bytes); a rank whose estimate
 * is halved fails (exit 1), a list of the wrong length is exit 2 naming the key.
 */
static void check_rank_resident(const char *out, int np)
{
	char *ep = tu_path(out, "estimate.json");
	json_error_t jerr;
	json_t *e = json_load_file(ep, 0, &jerr), *per, *rep, *ranks;
	json_int_t mx = 0, v;
	tu_result r;
	size_t i;

	assert_non_null(e);
	per = json_object_get(json_object_get(e, "mpi"), "per_rank_peak_resident_bytes");
	assert_int_equal(json_array_size(per), (size_t)np);
	for (i = 0; i < (size_t)np; i++) {
		v = json_integer_value(json_array_get(per, i));
		assert_true(v > 0);
		mx = v > mx ? v : mx;
	}
	assert_int_equal(mx, json_integer_value(json_object_get(e, "peak_resident_bytes")));
	r = tu_run("report", out, "--format", "json", NULL);
	assert_int_equal(r.status, tu_sanitized() ? r.status : 0);
	rep = json_loads(r.out, 0, &jerr);
	assert_non_null(rep);
	ranks = json_object_get(json_object_get(rep, "mpi"), "per_rank");
	for (i = 0; i < (size_t)np; i++) {
		json_t *k = json_array_get(ranks, i), *res = json_object_get(k, "resident");

		assert_int_equal(json_integer_value(json_object_get(res, "estimated_bytes")),
				 json_integer_value(json_array_get(per, (size_t)json_integer_value(
					 json_object_get(k, "rank")))));
		assert_string_equal(json_string_value(json_object_get(res, "verdict")),
				    tu_sanitized() ? "n/a" : "pass");
	}
	json_decref(rep);
	tu_result_free(&r);
	if (!tu_sanitized()) {
		/* rank 1's estimate halved: that rank fails the resident rule */
		json_array_set_new(per, 1, json_integer(json_integer_value(json_array_get(per, 1)) / 2));
		assert_int_equal(json_dump_file(e, ep, 0), 0);
		r = tu_run("report", out, NULL);
		assert_int_equal(r.status, 1);
		assert_non_null(strstr(r.out, "1 rank miss the tolerance"));
		tu_result_free(&r);
	}
	json_array_remove(per, 0);
	assert_int_equal(json_dump_file(e, ep, 0), 0);
	r = tu_run("report", out, NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "mpi.per_rank_peak_resident_bytes is not an array of"));
	tu_result_free(&r);
	json_decref(e);
	free(ep);
}

static void np_vs_serial(int np)
{
	tu_profiles a, b;
	char *out = tu_tmpdir(), *pa, *pb;
	tu_result r;
	uint64_t i;

	tu_rmtree(out);
	r = mpirun(np, "--base-path", W.dir, "--snap", "99", "--out", out, NULL);
	if (r.status != 0)
		fail_msg("mpirun -np %d: exit %d: %s", np, r.status, r.err);
	/* only rank 0 prints */
	assert_int_equal(lines_starting(r.out, "snapmem run:"), 1);
	assert_non_null(strstr(r.out, "MPI ranks"));
	tu_result_free(&r);
	pa = tu_path(W.serial, "profiles.hdf5");
	pb = tu_path(out, "profiles.hdf5");
	tu_profiles_read(pa, &a);
	tu_profiles_read(pb, &b);
	free(pa);
	free(pb);
	assert_int_equal(a.k, b.k);
	assert_true(a.k > 0);
	assert_memory_equal(a.group, b.group, a.k * 8);
	assert_memory_equal(a.counts, b.counts, a.k * RB * 8);
	assert_memory_equal(a.sf, b.sf, a.k * RB * 8);
	assert_memory_equal(a.h2, b.h2, a.k * RB * TB * 8);
	for (i = 0; i < a.k * RB; i++)
		assert_true(isnan(a.mean[i]) ? isnan(b.mean[i])
					     : fabs(a.mean[i] - b.mean[i]) <= 1e-12 * fabs(a.mean[i]));
	check_mpi_object(out, np);
	check_rank_resident(out, np);
	tu_profiles_free(&a);
	tu_profiles_free(&b);
	tu_rmtree(out);
	free(out);
}

static void test_np2_equals_serial(void **state)
{
	(void)state;
	skip_without_mpi();
	np_vs_serial(2);
}

static void test_np3_equals_serial(void **state)
{
	(void)state;
	skip_without_mpi();
	np_vs_serial(3);
}

/* A copy of the mock with a NaN InternalEnergy in a chunk that rank `rank` of np streams. */
static char *bad_copy(int rank, int np, char *file, size_t len)
{
	char *dir = tu_tmpdir(), cmd[8192];
	int64_t *files;
	size_t nf;
	uint64_t cells;
	sm_error err;
	hid_t f, d, s, ms;
	hsize_t start = 4, one = 1;
	double nan = NAN;

	assert_int_equal(sm_pipeline_rank_files(W.dir, 99, (uint32_t)rank, (uint32_t)np, &files, &nf,
						&cells, &err), 0);
	assert_true(nf > 0);
	snprintf(cmd, sizeof(cmd), "cp -r '%s'/. '%s'/", W.dir, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(file, len, "%s/snapdir_099/snap_099.%lld.hdf5", dir, (long long)files[nf - 1]);
	free(files);
	f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, "/PartType0/InternalEnergy", H5P_DEFAULT);
	s = H5Dget_space(d);
	ms = H5Screate_simple(1, &one, NULL);
	H5Sselect_hyperslab(s, H5S_SELECT_SET, &start, NULL, &one, NULL);
	assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, s, H5P_DEFAULT, &nan) >= 0);
	H5Sclose(ms);
	H5Sclose(s);
	H5Dclose(d);
	H5Fclose(f);
	return dir;
}

static void test_bad_chunk_on_one_rank(void **state)
{
	char file[4096], *dir, *out, *pp, prefix[64];
	int np;

	(void)state;
	skip_without_mpi();
	for (np = 2; np <= 3; np++) {
		tu_result r;

		dir = bad_copy(np - 1, np, file, sizeof(file));
		out = tu_tmpdir();
		tu_rmtree(out);
		r = mpirun(np, "--base-path", dir, "--snap", "99", "--out", out, NULL);
		assert_int_equal(r.status, 2);
		if (tu_count_lines(r.err) != 1)
			fail_msg("stderr is not one line:\n%s", r.err);
		snprintf(prefix, sizeof(prefix), "snapmem: rank %d of %d: '", np - 1, np);
		assert_int_equal(strncmp(r.err, prefix, strlen(prefix)), 0);
		assert_non_null(strstr(r.err, file));
		assert_non_null(strstr(r.err, "InternalEnergy[4]"));
		assert_string_equal(r.out, "");
		pp = tu_path(out, "profiles.hdf5");
		assert_false(tu_exists(pp));
		assert_false(tu_exists(out)); /* the run directory it created is removed again */
		free(pp);
		tu_result_free(&r);
		tu_rmtree(dir);
		free(dir);
		free(out);
	}
}

static void expect_one_line(tu_result *r, int status, const char *what)
{
	assert_int_equal(r->status, status);
	if (tu_count_lines(r->err) != 1 || strstr(r->err, what) == NULL)
		fail_msg("expected one line with '%s', stderr:\n%s", what, r->err);
	assert_string_equal(r->out, "");
	tu_result_free(r);
}

static void test_refusals(void **state)
{
	char *out;
	tu_result r;

	(void)state;
	skip_without_mpi();
	out = tu_tmpdir();
	tu_rmtree(out);
	r = mpirun(2, "--ranks", "3", "--base-path", W.dir, "--snap", "99", "--out", out, NULL);
	expect_one_line(&r, 2, "--ranks 3: the MPI job has 2 ranks");
	/* started without mpirun (a singleton, one rank): says so and how to start the ranks */
	r = tu_run("run", "--mpi", "--ranks", "3", "--base-path", W.dir, "--snap", "99", "--out", out,
		   NULL);
	expect_one_line(&r, 2, "--ranks 3: this process runs as 1 MPI rank");
	r = tu_run("run", "--ranks", "3", "--base-path", W.dir, "--snap", "99", "--out", out, NULL);
	assert_non_null(strstr(r.err, "'mpirun -np 3 snapmem run --mpi ...' (as root add "
				   "--allow-run-as-root; more ranks than cores: --oversubscribe)"));
	expect_one_line(&r, 2, "started without mpirun");
	/* started by mpirun over 2 ranks without --mpi: refused before anything is written */
	omit_mpi_flag = 1;
	r = mpirun(2, "--base-path", W.dir, "--snap", "99", "--out", out, NULL);
	omit_mpi_flag = 0;
	expect_one_line(&r, 2, "started by mpirun as 2 ranks without --mpi");
	assert_false(tu_exists(out));
	r = mpirun(3, "--select", "mask", "--base-path", W.dir, "--snap", "99", "--out", out, NULL);
	expect_one_line(&r, 2, "--select mask");
	r = mpirun(2, "--temperature", "streaming", "--base-path", W.dir, "--snap", "99", "--out",
		   out, NULL);
	expect_one_line(&r, 2, "--temperature streaming");
	/* rank 0's refusal before the run (the estimate over --max-mem): every rank exits 3 */
	r = mpirun(2, "--max-mem", "64K", "--base-path", W.dir, "--snap", "99", "--out", out, NULL);
	expect_one_line(&r, 3, "--max-mem");
	r = mpirun(2, "--base-path", "/nonexistent/mock", "--snap", "99", "--out", out, NULL);
	expect_one_line(&r, 2, "/nonexistent/mock");
	assert_false(tu_exists(out));
	free(out);
}

static void test_ranks_given_equal(void **state)
{
	char *out;
	tu_result r;

	(void)state;
	skip_without_mpi();
	out = tu_tmpdir();
	tu_rmtree(out);
	/* --ranks R that matches the job, float64, small blocks, no profiler */
	r = mpirun(2, "--ranks", "2", "--positions", "float64", "--stream-block", "3001",
		   "--base-path", W.dir, "--snap", "99", "--out", out, "--no-profile", NULL);
	if (r.status != 0)
		fail_msg("exit %d: %s", r.status, r.err);
	assert_true(tu_exists(out));
	tu_result_free(&r);
	tu_rmtree(out);
	free(out);
}

/*
 * The worker threads change nothing (docs/MPI.md, stream_cells): one rank with SNAPMEM_THREADS=1,
 * 2 and 3 (the cells split into ranges, the halos dealt to the threads; 3 is not a power of two)
 * writes the same profiles.hdf5 bit for bit, mean temperatures included, in float32 and float64
 * and with blocks that split the chunk files; counts, sf_counts and hist2d equal the serial run's
 * (float32).
 * The chunk files hold about 200,000 cells, so that a block is worth several threads.
 */
static void threads_run(const char *dir, const char *threads, const char *pos, const char *block,
			const char *out)
{
	tu_result r;

	setenv("SNAPMEM_THREADS", threads, 1);
	export_threads = 1;
	tu_rmtree((char *)out);
	r = mpirun(1, "--positions", pos, "--stream-block", block, "--base-path", dir, "--snap",
		   "99", "--out", out, "--no-profile", NULL);
	export_threads = 0;
	unsetenv("SNAPMEM_THREADS");
	if (r.status != 0)
		fail_msg("SNAPMEM_THREADS=%s mpirun -np 1 --positions %s --stream-block %s: exit %d: "
			 "%s", threads, pos, block, r.status, r.err);
	tu_result_free(&r);
}

/* One rank's memory.json run.threads after mpirun -np np (unbound when bind_none). */
static long rank_threads(int np, const char *out, tu_result *r)
{
	char *mp = tu_path(out, "memory.json");
	json_error_t je;
	json_t *m;
	long t;

	tu_rmtree((char *)out);
	*r = mpirun(np, "--base-path", W.dir, "--snap", "99", "--out", out, NULL);
	if (r->status != 0)
		fail_msg("mpirun -np %d: exit %d: %s", np, r->status, r->err);
	m = json_load_file(mp, 0, &je);
	if (m == NULL)
		fail_msg("%s: %s", mp, je.text);
	t = (long)json_integer_value(json_object_get(json_object_get(m, "run"), "threads"));
	json_decref(m);
	free(mp);
	return t;
}

/*
 * Worker threads per rank (docs/MPI.md): the CPUs a rank may use divided by the ranks of the node
 * whose CPU sets overlap its own. Unbound, one rank takes every CPU (at most 8) and three ranks
 * share them; bound by mpirun's default to a core each, a rank runs one thread and rank 0 names
 * the CPUs no rank may run on.
 */
static void test_threads_per_rank(void **state)
{
	char *out, *saved;
	const char *env = getenv("SNAPMEM_THREADS");
	long cpus;
	cpu_set_t set;
	tu_result r;

	(void)state;
	skip_without_mpi(); /* before anything is allocated: a skip leaves the test at once */
	out = tu_tmpdir();
	saved = env != NULL ? strdup(env) : NULL;
	CPU_ZERO(&set);
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	cpus = CPU_COUNT(&set) < 8 ? CPU_COUNT(&set) : 8;
	unsetenv("SNAPMEM_THREADS");
	bind_none = 1;
	assert_int_equal(rank_threads(1, out, &r), cpus);
	assert_null(strstr(r.out, "ran no rank"));
	tu_result_free(&r);
	assert_int_equal(rank_threads(3, out, &r), cpus / 3 >= 1 ? cpus / 3 : 1);
	tu_result_free(&r);
	bind_none = 0;
	/* mpirun's default binds each of 2 ranks or fewer to a core: with 2 or more CPUs to bind to,
	 * one thread and the idle CPUs named */
	if (CPU_COUNT(&set) >= 2 && sysconf(_SC_NPROCESSORS_ONLN) == CPU_COUNT(&set)) {
		assert_int_equal(rank_threads(1, out, &r), 1);
		if (strstr(r.out, "ran no rank: mpirun binds each of 2 ranks or fewer to a core; "
			   "--bind-to none") == NULL)
			fail_msg("no line on the idle CPUs: %s", r.out);
		tu_result_free(&r);
	}
	if (saved != NULL)
		setenv("SNAPMEM_THREADS", saved, 1);
	free(saved);
	tu_rmtree(out);
	free(out);
}

/* The serial run of the mock in dir (unprofiled, into a new temporary directory *serial): its
 * profiles into s. */
static void serial_profiles(const char *dir, char **serial, tu_profiles *s)
{
	tu_result r;
	char *pp;

	*serial = tu_tmpdir();
	tu_rmtree(*serial);
	r = tu_run("run", "--base-path", dir, "--snap", "99", "--out", *serial, "--no-profile",
		   NULL);
	if (r.status != 0)
		fail_msg("serial run: %s", r.err);
	tu_result_free(&r);
	pp = tu_path(*serial, "profiles.hdf5");
	tu_profiles_read(pp, s);
	free(pp);
}

/* Counts, sf_counts and hist2d of a and b bit for bit; the mean temperatures too when means. */
static void assert_same_sums(const tu_profiles *a, const tu_profiles *b, int means)
{
	assert_int_equal(a->k, b->k);
	assert_memory_equal(a->counts, b->counts, a->k * RB * 8);
	assert_memory_equal(a->sf, b->sf, a->k * RB * 8);
	assert_memory_equal(a->h2, b->h2, a->k * RB * TB * 8);
	if (means)
		assert_memory_equal(a->mean, b->mean, a->k * RB * 8);
}

/* A mock of gas cells and 6 halos in 2 chunk files (seed), without the small groups when
 * no_small; its options in *mo. */
static char *six_halo_mock(sm_mock_options *mo, uint64_t gas, uint64_t seed, int no_small)
{
	sm_error err;
	char *dir = tu_tmpdir();

	sm_mock_options_init(mo);
	mo->gas = gas;
	mo->halos = 6;
	if (no_small)
		mo->small_halos = 0;
	mo->files = 2;
	mo->seed = seed;
	if (sm_mock_write(dir, mo, &err) != 0)
		fail_msg("mock: %s", err.msg);
	return dir;
}

static void test_threads_change_nothing(void **state)
{
	static const char *const threads[3] = {"1", "2", "3"};
	static const char *const pos[2] = {"float32", "float64"};
	static const char *const block[2] = {"1048576", "70001"};
	char *dir, *serial, *out[3], *pp;
	sm_mock_options mo;
	tu_profiles s, a, b;
	int i, j;

	(void)state;
	skip_without_mpi();
	dir = six_halo_mock(&mo, 400000, 9, 0);
	serial_profiles(dir, &serial, &s);
	assert_true(s.k > 1);
	for (i = 0; i < 3; i++)
		out[i] = tu_tmpdir();
	for (j = 0; j < 3; j++) {
		const char *p = pos[j == 2], *bl = block[j == 1];

		for (i = 0; i < 3; i++)
			threads_run(dir, threads[i], p, bl, out[i]);
		pp = tu_path(out[0], "profiles.hdf5");
		tu_profiles_read(pp, &a);
		free(pp);
		assert_int_equal(a.k, s.k);
		if (j != 2) /* the serial run's positions are float32 */
			assert_same_sums(&a, &s, 0);
		for (i = 1; i < 3; i++) {
			pp = tu_path(out[i], "profiles.hdf5");
			tu_profiles_read(pp, &b);
			free(pp);
			assert_int_equal(a.k, b.k);
			assert_memory_equal(a.group, b.group, a.k * 8);
			assert_same_sums(&a, &b, 1);
			tu_profiles_free(&b);
		}
		tu_profiles_free(&a);
	}
	tu_profiles_free(&s);
	for (i = 0; i < 3; i++) {
		tu_rmtree(out[i]);
		free(out[i]);
	}
	tu_rmtree(serial);
	tu_rmtree(dir);
	free(serial);
	free(dir);
}

/* Every group of catalogue chunk file path at centre (x, x, x) with R200 r (HDF5 directly); a
 * chunk without groups is left alone. */
static void groups_to(const char *path, double x, double r)
{
	static const char *const cols[2] = {"/Group/GroupPos", "/Group/Group_R_Crit200"};
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	int c;

	assert_true(f >= 0);
	for (c = 0; c < 2; c++) {
		hid_t d, sp;
		hsize_t dims[2] = {0, 1}, i, n;
		double *buf;

		if (H5Lexists(f, "/Group", H5P_DEFAULT) <= 0 || H5Lexists(f, cols[c], H5P_DEFAULT) <= 0)
			continue;
		d = H5Dopen2(f, cols[c], H5P_DEFAULT);
		assert_true(d >= 0);
		sp = H5Dget_space(d);
		H5Sget_simple_extent_dims(sp, dims, NULL);
		n = dims[0] * (c == 0 ? 3 : 1);
		if (n > 0) {
			buf = malloc(n * sizeof(double));
			assert_non_null(buf);
			for (i = 0; i < n; i++)
				buf[i] = c == 0 ? x : r;
			assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >=
				    0);
			free(buf);
		}
		H5Sclose(sp);
		H5Dclose(d);
	}
	H5Fclose(f);
}

/*
 * Spheres that overlap: every halo at the box's centre with R200 a fifth of the box, so that each
 * cell within 2 R200 is a pair of every halo, more pairs than cells: the distributed run's cell
 * ranges run out of room for their records and go on in further rounds, and with 3-cell blocks a
 * cell's 6 pairs outgrow its range and are added on their own (docs/MPI.md). Counts equal the
 * serial run's; the profiles, means included, are bit for bit the same with 1, 2 or 3 threads and
 * either block size.
 */
static void test_overlapping_spheres(void **state)
{
	static const char *const threads[3] = {"1", "2", "3"};
	static const char *const block[2] = {"1048576", "3"};
	char *dir, *serial, *out, *pp, *cat;
	sm_mock_options mo;
	tu_profiles s, a, b;
	int i, j, first = 1;

	(void)state;
	skip_without_mpi();
	dir = six_halo_mock(&mo, 60000, 5, 1);
	for (i = 0; i < 2; i++) {
		cat = tu_fmt("%s/groups_099/fof_subhalo_tab_099.%d.hdf5", dir, i);
		groups_to(cat, mo.box_size / 2, mo.box_size / 5);
		free(cat);
	}
	serial_profiles(dir, &serial, &s);
	assert_int_equal(s.k, 6);
	out = tu_tmpdir();
	for (j = 0; j < 2; j++)
		for (i = 0; i < 3; i++) {
			threads_run(dir, threads[i], "float32", block[j], out);
			pp = tu_path(out, "profiles.hdf5");
			tu_profiles_read(pp, first ? &a : &b);
			free(pp);
			if (first) {
				assert_same_sums(&a, &s, 0);
				first = 0;
				continue;
			}
			assert_same_sums(&a, &b, 1);
			tu_profiles_free(&b);
		}
	tu_profiles_free(&a);
	tu_profiles_free(&s);
	tu_rmtree(out);
	tu_rmtree(serial);
	tu_rmtree(dir);
	free(out);
	free(serial);
	free(dir);
}

/* A build without MPI: run --mpi is refused with one line, exit 2. */
static void test_built_without_mpi(void **state)
{
	tu_result r;

	(void)state;
#ifdef SM_HAVE_MPI
	skip();
#endif
	r = tu_run("run", "--mpi", "--base-path", W.dir, "--snap", "99", NULL);
	expect_one_line(&r, 2, "built without MPI");
	r = tu_run("run", "--ranks", "2", "--base-path", W.dir, "--snap", "99", NULL);
	expect_one_line(&r, 2, "built without MPI");
}

/* The binary does not link MPI: Open MPI's libraries come in with the MPI module, which `run
 * --mpi` alone opens (src/cli/mpi.c). ld.so lists what the binary loads at start
 * (LD_TRACE_LOADED_OBJECTS, as ldd does). */
static void test_binary_loads_no_mpi(void **state)
{
	tu_result r;

	(void)state;
	assert_int_equal(setenv("LD_TRACE_LOADED_OBJECTS", "1", 1), 0);
	r = tu_run("--version", NULL);
	unsetenv("LD_TRACE_LOADED_OBJECTS");
	assert_int_equal(r.status, 0);
	if (strstr(r.out, "libc.so") == NULL)
		fail_msg("no list of loaded objects:\n%s", r.out);
	if (strstr(r.out, "libmpi") != NULL || strstr(r.out, "libopen-pal") != NULL)
		fail_msg("the binary loads MPI at start:\n%s", r.out);
	tu_result_free(&r);
}

/* run --mpi with $SNAPMEM_MPI_MODULE naming a file that is missing, not a library, or a library
 * without sm_mpi_module: one line naming it, exit 2, no run directory. */
static void test_module_refused(void **state)
{
	char *tmp, *out, *junk;
	Dl_info di;
	tu_result r;
	struct stat st;
	FILE *f;

	(void)state;
#ifndef SM_HAVE_MPI
	skip();
#endif
	tmp = tu_tmpdir();
	out = tu_path(tmp, "run");
	junk = tu_path(tmp, "junk.so");
	f = fopen(junk, "w");
	assert_non_null(f);
	fputs("not a library\n", f);
	fclose(f);
	assert_int_not_equal(dladdr((void *)cos, &di), 0); /* the C maths library: no module */
	assert_non_null(di.dli_fname);

	assert_int_equal(setenv("SNAPMEM_MPI_MODULE", "/nonexistent/libsnapmem-mpi.so", 1), 0);
	r = tu_run("run", "--mpi", "--base-path", W.dir, "--snap", "99", "--out", out, NULL);
	expect_one_line(&r, 2, "'/nonexistent/libsnapmem-mpi.so': the MPI module is missing");
	assert_int_not_equal(stat(out, &st), 0);

	assert_int_equal(setenv("SNAPMEM_MPI_MODULE", junk, 1), 0);
	r = tu_run("run", "--mpi", "--base-path", W.dir, "--snap", "99", "--out", out, NULL);
	expect_one_line(&r, 2, "cannot load the MPI module");
	assert_int_not_equal(stat(out, &st), 0);

	assert_int_equal(setenv("SNAPMEM_MPI_MODULE", di.dli_fname, 1), 0);
	r = tu_run("run", "--mpi", "--base-path", W.dir, "--snap", "99", "--out", out, NULL);
	expect_one_line(&r, 2, "not snapmem's MPI module (no sm_mpi_module in it)");
	assert_int_not_equal(stat(out, &st), 0);
	unsetenv("SNAPMEM_MPI_MODULE");

	tu_rmtree(tmp);
	free(junk);
	free(out);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_built_without_mpi),
		cmocka_unit_test(test_binary_loads_no_mpi),
		cmocka_unit_test(test_module_refused),
		cmocka_unit_test(test_np2_equals_serial),
		cmocka_unit_test(test_np3_equals_serial),
		cmocka_unit_test(test_bad_chunk_on_one_rank),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_ranks_given_equal),
		cmocka_unit_test(test_threads_change_nothing),
		cmocka_unit_test(test_overlapping_spheres),
		cmocka_unit_test(test_threads_per_rank),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
