/*
 * The readers on files written by other programs (tests/data, provenance in tests/data/README.md): Paicos-rewritten AREPO
 * snapshots with int64 header counts and stale NumPart_ThisFile entries, and TNG100-1 group
 * catalogue chunks (int32 counts, one chunk empty). No HDF5 handle may stay open afterwards.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hdf5.h>

#include "snapmem/snapshot.h"
#include "util.h"

static void no_open_handles(void)
{
	assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

static void test_paicos_reduced(void **state)
{
	char *path = tu_real_data("reduced_snap_247.hdf5");
	sm_snapshot s;
	sm_field_info fi;
	sm_error err = {0};
	float *pos;
	double *dens;
	uint64_t i;

	(void)state;
	assert_int_equal(sm_snapshot_open_file(&s, path, &err), 0);
	assert_int_equal(s.nfiles, 1);
	assert_true(s.header.npart_total[0] == 12515);
	assert_true(s.header.npart_file0[0] == 12515);
	assert_true(s.header.npart_total[1] == 0);
	assert_true(s.header.has_highword);
	assert_true(s.header.has_units);
	assert_true(fabs(s.header.box_size - 1e6) < 1e-6);
	assert_true(fabs(s.header.hubble_param - 0.673212) < 1e-5);
	assert_int_equal(s.header.num_files, 1);

	assert_int_equal(sm_snapshot_field_info(&s, 0, "Coordinates", &fi, &err), 0);
	assert_int_equal(fi.ncomp, 3);
	assert_true(fi.count == 12515);
	assert_true(fi.bytes == 12515ull * 3 * sm_dtype_size(fi.disk_type));

	pos = malloc(12515 * 3 * sizeof(float));
	dens = malloc(12515 * sizeof(double));
	assert_non_null(pos);
	assert_non_null(dens);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Coordinates", SM_DTYPE_F32, 3, pos, NULL,
						&err), 0);
	for (i = 0; i < 12515 * 3; i++)
		assert_true(isfinite(pos[i]) && pos[i] >= 0 && pos[i] <= 1e6f);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Density", SM_DTYPE_F64, 1, dens, NULL,
						&err), 0);
	for (i = 0; i < 12515; i++)
		assert_true(dens[i] > 0);
	/* Coordinates is [N,3]: asking for [N] is a format error naming the file */
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Coordinates", SM_DTYPE_F32, 1, pos, NULL,
						&err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "reduced_snap_247.hdf5"));
	assert_non_null(strstr(err.msg, "expected [N]"));
	sm_snapshot_release(&s);
	no_open_handles();
	free(pos);
	free(dens);
	free(path);
}

static void test_paicos_stale_counts(void **state)
{
	char *path = tu_real_data("small_non_comoving_007.hdf5");
	sm_snapshot s;
	sm_error err = {0};
	char **names;
	size_t n, i;
	int has_coords = 0;

	(void)state;
	assert_int_equal(sm_snapshot_open_file(&s, path, &err), 0);
	assert_true(s.header.npart_total[0] == 33399);
	/* NumPart_ThisFile is int32 here and still lists 136 type-2 particles that were dropped */
	assert_true(s.header.npart_file0[2] == 136);
	assert_true(s.header.npart_total[2] == 0);
	assert_true(fabs(s.header.box_size - 0.0201) < 1e-9);
	assert_int_equal(sm_snapshot_scan(&s, &err), 0);
	assert_true(s.chunk_counts[0] == 33399);
	assert_true(s.chunk_counts[2] == 0);
	assert_int_equal(sm_snapshot_field_names(&s, 0, &names, &n, &err), 0);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++)
		has_coords |= strcmp(names[i], "Coordinates") == 0;
	assert_true(has_coords);
	sm_field_names_free(names, n);
	assert_int_equal(sm_snapshot_check_field(&s, 0, "Coordinates", 3, &err), 0);
	assert_int_equal(sm_snapshot_check_field(&s, 0, "Coordinates", 2, &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "[33399,3]"));
	sm_snapshot_release(&s);
	no_open_handles();
	free(path);
}

static void test_tng_group_chunk88(void **state)
{
	char *path = tu_real_data("fof_subhalo_tab_099.88.hdf5");
	sm_catalog c;
	sm_error err = {0};
	float m[4] = {0}, r[4] = {0}, pos[12] = {0};
	double md;

	(void)state;
	assert_int_equal(sm_catalog_open_file(&c, path, &err), 0);
	assert_true(c.ngroups_total == 6291349);
	assert_int_equal(c.num_files_header, 448);
	assert_int_equal(c.nfiles, 1);
	assert_true(c.ngroups_file0 == 1);
	assert_true(c.ngroups_read == 1);
	assert_true(fabs(c.hubble_param - 0.6774) < 1e-6);
	assert_int_equal(sm_catalog_read_group_field(&c, "Group_M_Crit200", SM_DTYPE_F32, 1, m,
						     &err), 0);
	assert_true(fabsf(m[0] - 3525.89f) < 0.01f);
	assert_true(m[1] == 0);
	assert_int_equal(sm_catalog_read_group_field(&c, "Group_M_Crit200", SM_DTYPE_F64, 1, &md,
						     &err), 0);
	assert_true(fabs(md - 3525.89) < 0.01);
	assert_int_equal(sm_catalog_read_group_field(&c, "Group_R_Crit200", SM_DTYPE_F32, 1, r,
						     &err), 0);
	assert_true(fabsf(r[0] - 533.314f) < 0.01f);
	assert_int_equal(sm_catalog_read_group_field(&c, "GroupPos", SM_DTYPE_F32, 3, pos, &err), 0);
	assert_true(pos[0] > 0 && pos[0] < 75000 && pos[3] == 0);
	/* wrong shape, integer field read into float, missing field */
	assert_int_equal(sm_catalog_read_group_field(&c, "GroupPos", SM_DTYPE_F32, 1, pos, &err),
			 SM_EFORMAT);
	assert_non_null(strstr(err.msg, "fof_subhalo_tab_099.88.hdf5"));
	assert_int_equal(sm_catalog_read_group_field(&c, "GroupLen", SM_DTYPE_F32, 1, pos, &err),
			 SM_EFORMAT);
	assert_non_null(strstr(err.msg, "cannot be read as float32"));
	assert_int_equal(sm_catalog_read_group_field(&c, "NoSuchField", SM_DTYPE_F32, 1, pos, &err),
			 SM_ENOTFOUND);
	sm_catalog_release(&c);
	no_open_handles();
	free(path);
}

static void test_tng_group_chunk2_empty(void **state)
{
	char *path = tu_real_data("fof_subhalo_tab_099.2.hdf5");
	sm_catalog c;
	sm_error err = {0};
	float m[1] = {-1};

	(void)state;
	assert_int_equal(sm_catalog_open_file(&c, path, &err), 0);
	assert_true(c.ngroups_total == 6291349);
	assert_true(c.ngroups_file0 == 0);
	assert_true(c.ngroups_read == 0);
	/* /Group holds no datasets: skipped, nothing written */
	assert_int_equal(sm_catalog_read_group_field(&c, "Group_M_Crit200", SM_DTYPE_F32, 1, m,
						     &err), 0);
	assert_true(m[0] == -1);
	sm_catalog_release(&c);
	no_open_handles();
	free(path);
}

static void test_info_cli_real(void **state)
{
	char *snap = tu_real_data("reduced_snap_247.hdf5");
	char *cat = tu_real_data("fof_subhalo_tab_099.88.hdf5");
	tu_result r;

	(void)state;
	r = tu_run("info", "--snapshot", snap, "--catalog", cat, "--mass-min", "1e13", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "12515"));
	assert_non_null(strstr(r.out, "Coordinates"));
	assert_non_null(strstr(r.out, "6,291,349 groups"));
	assert_non_null(strstr(r.out, "1 above 1e+13 Msun among the 1 groups of this chunk"));
	assert_int_equal(tu_count_lines(r.err), 0);
	tu_result_free(&r);
	/* 3525.89e10 / 0.6774 = 5.2e13 Msun: above 1e13, below the default 1e14 */
	r = tu_run("info", "--snapshot", snap, "--catalog", cat, "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"ngroups_total\": 6291349"));
	assert_non_null(strstr(r.out, "\"halos_above_mass_min\": 0"));
	tu_result_free(&r);
	r = tu_run("info", "--snapshot", snap, "--catalog", cat, "--mass-min", "1e13", "--format",
		   "json", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"halos_above_mass_min\": 1"));
	tu_result_free(&r);
	free(snap);
	free(cat);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paicos_reduced),
		cmocka_unit_test(test_paicos_stale_counts),
		cmocka_unit_test(test_tng_group_chunk88),
		cmocka_unit_test(test_tng_group_chunk2_empty),
		cmocka_unit_test(test_info_cli_real),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
