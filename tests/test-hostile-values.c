/*
 * Hostile values and special files (issue #18, items 7 to 10), through the `snapmem` binary: a small
 * mock written by the C mock writer (include/snapmem/mock.h), one value or file changed with the
 * HDF5 C API per case, each case held to the CLI contract: exit 2, exactly one stderr line naming
 * the file (never a printf pattern) and the fault, no crash, no hang (every command runs under a
 * 120 s alarm), and nothing left in the --out directory's parent. The distributed run gets the
 * same checks: for the run cases it is called through the library as test-distributed.c does
 * (sm_pipeline_run_distributed, one rank, no mpirun) and must fail with the serial run's code and
 * message, its output directory left empty.
 *
 *   wrong science, no error (7): a selected halo's Group_R_Crit200 1e30 (index, mask, --mpi) or inf
 *     (named as such, not "<= 0 or NaN"); Group_M_Crit200 inf (run, estimate --format json) and
 *     all negative with --halos 2; InternalEnergy 3e38, finite but its temperature overflowing
 *     float32 (in-memory, streaming, --mpi);
 *   nonsense accepted (8): BoxSize inf, UnitVelocity_in_cm_per_s NaN and 0 (estimate in table and
 *     json, run); chunks disagreeing on BoxSize, NumPart_Total, NumFilesPerSnapshot, Redshift,
 *     HubbleParam, UnitLength_in_cm (run, estimate --mpi); float32 copies of the same header values
 *     accepted; a catalogue whose BoxSize or Redshift is not the snapshot's; catalogue chunks
 *     disagreeing;
 *   special files (9): a FIFO, a directory and a character device in place of a snapshot chunk, a
 *     FIFO in place of a catalogue chunk (run, estimate --mpi, --mpi);
 *   verdicts (10): an empty selection reports PASS with n/a per-halo stages; an estimate.json with
 *     "stages": [] is refused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>
#include <jansson.h>

#include "snapmem/error.h"
#include "snapmem/mock.h"
#include "snapmem/pipeline.h"

#include "util.h"

#define NFILES 6
#define SNAP(b, i) tu_fmt("%s/snapdir_099/snap_099.%d.hdf5", b, i)
#define GROUPS(b, i) tu_fmt("%s/groups_099/fof_subhalo_tab_099.%d.hdf5", b, i)
#define N(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define A(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define TIMEOUT_S 120

static char *dir, *clean;
static int ncat;        /* catalogue chunk files */
static int gas_chunk;   /* the first snapshot chunk holding gas */
static int ncases;

/* A deadline on every command: one blocked forever (a FIFO opened for reading) dies with SIGALRM
 * (status 142) instead of hanging the test. */
static tu_result run_timed(const char *const *argv)
{
	return tu_runv_timeout((char *const *)argv, TIMEOUT_S);
}

/* Exit want, one stderr line holding every needle and no printf pattern, no crash. */
static int expect_line(const tu_result *r, int want, const char *const *needles, const char *what)
{
	size_t i;
	int bad = 0;

	if (getenv("SNAPMEM_TEST_VERBOSE") != NULL)
		printf("  %-28s %d %s", what, r->status, r->err);
	if (r->status >= 128) {
		tu_soft_fail(what, "killed (status %d), stderr '%s'", r->status, r->err);
		return 1;
	}
	if (r->status != want || tu_count_lines(r->err) != 1) {
		tu_soft_fail(what, "status %d (want %d), stderr '%s'", r->status, want, r->err);
		return 1;
	}
	for (i = 0; needles != NULL && needles[i] != NULL; i++)
		if (strstr(r->err, needles[i]) == NULL) {
			tu_soft_fail(what, "'%s' not in stderr '%s'", needles[i], r->err);
			bad = 1;
		}
	if (strstr(r->err, "%lld") != NULL) {
		tu_soft_fail(what, "a printf pattern in stderr '%s'", r->err);
		bad = 1;
	}
	return bad;
}

/* A copy of the clean mock. */
static char *copy_mock(const char *name)
{
	char *d = tu_path(dir, name), *cmd = tu_fmt("cp -r '%s' '%s'", clean, d);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	return d;
}

/* `snapmem run` on base (+ extra) into a fresh --out under a directory of its own: exit want, one
 * line with the needles, and that directory empty afterwards (no output, no temporary). */
static void run_case(const char *name, const char *base, int want, const char *const *needles,
		     const char *const *extra)
{
	char *parent = tu_fmt("%s/run-%s", dir, name), *out = tu_path(parent, "out");
	const char *argv[32];
	int n = 0, i;
	tu_result r;

	ncases++;
	assert_int_equal(mkdir(parent, 0777), 0);
	argv[n++] = "run";
	argv[n++] = "--base-path";
	argv[n++] = base;
	argv[n++] = "--snap";
	argv[n++] = "99";
	for (i = 0; extra != NULL && extra[i] != NULL; i++)
		argv[n++] = extra[i];
	argv[n++] = "--out";
	argv[n++] = out;
	argv[n] = NULL;
	r = run_timed(argv);
	expect_line(&r, want, needles, name);
	tu_result_free(&r);
	if (tu_entries(parent) != 0)
		tu_soft_fail(name, "%d entries left in '%s'", tu_entries(parent), parent);
	free(out);
	free(parent);
}

/* Any other command (no output file): exit want, one line with the needles. */
static void cli_case(const char *name, int want, const char *const *needles,
		     const char *const *argv)
{
	tu_result r;

	ncases++;
	r = run_timed(argv);
	expect_line(&r, want, needles, name);
	tu_result_free(&r);
}

/* The serial and the distributed pipeline (library, one rank) on base: both fail with code want,
 * the same message holding the needles, their output directories left empty. */
static void lib_case(const char *name, const char *base, int want, const char *const *needles,
		     int select_mask, int streaming)
{
	sm_model_options mo;
	sm_pipeline_options o;
	sm_pipeline_result rs, rd;
	sm_error es, ed;
	char *outs = tu_tmpdir(), *outd = tu_tmpdir();
	int rcs, rcd;
	size_t i;

	ncases++;
	sm_model_options_init(&mo);
	if (select_mask)
		mo.select = SM_SELECT_MASK;
	if (streaming)
		mo.temperature = SM_TEMP_STREAMING;
	sm_pipeline_options_init(&o);
	o.base_path = base;
	o.snap = 99;
	o.model = mo;
	o.out_dir = outs;
	sm_error_clear(&es);
	sm_error_clear(&ed);
	rcs = sm_pipeline_run(&o, NULL, &rs, &es);
	mo.select = SM_SELECT_INDEX;
	mo.temperature = SM_TEMP_IN_MEMORY;
	mo.mpi = 1;
	mo.ranks = 1;
	o.model = mo;
	o.out_dir = outd;
	rcd = sm_pipeline_run_distributed(&o, NULL, NULL, &rd, &ed);
	if (rcs != want || rcd != want)
		tu_soft_fail(name, "serial %d '%s', distributed %d '%s' (want %d)", rcs, es.msg, rcd,
			  ed.msg, want);
	else if (strcmp(es.msg, ed.msg) != 0)
		tu_soft_fail(name, "serial '%s' and distributed '%s' differ", es.msg, ed.msg);
	for (i = 0; needles[i] != NULL; i++)
		if (strstr(ed.msg, needles[i]) == NULL)
			tu_soft_fail(name, "'%s' not in the distributed run's '%s'", needles[i], ed.msg);
	if (tu_entries(outs) != 0 || tu_entries(outd) != 0)
		tu_soft_fail(name, "output left: %d serial, %d distributed", tu_entries(outs),
			  tu_entries(outd));
	sm_pipeline_result_release(&rs);
	sm_pipeline_result_release(&rd);
	tu_rmtree(outs);
	tu_rmtree(outd);
	free(outs);
	free(outd);
}

/* ---- HDF5 edits ------------------------------------------------------------------------------ */

static hid_t open_rw(const char *path)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);

	if (f < 0)
		fail_msg("cannot open '%s'", path);
	return f;
}

/* Rewrites the scalar /Header attribute name with type t to v. */
static void set_attr(const char *path, const char *name, hid_t t, double v)
{
	hid_t f = open_rw(path), g = H5Gopen2(f, "Header", H5P_DEFAULT), sp, a;

	assert_true(g >= 0);
	if (H5Aexists(g, name) > 0)
		assert_true(H5Adelete(g, name) >= 0);
	sp = H5Screate(H5S_SCALAR);
	a = H5Acreate2(g, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(a >= 0);
	assert_true(H5Awrite(a, H5T_NATIVE_DOUBLE, &v) >= 0);
	H5Aclose(a);
	H5Sclose(sp);
	H5Gclose(g);
	H5Fclose(f);
}

static double get_attr(const char *path, const char *name)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), a;
	double v = 0;

	assert_true(f >= 0);
	a = H5Aopen_by_name(f, "Header", name, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(a >= 0);
	assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
	H5Aclose(a);
	H5Fclose(f);
	return v;
}

/* Reads, or rewrites as uint32 (AREPO's type for the totals), a 6-element /Header attribute. */
static void attr6(const char *path, const char *name, uint64_t *v, int write)
{
	hid_t f = write ? open_rw(path) : H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), a, g, sp;
	hsize_t six = 6;

	assert_true(f >= 0);
	if (!write) {
		a = H5Aopen_by_name(f, "Header", name, H5P_DEFAULT, H5P_DEFAULT);
		assert_true(a >= 0);
		assert_true(H5Aread(a, H5T_NATIVE_UINT64, v) >= 0);
		H5Aclose(a);
		H5Fclose(f);
		return;
	}
	g = H5Gopen2(f, "Header", H5P_DEFAULT);
	assert_true(g >= 0);
	assert_true(H5Adelete(g, name) >= 0);
	sp = H5Screate_simple(1, &six, NULL);
	a = H5Acreate2(g, name, H5T_STD_U32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(a >= 0);
	assert_true(H5Awrite(a, H5T_NATIVE_UINT64, v) >= 0);
	H5Aclose(a);
	H5Sclose(sp);
	H5Gclose(g);
	H5Fclose(f);
}

/* Sets element idx (every element when idx < 0) of a 1-d dataset to v. */
static void poke(const char *path, const char *obj, long idx, double v)
{
	hid_t f = open_rw(path), d = H5Dopen2(f, obj, H5P_DEFAULT), sp;
	hsize_t n, i;
	double *buf;

	assert_true(d >= 0);
	sp = H5Dget_space(d);
	assert_int_equal(H5Sget_simple_extent_ndims(sp), 1);
	H5Sget_simple_extent_dims(sp, &n, NULL);
	assert_true(n > 0 && (idx < 0 || (hsize_t)idx < n));
	buf = malloc(n * sizeof(double));
	assert_non_null(buf);
	assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
	for (i = 0; i < n; i++)
		if (idx < 0 || (hsize_t)idx == i)
			buf[i] = v;
	assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
	free(buf);
	H5Sclose(sp);
	H5Dclose(d);
	H5Fclose(f);
}

/* Ngroups_ThisFile of catalogue chunk i. */
static long cat_groups(const char *base, int i)
{
	char *p = GROUPS(base, i);
	long n = (long)get_attr(p, "Ngroups_ThisFile");

	free(p);
	return n;
}

/* The most massive group: its catalogue chunk and row there. */
static void most_massive(const char *base, int *chunk, long *row)
{
	double best = -1;
	int c;

	*chunk = -1;
	for (c = 0; c < ncat; c++) {
		long n = cat_groups(base, c), i;
		char *p;
		hid_t f, d;
		float *m;

		if (n == 0)
			continue;
		p = GROUPS(base, c);
		f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
		d = H5Dopen2(f, "/Group/Group_M_Crit200", H5P_DEFAULT);
		assert_true(f >= 0 && d >= 0);
		m = malloc((size_t)n * sizeof(float));
		assert_non_null(m);
		assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m) >= 0);
		for (i = 0; i < n; i++)
			if (m[i] > best) {
				best = m[i];
				*chunk = c;
				*row = i;
			}
		free(m);
		H5Dclose(d);
		H5Fclose(f);
		free(p);
	}
	assert_true(*chunk >= 0);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
	sm_mock_options mo;
	sm_error err;
	uint64_t v[6];
	char *p;
	int i;

	(void)state;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	dir = tu_tmpdir();
	clean = tu_path(dir, "clean");
	sm_mock_options_init(&mo);
	mo.gas = 20000;
	mo.halos = 4;
	mo.small_halos = 3;
	mo.files = NFILES;
	mo.seed = 5;
	if (sm_mock_write(clean, &mo, &err) != 0)
		fail_msg("mock: %s", err.msg);
	p = GROUPS(clean, 0);
	ncat = (int)get_attr(p, "NumFiles");
	free(p);
	gas_chunk = -1;
	for (i = 0; i < NFILES && gas_chunk < 0; i++) {
		p = SNAP(clean, i);
		attr6(p, "NumPart_ThisFile", v, 0);
		if (v[0] > 10)
			gas_chunk = i;
		free(p);
	}
	assert_true(ncat >= 2 && gas_chunk >= 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	free(dir);
	free(clean);
	return 0;
}

/* ---- 7: wrong science, no error ---------------------------------------------------------------- */

static void test_r200_huge(void **state)
{
	char *b = copy_mock("r200-huge"), *p, *inf = copy_mock("r200-inf"), *pi;
	int c;
	long row;
	tu_result r;

	(void)state;
	most_massive(b, &c, &row);
	p = GROUPS(b, c);
	poke(p, "/Group/Group_R_Crit200", row, 1e30);
	run_case("r200-huge-index", b, 2, N(p, "Group_R_Crit200 1e+30", "larger than the box"),
		 A("--select", "index"));
	run_case("r200-huge-mask", b, 2, N(p, "Group_R_Crit200 1e+30", "larger than the box"),
		 A("--select", "mask"));
	lib_case("r200-huge-mpi", b, SM_EFORMAT, N(p, "Group_R_Crit200 1e+30"), 0, 0);
	cli_case("r200-huge-estimate", 2, N(p, "Group_R_Crit200"),
		 A("estimate", "--base-path", b, "--snap", "99"));

	pi = GROUPS(inf, c);
	poke(pi, "/Group/Group_R_Crit200", row, INFINITY);
	run_case("r200-inf", inf, 2, N(pi, "Group_R_Crit200 inf: must be finite"), NULL);
	ncases++;
	r = run_timed(A("estimate", "--base-path", inf, "--snap", "99", "--format", "json"));
	expect_line(&r, 2, N(pi, "Group_R_Crit200 inf"), "r200-inf-estimate-json");
	if (strstr(r.err, "<= 0 or NaN") != NULL)
		tu_soft_fail("r200-inf-estimate-json", "an infinite R200 called '<= 0 or NaN'");
	tu_result_free(&r);
	free(pi);
	free(p);
	free(inf);
	free(b);
	tu_soft_done("hostile-value");
}

static void test_m200_bad(void **state)
{
	char *b = copy_mock("m200-inf"), *neg = copy_mock("m200-neg"), *p, *p0;
	int c;
	long row;

	(void)state;
	/* an infinite mass on a small group: it ranks first, it is selected */
	most_massive(b, &c, &row);
	p = GROUPS(b, c);
	poke(p, "/Group/Group_M_Crit200", row == 0 && cat_groups(b, c) > 1 ? 1 : 0, INFINITY);
	run_case("m200-inf", b, 2, N(p, "Group_M_Crit200 inf"), NULL);
	lib_case("m200-inf-mpi", b, SM_EFORMAT, N(p, "Group_M_Crit200 inf"), 0, 0);
	cli_case("m200-inf-estimate-json", 2, N(p, "Group_M_Crit200 inf"),
		 A("estimate", "--base-path", b, "--snap", "99", "--format", "json"));

	/* every mass negative, --halos 2: groups 0 and 1 (ties by index), in chunk 0 */
	for (c = 0; c < ncat; c++) {
		char *q = GROUPS(neg, c);

		if (cat_groups(neg, c) > 0)
			poke(q, "/Group/Group_M_Crit200", -1, -1000.0);
		free(q);
	}
	p0 = GROUPS(neg, 0);
	run_case("m200-negative-halos-2", neg, 2, N(p0, "group 0 (selected halo 0)",
						    "Group_M_Crit200 -1000"), A("--halos", "2"));
	free(p0);
	free(p);
	free(neg);
	free(b);
	tu_soft_done("hostile-value");
}

/* A NaN mass is "unknown" (docs/PIPELINE.md): never above --mass-min, ranked last under --halos
 * (where the estimate asks for --sphere-cells, having no mass to model the sphere from), and
 * written as null in memory.json (jansson drops a NaN real: the key went missing). */
static void test_m200_nan(void **state)
{
	char *b = copy_mock("m200-nan"), *p, *out, *mem, *nh, *text;
	const char *argv[16];
	long row, total = 0;
	int c;
	tu_result r;

	(void)state;
	most_massive(b, &c, &row);
	p = GROUPS(b, c);
	poke(p, "/Group/Group_M_Crit200", row, NAN);
	for (c = 0; c < ncat; c++)
		total += cat_groups(b, c);
	nh = tu_fmt("%ld", total);
	out = tu_fmt("%s/run-m200-nan", dir);
	argv[0] = "run"; argv[1] = "--base-path"; argv[2] = b; argv[3] = "--snap"; argv[4] = "99";
	argv[5] = "--halos"; argv[6] = nh; argv[7] = "--out"; argv[8] = out;
	/* the pre-run estimate cannot model an unknown mass's sphere: give it */
	argv[9] = "--sphere-cells"; argv[10] = "1000"; argv[11] = NULL;
	ncases++;
	r = run_timed(argv);
	if (r.status != 0)
		fail_msg("m200-nan: exit %d: %s", r.status, r.err);
	tu_result_free(&r);
	mem = tu_path(out, "memory.json");
	text = tu_read_file(mem, NULL);
	assert_non_null(text);
	assert_non_null(strstr(text, "\"m200_msun\":null"));
	free(text);
	free(mem);
	free(out);
	free(nh);
	free(p);
	free(b);
}

static void test_temperature_overflow(void **state)
{
	char *b = copy_mock("energy-3e38"), *p = SNAP(b, gas_chunk);

	(void)state;
	/* finite as a float, but (gamma - 1) u / k_B * 1e10 * mu is about 3e40 K */
	poke(p, "/PartType0/InternalEnergy", 5, 3e38);
	run_case("energy-3e38", b, 2, N(p, "InternalEnergy[5]", "does not fit float32"), NULL);
	run_case("energy-3e38-streaming", b, 2, N(p, "InternalEnergy[5]", "does not fit float32"),
		 A("--temperature", "streaming", "--stream-block", "1000"));
	lib_case("energy-3e38-mpi", b, SM_EFORMAT, N(p, "InternalEnergy[5]", "float32"), 0, 0);
	free(p);
	free(b);
	tu_soft_done("hostile-value");
}

/* ---- 8: nonsense accepted ---------------------------------------------------------------------- */

/* Every snapshot chunk's attribute name set to v: estimate (table, json) and run refuse it,
 * naming chunk 0 (the header the estimate reads) and the attribute. */
static void header_case(const char *name, const char *attr, double v)
{
	char *b = copy_mock(name), *p0 = SNAP(b, 0), *n2 = tu_fmt("%s-json", name);
	int i;

	for (i = 0; i < NFILES; i++) {
		char *p = SNAP(b, i);

		set_attr(p, attr, H5T_IEEE_F64LE, v);
		free(p);
	}
	cli_case(name, 2, N(p0, attr), A("estimate", "--base-path", b, "--snap", "99"));
	cli_case(n2, 2, N(p0, attr),
		 A("estimate", "--base-path", b, "--snap", "99", "--format", "json"));
	run_case(name, b, 2, N(p0, attr), NULL);
	free(n2);
	free(p0);
	free(b);
}

static void test_header_values(void **state)
{
	(void)state;
	header_case("box-inf", "BoxSize", INFINITY);
	header_case("uvel-nan", "UnitVelocity_in_cm_per_s", NAN);
	header_case("uvel-zero", "UnitVelocity_in_cm_per_s", 0.0);
	header_case("ulen-neg", "UnitLength_in_cm", -3e21);
	header_case("redshift-inf", "Redshift", INFINITY);
	tu_soft_done("hostile-value");
}

/* Chunk k's attribute set to v (type t): run and estimate --mpi (which reads every chunk header)
 * refuse, naming chunk k, chunk 0 and the attribute. */
static void disagree_case(const char *name, int k, const char *attr, hid_t t, double v)
{
	char *b = copy_mock(name), *pk = SNAP(b, k), *p0 = SNAP(b, 0), *n2 = tu_fmt("%s-est", name);

	set_attr(pk, attr, t, v);
	run_case(name, b, 2, N(pk, p0, attr, "disagree"), NULL);
	cli_case(n2, 2, N(pk, p0, attr, "disagree"),
		 A("estimate", "--base-path", b, "--snap", "99", "--mpi"));
	free(n2);
	free(p0);
	free(pk);
	free(b);
}

static void test_chunks_disagree(void **state)
{
	uint64_t v[6];
	char *b, *p, *p0;
	tu_result r;
	int i;

	(void)state;
	disagree_case("box-chunk2", 2, "BoxSize", H5T_IEEE_F64LE, 75001.0);
	disagree_case("numfiles-chunk3", 3, "NumFilesPerSnapshot", H5T_STD_I32LE, NFILES + 1);
	disagree_case("redshift-chunk1", 1, "Redshift", H5T_IEEE_F64LE, 0.5);
	disagree_case("hubble-chunk4", 4, "HubbleParam", H5T_IEEE_F64LE, 0.7);
	disagree_case("ulen-chunk5", 5, "UnitLength_in_cm", H5T_IEEE_F64LE, 3.085678e24);

	b = copy_mock("npart-chunk1");
	p = SNAP(b, 1);
	p0 = SNAP(b, 0);
	attr6(p, "NumPart_Total", v, 0);
	v[0] += 1;
	attr6(p, "NumPart_Total", v, 1);
	run_case("npart-chunk1", b, 2, N(p, p0, "NumPart_Total", "disagree"), NULL);
	lib_case("npart-chunk1-mpi", b, SM_EFORMAT, N(p, "NumPart_Total", "disagree"), 0, 0);
	free(p);
	free(p0);
	free(b);

	/* float32 copies of the same values (as some writers store them) agree: the run succeeds */
	b = copy_mock("float32-copies");
	p = SNAP(b, 2);
	set_attr(p, "HubbleParam", H5T_IEEE_F32LE, get_attr(p, "HubbleParam"));
	set_attr(p, "BoxSize", H5T_IEEE_F32LE, get_attr(p, "BoxSize"));
	set_attr(p, "UnitLength_in_cm", H5T_IEEE_F32LE, get_attr(p, "UnitLength_in_cm"));
	ncases++;
	p0 = tu_path(dir, "f32.out");
	r = run_timed(A("run", "--base-path", b, "--snap", "99", "--out", p0));
	if (r.status != 0)
		tu_soft_fail("float32-copies", "status %d, stderr '%s'", r.status, r.err);
	tu_result_free(&r);
	free(p0);
	free(p);
	free(b);

	/* the catalogue against the snapshot */
	b = copy_mock("cat-box");
	for (i = 0; i < ncat; i++) {
		p = GROUPS(b, i);
		set_attr(p, "BoxSize", H5T_IEEE_F64LE, 80000.0);
		free(p);
	}
	p = GROUPS(b, 0);
	p0 = SNAP(b, 0);
	run_case("catalog-box", b, 2, N(p, p0, "BoxSize", "another snapshot"), NULL);
	lib_case("catalog-box-mpi", b, SM_EFORMAT, N(p, p0, "BoxSize"), 0, 0);
	cli_case("catalog-box-estimate", 2, N(p, p0, "BoxSize", "another snapshot"),
		 A("estimate", "--base-path", b, "--snap", "99"));
	free(p);
	free(p0);
	free(b);

	b = copy_mock("cat-redshift");
	for (i = 0; i < ncat; i++) {
		p = GROUPS(b, i);
		set_attr(p, "Redshift", H5T_IEEE_F64LE, 1.0);
		free(p);
	}
	p = GROUPS(b, 0);
	run_case("catalog-redshift", b, 2, N(p, "Redshift", "another snapshot"), NULL);
	free(p);
	free(b);

	/* catalogue chunks that disagree with each other */
	b = copy_mock("cat-chunk-box");
	p = GROUPS(b, ncat - 1);
	p0 = GROUPS(b, 0);
	set_attr(p, "BoxSize", H5T_IEEE_F64LE, 75001.0);
	run_case("catalog-chunks-box", b, 2, N(p, p0, "BoxSize", "disagree"), NULL);
	lib_case("catalog-chunks-box-mpi", b, SM_EFORMAT, N(p, p0, "BoxSize", "disagree"), 0, 0);
	free(p);
	free(p0);
	free(b);
	tu_soft_done("hostile-value");
}

/* ---- 9: special files -------------------------------------------------------------------------- */

static void test_special_files(void **state)
{
	char *b, *p;

	(void)state;
	b = copy_mock("fifo-chunk1");
	p = SNAP(b, 1);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkfifo(p, 0644), 0);
	run_case("fifo-chunk1", b, 2, N(p, "not a regular file", "FIFO"), NULL);
	cli_case("fifo-chunk1-estimate-mpi", 2, N(p, "FIFO"),
		 A("estimate", "--base-path", b, "--snap", "99", "--mpi"));
	lib_case("fifo-chunk1-mpi", b, SM_EFORMAT, N(p, "FIFO"), 0, 0);
	free(p);
	free(b);

	b = copy_mock("fifo-chunk0");
	p = SNAP(b, 0);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkfifo(p, 0644), 0);
	run_case("fifo-chunk0", b, 2, N(p, "FIFO"), NULL);
	cli_case("fifo-chunk0-estimate", 2, N(p, "FIFO"),
		 A("estimate", "--base-path", b, "--snap", "99"));
	cli_case("fifo-info", 2, N(p, "FIFO"), A("info", "--snapshot", p));
	free(p);
	free(b);

	b = copy_mock("dir-chunk2");
	p = SNAP(b, 2);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0755), 0);
	run_case("dir-chunk2", b, 2, N(p, "not a regular file", "directory"), NULL);
	free(p);
	free(b);

	b = copy_mock("dev-chunk3");
	p = SNAP(b, 3);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("/dev/zero", p), 0);
	run_case("dev-chunk3", b, 2, N(p, "character device"), NULL);
	free(p);
	free(b);

	b = copy_mock("fifo-groups");
	p = GROUPS(b, ncat - 1);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkfifo(p, 0644), 0);
	run_case("fifo-groups", b, 2, N(p, "FIFO"), NULL);
	lib_case("fifo-groups-mpi", b, SM_EFORMAT, N(p, "FIFO"), 0, 0);
	free(p);
	free(b);
	tu_soft_done("hostile-value");
}

/* ---- 10: verdicts ---------------------------------------------------------------------------- */

static void test_verdicts(void **state)
{
	char *b = copy_mock("verdicts"), *run = tu_path(dir, "empty-run"), *bad, *cmd, *est;
	json_error_t je;
	json_t *j;
	tu_result r;

	(void)state;
	/* an honest empty result: the run says so and its report passes, per-halo stages n/a */
	ncases++;
	r = run_timed(A("run", "--base-path", b, "--snap", "99", "--mass-min", "1e20", "--out", run));
	if (r.status != 0 || strstr(r.out, "empty result") == NULL)
		tu_soft_fail("empty-selection-run", "status %d, stdout '%s', stderr '%s'", r.status,
			  r.out, r.err);
	tu_result_free(&r);
	ncases++;
	r = run_timed(A("report", run));
	if (getenv("SNAPMEM_TEST_VERBOSE") != NULL)
		printf("%s", r.out);
	if (r.status != 0 || strstr(r.out, "verdict: PASS") == NULL ||
	    strstr(r.out, "FAIL") != NULL || strstr(r.out, "no halo") == NULL)
		tu_soft_fail("empty-selection-report", "status %d, stdout '%s', stderr '%s'", r.status,
			  r.out, r.err);
	tu_result_free(&r);
	ncases++;
	r = run_timed(A("report", run, "--format", "markdown"));
	if (r.status != 0 || strstr(r.out, "FAIL") != NULL)
		tu_soft_fail("empty-selection-markdown", "status %d, stderr '%s'", r.status, r.err);
	tu_result_free(&r);

	/* an estimate that models nothing judges nothing: refused, not PASS */
	bad = tu_path(dir, "no-stages-run");
	cmd = tu_fmt("cp -r '%s' '%s'", run, bad);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	est = tu_path(bad, "estimate.json");
	j = json_load_file(est, 0, &je);
	assert_non_null(j);
	json_object_set_new(j, "stages", json_array());
	assert_int_equal(json_dump_file(j, est, JSON_INDENT(2)), 0);
	json_decref(j);
	cli_case("estimate-no-stages", 2, N(est, "no stage"), A("report", bad));
	free(est);
	free(bad);
	free(run);
	free(b);
	tu_soft_done("hostile-value");
}

static void test_count(void **state)
{
	(void)state;
	printf("hostile-value cases here: %d\n", ncases);
	assert_true(ncases >= 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_r200_huge),
		cmocka_unit_test(test_m200_bad),
		cmocka_unit_test(test_m200_nan),
		cmocka_unit_test(test_temperature_overflow),
		cmocka_unit_test(test_header_values),
		cmocka_unit_test(test_chunks_disagree),
		cmocka_unit_test(test_special_files),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_count),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
