/*
 * profiles.hdf5's writer (src/pipeline/profiles.c) called directly: the serial run's one row at a
 * time (each dataset's rows gathered into its chunk, the chunk written when full or when it holds
 * the last row) against the distributed run's K rows at once, across the 2-D datasets' 16-row and
 * the 1-D datasets' 256-row chunks: the same values, read back with HDF5; a commit with fewer
 * rows than created (the chunks being filled are written, the extent shrinks to the rows
 * written); a row past the rows the file was created with refused with the file named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <hdf5.h>

#include "pipeline/internal.h"
#include "snapmem/model.h"
#include "util.h"

#define HB SM_MODEL_HISTOGRAM_BYTES
#define RB (SM_MODEL_RBINS * 8u)

/* Row i's values, distinct in every dataset and element. */
static void row_values(uint64_t i, int64_t *gi, double c[3], double *r200, double *m200,
		       unsigned char *hist)
{
	int64_t *counts = (int64_t *)(void *)hist, *sf = counts + SM_MODEL_RBINS;
	double *mean = (double *)(void *)(sf + SM_MODEL_RBINS);
	int64_t *h2 = (int64_t *)(void *)(mean + SM_MODEL_RBINS);
	int b;

	*gi = 1000 + (int64_t)i;
	c[0] = (double)i;
	c[1] = 2.0 * (double)i + 0.25;
	c[2] = 3.0 * (double)i + 0.5;
	*r200 = 0.5 + (double)i;
	*m200 = 1e12 + (double)i;
	for (b = 0; b < SM_MODEL_RBINS; b++) {
		counts[b] = (int64_t)i * 100 + b;
		sf[b] = (int64_t)i * 100 + b + 7;
		mean[b] = (double)i + b / 64.0;
	}
	for (b = 0; b < SM_MODEL_RBINS * SM_MODEL_TBINS; b++)
		h2[b] = (int64_t)i * 7 + b;
}

/* A writer of `rows` rows in dir, the first `n` appended one at a time (by_one) or at once; then
 * committed; returns the file's path. */
static char *write_file(const char *dir, uint64_t rows, uint64_t n, int by_one)
{
	int64_t *gi = calloc(n, sizeof(int64_t));
	double *c = calloc(3 * n, sizeof(double)), *r = calloc(n, sizeof(double));
	double *m = calloc(n, sizeof(double));
	unsigned char *h = calloc(n, HB);
	char path[4096];
	sm__pl_out *o = NULL;
	sm_error err;
	uint64_t i;

	assert_non_null(gi);
	assert_non_null(c);
	assert_non_null(r);
	assert_non_null(m);
	assert_non_null(h);
	sm_error_clear(&err);
	for (i = 0; i < n; i++)
		row_values(i, &gi[i], &c[3 * i], &r[i], &m[i], h + i * HB);
	assert_int_equal(sm__pl_out_create(&o, dir, rows, 0, NULL, 0, &err), 0);
	if (by_one) {
		for (i = 0; i < n; i++)
			assert_int_equal(sm__pl_out_append(o, gi[i], &c[3 * i], r[i], m[i],
							   h + i * HB, &err), 0);
	} else {
		assert_int_equal(sm__pl_out_append_rows(o, n, gi, c, r, m, h, &err), 0);
	}
	assert_int_equal(sm__pl_out_commit(o, path, sizeof(path), &err), 0);
	free(gi);
	free(c);
	free(r);
	free(m);
	free(h);
	return strdup(path);
}

/* Dataset name of the file at path: its first dimension and its elements (8 bytes each). */
static void *read_ds(const char *path, const char *name, hsize_t *rows, size_t *elems)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d, s;
	hsize_t dims[3] = {0, 1, 1};
	void *buf;
	int rank;

	assert_true(f >= 0);
	d = H5Dopen2(f, name, H5P_DEFAULT);
	assert_true(d >= 0);
	s = H5Dget_space(d);
	rank = H5Sget_simple_extent_dims(s, dims, NULL);
	assert_true(rank >= 1);
	*rows = dims[0];
	*elems = (size_t)(dims[0] * (rank > 1 ? dims[1] : 1) * (rank > 2 ? dims[2] : 1));
	buf = malloc(*elems * 8 + 8);
	assert_non_null(buf);
	assert_true(H5Dread(d, H5Tget_class(H5Dget_type(d)) == H5T_INTEGER ? H5T_NATIVE_INT64
									  : H5T_NATIVE_DOUBLE,
			    H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
	H5Sclose(s);
	H5Dclose(d);
	H5Fclose(f);
	return buf;
}

/* Every dataset of the file holds rows [0, n) as row_values makes them. */
static void check_file(const char *path, uint64_t n)
{
	static const char *names[] = {"halo_index", "center", "r200", "m200", "counts",
				      "sf_counts", "mean_temperature", "hist2d"};
	unsigned char *h = malloc(HB);
	size_t k;
	uint64_t i;

	assert_non_null(h);
	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		hsize_t rows;
		size_t elems;
		unsigned char *got = read_ds(path, names[k], &rows, &elems);
		const size_t per = elems / (rows > 0 ? rows : 1);

		assert_int_equal(rows, n);
		for (i = 0; i < n; i++) {
			int64_t gi;
			double c[3], r, m;
			const void *want;

			row_values(i, &gi, c, &r, &m, h);
			want = k == 0 ? (void *)&gi : k == 1 ? (void *)c : k == 2 ? (void *)&r
			       : k == 3 ? (void *)&m : (void *)(h + (k - 4) * RB);
			if (memcmp(got + i * per * 8, want, per * 8) != 0)
				fail_msg("%s: row %llu differs", names[k], (unsigned long long)i);
		}
		free(got);
	}
	free(h);
}

static void test_one_at_a_time_and_at_once(void **state)
{
	const uint64_t sizes[] = {1, 15, 16, 17, 30, 256, 300};
	size_t s;

	(void)state;
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		char *dir = tu_tmpdir(), *d1 = tu_path(dir, "one"), *d2 = tu_path(dir, "all");
		char *p1, *p2;

		assert_int_equal(mkdir(d1, 0700), 0);
		assert_int_equal(mkdir(d2, 0700), 0);
		p1 = write_file(d1, sizes[s], sizes[s], 1);
		p2 = write_file(d2, sizes[s], sizes[s], 0);
		check_file(p1, sizes[s]);
		check_file(p2, sizes[s]);
		free(p1);
		free(p2);
		free(d1);
		free(d2);
		tu_rmtree(dir);
		free(dir);
	}
}

/* Fewer rows than the file was created with: the rows in the chunks being filled (14 of a
 * 16-row chunk, 14 of a 256-row chunk) are written at the commit. */
static void test_commit_short(void **state)
{
	char *dir = tu_tmpdir(), *p;

	(void)state;
	p = write_file(dir, 300, 270, 1);
	check_file(p, 270);
	free(p);
	tu_rmtree(dir);
	free(dir);
}

static void test_row_beyond(void **state)
{
	char *dir = tu_tmpdir();
	unsigned char *h = calloc(1, HB);
	double c[3] = {1, 2, 3};
	sm__pl_out *o = NULL;
	sm_error err;
	int i;

	(void)state;
	assert_non_null(h);
	sm_error_clear(&err);
	assert_int_equal(sm__pl_out_create(&o, dir, 3, 0, NULL, 0, &err), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(sm__pl_out_append(o, i, c, 1.0, 2.0, h, &err), 0);
	assert_int_equal(sm__pl_out_append(o, 3, c, 1.0, 2.0, h, &err), SM_EIO);
	assert_non_null(strstr(err.msg, "beyond the 3 rows"));
	assert_non_null(strstr(err.msg, ".profiles.hdf5"));
	sm__pl_out_abort(o);
	assert_int_equal(tu_entries(dir), 0);
	free(h);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_at_a_time_and_at_once),
		cmocka_unit_test(test_commit_short),
		cmocka_unit_test(test_row_beyond),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
