/*
 * Reading a run's profiles.hdf5 back in the tests (layout in docs/PIPELINE.md): every per-halo
 * dataset into malloc'd arrays, failing the test on anything missing or misshapen (K rows, chunked,
 * extendible along K), so that the serial, distributed and MPI tests compare results through one
 * reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <hdf5.h>

#include "snapmem/pipeline.h"

#include "util.h"

/* docs/PIPELINE.md: each per-halo dataset is chunked and extendible along K, with K rows. */
static void check_layout(hid_t f, const char *name, int rank, uint64_t k)
{
	hid_t d = H5Dopen2(f, name, H5P_DEFAULT), s, p;
	hsize_t dims[3], maxd[3];

	assert_true(d >= 0);
	s = H5Dget_space(d);
	p = H5Dget_create_plist(d);
	assert_int_equal(H5Sget_simple_extent_dims(s, dims, maxd), rank);
	assert_true(dims[0] == k);
	assert_true(maxd[0] == H5S_UNLIMITED);
	assert_int_equal(H5Pget_layout(p), H5D_CHUNKED);
	H5Pclose(p);
	H5Sclose(s);
	H5Dclose(d);
}

static void read_ds(hid_t f, const char *name, hid_t type, void *buf)
{
	hid_t d = H5Dopen2(f, name, H5P_DEFAULT);

	assert_true(d >= 0);
	assert_true(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
	H5Dclose(d);
}

void tu_profiles_read(const char *path, tu_profiles *po)
{
	const uint64_t rb = SM_MODEL_RBINS, tb = SM_MODEL_TBINS;
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d, s;
	hsize_t dims[3];
	uint64_t k;

	assert_true(f >= 0);
	d = H5Dopen2(f, "hist2d", H5P_DEFAULT);
	assert_true(d >= 0);
	s = H5Dget_space(d);
	assert_int_equal(H5Sget_simple_extent_dims(s, dims, NULL), 3);
	H5Sclose(s);
	H5Dclose(d);
	k = dims[0];
	po->k = k;
	po->group = calloc(k + 1, 8);
	po->center = calloc(3 * k + 1, 8);
	po->r200 = calloc(k + 1, 8);
	po->m200 = calloc(k + 1, 8);
	po->mean = calloc(k * rb + 1, 8);
	po->counts = calloc(k * rb + 1, 8);
	po->sf = calloc(k * rb + 1, 8);
	po->h2 = calloc(k * rb * tb + 1, 8);
	assert_true(po->group != NULL && po->center != NULL && po->r200 != NULL &&
		    po->m200 != NULL && po->mean != NULL && po->counts != NULL && po->sf != NULL &&
		    po->h2 != NULL);
	check_layout(f, "halo_index", 1, k);
	check_layout(f, "center", 2, k);
	check_layout(f, "r200", 1, k);
	check_layout(f, "m200", 1, k);
	check_layout(f, "counts", 2, k);
	check_layout(f, "sf_counts", 2, k);
	check_layout(f, "mean_temperature", 2, k);
	check_layout(f, "hist2d", 3, k);
	if (k > 0) {
		read_ds(f, "halo_index", H5T_NATIVE_INT64, po->group);
		read_ds(f, "center", H5T_NATIVE_DOUBLE, po->center);
		read_ds(f, "r200", H5T_NATIVE_DOUBLE, po->r200);
		read_ds(f, "m200", H5T_NATIVE_DOUBLE, po->m200);
		read_ds(f, "mean_temperature", H5T_NATIVE_DOUBLE, po->mean);
		read_ds(f, "counts", H5T_NATIVE_INT64, po->counts);
		read_ds(f, "sf_counts", H5T_NATIVE_INT64, po->sf);
		read_ds(f, "hist2d", H5T_NATIVE_INT64, po->h2);
	}
	H5Fclose(f);
}

void tu_profiles_free(tu_profiles *po)
{
	free(po->group);
	free(po->center);
	free(po->r200);
	free(po->m200);
	free(po->mean);
	free(po->counts);
	free(po->sf);
	free(po->h2);
}
