/*
 * The snapshot and catalogue readers on files built here with the HDF5 API: header integers of
 * every width, HighWord, every malformed header, non-HDF5 and truncated files, the path layouts,
 * multi-chunk reads (whole, in consecutive ranges, with a caller conversion buffer), every shape
 * and type fault, missing chunks and fields, counts that do not add up, no leaked HDF5 handles,
 * and the bounded memory of reading float64 Coordinates as float32.
 */
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

#include "snapmem/snapshot.h"
#include "util.h"

/* What write_chunk puts in a file. Zero-initialised = a good one-file snapshot of `gas` cells. */
struct spec {
	uint64_t gas;           /* NumPart_ThisFile[0] */
	uint64_t total;         /* NumPart_Total[0] (0: = gas) */
	uint64_t first;         /* global index of the first cell (for values) */
	int nfiles;             /* NumFilesPerSnapshot (0: 1) */
	hid_t count_type;       /* file type of the NumPart_* attributes (0: int32) */
	int total_n;            /* elements of NumPart_Total (0: 6) */
	int total_float;        /* NumPart_Total written as float64 */
	int total_negative;     /* NumPart_Total[0] = -5 */
	int no_total, no_header, no_highword;
	uint32_t highword;      /* NumPart_Total_HighWord[0] */
	int no_gas_group;       /* no PartType0 even if gas > 0 */
	int coord_rank, coord_ncomp; /* 0: [N,3] */
	int64_t rows_delta;     /* dataset rows = gas + rows_delta */
	int no_energy;          /* no InternalEnergy */
};

static void attr(hid_t loc, const char *name, hid_t ft, hid_t mt, int n, const void *v)
{
	hsize_t d = (hsize_t)n;
	hid_t sp = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &d, NULL);
	hid_t a = H5Acreate2(loc, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT);

	assert_true(a >= 0);
	assert_true(H5Awrite(a, mt, v) >= 0);
	H5Aclose(a);
	H5Sclose(sp);
}

static void write_chunk(const char *path, const struct spec *sp)
{
	hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), h, g;
	hid_t ct = sp->count_type ? sp->count_type : H5T_STD_I32LE;
	int64_t tf[6] = {(int64_t)sp->gas, 0, 0, 0, 0, 0};
	int64_t tot[6] = {(int64_t)(sp->total ? sp->total : sp->gas), 0, 0, 0, 0, 0};
	double totd[6] = {(double)tot[0], 0, 0, 0, 0, 0};
	uint32_t hw[6] = {sp->highword, 0, 0, 0, 0, 0};
	int64_t nf = sp->nfiles ? sp->nfiles : 1;
	double box = 1000, hub = 0.7;
	uint64_t rows = (uint64_t)((int64_t)sp->gas + sp->rows_delta), i;

	assert_true(f >= 0);
	if (!sp->no_header) {
		h = H5Gcreate2(f, "Header", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
		attr(h, "NumPart_ThisFile", ct, H5T_NATIVE_INT64, 6, tf);
		if (sp->total_negative)
			tot[0] = -5;
		if (sp->total_float)
			attr(h, "NumPart_Total", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 6, totd);
		else if (!sp->no_total)
			attr(h, "NumPart_Total", sp->total_negative ? H5T_STD_I32LE : ct,
			     H5T_NATIVE_INT64, sp->total_n ? sp->total_n : 6, tot);
		if (!sp->no_highword)
			attr(h, "NumPart_Total_HighWord", H5T_STD_U32LE, H5T_NATIVE_UINT32, 6, hw);
		attr(h, "NumFilesPerSnapshot", ct, H5T_NATIVE_INT64, 0, &nf);
		attr(h, "BoxSize", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &box);
		attr(h, "HubbleParam", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &hub);
		H5Gclose(h);
	}
	if (sp->gas > 0 && !sp->no_gas_group) {
		int rank = sp->coord_rank ? sp->coord_rank : 2;
		int nc = sp->coord_ncomp ? sp->coord_ncomp : 3;
		hsize_t dims[2] = {rows, (hsize_t)nc};
		double *c = malloc((rows * (uint64_t)nc + 1) * sizeof(double));
		float *e = malloc((rows + 1) * sizeof(float));
		uint64_t *ids = malloc((rows + 1) * sizeof(uint64_t));
		hid_t s2, d;
		int k;

		assert_true(c && e && ids);
		for (i = 0; i < rows; i++) {
			for (k = 0; k < nc; k++)
				c[i * (uint64_t)nc + (uint64_t)k] = (double)(sp->first + i) + 0.25 * k;
			e[i] = (float)(sp->first + i);
			ids[i] = sp->first + i;
		}
		g = H5Gcreate2(f, "PartType0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
		s2 = H5Screate_simple(rank, dims, NULL);
		d = H5Dcreate2(g, "Coordinates", H5T_IEEE_F64LE, s2, H5P_DEFAULT, H5P_DEFAULT,
			       H5P_DEFAULT);
		H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, c);
		H5Dclose(d);
		H5Sclose(s2);
		s2 = H5Screate_simple(1, dims, NULL);
		if (!sp->no_energy) {
			d = H5Dcreate2(g, "InternalEnergy", H5T_IEEE_F32LE, s2, H5P_DEFAULT,
				       H5P_DEFAULT, H5P_DEFAULT);
			H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, e);
			H5Dclose(d);
		}
		d = H5Dcreate2(g, "ParticleIDs", H5T_STD_U64LE, s2, H5P_DEFAULT, H5P_DEFAULT,
			       H5P_DEFAULT);
		H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids);
		H5Dclose(d);
		H5Sclose(s2);
		H5Gclose(g);
		free(c);
		free(e);
		free(ids);
	}
	H5Fclose(f);
}

static void no_handles(void)
{
	assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

/* Opens a single file (sm_snapshot_open_file) with the header read without HDF5 where the
 * metadata reader vouches for it (SNAPMEM_FASTREAD unset) and through HDF5 alone (=0): the same
 * code, message and header either way. */
static int open_both(const char *path, sm_header *h, sm_error *err)
{
	sm_snapshot s;
	sm_header h0;
	sm_error e0 = {0};
	int rc, rc0;

	setenv("SNAPMEM_FASTREAD", "0", 1);
	rc0 = sm_snapshot_open_file(&s, path, &e0);
	memcpy(&h0, &s.header, sizeof(h0));
	sm_snapshot_release(&s);
	unsetenv("SNAPMEM_FASTREAD");
	sm_error_clear(err);
	rc = sm_snapshot_open_file(&s, path, err);
	assert_int_equal(rc, rc0);
	assert_string_equal(err->msg, e0.msg);
	assert_memory_equal(&s.header, &h0, sizeof(h0));
	if (h != NULL)
		memcpy(h, &s.header, sizeof(*h));
	sm_snapshot_release(&s);
	no_handles();
	return rc;
}

/* Opens a single file and expects rc, with err naming the file and holding `what` (both ways,
 * open_both). */
static void expect_open(const char *path, int rc, const char *what)
{
	sm_error err = {0};

	assert_int_equal(open_both(path, NULL, &err), rc);
	if (rc != 0) {
		assert_non_null(strstr(err.msg, path));
		if (strstr(err.msg, what) == NULL)
			fail_msg("'%s' not in '%s'", what, err.msg);
		assert_null(strchr(err.msg, '\n'));
	}
}

static void test_integer_widths(void **state)
{
	const hid_t types[] = {H5T_STD_U8LE, H5T_STD_I16BE, H5T_STD_U16LE, H5T_STD_I32LE,
			       H5T_STD_U32BE, H5T_STD_I64LE, H5T_STD_U64LE};
	char *d = tu_tmpdir(), *p = tu_path(d, "w.hdf5");
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct spec sp = {0};
		sm_snapshot s;
		sm_error err = {0};
		float e[200];

		sp.gas = 200;
		sp.count_type = types[i];
		write_chunk(p, &sp);
		assert_int_equal(open_both(p, NULL, &err), 0);
		assert_int_equal(sm_snapshot_open_file(&s, p, &err), 0);
		assert_true(s.header.npart_total[0] == 200);
		assert_true(s.header.npart_file0[0] == 200);
		assert_int_equal(s.header.num_files, 1);
		assert_int_equal(sm_snapshot_read_field(&s, 0, "InternalEnergy", SM_DTYPE_F32, 1, e,
							NULL, &err), 0);
		assert_true(e[199] == 199.0f);
		sm_snapshot_release(&s);
		no_handles();
	}
	free(p);
	tu_rmtree(d);
	free(d);
}

static void test_highword(void **state)
{
	char *d = tu_tmpdir(), *p = tu_path(d, "h.hdf5");
	struct spec sp = {0};
	sm_snapshot s;
	sm_error err = {0};

	(void)state;
	/* TNG300-1: 1,569,820,322 + 3 << 32; a header-only file (no gas group) */
	sp.gas = 0;
	sp.total = 1569820322;
	sp.highword = 3;
	sp.nfiles = 600;
	write_chunk(p, &sp);
	assert_int_equal(sm_snapshot_open_file(&s, p, &err), 0);
	assert_true(s.header.npart_total[0] == 14454722210ull);
	assert_true(s.header.has_highword);
	/* one chunk of 600 given alone: reading needs the base path */
	assert_int_equal(sm_snapshot_scan(&s, &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "600-file snapshot"));
	sm_snapshot_release(&s);
	/* HighWord optional */
	sp.no_highword = 1;
	sp.highword = 0;
	sp.gas = 10;
	sp.total = 0;
	sp.nfiles = 1;
	write_chunk(p, &sp);
	assert_int_equal(sm_snapshot_open_file(&s, p, &err), 0);
	assert_false(s.header.has_highword);
	assert_true(s.header.npart_total[0] == 10);
	assert_false(s.header.has_units);
	assert_true(s.header.unit_velocity_cm_s == 1e5);
	sm_snapshot_release(&s);
	/* 64-bit count above 2^32 with HighWord disagreeing */
	sp.no_highword = 0;
	sp.count_type = H5T_STD_I64LE;
	sp.total = 14454722210ull;
	sp.highword = 2;
	write_chunk(p, &sp);
	expect_open(p, SM_EFORMAT, "disagrees");
	sp.highword = 3;
	write_chunk(p, &sp);
	expect_open(p, 0, "");
	free(p);
	tu_rmtree(d);
	free(d);
}

static void test_bad_headers(void **state)
{
	char *d = tu_tmpdir(), *p = tu_path(d, "bad.hdf5"), *txt = tu_path(d, "text.hdf5");
	char *trunc = tu_path(d, "trunc.hdf5"), *missing = tu_path(d, "none.hdf5");
	struct spec sp;
	FILE *f;
	char *buf;
	size_t n;

	(void)state;
	memset(&sp, 0, sizeof(sp));
	sp.gas = 10;
	sp.no_header = 1;
	write_chunk(p, &sp);
	expect_open(p, SM_EFORMAT, "no /Header group");
	memset(&sp, 0, sizeof(sp));
	sp.gas = 10;
	sp.no_total = 1;
	write_chunk(p, &sp);
	expect_open(p, SM_EFORMAT, "'NumPart_Total' is missing");
	sp.no_total = 0;
	sp.total_n = 3;
	write_chunk(p, &sp);
	expect_open(p, SM_EFORMAT, "'NumPart_Total' has 3 elements");
	sp.total_n = 0;
	sp.total_float = 1;
	write_chunk(p, &sp);
	expect_open(p, SM_EFORMAT, "'NumPart_Total' is not an integer");
	sp.total_float = 0;
	sp.total_negative = 1;
	write_chunk(p, &sp);
	expect_open(p, SM_EFORMAT, "'NumPart_Total' has a negative value");

	f = fopen(txt, "w");
	fputs("this is not an HDF5 file\n", f);
	fclose(f);
	expect_open(txt, SM_EFORMAT, "not an HDF5 file");

	memset(&sp, 0, sizeof(sp));
	sp.gas = 5000;
	write_chunk(p, &sp);
	{
		FILE *in = fopen(p, "rb");

		buf = malloc(1 << 20);
		n = fread(buf, 1, 1 << 20, in);
		fclose(in);
	}
	f = fopen(trunc, "wb");
	fwrite(buf, 1, n / 2, f);
	fclose(f);
	free(buf);
	expect_open(trunc, SM_EFORMAT, "truncated");
	expect_open(missing, SM_ENOTFOUND, "No such file");
	free(p);
	free(txt);
	free(trunc);
	free(missing);
	tu_rmtree(d);
	free(d);
}

/* Three chunks of 100, 0 and 57 gas cells; chunk 0's and chunk 2's specs may be overridden. */
static char *three_chunks_with(const struct spec *override0, const struct spec *override2)
{
	char *base = tu_tmpdir(), *sd = tu_path(base, "snapdir_007"), name[64], *p;
	const uint64_t n[3] = {100, 0, 57};
	uint64_t first = 0;
	int i;

	mkdir(sd, 0777);
	for (i = 0; i < 3; i++) {
		struct spec sp = {0};

		if (i == 0 && override0 != NULL)
			sp = *override0;
		if (i == 2 && override2 != NULL)
			sp = *override2;
		sp.gas = n[i];
		sp.total = 157;
		sp.first = first;
		sp.nfiles = 3;
		snprintf(name, sizeof(name), "snap_007.%d.hdf5", i);
		p = tu_path(sd, name);
		write_chunk(p, &sp);
		free(p);
		first += n[i];
	}
	free(sd);
	return base;
}

static char *three_chunks(const struct spec *override2)
{
	return three_chunks_with(NULL, override2);
}

static void test_multichunk_reads(void **state)
{
	char *base = three_chunks(NULL);
	sm_snapshot s;
	sm_error err = {0};
	float whole[157 * 3], part[157 * 3], e[157];
	double c64[157 * 3];
	uint64_t ids[157], i, at;
	unsigned char tconv[4096];
	sm_io_buffer iob = {tconv, sizeof(tconv)}, tiny = {tconv, 2};
	char path[SM_PATH_MAX];

	(void)state;
	assert_int_equal(sm_snapshot_open_base(&s, base, 7, &err), 0);
	assert_int_equal(s.nfiles, 3);
	assert_int_equal(sm_snapshot_chunk_path(&s, 2, path, sizeof(path), &err), 0);
	assert_non_null(strstr(path, "snapdir_007/snap_007.2.hdf5"));
	assert_int_equal(sm_snapshot_chunk_path(&s, 3, path, sizeof(path), &err), SM_EINVAL);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Coordinates", SM_DTYPE_F32, 3, whole, NULL,
						&err), 0);
	assert_true(s.chunk_counts[SM_NTYPES] == 0);
	for (i = 0; i < 157; i++) {
		assert_true(whole[3 * i] == (float)i);
		assert_true(whole[3 * i + 2] == (float)i + 0.5f);
	}
	/* consecutive ranges of 13 cells across the chunk boundaries; the last chunk stays open */
	for (at = 0; at < 157; at += 13) {
		uint64_t cnt = 157 - at < 13 ? 157 - at : 13;

		assert_int_equal(sm_snapshot_read_range(&s, 0, "Coordinates", SM_DTYPE_F32, 3, at,
							cnt, part + 3 * at, NULL, &err), 0);
		assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE), 1);
	}
	assert_memory_equal(whole, part, sizeof(whole));
	/* caller conversion buffer: same values; a buffer below one element fails cleanly */
	memset(part, 0, sizeof(part));
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Coordinates", SM_DTYPE_F32, 3, part, &iob,
						&err), 0);
	assert_memory_equal(whole, part, sizeof(whole));
	assert_true(sm_snapshot_read_field(&s, 0, "Coordinates", SM_DTYPE_F32, 3, part, &tiny,
					   &err) < 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Coordinates", SM_DTYPE_F64, 3, c64, NULL,
						&err), 0);
	assert_true(c64[3 * 156 + 1] == 156.25);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "InternalEnergy", SM_DTYPE_F32, 1, e, NULL,
						&err), 0);
	assert_true(e[100] == 100.0f);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "ParticleIDs", SM_DTYPE_U64, 1, ids, NULL,
						&err), 0);
	assert_true(ids[156] == 156);
	/* faults */
	assert_int_equal(sm_snapshot_read_field(&s, 0, "ParticleIDs", SM_DTYPE_F32, 1, e, NULL,
						&err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "uint64 on disk and cannot be read as float32"));
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Coordinates", SM_DTYPE_F32, 2, part, NULL,
						&err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "has shape [100,3], expected [N,2]"));
	assert_int_equal(sm_snapshot_read_range(&s, 0, "Coordinates", SM_DTYPE_F32, 3, 150, 8, part,
						NULL, &err), SM_EINVAL);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Nope", SM_DTYPE_F32, 1, e, NULL, &err),
			 SM_ENOTFOUND);
	assert_non_null(strstr(err.msg, "snap_007.0.hdf5': no dataset /PartType0/Nope"));
	assert_int_equal(sm_snapshot_read_field(&s, 7, "Coordinates", SM_DTYPE_F32, 3, part, NULL,
						&err), SM_EINVAL);
	assert_int_equal(sm_snapshot_check_field(&s, 0, "Coordinates", 3, &err), 0);
	sm_snapshot_release(&s);
	no_handles();
	tu_rmtree(base);
	free(base);
}

/* Opens base's snapshot 7 and scans it with the headers read without HDF5 and through HDF5
 * alone: the same code, message, header and chunk counts; returns the code. */
static int scan_both(const char *base, sm_error *err)
{
	sm_snapshot s, s0;
	sm_error e0 = {0};
	int rc, rc0, k;

	for (k = 0; k < 2; k++) {
		sm_snapshot *t = k == 0 ? &s0 : &s;
		sm_error *e = k == 0 ? &e0 : err;
		int r;

		if (k == 0)
			setenv("SNAPMEM_FASTREAD", "0", 1);
		else
			unsetenv("SNAPMEM_FASTREAD");
		sm_error_clear(e);
		r = sm_snapshot_open_base(t, base, 7, e);
		if (r == 0)
			r = sm_snapshot_scan(t, e);
		if (k == 0)
			rc0 = r;
		else
			rc = r;
	}
	assert_int_equal(rc, rc0);
	assert_string_equal(err->msg, e0.msg);
	assert_memory_equal(&s.header, &s0.header, sizeof(s.header));
	assert_int_equal(s.nfiles, s0.nfiles);
	assert_int_equal(s.chunk_counts == NULL, s0.chunk_counts == NULL);
	if (s.chunk_counts != NULL)
		assert_memory_equal(s.chunk_counts, s0.chunk_counts,
				    (size_t)s.nfiles * SM_NTYPES * sizeof(uint64_t));
	sm_snapshot_release(&s);
	sm_snapshot_release(&s0);
	no_handles();
	return rc;
}

/* Replaces chunk path's NumPart_ThisFile by `tf`. */
static void set_this_file(const char *path, const int64_t tf[6])
{
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), h;

	assert_true(f >= 0);
	h = H5Gopen2(f, "Header", H5P_DEFAULT);
	assert_true(H5Adelete(h, "NumPart_ThisFile") >= 0);
	attr(h, "NumPart_ThisFile", H5T_STD_I32LE, H5T_NATIVE_INT64, 6, tf);
	H5Gclose(h);
	H5Fclose(f);
}

/* The chunk scan with the headers read without HDF5 (src/snapshot/h5meta.c) answers as HDF5
 * does: counts, a stale count of a type with no particles and no group (taken as zero), a
 * chunk that disagrees with chunk 0, a count without its group. */
static void test_scan_without_hdf5(void **state)
{
	struct spec bad;
	const int64_t stale[6] = {57, 4, 0, 0, 0, 0};
	sm_error err = {0};
	char *base, *p;

	(void)state;
	base = three_chunks(NULL);
	assert_int_equal(scan_both(base, &err), 0);
	p = tu_fmt("%s/snapdir_007/snap_007.2.hdf5", base);
	set_this_file(p, stale); /* type 1: no particles in the snapshot, no PartType1 group */
	assert_int_equal(scan_both(base, &err), 0);
	free(p);
	tu_rmtree(base);
	free(base);

	memset(&bad, 0, sizeof(bad));
	bad.highword = 1; /* chunk 2's total is 157 + 2^32 */
	base = three_chunks(&bad);
	assert_int_equal(scan_both(base, &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "the chunk files disagree"));
	tu_rmtree(base);
	free(base);

	memset(&bad, 0, sizeof(bad));
	bad.no_highword = 1;
	bad.count_type = H5T_STD_U16BE;
	base = three_chunks(&bad);
	assert_int_equal(scan_both(base, &err), 0);
	tu_rmtree(base);
	free(base);

	memset(&bad, 0, sizeof(bad));
	bad.total_negative = 1;
	base = three_chunks(&bad);
	assert_int_equal(scan_both(base, &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "snap_007.2.hdf5': /Header attribute 'NumPart_Total' has "
				       "a negative value"));
	tu_rmtree(base);
	free(base);
}

/* sm_snapshot_check_fields with the datasets looked at without HDF5 where the metadata reader
 * vouches for them (SNAPMEM_FASTREAD unset) and through HDF5 alone (=0): the same code and
 * message; returns the code. */
static int check_both(sm_snapshot *s, const sm_field_check *f, size_t n, sm_error *err)
{
	sm_error e0 = {0};
	int rc0, rc;

	setenv("SNAPMEM_FASTREAD", "0", 1);
	rc0 = sm_snapshot_check_fields(s, 0, f, n, &e0);
	unsetenv("SNAPMEM_FASTREAD");
	sm_error_clear(err);
	rc = sm_snapshot_check_fields(s, 0, f, n, err);
	assert_int_equal(rc, rc0);
	assert_string_equal(err->msg, e0.msg);
	return rc;
}

/* sm_snapshot_check_fields opens each chunk once for all fields and answers what checking them
 * one after the other would: here the first field is bad only in the last chunk, the second
 * already in the first. */
static void test_check_fields_order(void **state)
{
	struct spec bad0, bad2;
	const sm_field_check ie_first[] = {{"InternalEnergy", 1}, {"Coordinates", 3}};
	const sm_field_check co_first[] = {{"Coordinates", 3}, {"InternalEnergy", 1}};
	const sm_field_check good[] = {{"Coordinates", 0}, {"ParticleIDs", 1}};
	sm_error one = {0}, all = {0};
	char *base;
	sm_snapshot s;
	size_t i;

	(void)state;
	memset(&bad0, 0, sizeof(bad0));
	memset(&bad2, 0, sizeof(bad2));
	bad0.coord_rank = 1;
	bad2.no_energy = 1;
	base = three_chunks_with(&bad0, &bad2);
	assert_int_equal(sm_snapshot_open_base(&s, base, 7, &all), 0);
	for (i = 0; i < 2; i++) {
		const sm_field_check *f = i == 0 ? ie_first : co_first;
		int rc1 = sm_snapshot_check_field(&s, 0, f[0].name, f[0].ncomp, &one);

		if (rc1 == 0)
			rc1 = sm_snapshot_check_field(&s, 0, f[1].name, f[1].ncomp, &one);
		assert_int_equal(sm_snapshot_check_fields(&s, 0, f, 2, &all), rc1);
		assert_string_equal(all.msg, one.msg);
	}
	assert_int_equal(check_both(&s, ie_first, 2, &all), SM_ENOTFOUND);
	assert_non_null(strstr(all.msg, "snap_007.2.hdf5': no dataset /PartType0/InternalEnergy"));
	assert_int_equal(check_both(&s, co_first, 2, &all), SM_EFORMAT);
	assert_non_null(strstr(all.msg, "snap_007.0.hdf5': /PartType0/Coordinates has shape [100]"));
	assert_int_equal(sm_snapshot_check_fields(&s, 0, ie_first, SM_CHECK_FIELDS_MAX + 1, &all),
			 SM_EINVAL);
	sm_snapshot_release(&s);
	no_handles();
	tu_rmtree(base);
	free(base);

	base = three_chunks(NULL);
	assert_int_equal(sm_snapshot_open_base(&s, base, 7, &all), 0);
	assert_int_equal(check_both(&s, good, 2, &all), 0);
	sm_snapshot_release(&s);
	no_handles();
	tu_rmtree(base);
	free(base);
}

static void test_chunk_faults(void **state)
{
	struct spec bad;
	char *base, *p;
	sm_snapshot s;
	sm_error err = {0};
	float buf[157 * 3];

	(void)state;
	/* chunk 2's Coordinates of the wrong shapes */
	memset(&bad, 0, sizeof(bad));
	bad.coord_rank = 1;
	base = three_chunks(&bad);
	assert_int_equal(sm_snapshot_open_base(&s, base, 7, &err), 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Coordinates", SM_DTYPE_F32, 3, buf, NULL,
						&err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "snap_007.2.hdf5': /PartType0/Coordinates has shape [57], "
				       "expected [N,3]"));
	sm_snapshot_release(&s);
	no_handles();
	tu_rmtree(base);
	free(base);

	bad.coord_rank = 2;
	bad.coord_ncomp = 2;
	base = three_chunks(&bad);
	assert_int_equal(sm_snapshot_open_base(&s, base, 7, &err), 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Coordinates", SM_DTYPE_F32, 3, buf, NULL,
						&err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "has shape [57,2], expected [N,3]"));
	assert_int_equal(sm_snapshot_check_field(&s, 0, "Coordinates", 0, &err), SM_EFORMAT);
	{
		const sm_field_check co = {"Coordinates", 0};

		assert_int_equal(check_both(&s, &co, 1, &err), SM_EFORMAT);
	}
	sm_snapshot_release(&s);
	tu_rmtree(base);
	free(base);

	/* rows do not match NumPart_ThisFile */
	memset(&bad, 0, sizeof(bad));
	bad.rows_delta = -1;
	base = three_chunks(&bad);
	assert_int_equal(sm_snapshot_open_base(&s, base, 7, &err), 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "InternalEnergy", SM_DTYPE_F32, 1, buf, NULL,
						&err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "has 56 rows but NumPart_ThisFile[0] is 57"));
	sm_snapshot_release(&s);
	tu_rmtree(base);
	free(base);

	/* a field missing in one chunk only */
	memset(&bad, 0, sizeof(bad));
	bad.no_energy = 1;
	base = three_chunks(&bad);
	assert_int_equal(sm_snapshot_open_base(&s, base, 7, &err), 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "InternalEnergy", SM_DTYPE_F32, 1, buf, NULL,
						&err), SM_ENOTFOUND);
	assert_non_null(strstr(err.msg, "snap_007.2.hdf5': no dataset /PartType0/InternalEnergy"));
	assert_int_equal(sm_snapshot_check_field(&s, 0, "InternalEnergy", 1, &err), SM_ENOTFOUND);
	{
		const sm_field_check ie[] = {{"Coordinates", 3}, {"InternalEnergy", 1}};

		assert_int_equal(check_both(&s, ie, 2, &err), SM_ENOTFOUND);
	}
	sm_snapshot_release(&s);
	tu_rmtree(base);
	free(base);

	/* a gas count without a PartType0 group */
	memset(&bad, 0, sizeof(bad));
	bad.no_gas_group = 1;
	base = three_chunks(&bad);
	assert_int_equal(sm_snapshot_open_base(&s, base, 7, &err), 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "InternalEnergy", SM_DTYPE_F32, 1, buf, NULL,
						&err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "no /PartType0 group although NumPart_ThisFile[0] is 57"));
	sm_snapshot_release(&s);

	/* a missing chunk, then counts that do not add up */
	p = tu_path(base, "snapdir_007/snap_007.1.hdf5");
	unlink(p);
	assert_int_equal(sm_snapshot_open_base(&s, base, 7, &err), 0);
	assert_int_equal(sm_snapshot_scan(&s, &err), SM_ENOTFOUND);
	assert_non_null(strstr(err.msg, p));
	sm_snapshot_release(&s);
	{
		struct spec sp = {0};

		sp.gas = 3;
		sp.total = 157;
		sp.nfiles = 3;
		write_chunk(p, &sp);
	}
	assert_int_equal(sm_snapshot_open_base(&s, base, 7, &err), 0);
	assert_int_equal(sm_snapshot_scan(&s, &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "add up to 160, but NumPart_Total[0] is 157"));
	sm_snapshot_release(&s);
	no_handles();
	free(p);
	tu_rmtree(base);
	free(base);
}

static void test_layouts(void **state)
{
	char *base = tu_tmpdir(), *odd = tu_path(base, "100%s%d"), *p;
	struct spec sp = {0};
	sm_snapshot s;
	sm_error err = {0};
	char path[SM_PATH_MAX];

	(void)state;
	sp.gas = 4;
	mkdir(odd, 0777);
	assert_int_equal(sm_snapshot_open_base(&s, odd, 5, &err), SM_ENOTFOUND);
	assert_non_null(strstr(err.msg, "no snapshot 005"));
	/* flat snapshot_XXX.N.hdf5 in a directory whose name holds printf directives */
	p = tu_path(odd, "snapshot_005.0.hdf5");
	write_chunk(p, &sp);
	free(p);
	assert_int_equal(sm_snapshot_open_base(&s, odd, 5, &err), 0);
	assert_int_equal(sm_snapshot_chunk_path(&s, 0, path, sizeof(path), &err), 0);
	assert_non_null(strstr(path, "100%s%d/snapshot_005.0.hdf5"));
	assert_int_equal(sm_snapshot_scan(&s, &err), 0);
	sm_snapshot_release(&s);
	/* a single file snap_XXX.hdf5 */
	p = tu_path(base, "snap_012.hdf5");
	write_chunk(p, &sp);
	free(p);
	assert_int_equal(sm_snapshot_open_base(&s, base, 12, &err), 0);
	assert_int_equal(s.nfiles, 1);
	assert_int_equal(sm_snapshot_open_base(&s, base, -1, &err), SM_EINVAL);
	sm_snapshot_release(&s);
	no_handles();
	free(odd);
	tu_rmtree(base);
	free(base);
}

static void write_group_chunk(const char *path, int ng, int total, int nfiles)
{
	hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), h, g;
	float m[8] = {1, 2, 3, 4, 5, 6, 7, 8};

	h = H5Gcreate2(f, "Header", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	attr(h, "Ngroups_ThisFile", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &ng);
	attr(h, "Ngroups_Total", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &total);
	attr(h, "NumFiles", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &nfiles);
	H5Gclose(h);
	g = H5Gcreate2(f, "Group", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	if (ng > 0) {
		hsize_t d = (hsize_t)ng;
		hid_t sp = H5Screate_simple(1, &d, NULL);
		hid_t ds = H5Dcreate2(g, "Group_M_Crit200", H5T_IEEE_F32LE, sp, H5P_DEFAULT,
				      H5P_DEFAULT, H5P_DEFAULT);

		H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m);
		H5Dclose(ds);
		H5Sclose(sp);
	}
	H5Gclose(g);
	H5Fclose(f);
}

static void test_catalog_faults(void **state)
{
	char *base = tu_tmpdir(), *gd = tu_path(base, "groups_003"), *p0, *p1, *p2;
	sm_catalog c;
	sm_error err = {0};
	float m[16];

	(void)state;
	mkdir(gd, 0777);
	/* the old Illustris name groups_XXX.N.hdf5 */
	p0 = tu_path(gd, "groups_003.0.hdf5");
	p1 = tu_path(gd, "groups_003.1.hdf5");
	p2 = tu_path(gd, "groups_003.2.hdf5");
	write_group_chunk(p0, 3, 5, 3);
	write_group_chunk(p1, 0, 5, 3);
	write_group_chunk(p2, 2, 5, 3);
	assert_int_equal(sm_catalog_open_base(&c, base, 3, &err), 0);
	assert_true(c.ngroups_total == 5 && c.ngroups_read == 5);
	assert_int_equal(sm_catalog_read_group_field(&c, "Group_M_Crit200", SM_DTYPE_F32, 1, m,
						     &err), 0);
	assert_true(m[2] == 3 && m[3] == 1 && m[4] == 2);
	sm_catalog_release(&c);
	write_group_chunk(p2, 3, 5, 3);
	assert_int_equal(sm_catalog_open_base(&c, base, 3, &err), 0);
	assert_int_equal(sm_catalog_read_group_field(&c, "Group_M_Crit200", SM_DTYPE_F32, 1, m,
						     &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "groups_003.2.hdf5': Ngroups_ThisFile"));
	sm_catalog_release(&c);
	write_group_chunk(p2, 1, 5, 3);
	assert_int_equal(sm_catalog_open_base(&c, base, 3, &err), 0);
	assert_int_equal(sm_catalog_read_group_field(&c, "Group_M_Crit200", SM_DTYPE_F32, 1, m,
						     &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "add up to 4, but Ngroups_Total is 5"));
	sm_catalog_release(&c);
	unlink(p1);
	assert_int_equal(sm_catalog_open_base(&c, base, 3, &err), 0);
	assert_int_equal(sm_catalog_read_group_field(&c, "Group_M_Crit200", SM_DTYPE_F32, 1, m,
						     &err), SM_ENOTFOUND);
	assert_non_null(strstr(err.msg, p1));
	sm_catalog_release(&c);
	assert_int_equal(sm_catalog_open_base(&c, base, 4, &err), SM_ENOTFOUND);
	no_handles();
	free(p0);
	free(p1);
	free(p2);
	free(gd);
	tu_rmtree(base);
	free(base);
}

static void test_dtypes(void **state)
{
	sm_dtype t;

	(void)state;
	assert_int_equal(sm_dtype_size(SM_DTYPE_F32), 4);
	assert_int_equal(sm_dtype_size(SM_DTYPE_U64), 8);
	assert_int_equal(sm_dtype_size(SM_DTYPE_U8), 1);
	assert_int_equal(sm_dtype_size(SM_DTYPE_NONE), 0);
	assert_string_equal(sm_dtype_name(SM_DTYPE_F64), "float64");
	assert_int_equal(sm_dtype_from_name("int32", &t), 0);
	assert_int_equal(t, SM_DTYPE_I32);
	assert_int_equal(sm_dtype_from_name("float16", &t), SM_EINVAL);
	assert_int_equal(sm_dtype_from_name("none", &t), SM_EINVAL);
}

/* --- memory: float64 Coordinates read as float32 never exist as a float64 copy ---------------- */

static long status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, strlen(key)) == 0)
			v = atol(line + strlen(key) + 1);
	fclose(f);
	return v;
}

/* Resets VmHWM to the current VmRSS (Linux clear_refs "5"); 0 on success. */
static int reset_peak(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");

	if (f == NULL)
		return -1;
	if (fputs("5", f) < 0) {
		fclose(f);
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

#define MEM_N 2000000u

/* Peak resident growth (KiB) while reading Coordinates into buf as memtype. */
static long read_growth(sm_snapshot *s, sm_dtype memtype, void *buf, const sm_io_buffer *iob)
{
	sm_error err = {0};
	long before;

	if (reset_peak() != 0)
		return -1;
	before = status_kb("VmRSS:");
	assert_int_equal(sm_snapshot_read_field(s, 0, "Coordinates", memtype, 3, buf, iob, &err), 0);
	return status_kb("VmHWM:") - before;
}

static void test_float32_read_memory(void **state)
{
	char *d, *p;
	hid_t f, h, g, sp, ds;
	hsize_t dims[2] = {MEM_N, 3}, blk = 65536, i;
	double *rows;
	float *out32;
	double *out64;
	sm_snapshot s;
	sm_error err = {0};
	long g32, g32b, g64;
	unsigned char *tconv;
	sm_io_buffer iob;
	int64_t tf[6] = {MEM_N, 0, 0, 0, 0, 0}, one = 1;
	double box = 1e6;

	(void)state;
	if (tu_sanitized())
		skip();
	if (reset_peak() != 0 || status_kb("VmHWM:") < 0)
		skip();
	d = tu_tmpdir();
	p = tu_path(d, "big.hdf5");
	f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	h = H5Gcreate2(f, "Header", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	attr(h, "NumPart_ThisFile", H5T_STD_I32LE, H5T_NATIVE_INT64, 6, tf);
	attr(h, "NumPart_Total", H5T_STD_U32LE, H5T_NATIVE_INT64, 6, tf);
	attr(h, "NumFilesPerSnapshot", H5T_STD_I32LE, H5T_NATIVE_INT64, 0, &one);
	attr(h, "BoxSize", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &box);
	H5Gclose(h);
	g = H5Gcreate2(f, "PartType0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	sp = H5Screate_simple(2, dims, NULL);
	ds = H5Dcreate2(g, "Coordinates", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	rows = malloc(blk * 3 * sizeof(double));
	for (i = 0; i < MEM_N; i += blk) {
		hsize_t st[2] = {i, 0}, cnt[2] = {MEM_N - i < blk ? MEM_N - i : blk, 3}, j;
		hid_t ms = H5Screate_simple(2, cnt, NULL), fs = H5Dget_space(ds);

		for (j = 0; j < cnt[0] * 3; j++)
			rows[j] = (double)(i * 3 + j) * 0.5;
		H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, NULL, cnt, NULL);
		H5Dwrite(ds, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, rows);
		H5Sclose(fs);
		H5Sclose(ms);
	}
	free(rows);
	H5Dclose(ds);
	H5Sclose(sp);
	H5Gclose(g);
	H5Fclose(f);

	assert_int_equal(sm_snapshot_open_file(&s, p, &err), 0);
	assert_int_equal(sm_snapshot_scan(&s, &err), 0);
	/* the float32 result is touched first so that only the read's own memory counts */
	out32 = malloc((size_t)MEM_N * 3 * sizeof(float));
	assert_non_null(out32);
	memset(out32, 0xff, (size_t)MEM_N * 3 * sizeof(float));
	g32 = read_growth(&s, SM_DTYPE_F32, out32, NULL);
	assert_true(out32[3 * 1234567 + 2] == (float)((3.0 * 1234567 + 2) * 0.5));
	tconv = malloc(1 << 20);
	memset(tconv, 0, 1 << 20);
	iob.tconv = tconv;
	iob.size = 1 << 20;
	g32b = read_growth(&s, SM_DTYPE_F32, out32, &iob);
	/* control: a read that does fill 48 MB of fresh pages is seen by the same measurement */
	out64 = malloc((size_t)MEM_N * 3 * sizeof(double));
	assert_non_null(out64);
	g64 = read_growth(&s, SM_DTYPE_F64, out64, NULL);
	assert_true(out64[3 * MEM_N - 1] == (3.0 * MEM_N - 1) * 0.5);
	print_message("peak growth: float32 %ld KiB, float32 with caller buffer %ld KiB, "
		      "float64 control %ld KiB (field: %u KiB as float64)\n", g32, g32b, g64,
		      MEM_N * 24 / 1024);
	assert_true(g64 > (long)(MEM_N * 24 / 1024) * 8 / 10);
	assert_true(g32 >= 0 && g32 < 8 * 1024);
	assert_true(g32b >= 0 && g32b < 8 * 1024);
	sm_snapshot_release(&s);
	free(out64);
	free(out32);
	free(tconv);
	free(p);
	tu_rmtree(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dtypes),
		cmocka_unit_test(test_integer_widths),
		cmocka_unit_test(test_highword),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_multichunk_reads),
		cmocka_unit_test(test_chunk_faults),
		cmocka_unit_test(test_check_fields_order),
		cmocka_unit_test(test_scan_without_hdf5),
		cmocka_unit_test(test_layouts),
		cmocka_unit_test(test_catalog_faults),
		cmocka_unit_test(test_float32_read_memory),
	};

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
