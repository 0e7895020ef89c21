/*
 * The snapshot reader's fast path (src/snapshot/fastread.c) against HDF5's own read: the same
 * bytes for every field, type conversion and range (SNAPMEM_FASTREAD=1 against =0), profiles
 * identical bit for bit from the serial and the distributed run, the preconditions checked on
 * variants of a mock written here with the HDF5 API (big-endian datasets take the swap path,
 * chunked + compressed ones HDF5's path, a file with a user block still the fast path), HDF5's
 * float64 -> float32 conversion reproduced exactly (against H5Tconvert), and damaged files (a
 * dataset whose header places it past the end of the file, two datasets over the same bytes, a
 * truncated file) giving the same outcome and the same one-line errors on both paths. Direct
 * reads (src/snapshot/direct.h: a range of one chunk file read in pieces on any thread) give
 * HDF5's bytes and the same first bad row, and are refused over two chunk files, in a chunked
 * file and with the fast path off.
 */
#include <fcntl.h>
#include <float.h>
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

#include "snapmem/mock.h"
#include "snapmem/pipeline.h"
#include "snapmem/snapshot.h"
#include "snapshot/snapshot-internal.h"

#include "util.h"

#define NGAS 400000u
#define NFILES 4u /* the mock puts gas in chunks 0, 2 and 3 */

static const char *const FIELDS[] = {"Coordinates", "Density", "ElectronAbundance",
				     "InternalEnergy", "Masses", "ParticleIDs",
				     "StarFormationRate"};
#define NF (sizeof(FIELDS) / sizeof(FIELDS[0]))

static struct {
	char *dir;     /* the mock (little-endian, contiguous: the fast path) */
	char *be;      /* big-endian datasets */
	char *chunked; /* chunked + deflate */
	char *ub;      /* a 512-byte user block before the HDF5 data */
	uint64_t n;
	double box;
} W;

static void fast(int on)
{
	setenv("SNAPMEM_FASTREAD", on ? "1" : "0", 1);
}

/* ---- variants of the mock, written with the HDF5 API ----------------------------------------- */

enum kind { K_BE, K_CHUNKED, K_USERBLOCK };

/* A whole binary file into a malloc'd buffer (tu_read_file stops at the first NUL). */
static unsigned char *read_all(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *b;
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	*len = (size_t)st.st_size;
	b = malloc(*len + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, *len, f), *len);
	fclose(f);
	return b;
}

static void copy_file(const char *from, const char *to)
{
	size_t len;
	unsigned char *b = read_all(from, &len);
	FILE *f = fopen(to, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	free(b);
}

/* src's PartType0 dataset name into group g of dst as kind asks. */
static void rewrite_dataset(hid_t src, hid_t g, const char *name, enum kind k)
{
	char full[64];
	hid_t d, t, nt, ft, sp, dcpl = H5P_DEFAULT;
	hsize_t dims[2] = {0, 1}, cdims[2];
	hssize_t np;
	void *buf;
	int rank;

	snprintf(full, sizeof(full), "/PartType0/%s", name);
	d = H5Dopen2(src, full, H5P_DEFAULT);
	assert_true(d >= 0);
	t = H5Dget_type(d);
	nt = H5Tget_native_type(t, H5T_DIR_ASCEND);
	sp = H5Dget_space(d);
	rank = H5Sget_simple_extent_dims(sp, dims, NULL);
	np = H5Sget_simple_extent_npoints(sp);
	buf = malloc((size_t)np * H5Tget_size(nt) + 1);
	assert_non_null(buf);
	assert_true(H5Dread(d, nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
	ft = H5Tcopy(t);
	if (k == K_BE)
		assert_true(H5Tset_order(ft, H5T_ORDER_BE) >= 0);
	if (k == K_CHUNKED && np > 0) {
		dcpl = H5Pcreate(H5P_DATASET_CREATE);
		cdims[0] = dims[0] < 4096 ? dims[0] : 4096;
		cdims[1] = rank == 2 ? dims[1] : 1;
		assert_true(H5Pset_chunk(dcpl, rank, cdims) >= 0);
		assert_true(H5Pset_deflate(dcpl, 1) >= 0);
	}
	H5Dclose(d);
	d = H5Dcreate2(g, name, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	assert_true(d >= 0);
	assert_true(H5Dwrite(d, nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
	H5Dclose(d);
	if (dcpl != H5P_DEFAULT)
		H5Pclose(dcpl);
	H5Tclose(ft);
	H5Tclose(nt);
	H5Tclose(t);
	H5Sclose(sp);
	free(buf);
}

static void rewrite_chunk(const char *from, const char *to, enum kind k)
{
	hid_t src, dst, fcpl = H5P_DEFAULT, g;
	size_t i;

	src = H5Fopen(from, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(src >= 0);
	if (k == K_USERBLOCK) {
		fcpl = H5Pcreate(H5P_FILE_CREATE);
		assert_true(H5Pset_userblock(fcpl, 512) >= 0);
	}
	dst = H5Fcreate(to, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
	assert_true(dst >= 0);
	assert_true(H5Ocopy(src, "Header", dst, "Header", H5P_DEFAULT, H5P_DEFAULT) >= 0);
	if (H5Lexists(src, "PartType1", H5P_DEFAULT) > 0)
		assert_true(H5Ocopy(src, "PartType1", dst, "PartType1", H5P_DEFAULT,
				    H5P_DEFAULT) >= 0);
	if (H5Lexists(src, "PartType0", H5P_DEFAULT) > 0) {
		g = H5Gcreate2(dst, "PartType0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
		assert_true(g >= 0);
		for (i = 0; i < NF; i++)
			rewrite_dataset(src, g, FIELDS[i], k);
		H5Gclose(g);
	}
	if (fcpl != H5P_DEFAULT)
		H5Pclose(fcpl);
	H5Fclose(dst);
	H5Fclose(src);
}

static char *chunk_path(const char *base, unsigned i)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "snapdir_099/snap_099.%u.hdf5", i);
	return tu_path(base, rel);
}

static char *cat_path(const char *base, unsigned i)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "groups_099/fof_subhalo_tab_099.%u.hdf5", i);
	return tu_path(base, rel);
}

/* A copy of the mock: the catalogue byte for byte, the snapshot chunks rewritten (kind >= 0) or
 * copied (kind < 0). */
static char *variant(int kind)
{
	char *d = tu_tmpdir(), *a, *b;
	unsigned i;

	a = tu_path(d, "snapdir_099");
	b = tu_path(d, "groups_099");
	assert_int_equal(mkdir(a, 0755), 0);
	assert_int_equal(mkdir(b, 0755), 0);
	free(a);
	free(b);
	for (i = 0; i < NFILES; i++) {
		a = chunk_path(W.dir, i);
		b = chunk_path(d, i);
		if (kind < 0)
			copy_file(a, b);
		else
			rewrite_chunk(a, b, (enum kind)kind);
		free(a);
		free(b);
	}
	for (i = 0; i < 64; i++) {
		a = cat_path(W.dir, i);
		if (!tu_exists(a)) {
			free(a);
			break;
		}
		b = cat_path(d, i);
		copy_file(a, b);
		free(a);
		free(b);
	}
	return d;
}

static int setup(void **state)
{
	sm_mock_options mo;
	sm_snapshot s;
	sm_error err;

	(void)state;
	W.dir = tu_tmpdir();
	sm_mock_options_init(&mo);
	mo.gas = NGAS;
	mo.halos = 5;
	mo.files = NFILES;
	mo.seed = 11;
	if (sm_mock_write(W.dir, &mo, &err) != 0)
		fail_msg("mock: %s", err.msg);
	memset(&s, 0, sizeof(s));
	assert_int_equal(sm_snapshot_open_base(&s, W.dir, 99, &err), 0);
	W.n = s.header.npart_total[0];
	W.box = s.header.box_size;
	sm_snapshot_release(&s);
	W.be = variant(K_BE);
	W.chunked = variant(K_CHUNKED);
	W.ub = variant(K_USERBLOCK);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unsetenv("SNAPMEM_FASTREAD");
	tu_rmtree(W.dir);
	tu_rmtree(W.be);
	tu_rmtree(W.chunked);
	tu_rmtree(W.ub);
	free(W.dir);
	free(W.be);
	free(W.chunked);
	free(W.ub);
	return 0;
}

/* ---- reads ------------------------------------------------------------------------------------ */

/* The extent the fast path finds for /PartType0/field of chunk i of base. */
static sm__extent probe(const char *base, unsigned i, const char *field)
{
	char *p = chunk_path(base, i), name[64];
	hid_t f, d;
	sm__extent x;

	snprintf(name, sizeof(name), "/PartType0/%s", field);
	f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, name, H5P_DEFAULT);
	assert_true(d >= 0);
	sm__extent_probe(f, d, &x);
	H5Dclose(d);
	H5Fclose(f);
	free(p);
	return x;
}

struct rd {
	const char *field;
	sm_dtype mem;
	int ncomp;
	int iob;         /* through a 1 MiB sm_io_buffer */
	int checked;     /* sm_snapshot_read_range_checked over [-box/2, 3 box/2) */
};

/* One read of rows [first, first + count) of base on the path `on`; returns the buffer. */
static void *read_one(const char *base, const struct rd *r, uint64_t first, uint64_t count,
		      int on, uint64_t *bad)
{
	sm_snapshot s;
	sm_error err;
	static unsigned char tconv[1 << 20];
	sm_io_buffer iob = {tconv, sizeof(tconv)};
	size_t bytes = (size_t)count * (size_t)r->ncomp * sm_dtype_size(r->mem);
	void *buf = malloc(bytes + 1);
	int rc;

	assert_non_null(buf);
	memset(buf, 0xa5, bytes + 1);
	fast(on);
	memset(&s, 0, sizeof(s));
	assert_int_equal(sm_snapshot_open_base(&s, base, 99, &err), 0);
	*bad = count;
	if (r->checked)
		rc = sm_snapshot_read_range_checked(&s, 0, r->field, r->mem, r->ncomp, first, count,
						    buf, r->iob ? &iob : NULL, -0.5 * W.box,
						    1.5 * W.box, bad, &err);
	else
		rc = sm_snapshot_read_range(&s, 0, r->field, r->mem, r->ncomp, first, count, buf,
					    r->iob ? &iob : NULL, &err);
	if (rc != 0)
		fail_msg("read %s: %s", r->field, err.msg);
	sm_snapshot_release(&s);
	return buf;
}

static const struct rd READS[] = {
	{"InternalEnergy", SM_DTYPE_F32, 1, 0, 0},
	{"StarFormationRate", SM_DTYPE_F32, 1, 0, 1},
	{"Coordinates", SM_DTYPE_F64, 3, 0, 0},
	{"Coordinates", SM_DTYPE_F64, 3, 0, 1},
	{"Coordinates", SM_DTYPE_F32, 3, 1, 0},  /* narrowed by the fast path (little-endian) */
	{"Coordinates", SM_DTYPE_F32, 3, 1, 1},  /* narrowed and checked */
	{"Coordinates", SM_DTYPE_F32, 3, 0, 0},  /* no buffer: HDF5 converts */
	{"Density", SM_DTYPE_F64, 1, 1, 0},      /* widened */
	{"Masses", SM_DTYPE_F64, 1, 0, 0},       /* no buffer to widen through: HDF5 */
	{"ParticleIDs", SM_DTYPE_U64, 1, 0, 0},
};
#define NREADS (sizeof(READS) / sizeof(READS[0]))

/* Every read of READS over a few ranges: fast path == HDF5 path, byte for byte; and equal to
 * the reference mock's HDF5 read when ref != NULL (the same values in another layout). */
static void same_reads(const char *base, const char *ref)
{
	const uint64_t ranges[][2] = {{0, W.n}, {123, W.n - 500}, {W.n / 2 - 7, 1000},
				      {W.n - 3, 3}};
	size_t i, j;

	for (i = 0; i < NREADS; i++)
		for (j = 0; j < sizeof(ranges) / sizeof(ranges[0]); j++) {
			const struct rd *r = &READS[i];
			uint64_t f = ranges[j][0], c = ranges[j][1], b1, b0, bref;
			size_t bytes = (size_t)c * (size_t)r->ncomp * sm_dtype_size(r->mem);
			void *a = read_one(base, r, f, c, 1, &b1);
			void *b = read_one(base, r, f, c, 0, &b0);

			if (memcmp(a, b, bytes + 1) != 0)
				fail_msg("%s: %s as %s (iob %d, checked %d) rows %llu+%llu differ "
					 "between the fast path and HDF5's", base, r->field,
					 sm_dtype_name(r->mem), r->iob, r->checked,
					 (unsigned long long)f, (unsigned long long)c);
			assert_int_equal(b1, b0);
			assert_int_equal(b1, c); /* the mock's values lie in range */
			if (ref != NULL) {
				void *x = read_one(ref, r, f, c, 0, &bref);

				if (memcmp(a, x, bytes) != 0)
					fail_msg("%s: %s as %s differs from the little-endian "
						 "contiguous mock", base, r->field,
						 sm_dtype_name(r->mem));
				free(x);
			}
			free(a);
			free(b);
		}
}

static void test_same_bytes(void **state)
{
	sm__extent x;

	(void)state;
	fast(1);
	x = probe(W.dir, 0, "Coordinates");
	assert_int_equal(x.ok, 1); /* the mock takes the fast path */
	assert_int_equal(x.swap, 0);
	assert_int_equal(x.disk, SM_DTYPE_F64);
	fast(0);
	x = probe(W.dir, 0, "Coordinates");
	assert_int_equal(x.ok, 0); /* SNAPMEM_FASTREAD=0: HDF5 everywhere */
	same_reads(W.dir, NULL);
}

static void test_big_endian_swaps(void **state)
{
	sm__extent x;

	(void)state;
	fast(1);
	x = probe(W.be, 0, "Coordinates");
	assert_int_equal(x.ok, 1);
	assert_int_equal(x.swap, 1);
	x = probe(W.be, 0, "ParticleIDs");
	assert_int_equal(x.ok, 1);
	assert_int_equal(x.swap, 1);
	same_reads(W.be, W.dir);
}

static void test_chunked_takes_hdf5(void **state)
{
	size_t i;

	(void)state;
	fast(1);
	for (i = 0; i < NF; i++)
		assert_int_equal(probe(W.chunked, 0, FIELDS[i]).ok, 0);
	same_reads(W.chunked, W.dir);
}

static void test_user_block(void **state)
{
	sm__extent x;

	(void)state;
	fast(1);
	x = probe(W.ub, 0, "Coordinates");
	assert_int_equal(x.ok, 1);
	assert_true(x.offset >= 512);
	same_reads(W.ub, W.dir);
}

/* ---- conversion and checks -------------------------------------------------------------------- */

/* Once with AVX where the CPU has it, once with the SSE2 loop alone (sm__narrow_avx). */
static void narrow_as_hdf5(void)
{
	double v[] = {1.0, 0.1, -2.5e-3, FLT_MAX, (double)FLT_MAX * (1 + 1e-9), 3.4028235677973366e38,
		      1e39, -1e39, -(double)FLT_MAX * (1 + 1e-9), INFINITY, -INFINITY, NAN, 1e-46,
		      1e-40, -1e-46, 7e-46, 1.4e-45, 123456789.123, 16777217.0, 1.0 + 0x1p-24};
	enum { N = sizeof(v) / sizeof(v[0]) };
	double buf[N];
	float out[N], ref[N];
	sm__bounds b = {1.0, 1.0 + 0x1p-23 - 0x1p-41};
	double w[4] = {1.0, 1.0 + 0x1p-23 - 0x1p-40, 1.0, 1.0};
	float o4[4];
	size_t i, rep;

	for (rep = 0; rep < 4; rep++) { /* the value beyond FLT_MAX at each vector position */
		memcpy(buf, v + rep, (N - rep) * sizeof(double));
		memcpy(buf + N - rep, v, rep * sizeof(double));
		assert_true(H5Tconvert(H5T_NATIVE_DOUBLE, H5T_NATIVE_FLOAT, N, buf, NULL,
				       H5P_DEFAULT) >= 0);
		memcpy(ref, buf, sizeof(ref));
		memcpy(buf, v + rep, (N - rep) * sizeof(double));
		memcpy(buf + N - rep, v, rep * sizeof(double));
		assert_int_equal(sm__narrow_f64(buf, out, N, NULL), N);
		for (i = 0; i < N; i++)
			if (memcmp(&out[i], &ref[i], 4) != 0)
				fail_msg("narrowing %.17g: %a, HDF5 gives %a", buf[i], out[i], ref[i]);
	}
	/* Inside the bounds as read, outside once narrowed: w[1] rounds up to 1 + 2^-23 >= hi. */
	assert_int_equal(sm__narrow_f64(w, o4, 4, &b), 1);
	w[1] = NAN;
	assert_int_equal(sm__narrow_f64(w, o4, 4, &b), 1);
	w[1] = 1.0;
	w[3] = 0.5;
	assert_int_equal(sm__narrow_f64(w, o4, 4, &b), 3);
	assert_int_equal(sm__first_outside_any(w, SM_DTYPE_F64, 4, &b), 3);
	/* The first value outside at every place of two 4-wide blocks (AVX) and 2-wide ones (SSE2)
	 * and the scalar tail, narrowed before it: a value outside as read, then one outside once
	 * narrowed. */
	for (rep = 0; rep < 2; rep++)
		for (i = 0; i < 11; i++) {
			double x[11];
			float o[11];
			size_t k;

			for (k = 0; k < 11; k++)
				x[k] = 1.0 + (double)k * 0x1p-30;
			x[i] = rep == 0 ? 2.0 : 1.0 + 0x1p-23 - 0x1p-40;
			assert_int_equal(sm__narrow_f64(x, o, 11, &b), i);
			for (k = 0; k < i; k++)
				assert_true(o[k] == (float)x[k]);
		}
}

static void test_narrow_as_hdf5(void **state)
{
	(void)state;
	narrow_as_hdf5();
	sm__narrow_avx = 0;
	narrow_as_hdf5();
	sm__narrow_avx = -1;
}

/* Bad coordinates planted in the last chunk of a copy, each before the last: both paths report
 * the planted row and read the same bytes before it. */
/* ---- direct reads on any thread (src/snapshot/direct.h) --------------------------------------- */

/* Rows [first, first + count) of base read by sm__snapshot_direct + sm__fast_read_here in pieces
 * of `piece` rows through a 4 KiB scratch; returns the buffer, NULL when the range is not direct.
 * *bad: the first row outside the check's bounds (checked reads), else count. */
static void *read_direct(const char *base, const struct rd *r, uint64_t first, uint64_t count,
			 uint64_t piece, uint64_t *bad)
{
	static unsigned char scratch[4096];
	const size_t esz = sm_dtype_size(r->mem);
	const sm__bounds bounds = {-0.5 * W.box, 1.5 * W.box};
	size_t bytes = (size_t)count * (size_t)r->ncomp * esz;
	sm_snapshot s;
	sm_error err;
	sm__direct d;
	unsigned char *buf = malloc(bytes + 1);
	uint64_t a;

	assert_non_null(buf);
	memset(buf, 0xa5, bytes + 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(sm_snapshot_open_base(&s, base, 99, &err), 0);
	sm__snapshot_direct(&s, 0, r->field, r->mem, r->ncomp, first, count, r->checked, &d);
	*bad = count;
	if (!d.ok) {
		free(buf);
		buf = NULL;
		goto out;
	}
	assert_int_equal(d.ne, count * (uint64_t)r->ncomp);
	for (a = 0; a < count; a += piece) {
		uint64_t m = count - a < piece ? count - a : piece, e;
		int errnum;

		assert_int_equal(sm__fast_read_here(&d.x, r->mem, d.e0 + a * r->ncomp, m * r->ncomp,
						    buf + a * r->ncomp * esz, scratch,
						    sizeof(scratch), r->checked ? &bounds : NULL,
						    &e, &errnum), 0);
		assert_int_equal(errnum, 0);
		if (e < m * r->ncomp) {
			*bad = a + e / r->ncomp;
			break;
		}
	}
out:
	sm_snapshot_release(&s);
	return buf;
}

static void test_checked_bad_row(void **state)
{
	char *d = variant(-1), *p = chunk_path(d, NFILES - 1);
	sm_snapshot s;
	sm_error err;
	hid_t f, ds, fsp, msp;
	hsize_t start[2], cnt[2] = {1, 1};
	uint64_t n0, rows[] = {0, 777, 1, 0}; /* descending: each planted value is the first */
	double bad = 2.0 * W.box;
	size_t i, k;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(sm_snapshot_open_base(&s, d, 99, &err), 0);
	assert_int_equal(sm_snapshot_scan(&s, &err), 0);
	n0 = W.n - s.chunk_counts[(NFILES - 1) * SM_NTYPES]; /* the last chunk's first cell */
	sm_snapshot_release(&s);
	rows[0] = W.n - n0 - 1;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
		assert_true(f >= 0);
		ds = H5Dopen2(f, "/PartType0/Coordinates", H5P_DEFAULT);
		fsp = H5Dget_space(ds);
		start[0] = rows[i];
		start[1] = 2;
		msp = H5Screate_simple(2, cnt, NULL);
		assert_true(H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0);
		assert_true(H5Dwrite(ds, H5T_NATIVE_DOUBLE, msp, fsp, H5P_DEFAULT, &bad) >= 0);
		H5Sclose(msp);
		H5Sclose(fsp);
		H5Dclose(ds);
		H5Fclose(f);
		for (k = 0; k < NREADS; k++) {
			uint64_t b1, b0, bx;
			void *a, *b, *x;

			if (!READS[k].checked || strcmp(READS[k].field, "Coordinates") != 0)
				continue;
			a = read_one(d, &READS[k], 0, W.n, 1, &b1);
			b = read_one(d, &READS[k], 0, W.n, 0, &b0);
			assert_int_equal(b1, n0 + rows[i]);
			assert_int_equal(b0, n0 + rows[i]);
			fast(1); /* the last chunk direct, in pieces: the same first bad row */
			x = read_direct(d, &READS[k], n0, W.n - n0, 1000, &bx);
			assert_non_null(x);
			assert_int_equal(bx, rows[i]);
			assert_memory_equal(x, (char *)b + n0 * 3 * sm_dtype_size(READS[k].mem),
					    (size_t)bx * 3 * sm_dtype_size(READS[k].mem));
			free(x);
			/* Everything before the bad cell was read, the same on both paths. */
			assert_memory_equal(a, b, (size_t)b1 * 3 * sm_dtype_size(READS[k].mem));
			free(a);
			free(b);
		}
		bad = i % 2 ? NAN : -bad; /* above, below, not a number */
	}
	free(p);
	tu_rmtree(d);
	free(d);
}

/* Every read of READS that the fast path converts, direct, over ranges inside one chunk file:
 * the same bytes as HDF5's read; a range over two chunk files is not direct, nor is anything
 * with SNAPMEM_FASTREAD=0 or in a chunked file. */
static void test_direct_reads(void **state)
{
	const char *bases[3] = {W.dir, W.be, W.ub};
	sm_snapshot s;
	sm_error err;
	uint64_t c0, c2, bad, b0;
	size_t i, j, k;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(sm_snapshot_open_base(&s, W.dir, 99, &err), 0);
	assert_int_equal(sm_snapshot_scan(&s, &err), 0);
	c0 = s.chunk_counts[0];               /* chunk 0's rows; chunk 1 holds no gas */
	c2 = s.chunk_counts[2 * SM_NTYPES];   /* chunk 2's */
	sm_snapshot_release(&s);
	assert_true(c0 > 2000 && c2 > 2000);
	for (k = 0; k < 3; k++)
		for (i = 0; i < NREADS; i++) {
			const struct rd *r = &READS[i];
			const uint64_t ranges[][2] = {{0, c0}, {17, 1500}, {c0, c2}, {c0 + c2 - 9, 9}};
			sm__extent x;

			fast(1);
			x = probe(bases[k], 0, r->field);
			assert_int_equal(x.ok, 1);
			for (j = 0; j < sizeof(ranges) / sizeof(ranges[0]); j++) {
				uint64_t f = ranges[j][0], c = ranges[j][1];
				size_t bytes = (size_t)c * (size_t)r->ncomp * sm_dtype_size(r->mem);
				void *a, *b;

				fast(1); /* read_one below sets it */
				a = read_direct(bases[k], r, f, c, 1000, &bad);

				/* direct exactly when the fast path reads and converts it */
				if ((a != NULL) != sm__fast_converts(&x, r->mem, r->checked))
					fail_msg("%s: %s as %s (checked %d) rows %llu+%llu: direct %d",
						 bases[k], r->field, sm_dtype_name(r->mem), r->checked,
						 (unsigned long long)f, (unsigned long long)c, a != NULL);
				if (a == NULL)
					continue;
				b = read_one(bases[k], r, f, c, 0, &b0);
				if (memcmp(a, b, bytes + 1) != 0)
					fail_msg("%s: %s as %s rows %llu+%llu: direct read differs "
						 "from HDF5's", bases[k], r->field,
						 sm_dtype_name(r->mem), (unsigned long long)f,
						 (unsigned long long)c);
				assert_int_equal(bad, c);
				free(a);
				free(b);
			}
			/* over two chunk files; and the fast path off */
			fast(1);
			assert_null(read_direct(bases[k], r, c0 - 5, 10, 1000, &bad));
			fast(0);
			assert_null(read_direct(bases[k], r, 0, 100, 1000, &bad));
		}
	fast(1);
	for (i = 0; i < NREADS; i++)
		assert_null(read_direct(W.chunked, &READS[i], 0, 100, 1000, &bad));
}

/*
 * A chunk's fields found by the metadata reader (field.c meta_field) instead of HDF5: the extent it
 * gives is HDF5's own (sm__extent_probe) for every field, in a plain and a big-endian file, and the
 * chunk was not opened through HDF5; a file with a user block (which the metadata reader does not
 * vouch for) is opened through HDF5 and gives the same extent. A read that needs HDF5 (the dataset
 * itself: Masses as float64 without a buffer) opens it then, and the bytes are HDF5's.
 */
static void test_meta_extents(void **state)
{
	const char *bases[3] = {W.dir, W.be, W.ub};
	size_t i, k;

	(void)state;
	fast(1);
	for (k = 0; k < 3; k++)
		for (i = 0; i < NREADS; i++) {
			const struct rd *r = &READS[i];
			sm__extent x = probe(bases[k], 0, r->field);
			const sm__snap_priv *p;
			sm_snapshot s;
			sm_error err;
			sm__direct d;

			memset(&s, 0, sizeof(s));
			assert_int_equal(sm_snapshot_open_base(&s, bases[k], 99, &err), 0);
			sm__snapshot_direct(&s, 0, r->field, r->mem, r->ncomp, 0, 100, r->checked, &d);
			p = s.priv;
			assert_non_null(p);
			assert_int_equal(p->chunk, 0);
			/* plain and big-endian: no HDF5 open; a user block: HDF5's */
			assert_int_equal(p->file < 0, k < 2);
			assert_int_equal(p->meta_open, k < 2);
			assert_int_equal(p->ext.ok, 1);
			assert_int_equal(p->ext.offset, x.offset);
			assert_int_equal(p->ext.bytes, x.bytes);
			assert_int_equal(p->ext.disk, x.disk);
			assert_int_equal(p->ext.swap, x.swap);
			assert_int_equal(d.ok, sm__fast_converts(&x, r->mem, r->checked));
			sm_snapshot_release(&s);
		}
	/* the same snapshot: a direct field, then one only HDF5 reads (the file opened then) */
	{
		double *a = malloc(100 * sizeof(double)), *b;
		uint64_t b0;
		sm_snapshot s;
		sm_error err;
		sm__direct d;

		assert_non_null(a);
		memset(&s, 0, sizeof(s));
		assert_int_equal(sm_snapshot_open_base(&s, W.dir, 99, &err), 0);
		sm__snapshot_direct(&s, 0, "InternalEnergy", SM_DTYPE_F32, 1, 0, 100, 0, &d);
		assert_int_equal(d.ok, 1);
		assert_true(((const sm__snap_priv *)s.priv)->file < 0);
		assert_int_equal(sm_snapshot_read_range(&s, 0, "Masses", SM_DTYPE_F64, 1, 0, 100, a,
							NULL, &err), 0);
		assert_true(((const sm__snap_priv *)s.priv)->file >= 0);
		sm_snapshot_release(&s);
		b = read_one(W.dir, &READS[8], 0, 100, 0, &b0);
		assert_memory_equal(a, b, 100 * sizeof(double));
		free(a);
		free(b);
	}
}

/* ---- whole runs -------------------------------------------------------------------------------- */

static void run_profiles(const char *base, int distributed, const char *pos, int on,
			 tu_profiles *po)
{
	sm_model_options mo;
	sm_pipeline_options o;
	sm_pipeline_result r;
	sm_error err;
	char *out = tu_tmpdir(), *pp;
	int rc;

	fast(on);
	sm_model_options_init(&mo);
	assert_int_equal(sm_model_option_apply(&mo, "--positions", pos, &err), 1);
	mo.mpi = distributed;
	sm_pipeline_options_init(&o);
	o.base_path = base;
	o.snap = 99;
	o.model = mo;
	o.out_dir = out;
	rc = distributed ? sm_pipeline_run_distributed(&o, NULL, NULL, &r, &err)
			 : sm_pipeline_run(&o, NULL, &r, &err);
	if (rc != 0)
		fail_msg("run on %s: %s", base, err.msg);
	pp = tu_path(out, "profiles.hdf5");
	tu_profiles_read(pp, po);
	sm_pipeline_result_release(&r);
	free(pp);
	tu_rmtree(out);
	free(out);
}

static void assert_identical(const tu_profiles *a, const tu_profiles *b)
{
	const size_t rb = SM_MODEL_RBINS, tb = SM_MODEL_TBINS;

	assert_int_equal(a->k, b->k);
	assert_true(a->k > 0);
	assert_memory_equal(a->group, b->group, a->k * sizeof(int64_t));
	assert_memory_equal(a->center, b->center, a->k * 3 * sizeof(double));
	assert_memory_equal(a->r200, b->r200, a->k * sizeof(double));
	assert_memory_equal(a->m200, b->m200, a->k * sizeof(double));
	assert_memory_equal(a->counts, b->counts, a->k * rb * sizeof(int64_t));
	assert_memory_equal(a->sf, b->sf, a->k * rb * sizeof(int64_t));
	assert_memory_equal(a->h2, b->h2, a->k * rb * tb * sizeof(int64_t));
	assert_memory_equal(a->mean, b->mean, a->k * rb * sizeof(double)); /* NaN bits too */
}

static void test_profiles_identical(void **state)
{
	const char *bases[] = {W.dir, W.be, W.chunked, W.ub};
	const char *pos[] = {"float32", "float64"};
	size_t i, j;
	int dist;

	(void)state;
	for (j = 0; j < 2; j++)
		for (dist = 0; dist < 2; dist++) {
			tu_profiles ref;

			run_profiles(W.dir, dist, pos[j], 0, &ref);
			for (i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
				tu_profiles a, b;

				run_profiles(bases[i], dist, pos[j], 1, &a);
				run_profiles(bases[i], dist, pos[j], 0, &b);
				assert_identical(&a, &b);
				assert_identical(&a, &ref);
				tu_profiles_free(&a);
				tu_profiles_free(&b);
			}
			tu_profiles_free(&ref);
		}
}

/* ---- damaged files ----------------------------------------------------------------------------- */

/* The file offset of the contiguous layout message's address field of /PartType0/field (its
 * address followed by its size, found once in the file's bytes). */
static long layout_at(const char *path, const char *field, uint64_t *addr, uint64_t *size)
{
	char name[64];
	unsigned char pat[16];
	hid_t f, d;
	size_t len, i;
	unsigned char *b;
	long at = -1;
	int hits = 0;

	snprintf(name, sizeof(name), "/PartType0/%s", field);
	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	d = H5Dopen2(f, name, H5P_DEFAULT);
	assert_true(d >= 0);
	*addr = (uint64_t)H5Dget_offset(d);
	*size = (uint64_t)H5Dget_storage_size(d);
	H5Dclose(d);
	H5Fclose(f);
	for (i = 0; i < 8; i++) {
		pat[i] = (unsigned char)(*addr >> (8 * i));
		pat[8 + i] = (unsigned char)(*size >> (8 * i));
	}
	b = read_all(path, &len);
	for (i = 0; i + 16 <= len; i++)
		if (memcmp(b + i, pat, 16) == 0) {
			at = (long)i;
			hits++;
		}
	free(b);
	assert_int_equal(hits, 1);
	return at;
}

static void patch_u64(const char *path, long at, uint64_t v)
{
	unsigned char b[8];
	int fd = open(path, O_WRONLY), i;

	assert_true(fd >= 0);
	for (i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	assert_int_equal(pwrite(fd, b, 8, at), 8);
	close(fd);
}

/* `snapmem run` on base with the fast path on and off: the same exit status and stderr, and the
 * same profiles when it succeeds. Returns the status. */
static int same_outcome(const char *base, const char *expect)
{
	char *o1 = tu_tmpdir(), *o0 = tu_tmpdir();
	tu_result r1, r0;
	int st;

	fast(1);
	r1 = tu_run("run", "--base-path", base, "--snap", "99", "--out", o1, "--force",
		    "--no-profile", NULL);
	fast(0);
	r0 = tu_run("run", "--base-path", base, "--snap", "99", "--out", o0, "--force",
		    "--no-profile", NULL);
	assert_int_equal(r1.status, r0.status);
	assert_string_equal(r1.err, r0.err);
	if (r1.status == 0) {
		char *p1 = tu_path(o1, "profiles.hdf5"), *p0 = tu_path(o0, "profiles.hdf5");
		tu_profiles a, b;

		tu_profiles_read(p1, &a);
		tu_profiles_read(p0, &b);
		assert_identical(&a, &b);
		tu_profiles_free(&a);
		tu_profiles_free(&b);
		free(p1);
		free(p0);
	} else {
		assert_int_equal(tu_count_lines(r1.err), 1);
		if (expect != NULL && strstr(r1.err, expect) == NULL)
			fail_msg("expected '%s' in: %s", expect, r1.err);
	}
	st = r1.status;
	tu_result_free(&r1);
	tu_result_free(&r0);
	tu_rmtree(o1);
	tu_rmtree(o0);
	free(o1);
	free(o0);
	return st;
}

static void test_past_end_of_file(void **state)
{
	char *d = variant(-1), *p = chunk_path(d, 0);
	uint64_t addr, size;
	struct stat st;
	long at = layout_at(p, "Coordinates", &addr, &size);
	sm_snapshot s;
	sm_error err;
	float *buf = malloc(3 * sizeof(float) * W.n);

	(void)state;
	assert_int_equal(stat(p, &st), 0);
	/* The header places the data half past the end of the file. */
	patch_u64(p, at, (uint64_t)st.st_size - size / 2);
	fast(1);
	assert_int_equal(probe(d, 0, "Coordinates").ok, 0);
	assert_int_equal(same_outcome(d, "Coordinates"), 2);
	/* The library read: the same error either way, nothing read past the end. */
	assert_non_null(buf);
	for (int on = 1; on >= 0; on--) {
		static char first[SM_ERROR_MSG_MAX];

		fast(on);
		memset(&s, 0, sizeof(s));
		assert_int_equal(sm_snapshot_open_base(&s, d, 99, &err), 0);
		assert_int_equal(sm_snapshot_read_range(&s, 0, "Coordinates", SM_DTYPE_F32, 3, 0,
							W.n, buf, NULL, &err), SM_EIO);
		if (on)
			snprintf(first, sizeof(first), "%s", err.msg);
		else
			assert_string_equal(err.msg, first);
		sm_snapshot_release(&s);
	}
	free(buf);
	free(p);
	tu_rmtree(d);
	free(d);
}

static void test_overlapping_datasets(void **state)
{
	char *d = variant(-1), *p = chunk_path(d, 0);
	uint64_t ua, us, ea, es;
	long at;
	const struct rd r = {"ElectronAbundance", SM_DTYPE_F32, 1, 0, 0};
	const struct rd ru = {"InternalEnergy", SM_DTYPE_F32, 1, 0, 0};
	uint64_t b, n0;
	float *a1, *a0, *u;

	(void)state;
	layout_at(p, "InternalEnergy", &ua, &us);
	at = layout_at(p, "ElectronAbundance", &ea, &es);
	assert_int_equal(us, es);
	patch_u64(p, at, ua); /* ElectronAbundance now lies over InternalEnergy's bytes */
	fast(1);
	assert_int_equal(probe(d, 0, "ElectronAbundance").ok, 1);
	n0 = us / 4;
	a1 = read_one(d, &r, 0, n0, 1, &b);
	a0 = read_one(d, &r, 0, n0, 0, &b);
	u = read_one(d, &ru, 0, n0, 0, &b);
	assert_memory_equal(a1, a0, n0 * 4);
	assert_memory_equal(a1, u, n0 * 4);
	same_outcome(d, NULL);
	free(a1);
	free(a0);
	free(u);
	free(p);
	tu_rmtree(d);
	free(d);
}

static void test_truncated_file(void **state)
{
	char *d = variant(-1), *p = chunk_path(d, 0);
	struct stat st;

	(void)state;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(truncate(p, st.st_size * 6 / 10), 0);
	assert_int_equal(same_outcome(d, "snap_099.0.hdf5"), 2);
	free(p);
	tu_rmtree(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_bytes),
		cmocka_unit_test(test_big_endian_swaps),
		cmocka_unit_test(test_chunked_takes_hdf5),
		cmocka_unit_test(test_user_block),
		cmocka_unit_test(test_narrow_as_hdf5),
		cmocka_unit_test(test_checked_bad_row),
		cmocka_unit_test(test_direct_reads),
		cmocka_unit_test(test_meta_extents),
		cmocka_unit_test(test_profiles_identical),
		cmocka_unit_test(test_past_end_of_file),
		cmocka_unit_test(test_overlapping_datasets),
		cmocka_unit_test(test_truncated_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
