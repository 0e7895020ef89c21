/*
 * `snapmem info` and `snapmem mock` through the binary: usage and bad values (exit 2, one line),
 * the summary and info output on a mock (table and JSON), headers-only snapshots, and every bad
 * snapshot file giving exit 2 and exactly one stderr line naming the file and the fault.
 */
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

/* Expects exit 2 and one stderr line holding every NULL-terminated needle. */
static void expect_fail(tu_result *r, ...)
{
	va_list ap;
	const char *n;

	if (r->status != 2 || tu_count_lines(r->err) != 1)
		fail_msg("status %d, stderr '%s'", r->status, r->err);
	va_start(ap, r);
	while ((n = va_arg(ap, const char *)) != NULL)
		if (strstr(r->err, n) == NULL)
			fail_msg("'%s' not in stderr '%s'", n, r->err);
	va_end(ap);
	assert_string_equal(r->out, "");
	tu_result_free(r);
}

static void attr(hid_t loc, const char *name, hid_t ft, hid_t mt, int n, const void *v)
{
	hsize_t d = (hsize_t)n;
	hid_t sp = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &d, NULL);
	hid_t a = H5Acreate2(loc, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT);

	H5Awrite(a, mt, v);
	H5Aclose(a);
	H5Sclose(sp);
}

enum fault { OK, NO_HEADER, NO_TOTAL, TOTAL_SHAPE, TOTAL_FLOAT, COORD_1D, COORD_2, BAD_SUM };

/* A one-file snapshot of 10 gas cells with one fault. */
static char *bad_file(const char *dir, const char *name, enum fault fault)
{
	char *p = tu_path(dir, name);
	hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), h, g, sp, d;
	int32_t tf[6] = {10, 0, 0, 0, 0, 0}, one = 1;
	uint32_t tot[6] = {fault == BAD_SUM ? 12 : 10, 0, 0, 0, 0, 0};
	double totd[6] = {10, 0, 0, 0, 0, 0}, box = 100, c[30] = {0};
	hsize_t dims[2] = {10, fault == COORD_2 ? 2 : 3};

	if (fault != NO_HEADER) {
		h = H5Gcreate2(f, "Header", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
		attr(h, "NumPart_ThisFile", H5T_STD_I32LE, H5T_NATIVE_INT32, 6, tf);
		if (fault == TOTAL_FLOAT)
			attr(h, "NumPart_Total", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 6, totd);
		else if (fault == TOTAL_SHAPE)
			attr(h, "NumPart_Total", H5T_STD_U32LE, H5T_NATIVE_UINT32, 0, tot);
		else if (fault != NO_TOTAL)
			attr(h, "NumPart_Total", H5T_STD_U32LE, H5T_NATIVE_UINT32, 6, tot);
		attr(h, "NumFilesPerSnapshot", H5T_STD_I32LE, H5T_NATIVE_INT32, 0, &one);
		attr(h, "BoxSize", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &box);
		H5Gclose(h);
	}
	g = H5Gcreate2(f, "PartType0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	sp = H5Screate_simple(fault == COORD_1D ? 1 : 2, dims, NULL);
	d = H5Dcreate2(g, "Coordinates", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, c);
	H5Dclose(d);
	H5Sclose(sp);
	H5Gclose(g);
	H5Fclose(f);
	return p;
}

static void test_info_bad_files(void **state)
{
	char *d = tu_tmpdir(), *p;
	tu_result r;
	FILE *f;
	char *buf;
	size_t n;

	(void)state;
	p = bad_file(d, "good.hdf5", OK);
	r = tu_run("info", "--snapshot", p, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Coordinates"));
	tu_result_free(&r);
	/* truncated copy of the good file */
	f = fopen(p, "rb");
	buf = malloc(1 << 16);
	n = fread(buf, 1, 1 << 16, f);
	fclose(f);
	free(p);
	p = tu_path(d, "trunc.hdf5");
	f = fopen(p, "wb");
	fwrite(buf, 1, n / 2, f);
	fclose(f);
	free(buf);
	r = tu_run("info", "--snapshot", p, NULL);
	expect_fail(&r, p, "truncated", NULL);
	free(p);

	p = tu_path(d, "text.hdf5");
	f = fopen(p, "w");
	fputs("hello\n", f);
	fclose(f);
	r = tu_run("info", "--snapshot", p, NULL);
	expect_fail(&r, p, "not an HDF5 file", NULL);
	free(p);

	p = tu_path(d, "missing.hdf5");
	r = tu_run("info", "--snapshot", p, NULL);
	expect_fail(&r, p, "No such file", NULL);
	free(p);

#define BAD(name, fault, ...)                                                     \
	do {                                                                      \
		p = bad_file(d, name, fault);                                     \
		r = tu_run("info", "--snapshot", p, NULL);                         \
		expect_fail(&r, p, __VA_ARGS__, NULL);                            \
		free(p);                                                          \
	} while (0)
	BAD("nohdr.hdf5", NO_HEADER, "no /Header group");
	BAD("nototal.hdf5", NO_TOTAL, "'NumPart_Total' is missing");
	BAD("shape.hdf5", TOTAL_SHAPE, "'NumPart_Total' has 1 element", "expected 6");
	BAD("float.hdf5", TOTAL_FLOAT, "'NumPart_Total' is not an integer");
	BAD("c1.hdf5", COORD_1D, "/PartType0/Coordinates", "expected [N,3]");
	BAD("c2.hdf5", COORD_2, "/PartType0/Coordinates has shape [10,2], expected [N,3]");
	BAD("sum.hdf5", BAD_SUM, "adds up to 10, but NumPart_Total[0] is 12");
#undef BAD
	tu_rmtree(d);
	free(d);
}

static char *make_mock(const char *dir, const char *files)
{
	tu_result r = tu_run("mock", dir, "--gas", "20000", "--halos", "3", "--small-halos", "2",
			     "--files", files, "--seed", "5", NULL);

	if (r.status != 0)
		fail_msg("mock failed: %s", r.err);
	assert_non_null(strstr(r.out, "gas cells: 20,000"));
	assert_non_null(strstr(r.out, "chunk 1 holds no gas"));
	assert_non_null(strstr(r.out, "3 above 1e14 Msun, 2 below"));
	tu_result_free(&r);
	return tu_path(dir, "snapdir_099");
}

static void test_info_mock_base(void **state)
{
	char *d = tu_tmpdir(), *sd = make_mock(d, "6"), *p;
	tu_result r;
	json_t *j, *fields;
	json_error_t je;
	size_t i;
	int coords = 0;

	(void)state;
	r = tu_run("info", "--base-path", d, "--snap", "99", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "6 chunk files"));
	assert_non_null(strstr(r.out, "type 0: 20,000"));
	assert_non_null(strstr(r.out, "float64  [20000,3]"));
	assert_non_null(strstr(r.out, "468.75 KiB"));
	assert_non_null(strstr(r.out, "5 groups (Ngroups_Total), 3 above 1e+14 Msun"));
	tu_result_free(&r);
	r = tu_run("info", "--base-path", d, "--snap", "99", "--format", "json", "--mass-min",
		   "1e13", NULL);
	assert_int_equal(r.status, 0);
	j = json_loads(r.out, 0, &je);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "chunk_files")), 6);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "npart_total"), 0)),
			 20000);
	assert_true(json_is_false(json_object_get(j, "headers_only")));
	fields = json_object_get(j, "gas_fields");
	for (i = 0; i < json_array_size(fields); i++) {
		json_t *fl = json_array_get(fields, i);

		if (strcmp(json_string_value(json_object_get(fl, "name")), "Coordinates") == 0) {
			coords = 1;
			assert_string_equal(json_string_value(json_object_get(fl, "dtype")),
					    "float64");
			assert_int_equal(json_integer_value(json_object_get(fl, "bytes")), 480000);
		}
	}
	assert_true(coords);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "catalog"),
							    "ngroups_total")), 5);
	assert_true(json_integer_value(json_object_get(json_object_get(j, "catalog"),
						       "halos_above_mass_min")) >= 3);
	json_decref(j);
	tu_result_free(&r);

	/* a field missing in one chunk only, then a missing chunk file */
	{
		char *c3 = tu_path(sd, "snap_099.3.hdf5");
		hid_t f = H5Fopen(c3, H5F_ACC_RDWR, H5P_DEFAULT);

		assert_true(f >= 0);
		assert_true(H5Ldelete(f, "PartType0/Density", H5P_DEFAULT) >= 0);
		H5Fclose(f);
		r = tu_run("info", "--base-path", d, "--snap", "99", NULL);
		expect_fail(&r, c3, "no dataset /PartType0/Density", NULL);
		free(c3);
	}
	p = tu_path(sd, "snap_099.4.hdf5");
	assert_int_equal(unlink(p), 0);
	r = tu_run("info", "--base-path", d, "--snap", "99", NULL);
	expect_fail(&r, p, "No such file", NULL);
	free(p);
	r = tu_run("info", "--base-path", d, "--snap", "98", NULL);
	expect_fail(&r, d, "no snapshot 098", NULL);
	free(sd);
	tu_rmtree(d);
	free(d);
}

static void test_mock_header_only_cli(void **state)
{
	char *d = tu_tmpdir();
	tu_result r;

	(void)state;
	r = tu_run("mock", d, "--header-only", "--gas-total", "14454722210", "--files", "600",
		   "--halos", "280", "--box", "205000", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "headers only"));
	assert_non_null(strstr(r.out, "14,454,722,210"));
	tu_result_free(&r);
	r = tu_run("info", "--base-path", d, "--snap", "99", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "type 0: 14,454,722,210"));
	assert_non_null(strstr(r.out, "no datasets (headers only)"));
	assert_non_null(strstr(r.out, "560 groups (Ngroups_Total), 280 above"));
	tu_result_free(&r);
	r = tu_run("info", "--base-path", d, "--snap", "99", "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"headers_only\": true"));
	assert_non_null(strstr(r.out, "14454722210"));
	tu_result_free(&r);
	tu_rmtree(d);
	free(d);
}

static void test_usage(void **state)
{
	char *d = tu_tmpdir();
	tu_result r;

	(void)state;
	r = tu_run("mock", "-h", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "usage: snapmem mock"));
	tu_result_free(&r);
	r = tu_run("info", "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "usage: snapmem info"));
	tu_result_free(&r);
	r = tu_run("mock", NULL);
	expect_fail(&r, "missing OUT_DIR", NULL);
	r = tu_run("mock", d, "--gas", "12x", NULL);
	expect_fail(&r, "--gas", "12x", NULL);
	r = tu_run("mock", d, "--gas", "-5", NULL);
	expect_fail(&r, "--gas: '-5' is not a non-negative whole number", NULL);
	r = tu_run("mock", d, "--files", "0", NULL);
	expect_fail(&r, "--files 0", NULL);
	r = tu_run("mock", d, "--files", NULL);
	expect_fail(&r, "--files: missing value", NULL);
	r = tu_run("mock", d, "--box", "100", NULL);
	expect_fail(&r, "box size 100", NULL);
	r = tu_run("mock", d, "--header-only", NULL);
	expect_fail(&r, "--gas-total", NULL);
	r = tu_run("mock", d, "--gas-total", "5", NULL);
	expect_fail(&r, "--header-only", NULL);
	r = tu_run("mock", d, "--snap", "1000", NULL);
	expect_fail(&r, "--snap", NULL);
	r = tu_run("mock", d, "--bogus", NULL);
	expect_fail(&r, "unknown option '--bogus'", NULL);
	r = tu_run("info", NULL);
	expect_fail(&r, "--base-path", NULL);
	r = tu_run("info", "--base-path", d, NULL);
	expect_fail(&r, "--snap", NULL);
	r = tu_run("info", "--snapshot", "x.hdf5", "--format", "xml", NULL);
	expect_fail(&r, "'xml'", NULL);
	r = tu_run("info", "--snapshot", "x.hdf5", "--mass-min", "lots", NULL);
	expect_fail(&r, "--mass-min", NULL);
	tu_rmtree(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_info_bad_files),
		cmocka_unit_test(test_info_mock_base),
		cmocka_unit_test(test_mock_header_only_cli),
	};

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
