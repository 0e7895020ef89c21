/*
 * Bad input through the `snapmem` binary: a corpus generated under tu_tmpdir() (bad HDF5 files
 * made by editing a small mock with the HDF5 C API, bad JSON written as plain text), each case run
 * and held to the CLI contract: exit 2 (3 for memory), EXACTLY one stderr line naming the file, the
 * object and the fault, no crash (status < 128), no output file left behind, and nothing that
 * existed before overwritten (a sentinel file in the --out / -o place keeps its bytes). Run cases
 * are run twice: into a fresh --out (which must not exist afterwards) and with --force into a
 * directory holding a sentinel memory.json (which must be the only entry afterwards, unchanged).
 * Cases that deserve a result (zero gas cells, an empty catalogue, a cut selecting nothing) give an
 * honest empty result: exit 0, a line saying so, memory.json run.empty = true.
 *
 * Cases here (tests/test-cli-io.c, test-cli-run.c, test-cli-estimate.c and test-cli-report.c hold
 * more: truncated / non-HDF5 / missing file, no /Header, NumPart_Total missing / wrong shape /
 * float, Coordinates [N] and [N,2], counts not adding up in one file, --max-mem, usage errors,
 * malformed JSON and wrong schema for report, calibrate without memory.json, ...; not repeated):
 *   snapshot and catalogue (run):
 *    1 a missing chunk file in the middle            2 a missing catalogue chunk
 *    3 Coordinates of an integer type                4 Coordinates of rank 1 in a later chunk
 *    5 InternalEnergy missing in one chunk only      6 per-chunk counts not adding up (3 files)
 *    7 a NaN InternalEnergy                          8 an infinite InternalEnergy
 *    9 a negative InternalEnergy                    10 halos with R200 = 0
 *   11 halos with R200 = NaN                         12 header counts whose bytes overflow (run)
 *   13 header counts whose bytes overflow (info)     14 truncated chunk 2 of a base path
 *   15 Group_M_Crit200 missing from the catalogue
 *   honest empty results (exit 0):
 *   16 zero gas cells                               17 an empty catalogue
 *   18 a mass cut that selects nothing (--halos 0)
 *   --out:
 *   19 --out is an existing regular file (kept)     20 --out is used, not empty (kept)
 *   21 --out under a regular file (unwritable)      22 --out in /proc (unwritable)
 *   garbage numbers and sizes, every command:
 *   23 mock --gas 12x                                24 mock --files 0
 *   25 mock --seed -1                                26 mock --box nan
 *   27 info --snap 9x9                               28 info --mass-min inf
 *   29 run --snap -1                                 30 run --max-mem 0B
 *   31 run --max-mem 1.5.5G                          32 run --stream-block 1e400
 *   33 run --halos 99999999999999999999               34 estimate --ranks 1048577
 *   35 estimate --node-mem -5G                        36 report --tolerance nan
 *   37 report --tolerance 1e999
 *   foreign and malformed JSON:
 *   38 report: estimate.json is an array             39 report: estimate.json empty (0 bytes)
 *   40 report: estimate.json binary garbage          41 report: estimate.json is a directory
 *   42 report: estimate.json "stages" not an array   43 report: memory.json from another tool
 *   44 calibrate: memory.json is an array            45 calibrate: negative sphere_cells
 *   46 calibrate: sphere_cells a string              47 calibrate: empty memory.json
 *   48 calibrate: another snapshot's groups          49 calibrate: sphere_cells 2^63 - 1
 *   (report -o / estimate -o sentinels in 36-49: the file given to -o keeps its bytes)
 *   geometry and bookkeeping (run):
 *   50 Coordinates NaN                               51 Coordinates 1e30 (far outside the box)
 *   52 GroupPos NaN                                  53 BoxSize 0
 *   54 BoxSize NaN                                   55 NumFilesPerSnapshot 0
 *   56 NumFilesPerSnapshot 2^31 - 1                  57 HubbleParam 0 (snapshot and catalogue)
 *   58 Ngroups_Total 1e15, the chunks holding 5
 *   59 GroupPos -1e30 (far outside the box): test_pipeline_grouppos_outside, its own test so
 *      that a regression shows by name (a centre more than half a box outside the box is
 *      refused, as Coordinates that far out are)
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>
#include <jansson.h>

#include "util.h"

static char *dir, *clean, *goodrun;
static int ncases;
static char names[64][64];

#define SNAP(b, i) tu_fmt("%s/snapdir_099/snap_099.%d.hdf5", b, i)
#define GROUPS(b, i) tu_fmt("%s/groups_099/fof_subhalo_tab_099.%d.hdf5", b, i)

static void count_case(const char *name)
{
	if (ncases < 64)
		snprintf(names[ncases], sizeof(names[0]), "%s", name);
	ncases++;
}

static void put(const char *path, const char *text, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	if (n > 0)
		assert_int_equal(fwrite(text, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* A copy of the clean mock for one case. */
static char *copy_mock(const char *name)
{
	char *d = tu_path(dir, name), *cmd = tu_fmt("cp -r '%s' '%s'", clean, d);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	return d;
}

/* Exit `want`, one stderr line holding every needle, no crash. */
static void expect_line(const tu_result *r, int want, const char *const *needles, const char *what)
{
	size_t i;

	if (getenv("SNAPMEM_TEST_VERBOSE") != NULL)
		printf("  %-26s %d %s", what, r->status, r->err);
	if (r->status >= 128) {
		tu_soft_fail(what, "killed (status %d), stderr '%s'", r->status, r->err);
		return;
	}
	if (r->status != want || tu_count_lines(r->err) != 1) {
		tu_soft_fail(what, "status %d (want %d), stderr '%s'", r->status, want, r->err);
		return;
	}
	for (i = 0; needles[i] != NULL; i++)
		if (strstr(r->err, needles[i]) == NULL)
			tu_soft_fail(what, "'%s' not in stderr '%s'", needles[i], r->err);
}

/*
 * A bad-input run: into a fresh --out (gone afterwards), then with --force into a directory
 * holding a sentinel memory.json (the only entry afterwards, same bytes). extra: more arguments.
 */
static void run_case(const char *name, const char *base, int want, const char *const *needles,
		     const char *const *extra)
{
	char *out = tu_fmt("%s/out-%s", dir, name), *keep = tu_fmt("%s/keep-%s", dir, name);
	char *sent = tu_path(keep, "memory.json"), *got, *text = tu_fmt("sentinel %s\n", name);
	char *argv[32];
	int n = 0, i;
	tu_result r;

	count_case(name);
	argv[n++] = "run";
	argv[n++] = "--base-path";
	argv[n++] = (char *)base;
	argv[n++] = "--snap";
	argv[n++] = "99";
	for (i = 0; extra != NULL && extra[i] != NULL; i++)
		argv[n++] = (char *)extra[i];
	argv[n++] = "--out";
	argv[n++] = out;
	argv[n] = NULL;
	r = tu_runv(argv);
	expect_line(&r, want, needles, name);
	tu_result_free(&r);
	if (tu_exists(out)) {
		tu_soft_fail(name, "'%s' left behind (%d entries)", out, tu_entries(out));
		tu_rmtree(out);
	}

	assert_int_equal(mkdir(keep, 0777), 0);
	put(sent, text, strlen(text));
	argv[n - 1] = keep;
	argv[n++] = "--force";
	argv[n] = NULL;
	r = tu_runv(argv);
	expect_line(&r, want, needles, name);
	tu_result_free(&r);
	if (tu_entries(keep) != 1)
		tu_soft_fail(name, "%d entries in '%s' after a failed --force run", tu_entries(keep), keep);
	got = tu_read_file(sent, NULL);
	if (got == NULL || strcmp(got, text) != 0)
		tu_soft_fail(name, "sentinel '%s' changed", sent);
	free(got);
	free(out);
	free(keep);
	free(sent);
	free(text);
}

/* A command-line case without --out: exit want, one line, needles. */
static void cli_case(const char *name, int want, const char *const *needles, char *const *argv)
{
	tu_result r;

	count_case(name);
	r = tu_runv(argv);
	expect_line(&r, want, needles, name);
	tu_result_free(&r);
}

#define N(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define A(...) ((char *const[]){ __VA_ARGS__, NULL })

/* ---- HDF5 edits ------------------------------------------------------------------------------ */

static hid_t open_rw(const char *path)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);

	if (f < 0)
		fail_msg("cannot open '%s'", path);
	return f;
}

static void h5_delete(const char *path, const char *obj)
{
	hid_t f = open_rw(path);

	assert_true(H5Ldelete(f, obj, H5P_DEFAULT) >= 0);
	H5Fclose(f);
}

/* Replaces dataset obj by one of type t and shape dims[rank], every element v. */
static void h5_replace(const char *path, const char *obj, hid_t t, int rank, const hsize_t *dims,
		       double v)
{
	hid_t f = open_rw(path), sp, d;
	size_t n = 1, i;
	double *buf;
	int k;

	for (k = 0; k < rank; k++)
		n *= dims[k];
	buf = malloc((n ? n : 1) * sizeof(double));
	assert_non_null(buf);
	for (i = 0; i < n; i++)
		buf[i] = v + (double)i;
	if (H5Lexists(f, obj, H5P_DEFAULT) > 0)
		assert_true(H5Ldelete(f, obj, H5P_DEFAULT) >= 0);
	sp = H5Screate_simple(rank, dims, NULL);
	d = H5Dcreate2(f, obj, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(d >= 0);
	assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
	H5Dclose(d);
	H5Sclose(sp);
	H5Fclose(f);
	free(buf);
}

/* Sets element idx (every element when idx < 0) of a 1-d float dataset to v. */
static void h5_poke(const char *path, const char *obj, long idx, double v)
{
	hid_t f = open_rw(path), d = H5Dopen2(f, obj, H5P_DEFAULT), sp;
	hsize_t n;
	double *buf;
	hsize_t i;

	assert_true(d >= 0);
	sp = H5Dget_space(d);
	assert_int_equal(H5Sget_simple_extent_ndims(sp), 1);
	H5Sget_simple_extent_dims(sp, &n, NULL);
	assert_true(n > 0);
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

/* Rewrites /Header attribute name (6 elements) with type t from v. */
static void h5_attr6(const char *path, const char *name, hid_t t, const uint64_t *v)
{
	hid_t f = open_rw(path), g = H5Gopen2(f, "Header", H5P_DEFAULT), sp, a;
	hsize_t six = 6;

	assert_true(g >= 0);
	if (H5Aexists(g, name) > 0)
		assert_true(H5Adelete(g, name) >= 0);
	sp = H5Screate_simple(1, &six, NULL);
	a = H5Acreate2(g, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(a >= 0);
	assert_true(H5Awrite(a, H5T_NATIVE_UINT64, v) >= 0);
	H5Aclose(a);
	H5Sclose(sp);
	H5Gclose(g);
	H5Fclose(f);
}

static void h5_read_attr6(const char *path, const char *name, uint64_t *v)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), a;

	assert_true(f >= 0);
	a = H5Aopen_by_name(f, "Header", name, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(a >= 0);
	assert_true(H5Aread(a, H5T_NATIVE_UINT64, v) >= 0);
	H5Aclose(a);
	H5Fclose(f);
}

/* Rewrites the scalar /Header attribute name with type t to v. */
static void h5_attr1(const char *path, const char *name, hid_t t, double v)
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

/* Sets every element of a float dataset (any shape) to v. */
static void h5_fill(const char *path, const char *obj, double v)
{
	hid_t f = open_rw(path), d = H5Dopen2(f, obj, H5P_DEFAULT), sp;
	hssize_t n;
	double *buf;
	hssize_t i;

	assert_true(d >= 0);
	sp = H5Dget_space(d);
	n = H5Sget_simple_extent_npoints(sp);
	assert_true(n > 0);
	buf = malloc((size_t)n * sizeof(double));
	assert_non_null(buf);
	for (i = 0; i < n; i++)
		buf[i] = v;
	assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
	free(buf);
	H5Sclose(sp);
	H5Dclose(d);
	H5Fclose(f);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
	tu_result r;
	char *d;

	(void)state;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	dir = tu_tmpdir();
	clean = tu_path(dir, "clean");
	r = tu_run("mock", clean, "--gas", "4000", "--halos", "3", "--small-halos", "2", "--files",
		   "3", "--seed", "7", NULL);
	if (r.status != 0)
		fail_msg("mock: %s", r.err);
	tu_result_free(&r);
	goodrun = tu_path(dir, "goodrun");
	d = copy_mock("good-mock");
	r = tu_run("run", "--base-path", d, "--snap", "99", "--out", goodrun, NULL);
	if (r.status != 0)
		fail_msg("run: %s", r.err);
	tu_result_free(&r);
	free(d);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	free(dir);
	free(clean);
	free(goodrun);
	return 0;
}

/* ---- snapshot and catalogue ------------------------------------------------------------------ */

static void test_snapshot_files(void **state)
{
	hsize_t dims[2];
	uint64_t v[6];
	char *b, *p;

	(void)state;
	b = copy_mock("missing-chunk");
	p = SNAP(b, 2);
	assert_int_equal(unlink(p), 0);
	run_case("missing-chunk", b, 2, N(p), NULL);
	free(p);
	free(b);

	b = copy_mock("missing-groups");
	p = GROUPS(b, 1);
	assert_int_equal(unlink(p), 0);
	run_case("missing-groups", b, 2, N(p), NULL);
	free(p);
	free(b);

	b = copy_mock("coord-int");
	p = SNAP(b, 0);
	h5_read_attr6(p, "NumPart_ThisFile", v);
	dims[0] = v[0];
	dims[1] = 3;
	h5_replace(p, "/PartType0/Coordinates", H5T_STD_I32LE, 2, dims, 10.0);
	run_case("coord-int", b, 2, N(p, "Coordinates", "int"), NULL);
	free(p);
	free(b);

	b = copy_mock("coord-rank");
	p = SNAP(b, 2);
	h5_read_attr6(p, "NumPart_ThisFile", v);
	dims[0] = v[0];
	h5_replace(p, "/PartType0/Coordinates", H5T_IEEE_F32LE, 1, dims, 10.0);
	run_case("coord-rank-chunk2", b, 2, N(p, "Coordinates"), NULL);
	free(p);
	free(b);

	b = copy_mock("no-energy-chunk2");
	p = SNAP(b, 2);
	h5_delete(p, "/PartType0/InternalEnergy");
	run_case("no-energy-chunk2", b, 2, N(p, "InternalEnergy"), NULL);
	free(p);
	free(b);

	b = copy_mock("bad-sum");
	p = SNAP(b, 2);
	h5_read_attr6(p, "NumPart_ThisFile", v);
	v[0] += 7;
	h5_attr6(p, "NumPart_ThisFile", H5T_STD_I32LE, v);
	run_case("bad-sum-3-files", b, 2, N("NumPart_Total[0]"), NULL);
	free(p);
	free(b);

	b = copy_mock("trunc-chunk2");
	p = SNAP(b, 2);
	assert_int_equal(truncate(p, 1000), 0);
	run_case("truncated-chunk2", b, 2, N(p), NULL);
	free(p);
	free(b);

	b = copy_mock("no-mass");
	p = GROUPS(b, 0);
	h5_delete(p, "/Group/Group_M_Crit200");
	run_case("no-Group_M_Crit200", b, 2, N(p, "Group_M_Crit200"), NULL);
	free(p);
	free(b);
	tu_soft_done("bad-input case");
}

static void test_bad_values(void **state)
{
	static const struct {
		const char *name;
		double v;
	} energy[] = { { "energy-nan", NAN }, { "energy-inf", INFINITY }, { "energy-neg", -5.0 } };
	size_t i;
	char *b, *p;

	(void)state;
	for (i = 0; i < sizeof(energy) / sizeof(energy[0]); i++) {
		b = copy_mock(energy[i].name);
		p = SNAP(b, 0);
		h5_poke(p, "/PartType0/InternalEnergy", 5, energy[i].v);
		run_case(energy[i].name, b, 2, N(p, "InternalEnergy"), NULL);
		free(p);
		free(b);
	}

	b = copy_mock("r200-zero");
	p = GROUPS(b, 0);
	h5_poke(p, "/Group/Group_R_Crit200", -1, 0.0);
	run_case("r200-zero", b, 2, N(p, "Group_R_Crit200"), NULL);
	free(p);
	free(b);

	b = copy_mock("r200-nan");
	p = GROUPS(b, 0);
	h5_poke(p, "/Group/Group_R_Crit200", -1, NAN);
	run_case("r200-nan", b, 2, N(p, "Group_R_Crit200"), NULL);
	free(p);
	free(b);
	tu_soft_done("bad-input case");
}

static void test_overflow(void **state)
{
	uint64_t v[6] = { 0 }, hw[6] = { 0 };
	char *b, *p, *cmd;
	int i;

	(void)state;
	/* 2^62 - 1 gas cells: 12 bytes each of positions alone overflows 64 bits */
	b = copy_mock("overflow");
	for (i = 0; i < 3; i++) {
		p = SNAP(b, i);
		h5_read_attr6(p, "NumPart_Total", v);
		v[0] = UINT32_MAX;
		hw[0] = (UINT64_C(1) << 30) - 1;
		h5_attr6(p, "NumPart_Total", H5T_STD_U32LE, v);
		h5_attr6(p, "NumPart_Total_HighWord", H5T_STD_U32LE, hw);
		free(p);
	}
	p = SNAP(b, 0);
	run_case("overflow-run", b, 2, N(b, "overflow"), NULL);
	cmd = tu_fmt("%s", p);
	cli_case("overflow-info", 2, N(p, "overflow"), A("info", "--snapshot", cmd));
	free(cmd);
	free(p);
	free(b);
	tu_soft_done("bad-input case");
}

/* ---- honest empty results -------------------------------------------------------------------- */

/* An honest empty result: exit 0, stdout says so (say), memory.json complete; no_halos: run.empty
 * true and no halo rows, else run.gas_cells 0. */
static void expect_empty(const char *name, const char *base, const char *const *extra,
			 const char *say, int no_halos)
{
	char *out = tu_fmt("%s/out-%s", dir, name), *mp, *text;
	char *argv[16];
	json_t *j, *run;
	json_error_t e;
	tu_result r;
	int n = 0, i;

	count_case(name);
	argv[n++] = "run";
	argv[n++] = "--base-path";
	argv[n++] = (char *)base;
	argv[n++] = "--snap";
	argv[n++] = "99";
	for (i = 0; extra != NULL && extra[i] != NULL; i++)
		argv[n++] = (char *)extra[i];
	argv[n++] = "--out";
	argv[n++] = out;
	argv[n] = NULL;
	r = tu_runv(argv);
	if (r.status != 0 || strstr(r.out, "empty result") == NULL || strstr(r.out, say) == NULL ||
	    tu_count_lines(r.err) != 0) {
		tu_soft_fail(name, "status %d, stdout '%s', stderr '%s'", r.status, r.out, r.err);
		tu_result_free(&r);
		free(out);
		return;
	}
	tu_result_free(&r);
	mp = tu_path(out, "memory.json");
	j = json_load_file(mp, 0, &e);
	if (j == NULL)
		fail_msg("%s: %s: %s", name, mp, e.text);
	run = json_object_get(j, "run");
	if (no_halos) {
		assert_true(json_is_true(json_object_get(run, "empty")));
		assert_int_equal(json_array_size(json_object_get(run, "halos")), 0);
	} else {
		assert_int_equal(json_integer_value(json_object_get(run, "gas_cells")), 0);
	}
	assert_true(json_is_true(json_object_get(j, "complete")));
	json_decref(j);
	text = tu_path(out, "profiles.hdf5");
	assert_true(tu_exists(text));
	free(text);
	free(mp);
	free(out);
}

static void test_empty_results(void **state)
{
	char *b, *p, *g;
	tu_result r;
	int i;

	(void)state;
	/* zero gas cells: every chunk says 0 and holds no PartType0 */
	b = copy_mock("zero-gas");
	for (i = 0; i < 3; i++) {
		uint64_t v[6];

		p = SNAP(b, i);
		h5_read_attr6(p, "NumPart_Total", v);
		v[0] = 0;
		h5_attr6(p, "NumPart_Total", H5T_STD_U32LE, v);
		h5_read_attr6(p, "NumPart_ThisFile", v);
		v[0] = 0;
		h5_attr6(p, "NumPart_ThisFile", H5T_STD_I32LE, v);
		{
			hid_t f = open_rw(p);

			if (H5Lexists(f, "PartType0", H5P_DEFAULT) > 0)
				H5Ldelete(f, "PartType0", H5P_DEFAULT);
			H5Fclose(f);
		}
		free(p);
	}
	expect_empty("zero-gas", b, NULL, "no gas cells", 0);
	free(b);

	/* an empty catalogue */
	g = tu_path(dir, "empty-cat");
	r = tu_run("mock", g, "--gas", "3000", "--halos", "0", "--small-halos", "0", "--files",
		   "3", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	expect_empty("empty-catalogue", g, NULL, "no halo matched", 1);
	free(g);

	/* a selection of nothing by count (the mass-cut case is in test-cli-run.c) */
	b = copy_mock("halos-0");
	expect_empty("halos-0", b, N("--halos", "0"), "no halo matched", 1);
	free(b);
	tu_soft_done("bad-input case");
}

/* ---- --out ----------------------------------------------------------------------------------- */

static void test_out(void **state)
{
	char *file = tu_path(dir, "out-file"), *used = tu_path(dir, "out-used"), *s, *got, *b;
	char *under = tu_fmt("%s/sub", file);
	tu_result r;

	(void)state;
	b = copy_mock("out-mock");
	put(file, "sentinel\n", 9);
	count_case("out-is-a-file");
	r = tu_run("run", "--base-path", b, "--snap", "99", "--out", file, NULL);
	expect_line(&r, 2, N(file, "not a directory"), "out-is-a-file");
	tu_result_free(&r);
	got = tu_read_file(file, NULL);
	assert_string_equal(got, "sentinel\n");
	free(got);

	assert_int_equal(mkdir(used, 0777), 0);
	s = tu_path(used, "profiles.hdf5");
	put(s, "sentinel\n", 9);
	count_case("out-used");
	r = tu_run("run", "--base-path", b, "--snap", "99", "--out", used, NULL);
	expect_line(&r, 2, N(used, "not empty"), "out-used");
	tu_result_free(&r);
	got = tu_read_file(s, NULL);
	assert_string_equal(got, "sentinel\n");
	assert_int_equal(tu_entries(used), 1);
	free(got);
	free(s);

	count_case("out-under-a-file");
	r = tu_run("run", "--base-path", b, "--snap", "99", "--out", under, NULL);
	expect_line(&r, 2, N(under), "out-under-a-file");
	tu_result_free(&r);
	got = tu_read_file(file, NULL);
	assert_string_equal(got, "sentinel\n");
	free(got);

	count_case("out-in-proc");
	r = tu_run("run", "--base-path", b, "--snap", "99", "--out", "/proc/snapmem-run", NULL);
	expect_line(&r, 2, N("/proc/snapmem-run"), "out-in-proc");
	tu_result_free(&r);
	assert_false(tu_exists("/proc/snapmem-run"));
	free(b);
	free(under);
	free(file);
	free(used);
	tu_soft_done("bad-input case");
}

/* ---- garbage numbers and sizes on every command ------------------------------------------------ */

static void test_garbage_numbers(void **state)
{
	char *m = tu_path(dir, "garbage-mock"), *b = copy_mock("garbage"), *o = tu_path(dir, "g.out");
	char *got;

	(void)state;
	cli_case("mock-gas-12x", 2, N("--gas", "12x"), A("mock", m, "--gas", "12x"));
	cli_case("mock-files-0", 2, N("--files"), A("mock", m, "--files", "0"));
	cli_case("mock-seed-neg", 2, N("--seed", "-1"), A("mock", m, "--seed", "-1"));
	cli_case("mock-box-nan", 2, N("--box", "nan"), A("mock", m, "--box", "nan"));
	assert_false(tu_exists(m));
	cli_case("info-snap-9x9", 2, N("--snap", "9x9"), A("info", "--base-path", b, "--snap", "9x9"));
	cli_case("info-mass-inf", 2, N("--mass-min", "inf"),
		 A("info", "--base-path", b, "--snap", "99", "--mass-min", "inf"));
	run_case("run-snap-neg", b, 2, N("--snap"), N("--snap", "-1"));
	run_case("run-max-mem-0", b, 2, N("--max-mem", "more than 0"), N("--max-mem", "0B"));
	run_case("run-max-mem-1.5.5G", b, 2, N("--max-mem", "1.5.5G"), N("--max-mem", "1.5.5G"));
	run_case("run-stream-block-1e400", b, 2, N("--stream-block", "1e400"),
		 N("--stream-block", "1e400"));
	run_case("run-halos-huge", b, 2, N("--halos", "99999999999999999999"),
		 N("--halos", "99999999999999999999"));
	put(o, "sentinel\n", 9);
	cli_case("estimate-ranks", 2, N("--ranks", "1048577"),
		 A("estimate", "--ranks", "1048577", "-o", o));
	cli_case("estimate-node-mem-neg", 2, N("--node-mem", "-5G"),
		 A("estimate", "--node-mem", "-5G", "-o", o));
	cli_case("report-tolerance-nan", 2, N("--tolerance", "nan"),
		 A("report", goodrun, "--tolerance", "nan", "-o", o));
	cli_case("report-tolerance-1e999", 2, N("--tolerance", "1e999"),
		 A("report", goodrun, "--tolerance", "1e999", "-o", o));
	got = tu_read_file(o, NULL);
	assert_string_equal(got, "sentinel\n");
	free(got);
	free(o);
	free(m);
	free(b);
	tu_soft_done("bad-input case");
}

/* ---- foreign and malformed JSON ------------------------------------------------------------------ */

/* A copy of the good run directory with one file replaced by text (NULL: a directory). */
static char *bad_rundir(const char *name, const char *file, const char *text, size_t n)
{
	char *d = tu_path(dir, name), *cmd = tu_fmt("cp -r '%s' '%s'", goodrun, d), *p;

	assert_int_equal(system(cmd), 0);
	free(cmd);
	p = tu_path(d, file);
	assert_int_equal(unlink(p), 0);
	if (text != NULL)
		put(p, text, n);
	else
		assert_int_equal(mkdir(p, 0777), 0);
	free(p);
	return d;
}

static void report_case(const char *name, const char *file, const char *text, size_t n,
			const char *const *needles)
{
	char *d = bad_rundir(name, file, text, n), *p = tu_path(d, file), *o = tu_path(dir, "r.out");
	char *got;
	const char *const *nn = needles;
	const char *all[8];
	int k = 0;

	all[k++] = p;
	while (*nn != NULL && k < 7)
		all[k++] = *nn++;
	all[k] = NULL;
	put(o, "sentinel\n", 9);
	cli_case(name, 2, all, A("report", d, "-o", o));
	got = tu_read_file(o, NULL);
	assert_string_equal(got, "sentinel\n");
	assert_int_equal(tu_entries(d), 5); /* the five files of the run, no temporary one */
	free(got);
	free(o);
	free(p);
	free(d);
}

static void test_report_json(void **state)
{
	char *est, *stages, *mem;
	json_t *j;
	json_error_t e;
	char *p;

	(void)state;
	report_case("report-array", "estimate.json", "[1, 2, 3]\n", 10, N("not a JSON object"));
	report_case("report-empty", "estimate.json", "", 0, N("malformed JSON"));
	report_case("report-binary", "estimate.json", "\x89HDF\r\n\x1a\n\0\0\0", 11,
		    N("malformed JSON"));
	report_case("report-dir", "estimate.json", NULL, 0, N("not a regular file"));

	/* an estimate.json whose "stages" is an object */
	p = tu_path(goodrun, "estimate.json");
	j = json_load_file(p, 0, &e);
	assert_non_null(j);
	free(p);
	json_object_set_new(j, "stages", json_object());
	est = json_dumps(j, 0);
	json_decref(j);
	report_case("report-stages-object", "estimate.json", est, strlen(est), N("stages"));
	free(est);

	/* a memory.json of another tool claiming the schema */
	mem = "{\"schema\": \"snapmem.memory/1\", \"tool\": \"memray\", \"peak\": 12}";
	report_case("report-foreign-memory", "memory.json", mem, strlen(mem), N("memory.json"));
	(void)stages;
	tu_soft_done("bad-input case");
}

static void calibrate_case(const char *name, const char *text, size_t n, int with_base,
			   const char *const *needles)
{
	char *d = tu_path(dir, name), *p = tu_path(d, "memory.json"), *o = tu_path(dir, "c.out");
	char *bn = tu_fmt("%s-mock", name), *b = with_base ? copy_mock(bn) : NULL, *got;
	const char *all[8];
	int k = 0;

	assert_int_equal(mkdir(d, 0777), 0);
	put(p, text, n);
	put(o, "sentinel\n", 9);
	all[k++] = p;
	while (*needles != NULL && k < 7)
		all[k++] = *needles++;
	all[k] = NULL;
	if (b != NULL)
		cli_case(name, 2, all, A("estimate", "--base-path", b, "--snap", "99", "--calibrate", d,
					 "-o", o));
	else
		cli_case(name, 2, all, A("estimate", "--calibrate", d, "-o", o));
	got = tu_read_file(o, NULL);
	assert_string_equal(got, "sentinel\n");
	free(got);
	free(o);
	free(p);
	free(d);
	free(b);
	free(bn);
}

static void test_calibrate_json(void **state)
{
	static const char neg[] = "{\"run\": {\"halos\": [{\"instance\": 0, \"sphere_cells\": -4}]}}";
	static const char str[] = "{\"run\": {\"halos\": [{\"instance\": 0, \"sphere_cells\": \"9\"}]}}";
	static const char other[] =
		"{\"run\": {\"halos\": [{\"instance\": 0, \"group_index\": 4, \"sphere_cells\": 9}]}}";
	static const char big[] = "{\"run\": {\"halos\": [{\"instance\": 0, \"sphere_cells\": "
				  "9223372036854775807}]}}";

	(void)state;
	calibrate_case("calibrate-array", "[{\"run\": 1}]", 12, 0, N("run.halos"));
	calibrate_case("calibrate-negative", neg, strlen(neg), 0, N("sphere_cells"));
	calibrate_case("calibrate-string", str, strlen(str), 0, N("sphere_cells"));
	calibrate_case("calibrate-empty", "", 0, 0, N("--calibrate"));
	calibrate_case("calibrate-other-groups", other, strlen(other), 1, N("group"));
	calibrate_case("calibrate-huge", big, strlen(big), 0, N("sphere_cells"));
	tu_soft_done("bad-input case");
}

/* Geometry and bookkeeping that other codes get wrong: positions and centres outside the box or
 * NaN, a box of size 0, a file count of 0 or 2^31 - 1, more groups declared than stored. */
static void test_bad_geometry(void **state)
{
	static const struct {
		const char *name, *obj;
		int groups;
		double v;
		const char *needle;
	} fills[] = {
		{ "coords-nan", "/PartType0/Coordinates", 0, NAN, "Coordinates" },
		{ "coords-outside", "/PartType0/Coordinates", 0, 1e30, "Coordinates" },
		{ "grouppos-nan", "/Group/GroupPos", 1, NAN, "GroupPos" },
	};
	static const struct {
		const char *name, *attr;
		int groups;
		hid_t *type;
		double v;
		const char *needle;
	} attrs[] = {
		{ "box-zero", "BoxSize", 0, &H5T_IEEE_F64LE_g, 0.0, "BoxSize" },
		{ "box-nan", "BoxSize", 0, &H5T_IEEE_F64LE_g, NAN, "BoxSize" },
		{ "numfiles-0", "NumFilesPerSnapshot", 0, &H5T_STD_I32LE_g, 0, "NumFilesPerSnapshot" },
		{ "numfiles-huge", "NumFilesPerSnapshot", 0, &H5T_STD_I32LE_g, 2147483647.0,
		  "NumFilesPerSnapshot" },
		{ "hubble-zero", "HubbleParam", 2, &H5T_IEEE_F64LE_g, 0.0, "HubbleParam" },
		{ "ngroups-huge", "Ngroups_Total", 1, &H5T_STD_I64LE_g, 1e15, "Ngroups_Total" },
	};
	size_t i;
	int k;
	char *b, *p;

	(void)state;
	H5open();
	for (i = 0; i < sizeof(fills) / sizeof(fills[0]); i++) {
		b = copy_mock(fills[i].name);
		p = fills[i].groups ? GROUPS(b, 0) : SNAP(b, 0);
		h5_fill(p, fills[i].obj, fills[i].v);
		run_case(fills[i].name, b, 2, N(p, fills[i].needle), NULL);
		free(p);
		free(b);
	}
	for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		b = copy_mock(attrs[i].name);
		for (k = 0; k < 5; k++) { /* 3 snapshot chunks, 2 catalogue chunks; 2: both */
			if ((k < 3 && attrs[i].groups == 1) || (k >= 3 && attrs[i].groups == 0))
				continue;
			p = k < 3 ? SNAP(b, k) : GROUPS(b, k - 3);
			h5_attr1(p, attrs[i].attr, *attrs[i].type, attrs[i].v);
			free(p);
		}
		run_case(attrs[i].name, b, 2, N(b, attrs[i].needle), NULL);
		free(b);
	}
	tu_soft_done("bad-input case");
}

/* Open pipeline bug: a halo centre 1e30 outside the box is wrapped and used. */
static void test_pipeline_grouppos_outside(void **state)
{
	char *b = copy_mock("grouppos-outside"), *p = GROUPS(b, 0);

	(void)state;
	h5_fill(p, "/Group/GroupPos", -1e30);
	run_case("grouppos-outside", b, 2, N(p, "GroupPos"), NULL);
	free(p);
	free(b);
	tu_soft_done("bad-input case");
}

static void test_count(void **state)
{
	int i;

	(void)state;
	printf("bad-input cases here: %d (", ncases);
	for (i = 0; i < ncases && i < 64; i++)
		printf("%s%s", i ? ", " : "", names[i]);
	printf(")\n");
	assert_true(ncases >= 59);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_files),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_empty_results),
		cmocka_unit_test(test_out),
		cmocka_unit_test(test_garbage_numbers),
		cmocka_unit_test(test_report_json),
		cmocka_unit_test(test_calibrate_json),
		cmocka_unit_test(test_bad_geometry),
		cmocka_unit_test(test_pipeline_grouppos_outside),
		cmocka_unit_test(test_count),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
