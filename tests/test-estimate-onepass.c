/*
 * The estimator reads a small catalogue in one pass over its chunk files (estimator/input.c,
 * ONE_PASS_GROUPS) instead of scanning every chunk header first and reading the columns after.
 * It must answer exactly as the scan-first order (which --mpi keeps) does: the same halos, the
 * same Gc (groups_chunk_max), and, on a damaged catalogue, the same one-line error, whichever
 * fault comes first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "snapmem/estimator.h"
#include "snapmem/mock.h"

#include "util.h"

static char *cat_path(const char *base, int i)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "groups_099/fof_subhalo_tab_099.%d.hdf5", i);
	return tu_path(base, rel);
}

static char *make_mock(void)
{
	char *d = tu_tmpdir();
	sm_mock_options mo;
	sm_error err;

	sm_mock_options_init(&mo);
	mo.gas = 20000;
	mo.halos = 9;
	mo.files = 8; /* a catalogue of 4 chunk files, one of them empty */
	if (sm_mock_write(d, &mo, &err) != 0)
		fail_msg("mock: %s", err.msg);
	return d;
}

/* Rewrites the integer attribute /Header/name of catalogue chunk i. */
static void set_attr(const char *base, int i, const char *name, long long v)
{
	char *p = cat_path(base, i);
	hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT), g, a;

	assert_true(f >= 0);
	g = H5Gopen2(f, "Header", H5P_DEFAULT);
	a = H5Aopen(g, name, H5P_DEFAULT);
	assert_true(a >= 0);
	assert_true(H5Awrite(a, H5T_NATIVE_LLONG, &v) >= 0);
	H5Aclose(a);
	H5Gclose(g);
	H5Fclose(f);
	free(p);
}

static long long get_attr(const char *base, int i, const char *name)
{
	char *p = cat_path(base, i);
	hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT), g, a;
	long long v = -1;

	assert_true(f >= 0);
	g = H5Gopen2(f, "Header", H5P_DEFAULT);
	a = H5Aopen(g, name, H5P_DEFAULT);
	assert_true(H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0);
	H5Aclose(a);
	H5Gclose(g);
	H5Fclose(f);
	free(p);
	return v;
}

/* Ngroups_Total in every chunk's header (they must agree with each other). */
static void set_total(const char *base, long long v)
{
	int i;

	for (i = 0; i < 4; i++)
		set_attr(base, i, "Ngroups_Total", v);
}

/* The estimator's input from base, one pass (mpi 0) and scan first (mpi 1): the same outcome. */
static int both_orders(const char *base, char *msg, size_t len)
{
	sm_est_input a, b;
	sm_model_options o;
	sm_error ea, eb;
	int ra, rb;
	uint64_t i;

	sm_model_options_init(&o);
	o.mpi = 0;
	ra = sm_est_input_from_base(&a, base, 99, &o, &ea);
	o.mpi = 1;
	rb = sm_est_input_from_base(&b, base, 99, &o, &eb);
	assert_int_equal(ra, rb);
	if (ra != 0) {
		assert_string_equal(ea.msg, eb.msg);
		snprintf(msg, len, "%s", ea.msg);
		return ra;
	}
	assert_int_equal(a.groups_total, b.groups_total);
	assert_int_equal(a.groups_chunk_max, b.groups_chunk_max);
	assert_true(a.groups_chunk_max > 0);
	assert_int_equal(a.nhalos, b.nhalos);
	assert_true(a.nhalos > 0);
	for (i = 0; i < a.nhalos; i++) {
		assert_int_equal(a.halos[i].group_index, b.halos[i].group_index);
		assert_memory_equal(&a.halos[i].m200_msun, &b.halos[i].m200_msun, sizeof(double));
		assert_memory_equal(&a.halos[i].r200, &b.halos[i].r200, sizeof(double));
	}
	sm_est_input_release(&a);
	sm_est_input_release(&b);
	return 0;
}

static void test_same_answer(void **state)
{
	char *d = make_mock(), msg[SM_ERROR_MSG_MAX];

	(void)state;
	assert_int_equal(both_orders(d, msg, sizeof(msg)), 0);
	tu_rmtree(d);
	free(d);
}

static void test_same_errors(void **state)
{
	char *d = make_mock(), msg[SM_ERROR_MSG_MAX], *p, *q;
	long long total = get_attr(d, 0, "Ngroups_Total");

	(void)state;
	/* The chunks add up to more than Ngroups_Total: the scan's message, not the pass's. */
	set_total(d, total - 1);
	assert_int_equal(both_orders(d, msg, sizeof(msg)), SM_EFORMAT);
	assert_non_null(strstr(msg, "but Ngroups_Total is"));
	/* ... and to less. */
	set_total(d, total + 1);
	assert_int_equal(both_orders(d, msg, sizeof(msg)), SM_EFORMAT);
	assert_non_null(strstr(msg, "but Ngroups_Total is"));
	set_total(d, total);
	/* Chunk 2's header disagrees with its columns (the total agrees with the headers), and
	 * chunk 3 is missing: the scan, reading headers only, meets the missing file first, so
	 * the one pass, which fails at chunk 2's columns, must answer with the scan's error. */
	set_attr(d, 2, "Ngroups_ThisFile", get_attr(d, 2, "Ngroups_ThisFile") + 1);
	set_total(d, total + 1);
	p = cat_path(d, 3);
	q = tu_path(d, "moved.hdf5");
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(both_orders(d, msg, sizeof(msg)), SM_ENOTFOUND);
	assert_non_null(strstr(msg, "fof_subhalo_tab_099.3.hdf5"));
	/* With every file there, the disagreeing columns (the same error either way). */
	assert_int_equal(rename(q, p), 0);
	assert_int_equal(both_orders(d, msg, sizeof(msg)), SM_EFORMAT);
	assert_non_null(strstr(msg, "fof_subhalo_tab_099.2.hdf5"));
	free(p);
	free(q);
	tu_rmtree(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_answer),
		cmocka_unit_test(test_same_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
