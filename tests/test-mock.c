/*
 * The mock writer through the readers: AREPO types and layout of every header attribute and
 * dataset, the chunk without gas, the empty catalogue chunk, the content model (halo masses and
 * R200, profiles, star formation in the cores, spheres wrapping the box), determinism, replacing an
 * earlier mock, headers-only totals above 2^32 with HighWord, dark matter (`--dm`: counts per
 * chunk, MassTable[1], coordinates and IDs; the default count keeps the earlier bytes), and option
 * validation.
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

#include "snapmem/mock.h"
#include "snapmem/snapshot.h"
#include "util.h"

#define GAS 120000

static char *dir;

static int setup(void **state)
{
	sm_mock_options o;
	sm_error err = {0};

	(void)state;
	dir = tu_tmpdir();
	sm_mock_options_init(&o);
	o.gas = GAS;
	o.halos = 5;
	o.small_halos = 7;
	o.files = 8;
	o.seed = 42;
	if (sm_mock_write(dir, &o, &err) != 0) {
		fprintf(stderr, "mock: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	free(dir);
	return 0;
}

static char *chunk(const char *sub, const char *fmt, int i)
{
	char name[256], *d, *p;

	snprintf(name, sizeof(name), fmt, i);
	d = tu_path(dir, sub);
	p = tu_path(d, name);
	free(d);
	return p;
}

/* Checks an attribute's on-disk type class/size/sign and element count. */
static void attr_type(hid_t loc, const char *name, H5T_class_t cls, size_t size, int is_signed,
		      hssize_t n)
{
	hid_t a = H5Aopen(loc, name, H5P_DEFAULT), t, sp;

	if (a < 0)
		fail_msg("attribute '%s' missing", name);
	t = H5Aget_type(a);
	sp = H5Aget_space(a);
	assert_int_equal(H5Tget_class(t), cls);
	assert_int_equal(H5Tget_size(t), size);
	if (cls == H5T_INTEGER)
		assert_int_equal(H5Tget_sign(t) == H5T_SGN_2, is_signed);
	assert_int_equal(H5Sget_simple_extent_npoints(sp), n);
	H5Sclose(sp);
	H5Tclose(t);
	H5Aclose(a);
}

static void dset_type(hid_t f, const char *name, H5T_class_t cls, size_t size, int rank, int ncomp)
{
	hid_t d = H5Dopen2(f, name, H5P_DEFAULT), t, sp;
	hsize_t dims[2];

	if (d < 0)
		fail_msg("dataset '%s' missing", name);
	t = H5Dget_type(d);
	sp = H5Dget_space(d);
	assert_int_equal(H5Tget_class(t), cls);
	assert_int_equal(H5Tget_size(t), size);
	assert_int_equal(H5Sget_simple_extent_dims(sp, dims, NULL), rank);
	if (rank == 2)
		assert_int_equal(dims[1], ncomp);
	H5Sclose(sp);
	H5Tclose(t);
	H5Dclose(d);
}

static void test_layout_and_types(void **state)
{
	char *p0 = chunk("snapdir_099", "snap_099.%d.hdf5", 0);
	char *p1 = chunk("snapdir_099", "snap_099.%d.hdf5", 1);
	char *g0 = chunk("groups_099", "fof_subhalo_tab_099.%d.hdf5", 0);
	char *g1 = chunk("groups_099", "fof_subhalo_tab_099.%d.hdf5", 1);
	char *g4 = chunk("groups_099", "fof_subhalo_tab_099.%d.hdf5", 4);
	hid_t f, h;
	double v;

	(void)state;
	f = H5Fopen(p0, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	h = H5Gopen2(f, "Header", H5P_DEFAULT);
	attr_type(h, "NumPart_ThisFile", H5T_INTEGER, 4, 1, 6);
	attr_type(h, "NumPart_Total", H5T_INTEGER, 4, 0, 6);
	attr_type(h, "NumPart_Total_HighWord", H5T_INTEGER, 4, 0, 6);
	attr_type(h, "MassTable", H5T_FLOAT, 8, 0, 6);
	attr_type(h, "NumFilesPerSnapshot", H5T_INTEGER, 4, 1, 1);
	attr_type(h, "Flag_DoublePrecision", H5T_INTEGER, 4, 1, 1);
	attr_type(h, "BoxSize", H5T_FLOAT, 8, 0, 1);
	attr_type(h, "UnitVelocity_in_cm_per_s", H5T_FLOAT, 8, 0, 1);
	H5Gclose(h);
	dset_type(f, "PartType0/Coordinates", H5T_FLOAT, 8, 2, 3);
	dset_type(f, "PartType0/InternalEnergy", H5T_FLOAT, 4, 1, 1);
	dset_type(f, "PartType0/ElectronAbundance", H5T_FLOAT, 4, 1, 1);
	dset_type(f, "PartType0/StarFormationRate", H5T_FLOAT, 4, 1, 1);
	dset_type(f, "PartType0/Masses", H5T_FLOAT, 4, 1, 1);
	dset_type(f, "PartType0/Density", H5T_FLOAT, 4, 1, 1);
	dset_type(f, "PartType0/ParticleIDs", H5T_INTEGER, 8, 1, 1);
	dset_type(f, "PartType1/Coordinates", H5T_FLOAT, 8, 2, 3);
	H5Fclose(f);

	/* chunk 1: dark matter only, no PartType0 group at all */
	f = H5Fopen(p1, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	assert_true(H5Lexists(f, "PartType0", H5P_DEFAULT) == 0);
	assert_true(H5Lexists(f, "PartType1", H5P_DEFAULT) > 0);
	H5Fclose(f);

	f = H5Fopen(g0, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	h = H5Gopen2(f, "Header", H5P_DEFAULT);
	attr_type(h, "Ngroups_ThisFile", H5T_INTEGER, 4, 1, 1);
	attr_type(h, "Ngroups_Total", H5T_INTEGER, 4, 1, 1);
	attr_type(h, "Nsubgroups_Total", H5T_INTEGER, 4, 1, 1);
	attr_type(h, "NumFiles", H5T_INTEGER, 4, 1, 1);
	attr_type(h, "Nids_Total", H5T_INTEGER, 8, 1, 1);
	{
		hid_t a = H5Aopen(h, "HubbleParam", H5P_DEFAULT);

		assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
		assert_true(fabs(v - 0.6774) < 1e-12);
		H5Aclose(a);
	}
	H5Gclose(h);
	dset_type(f, "Group/GroupPos", H5T_FLOAT, 4, 2, 3);
	dset_type(f, "Group/Group_M_Crit200", H5T_FLOAT, 4, 1, 1);
	dset_type(f, "Group/Group_R_Crit200", H5T_FLOAT, 4, 1, 1);
	dset_type(f, "Group/GroupLen", H5T_INTEGER, 4, 1, 1);
	dset_type(f, "Group/GroupFirstSub", H5T_INTEGER, 4, 1, 1);
	assert_true(H5Lexists(f, "Subhalo", H5P_DEFAULT) > 0);
	H5Fclose(f);

	/* catalogue chunk 1: empty, /Group without datasets; 8 files -> 4 catalogue chunks */
	f = H5Fopen(g1, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	{
		H5G_info_t gi;

		assert_true(H5Gget_info_by_name(f, "Group", &gi, H5P_DEFAULT) >= 0);
		assert_int_equal(gi.nlinks, 0);
	}
	H5Fclose(f);
	assert_false(tu_exists(g4));
	free(p0);
	free(p1);
	free(g0);
	free(g1);
	free(g4);
}

static double temperature(float u, float xe)
{
	double mu = 4 * 1.672621924e-24 / (1 + 3 * 0.76 + 4 * 0.76 * (double)xe);

	return (2.0 / 3.0) * (double)u / 1.380649e-16 * 1e10 * mu;
}

static double pdist(const double *a, const float *c, double box)
{
	double s = 0;
	int k;

	for (k = 0; k < 3; k++) {
		double d = fabs(a[k] - (double)c[k]);

		if (d > box / 2)
			d = box - d;
		s += d * d;
	}
	return sqrt(s);
}

static void test_round_trip_content(void **state)
{
	sm_snapshot s;
	sm_catalog c;
	sm_error err = {0};
	double *pos, box, h;
	float *pos32, *u, *xe, *sfr, *m, *r, *gp, *mass;
	int32_t *len;
	uint64_t i, sum = 0, nsf = 0;
	int64_t k;
	uint32_t big = 0, wraps = 0, unsorted = 0;
	int j;

	(void)state;
	assert_int_equal(sm_snapshot_open_base(&s, dir, 99, &err), 0);
	assert_int_equal(s.nfiles, 8);
	assert_true(s.header.npart_total[0] == GAS);
	assert_true(fabs(s.header.hubble_param - 0.6774) < 1e-12);
	assert_true(fabs(s.header.omega_baryon - 0.0486) < 1e-12);
	assert_true(s.header.has_highword && s.header.has_units);
	assert_int_equal(sm_snapshot_scan(&s, &err), 0);
	assert_true(s.chunk_counts[1 * SM_NTYPES + 0] == 0);
	assert_true(s.chunk_counts[1 * SM_NTYPES + 1] > 0);
	for (k = 0; k < s.nfiles; k++)
		sum += s.chunk_counts[k * SM_NTYPES];
	assert_true(sum == GAS);
	/* uneven: chunk 3 (weight 4) holds four times chunk 4 (weight 1), about */
	assert_true(s.chunk_counts[3 * SM_NTYPES] > 3 * s.chunk_counts[4 * SM_NTYPES]);

	box = s.header.box_size;
	pos = malloc(GAS * 3 * sizeof(double));
	pos32 = malloc(GAS * 3 * sizeof(float));
	u = malloc(GAS * sizeof(float));
	xe = malloc(GAS * sizeof(float));
	sfr = malloc(GAS * sizeof(float));
	mass = malloc(GAS * sizeof(float));
	assert_true(pos && pos32 && u && xe && sfr && mass);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Coordinates", SM_DTYPE_F64, 3, pos, NULL,
						&err), 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Coordinates", SM_DTYPE_F32, 3, pos32, NULL,
						&err), 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "InternalEnergy", SM_DTYPE_F32, 1, u, NULL,
						&err), 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "ElectronAbundance", SM_DTYPE_F32, 1, xe,
						NULL, &err), 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "StarFormationRate", SM_DTYPE_F32, 1, sfr,
						NULL, &err), 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Masses", SM_DTYPE_F32, 1, mass, NULL, &err),
			 0);
	for (i = 0; i < GAS * 3; i++) {
		assert_true(pos[i] >= 0 && pos[i] < box);
		assert_true(pos32[i] == (float)pos[i]);
	}
	/* uniform mass: OmegaBaryon rho_crit box^3 / N, box in cMpc/h */
	assert_true(fabs(mass[0] - 0.0486 * 27.7536627 * pow(box / 1000, 3) / GAS) < 1e-3 * mass[0]);
	assert_true(mass[GAS - 1] == mass[0]);

	assert_int_equal(sm_catalog_open_base(&c, dir, 99, &err), 0);
	assert_int_equal(c.nfiles, 4);
	assert_true(c.ngroups_total == 12);
	h = c.hubble_param;
	m = malloc(12 * sizeof(float));
	r = malloc(12 * sizeof(float));
	gp = malloc(36 * sizeof(float));
	len = malloc(12 * sizeof(int32_t));
	assert_int_equal(sm_catalog_read_group_field(&c, "Group_M_Crit200", SM_DTYPE_F32, 1, m, &err),
			 0);
	assert_int_equal(sm_catalog_read_group_field(&c, "Group_R_Crit200", SM_DTYPE_F32, 1, r, &err),
			 0);
	assert_int_equal(sm_catalog_read_group_field(&c, "GroupPos", SM_DTYPE_F32, 3, gp, &err), 0);
	assert_int_equal(sm_catalog_read_group_field(&c, "GroupLen", SM_DTYPE_I32, 1, len, &err), 0);
	for (j = 0; j < 12; j++) {
		double msun = (double)m[j] * 1e10 / h;
		double r200 = 643 * cbrt(msun / 1e14);
		double c3[3] = {gp[3 * j], gp[3 * j + 1], gp[3 * j + 2]};
		uint64_t inside = 0, hot_in = 0, hot_out = 0;
		double t_in = 0, t_out = 0;

		assert_true(fabs(r[j] - r200) < 1e-3 * r200);
		assert_true(msun > 1e12 * 0.999 && msun < 1e15 * 1.001);
		assert_true(msun < 5e13 * 1.001 || msun > 1.2e14 * 0.999);
		if (j > 0 && m[j] > m[j - 1])
			unsorted++;
		if (msun <= 1e14)
			continue;
		big++;
		for (k = 0; k < 3; k++)
			if (c3[k] < 2 * r200 || c3[k] > box - 2 * r200)
				wraps++;
		/* every cell generated for the halo lies within 2 R200; hotter inside */
		for (i = 0; i < GAS; i++) {
			double d = pdist(c3, pos32 + 3 * i, box) / r200;
			double t;

			if (d >= 2)
				continue;
			inside++;
			if (sfr[i] > 0)
				continue;
			t = temperature(u[i], xe[i]);
			if (d < 0.5) {
				t_in += log10(t);
				hot_in++;
			} else if (d > 1.5) {
				t_out += log10(t);
				hot_out++;
			}
		}
		assert_true(inside >= (uint64_t)len[j]);
		assert_true(len[j] > 0.45 * GAS / 5 * 0.8);
		assert_true(hot_in > 0 && hot_out > 0);
		assert_true(t_in / hot_in > t_out / hot_out + 0.5);
	}
	assert_int_equal(big, 5);
	assert_true(wraps >= 2);
	assert_true(unsorted > 0);

	/* star-forming cells: cold, and inside 0.1 R200 of a big halo */
	for (i = 0; i < GAS; i++) {
		int near = 0;

		if (!(sfr[i] > 0))
			continue;
		nsf++;
		assert_true(temperature(u[i], xe[i]) < 2e4);
		for (j = 0; j < 12; j++) {
			double c3[3] = {gp[3 * j], gp[3 * j + 1], gp[3 * j + 2]};

			if (pdist(c3, pos32 + 3 * i, box) < 0.1 * r[j] * 1.001)
				near = 1;
		}
		assert_true(near);
	}
	assert_true(nsf > 10);
	sm_catalog_release(&c);
	sm_snapshot_release(&s);
	assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
	free(pos);
	free(pos32);
	free(u);
	free(xe);
	free(sfr);
	free(mass);
	free(m);
	free(r);
	free(gp);
	free(len);
}

static unsigned char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b;
	long len;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)len + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	*n = (size_t)len;
	return b;
}

static void test_deterministic_and_replace(void **state)
{
	char *d1 = tu_tmpdir(), *d2 = tu_tmpdir(), name[64];
	sm_mock_options o;
	sm_error err = {0};
	sm_snapshot s;
	int i;

	(void)state;
	sm_mock_options_init(&o);
	o.gas = 5000;
	o.halos = 2;
	o.small_halos = 2;
	o.files = 6;
	assert_int_equal(sm_mock_write(d1, &o, &err), 0);
	assert_int_equal(sm_mock_write(d2, &o, &err), 0);
	for (i = 0; i < 6; i++) {
		char *pa, *pb;
		unsigned char *ba, *bb;
		size_t na, nb;

		snprintf(name, sizeof(name), "snapdir_099/snap_099.%d.hdf5", i);
		pa = tu_path(d1, name);
		pb = tu_path(d2, name);
		ba = slurp(pa, &na);
		bb = slurp(pb, &nb);
		assert_int_equal(na, nb);
		assert_memory_equal(ba, bb, na);
		free(ba);
		free(bb);
		free(pa);
		free(pb);
	}
	/* another seed gives other bytes */
	o.seed = 2;
	assert_int_equal(sm_mock_write(d2, &o, &err), 0);
	{
		char *pa = tu_path(d1, "snapdir_099/snap_099.0.hdf5");
		char *pb = tu_path(d2, "snapdir_099/snap_099.0.hdf5");
		unsigned char *ba, *bb;
		size_t na, nb;

		ba = slurp(pa, &na);
		bb = slurp(pb, &nb);
		assert_true(na != nb || memcmp(ba, bb, na) != 0);
		free(ba);
		free(bb);
		free(pa);
		free(pb);
	}
	/* rewriting with fewer files removes the earlier chunks; no temporary files stay */
	o.files = 3;
	assert_int_equal(sm_mock_write(d1, &o, &err), 0);
	{
		char *p = tu_path(d1, "snapdir_099/snap_099.3.hdf5");
		char *q = tu_path(d1, "snapdir_099/snap_099.5.hdf5");
		char *g = tu_path(d1, "groups_099/fof_subhalo_tab_099.2.hdf5");
		char cmd[512];

		assert_false(tu_exists(p));
		assert_false(tu_exists(q));
		assert_false(tu_exists(g));
		snprintf(cmd, sizeof(cmd), "find '%s' -name '*.tmp*' | grep -q .", d1);
		assert_int_not_equal(system(cmd), 0);
		free(p);
		free(q);
		free(g);
	}
	assert_int_equal(sm_snapshot_open_base(&s, d1, 99, &err), 0);
	assert_int_equal(s.nfiles, 3);
	assert_int_equal(sm_snapshot_scan(&s, &err), 0);
	sm_snapshot_release(&s);
	tu_rmtree(d1);
	tu_rmtree(d2);
	free(d1);
	free(d2);
}

static void test_header_only_highword(void **state)
{
	char *d = tu_tmpdir();
	sm_mock_options o;
	sm_error err = {0};
	sm_snapshot s;
	sm_catalog c;
	sm_field_info fi;
	char **names;
	size_t n;
	uint64_t sum = 0;
	int64_t i;
	float *m;
	int above = 0;
	hid_t f, h, a;
	uint32_t tot[6], hw[6];

	(void)state;
	sm_mock_options_init(&o);
	o.header_only = 1;
	o.gas_total = 14454722210ull;
	o.files = 600;
	o.halos = 280;
	o.small_halos = 20;
	o.box_size = 205000;
	assert_int_equal(sm_mock_write(d, &o, &err), 0);
	assert_int_equal(sm_snapshot_open_base(&s, d, 99, &err), 0);
	assert_int_equal(s.nfiles, 600);
	assert_true(s.header.npart_total[0] == 14454722210ull);
	assert_int_equal(sm_snapshot_scan(&s, &err), 0);
	for (i = 0; i < 600; i++) {
		assert_true(s.chunk_counts[i * SM_NTYPES] < (1ull << 31));
		sum += s.chunk_counts[i * SM_NTYPES];
	}
	assert_true(sum == 14454722210ull);
	assert_int_equal(sm_snapshot_field_names(&s, 0, &names, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sm_snapshot_field_info(&s, 0, "Coordinates", &fi, &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "no /PartType0 group"));
	sm_snapshot_release(&s);

	{
		char *p = tu_path(d, "snapdir_099/snap_099.0.hdf5");

		f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
		h = H5Gopen2(f, "Header", H5P_DEFAULT);
		a = H5Aopen(h, "NumPart_Total", H5P_DEFAULT);
		H5Aread(a, H5T_NATIVE_UINT32, tot);
		H5Aclose(a);
		a = H5Aopen(h, "NumPart_Total_HighWord", H5P_DEFAULT);
		H5Aread(a, H5T_NATIVE_UINT32, hw);
		H5Aclose(a);
		H5Gclose(h);
		H5Fclose(f);
		free(p);
	}
	assert_int_equal(tot[0], 1569820322u);
	assert_int_equal(hw[0], 3);

	assert_int_equal(sm_catalog_open_base(&c, d, 99, &err), 0);
	assert_true(c.ngroups_total == 300);
	assert_int_equal(c.nfiles, 300);
	m = malloc(300 * sizeof(float));
	assert_int_equal(sm_catalog_read_group_field(&c, "Group_M_Crit200", SM_DTYPE_F32, 1, m, &err),
			 0);
	for (i = 0; i < 300; i++)
		above += (double)m[i] * 1e10 / c.hubble_param > 1e14;
	assert_int_equal(above, 280);
	free(m);
	sm_catalog_release(&c);
	assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
	tu_rmtree(d);
	free(d);
}

/* Every snapshot chunk of two mocks has the same bytes (the chunk count is o->files). */
static void same_snapshot_bytes(const char *d1, const char *d2, uint32_t files)
{
	uint32_t i;

	for (i = 0; i < files; i++) {
		char name[64], *pa, *pb;
		unsigned char *ba, *bb;
		size_t na, nb;

		snprintf(name, sizeof(name), "snapdir_099/snap_099.%u.hdf5", i);
		pa = tu_path(d1, name);
		pb = tu_path(d2, name);
		ba = slurp(pa, &na);
		bb = slurp(pb, &nb);
		assert_int_equal(na, nb);
		assert_memory_equal(ba, bb, na);
		free(ba);
		free(bb);
		free(pa);
		free(pb);
	}
}

static void test_dark_matter(void **state)
{
	char *d1 = tu_tmpdir(), *d2 = tu_tmpdir();
	const uint64_t gas = 4000, dm = 10007;
	sm_mock_options o;
	sm_error err = {0};
	sm_snapshot s;
	uint64_t sum = 0, i;
	int64_t k;
	double box, *pos;
	uint64_t *ids, first_id = 0, seen = 0;
	tu_result r;

	(void)state;
	/* without --dm: gas/16 + files particles; giving that count explicitly changes no byte */
	sm_mock_options_init(&o);
	o.gas = gas;
	o.halos = 2;
	o.small_halos = 2;
	o.files = 3;
	assert_int_equal(sm_mock_write(d1, &o, &err), 0);
	o.dm = gas / 16 + 3;
	assert_int_equal(sm_mock_write(d2, &o, &err), 0);
	same_snapshot_bytes(d1, d2, 3);

	o.dm = dm;
	assert_int_equal(sm_mock_write(d2, &o, &err), 0);
	assert_int_equal(sm_snapshot_open_base(&s, d2, 99, &err), 0);
	assert_true(s.header.npart_total[0] == gas);
	assert_true(s.header.npart_total[1] == dm);
	box = s.header.box_size;
	/* dark matter holds Omega0 - OmegaBaryon of the box's critical mass */
	assert_true(fabs(s.header.mass_table[1] * (double)dm /
			 ((0.3089 - 0.0486) * 27.7536627e-9 * box * box * box) - 1.0) < 1e-12);
	assert_int_equal(sm_snapshot_scan(&s, &err), 0);
	for (k = 0; k < s.nfiles; k++) {
		/* evenly: 3336, 3336, 3335 */
		assert_true(s.chunk_counts[k * SM_NTYPES + 1] == dm / 3 + ((uint64_t)k < dm % 3));
		sum += s.chunk_counts[k * SM_NTYPES + 1];
	}
	assert_true(sum == dm);
	for (k = 0; k < s.nfiles; k++) {
		char name[64], *p;
		uint64_t n = s.chunk_counts[k * SM_NTYPES + 1];
		hid_t f, dp, di;

		snprintf(name, sizeof(name), "snapdir_099/snap_099.%d.hdf5", (int)k);
		p = tu_path(d2, name);
		f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
		assert_true(f >= 0);
		dset_type(f, "PartType1/Coordinates", H5T_FLOAT, 8, 2, 3);
		dset_type(f, "PartType1/ParticleIDs", H5T_INTEGER, 8, 1, 1);
		pos = malloc(n * 3 * sizeof(double));
		ids = malloc(n * sizeof(uint64_t));
		assert_non_null(pos);
		assert_non_null(ids);
		dp = H5Dopen2(f, "PartType1/Coordinates", H5P_DEFAULT);
		di = H5Dopen2(f, "PartType1/ParticleIDs", H5P_DEFAULT);
		assert_true(H5Dread(dp, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, pos) >= 0);
		assert_true(H5Dread(di, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids) >= 0);
		for (i = 0; i < 3 * n; i++)
			assert_true(pos[i] >= 0.0 && pos[i] < box);
		/* IDs follow the gas's: gas + 1, gas + 2, ... over the chunks in order */
		for (i = 0; i < n; i++)
			assert_true(ids[i] == gas + 1 + seen + i);
		if (k == 0)
			first_id = ids[0];
		seen += n;
		H5Dclose(di);
		H5Dclose(dp);
		H5Fclose(f);
		free(ids);
		free(pos);
		free(p);
	}
	assert_true(first_id == gas + 1);
	sm_snapshot_release(&s);

	/* the command line: --dm N, and 0 refused */
	r = tu_run("mock", d1, "--gas", "4000", "--dm", "10007", "--halos", "2", "--files", "3",
		   NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "dark matter: 10,007 particles"));
	tu_result_free(&r);
	same_snapshot_bytes(d1, d2, 3);
	r = tu_run("mock", d1, "--gas", "4000", "--dm", "0", NULL);
	assert_int_equal(r.status, 2);
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_non_null(strstr(r.err, "--dm"));
	tu_result_free(&r);
	tu_rmtree(d1);
	tu_rmtree(d2);
	free(d1);
	free(d2);
}

static void test_bad_options(void **state)
{
	char *d = tu_tmpdir();
	sm_mock_options o;
	sm_error err = {0};

	(void)state;
	sm_mock_options_init(&o);
	o.files = 0;
	assert_int_equal(sm_mock_write(d, &o, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "--files"));
	sm_mock_options_init(&o);
	o.gas = 0;
	assert_int_equal(sm_mock_write(d, &o, &err), SM_EINVAL);
	sm_mock_options_init(&o);
	o.box_size = 5000;
	assert_int_equal(sm_mock_write(d, &o, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "box"));
	sm_mock_options_init(&o);
	o.header_only = 1;
	o.gas_total = 14454722210ull;
	o.files = 4; /* more than 2^31 - 1 cells per chunk */
	assert_int_equal(sm_mock_write(d, &o, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "int32"));
	assert_int_equal(sm_mock_write("", &o, &err), SM_EINVAL);
	sm_mock_options_init(&o);
	o.dm = ((uint64_t)1 << 40) + 1;
	assert_int_equal(sm_mock_write(d, &o, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "--dm"));
	sm_mock_options_init(&o);
	o.header_only = 1;
	o.gas_total = 1000;
	o.dm = 3000000000ull; /* more than 2^31 - 1 particles in the one chunk */
	o.files = 1;
	assert_int_equal(sm_mock_write(d, &o, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "dark-matter particles"));
	tu_rmtree(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_and_types),
		cmocka_unit_test(test_round_trip_content),
		cmocka_unit_test(test_deterministic_and_replace),
		cmocka_unit_test(test_header_only_highword),
		cmocka_unit_test(test_dark_matter),
		cmocka_unit_test(test_bad_options),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
