/*
 * profiles.hdf5, the pipeline's science result (DESIGN.md "Science definition"; layout in
 * docs/PIPELINE.md): one row per halo written into extendible chunked datasets as each halo is
 * done (the distributed run: all K at once), the bin edges, `units` attributes on every dataset and
 * the run's options as root attributes. The datasets are created with the run's K rows (K is known
 * before the first halo), so that a row is one H5Dwrite through dataspaces made once, with no
 * H5Dset_extent per row; the file is the same (h5dump -p: same shapes, maximum shapes, chunks and
 * storage) as when it grew row by row. Rows go to the file chunk by chunk as the chunks' bytes
 * (H5Dwrite_chunk: no selection, chunk cache or conversion, whose fixed costs, not the bytes,
 * were most of the distributed run's histogram_write): a hist2d row is a chunk of its own,
 * written from the caller's histogram; the rows of the other datasets are gathered in the writer
 * (one chunk a dataset, 25,728 bytes in all) and their chunk written when it is full or holds the
 * last row, the distributed run's K rows and the serial run's one a halo alike, so that a serial
 * halo costs one HDF5 write instead of eight (since 2026-12: the
 * 30 halos' appends 2.0-4.8 ms a run -> 1.2-1.7 ms at 1e5 and 1e6 cells; the same binary with
 * the row-by-row writes switched in, alternating runs, medians: histogram_write 4.77 -> 3.70 ms
 * at 1e6 cells (16 each), 18.7 -> 15.4 ms at 1e7 (12 each)). On a machine whose int64 and double
 * are not the file's little-endian ones everything goes through H5Dwrite, converting.
 *
 * The file is written under the shared writer's temporary name (sm_outfile_open, outfile.h:
 * DIR/.profiles.hdf5.snapmem-tmp.PID.RANDOM), synced (or, with sm_pipeline_options.sync_later,
 * its writeback started, the caller syncing it later) and renamed to DIR/profiles.hdf5 by
 * sm__pl_out_commit, so that a run that stops early never leaves a file that looks whole; abort
 * removes the temporary file. HDF5's own buffers (chunk cache, metadata) are untracked by design
 * (docs/MODEL.md "Untracked memory"): each chunk here is at most one halo's 24,000-byte hist2d row.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "snapmem/outfile.h"
#include "snapmem/pipeline.h"
#include "snapmem/snapshot.h"

#include "internal.h"

/* The system's reason behind the HDF5 error now on the stack (the file driver records
 * "errno = 27, error message = 'File too large'"), else the innermost HDF5 description, else
 * "HDF5 error". Clears the stack. */
struct cause {
	char *buf;
	size_t len;
	int found;
};

static herr_t cause_walk(unsigned n, const H5E_error2_t *e, void *data)
{
	struct cause *c = data;
	const char *m, *q;

	(void)n;
	if (c->found || e == NULL || e->desc == NULL)
		return 0;
	m = strstr(e->desc, "error message = '");
	if (m != NULL) {
		m += strlen("error message = '");
		q = strchr(m, '\'');
		snprintf(c->buf, c->len, "%.*s", (int)(q != NULL ? q - m : (long)strlen(m)), m);
		c->found = 1;
	} else if (c->buf[0] == '\0') {
		snprintf(c->buf, c->len, "%s", e->desc);
	}
	return 0;
}

static const char *h5_cause(char *buf, size_t len)
{
	struct cause c = {buf, len, 0};

	buf[0] = '\0';
	H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, cause_walk, &c);
	H5Eclear2(H5E_DEFAULT);
	if (buf[0] == '\0')
		snprintf(buf, len, "HDF5 error");
	return buf;
}

/* Per-dataset chunk cache: one row's chunk at a time is all an append needs (HDF5's default is
 * 1 MiB per dataset, untracked). */
#define CHUNK_CACHE_BYTES (64u * 1024u)

enum { D_HALO_INDEX, D_CENTER, D_R200, D_M200, D_COUNTS, D_SF_COUNTS, D_MEAN_T, D_HIST2D, D_N };

struct dspec {
	const char *name;
	int rank;
	hsize_t dims[3];      /* dims[0] is the halo axis, grown one row at a time */
	int is_int;
	const char *units;
	const char *what;
};

static const struct dspec specs[D_N] = {
	{"halo_index", 1, {0, 0, 0}, 1, "1", "group index in the FoF catalogue"},
	{"center", 2, {0, 3, 0}, 0, "ckpc/h", "GroupPos (code length units, comoving)"},
	{"r200", 1, {0, 0, 0}, 0, "ckpc/h", "Group_R_Crit200 (code length units, comoving)"},
	{"m200", 1, {0, 0, 0}, 0, "Msun", "Group_M_Crit200 * 1e10 / h"},
	{"counts", 2, {0, SM_MODEL_RBINS, 0}, 1, "cells",
	 "non-star-forming cells per r/R200 bin"},
	{"sf_counts", 2, {0, SM_MODEL_RBINS, 0}, 1, "cells",
	 "star-forming cells (StarFormationRate > 0) per r/R200 bin"},
	{"mean_temperature", 2, {0, SM_MODEL_RBINS, 0}, 0, "K",
	 "mean temperature of the non-star-forming cells per bin, NaN where empty"},
	{"hist2d", 3, {0, SM_MODEL_RBINS, SM_MODEL_TBINS}, 1, "cells",
	 "non-star-forming cells per (r/R200 bin, log10 T bin), end bins clamped"},
};

/* Rows a chunk of the dataset holds (its other dimensions whole). */
#define CHUNK_ROWS_1D 256u
#define CHUNK_ROWS_2D 16u

static hsize_t chunk_rows(const struct dspec *sp)
{
	return sp->rank == 1 ? CHUNK_ROWS_1D : sp->rank == 2 ? CHUNK_ROWS_2D : 1;
}

/* Bytes of one row (8-byte elements). */
static size_t row_bytes(const struct dspec *sp)
{
	size_t b = 8;
	int k;

	for (k = 1; k < sp->rank; k++)
		b *= (size_t)sp->dims[k];
	return b;
}

/* The bytes of one chunk of every dataset but hist2d (whose rows are a chunk each: halo_index,
 * r200, m200 one-dimensional, center 3 wide, counts, sf_counts, mean_temperature 50 wide): the
 * rows appended are gathered here until their chunk is full (raw_rows). */
#define PEND_BYTES ((size_t)3 * CHUNK_ROWS_1D * 8 + (size_t)CHUNK_ROWS_2D * 3 * 8 + \
		    (size_t)3 * CHUNK_ROWS_2D * SM_MODEL_RBINS * 8)

struct sm__pl_out {
	hid_t file;
	hid_t d[D_N];
	hid_t fs[D_N];        /* each dataset's file space (its extent is set once, at creation) */
	hid_t ms[D_N];        /* one row in memory */
	hid_t scalar;         /* the attributes' dataspace */
	hsize_t k, rows;      /* rows written, rows the datasets were created with */
	int raw;              /* native int64 and double are the file's (little-endian): chunks raw */
	sm_outfile of;        /* the temporary and the target (outfile.h) */
	char tmp[SM_PATH_MAX];
	char final[SM_PATH_MAX];
	char why[160];        /* the cause of the last failed append (h5_cause) */
	unsigned char pend[PEND_BYTES]; /* raw: each dataset's chunk being filled (pend_at) */
};

/* Where dataset j's chunk being filled lies in o->pend (j < D_HIST2D). */
static unsigned char *pend_at(sm__pl_out *o, int j)
{
	size_t off = 0;
	int i;

	for (i = 0; i < j; i++)
		off += (size_t)chunk_rows(&specs[i]) * row_bytes(&specs[i]);
	return o->pend + off;
}

/* A fixed-length UTF-8 string attribute on obj; scalar is a scalar dataspace. */
static int set_str_attr(hid_t obj, hid_t scalar, const char *name, const char *value)
{
	hid_t t = -1, a = -1;
	int rc = -1;

	if ((t = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(t, strlen(value) > 0 ? strlen(value) : 1) < 0 ||
	    H5Tset_cset(t, H5T_CSET_UTF8) < 0 ||
	    (a = H5Acreate2(obj, name, t, scalar, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
	    H5Awrite(a, t, value) < 0)
		goto out;
	rc = 0;
out:
	if (a >= 0)
		H5Aclose(a);
	if (t >= 0)
		H5Tclose(t);
	return rc;
}

static int set_num_attr(hid_t obj, hid_t scalar, const char *name, int is_int, int64_t i,
			double d)
{
	hid_t a = -1;
	int rc = -1;

	if ((a = H5Acreate2(obj, name, is_int ? H5T_STD_I64LE : H5T_IEEE_F64LE, scalar, H5P_DEFAULT,
			    H5P_DEFAULT)) < 0 ||
	    H5Awrite(a, is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, is_int ? (void *)&i
									: (void *)&d) < 0)
		goto out;
	rc = 0;
out:
	if (a >= 0)
		H5Aclose(a);
	return rc;
}

static int write_edges(hid_t file, hid_t scalar, const char *name, const double *v, hsize_t n,
		       const char *units, const char *what)
{
	hid_t s = -1, d = -1;
	int rc = -1;

	if ((s = H5Screate_simple(1, &n, NULL)) < 0 ||
	    (d = H5Dcreate2(file, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
	    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0 ||
	    set_str_attr(d, scalar, "units", units) != 0 ||
	    set_str_attr(d, scalar, "description", what) != 0)
		goto out;
	rc = 0;
out:
	if (d >= 0)
		H5Dclose(d);
	if (s >= 0)
		H5Sclose(s);
	return rc;
}

/* Closes the dataspaces (they hold no file resources). */
static void close_spaces(sm__pl_out *o)
{
	int i;

	for (i = 0; i < D_N; i++) {
		if (o->fs[i] >= 0)
			H5Sclose(o->fs[i]);
		if (o->ms[i] >= 0)
			H5Sclose(o->ms[i]);
		o->fs[i] = o->ms[i] = -1;
	}
	if (o->scalar >= 0)
		H5Sclose(o->scalar);
	o->scalar = -1;
}

static void close_all(sm__pl_out *o)
{
	int i;

	close_spaces(o);
	for (i = 0; i < D_N; i++)
		if (o->d[i] >= 0)
			H5Dclose(o->d[i]);
	for (i = 0; i < D_N; i++)
		o->d[i] = -1;
	if (o->file >= 0)
		H5Fclose(o->file);
	o->file = -1;
}

int sm__pl_out_create(sm__pl_out **out, const char *dir, uint64_t rows, int sync_later,
		      const sm__pl_attr *attrs, size_t nattrs, sm_error *err)
{
	sm__pl_out *o;
	double r_edges[SM_MODEL_RBINS + 1], t_edges[SM_MODEL_TBINS + 1];
	hid_t s = -1, plist = -1, dapl = -1;
	size_t i;
	int j, rc = 0;

	*out = NULL;
	sm_hdf5_quiet();
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return sm_error_set(err, SM_ENOMEM, "'%s': cannot allocate the profiles writer", dir);
	o->file = -1;
	o->scalar = -1;
	for (j = 0; j < D_N; j++)
		o->d[j] = o->fs[j] = o->ms[j] = -1;
	o->of.fd = -1;
	o->rows = (hsize_t)rows;
	o->raw = H5Tequal(H5T_NATIVE_INT64, H5T_STD_I64LE) > 0 &&
		 H5Tequal(H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE) > 0;
	if ((size_t)snprintf(o->final, sizeof(o->final), "%s/profiles.hdf5", dir) >= sizeof(o->final)) {
		rc = sm_error_set(err, SM_EINVAL, "'%s': output directory path is too long", dir);
		goto fail;
	}
	if ((rc = sm_outfile_open(&o->of, o->final, NULL, 0, err)) != 0)
		goto fail;
	o->of.sync_later = sync_later;
	if ((size_t)snprintf(o->tmp, sizeof(o->tmp), "%s", o->of.tmp) >= sizeof(o->tmp)) {
		rc = sm_error_set(err, SM_EINVAL, "'%s': output directory path is too long", dir);
		goto fail;
	}
	o->file = H5Fcreate(o->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	if (o->file < 0) {
		rc = sm_error_set(err, SM_EIO, "'%s': cannot create the file: %s", o->tmp,
				  strerror(errno ? errno : EIO));
		goto fail;
	}
	/* One scalar space for every attribute, one creation and one access property list for
	 * every dataset (the chunk shape set anew for each). */
	if ((o->scalar = H5Screate(H5S_SCALAR)) < 0 ||
	    (plist = H5Pcreate(H5P_DATASET_CREATE)) < 0 ||
	    (dapl = H5Pcreate(H5P_DATASET_ACCESS)) < 0 ||
	    H5Pset_chunk_cache(dapl, 17, CHUNK_CACHE_BYTES, 1.0) < 0) {
		char why[160];

		rc = sm_error_set(err, SM_EIO, "'%s': cannot create dataset '%s': %s", o->tmp,
				  specs[0].name, h5_cause(why, sizeof(why)));
		goto fail;
	}
	for (j = 0; j < D_N; j++) {
		const struct dspec *sp = &specs[j];
		hsize_t dims[3], maxd[3], chunk[3], row[3];
		int k;

		/* Created with all K rows (still chunked and extendible along K): each halo's row is
		 * written in place, no extent change per row. */
		for (k = 0; k < sp->rank; k++) {
			dims[k] = k == 0 ? o->rows : sp->dims[k];
			maxd[k] = k == 0 ? H5S_UNLIMITED : sp->dims[k];
			chunk[k] = k == 0 ? chunk_rows(sp) : sp->dims[k];
			row[k] = k == 0 ? 1 : sp->dims[k];
		}
		if ((s = H5Screate_simple(sp->rank, dims, maxd)) < 0 ||
		    H5Pset_chunk(plist, sp->rank, chunk) < 0 ||
		    (o->d[j] = H5Dcreate2(o->file, sp->name,
					  sp->is_int ? H5T_STD_I64LE : H5T_IEEE_F64LE, s,
					  H5P_DEFAULT, plist, dapl)) < 0 ||
		    set_str_attr(o->d[j], o->scalar, "units", sp->units) != 0 ||
		    set_str_attr(o->d[j], o->scalar, "description", sp->what) != 0 ||
		    (o->ms[j] = H5Screate_simple(sp->rank, row, NULL)) < 0) {
			char why[160];

			rc = sm_error_set(err, SM_EIO, "'%s': cannot create dataset '%s': %s", o->tmp,
					  sp->name, h5_cause(why, sizeof(why)));
			goto fail;
		}
		o->fs[j] = s;
		s = -1;
	}
	H5Pclose(dapl);
	H5Pclose(plist);
	dapl = plist = -1;
	for (j = 0; j <= SM_MODEL_RBINS; j++)
		r_edges[j] = (double)j * 2.0 / SM_MODEL_RBINS;
	for (j = 0; j <= SM_MODEL_TBINS; j++)
		t_edges[j] = 3.0 + (double)j * 6.0 / SM_MODEL_TBINS;
	if (write_edges(o->file, o->scalar, "r_edges", r_edges, SM_MODEL_RBINS + 1, "R200",
			"edges of the 50 linear bins of r/R200 over [0, 2)") != 0 ||
	    write_edges(o->file, o->scalar, "log10T_edges", t_edges, SM_MODEL_TBINS + 1,
			"log10(K)",
			"edges of the 60 bins of log10 T over [3, 9); values outside go to the end "
			"bins") != 0) {
		char why[160];

		rc = sm_error_set(err, SM_EIO, "'%s': cannot write the bin edges: %s", o->tmp,
				  h5_cause(why, sizeof(why)));
		goto fail;
	}
	for (i = 0; i < nattrs; i++) {
		const sm__pl_attr *a = &attrs[i];
		int arc = a->s != NULL
				  ? set_str_attr(o->file, o->scalar, a->name, a->s)
				  : set_num_attr(o->file, o->scalar, a->name, a->is_int, a->i, a->d);

		if (arc != 0) {
			char why[160];

			rc = sm_error_set(err, SM_EIO, "'%s': cannot write root attribute '%s': %s",
					  o->tmp, a->name, h5_cause(why, sizeof(why)));
			goto fail;
		}
	}
	*out = o;
	return 0;
fail:
	if (dapl >= 0)
		H5Pclose(dapl);
	if (plist >= 0)
		H5Pclose(plist);
	if (s >= 0)
		H5Sclose(s);
	sm__pl_out_abort(o);
	return rc;
}

/* Writes rows [o->k + r, o->k + r + n) of dataset j, within the extent the datasets were created
 * with, from buf. One row goes through the memory space made at creation. Several rows of a
 * dataset of at most two dimensions may lie `pitch` elements apart in buf (row i's first element
 * at i * pitch): the memory space is then n x pitch with the n x dims[1] block selected, the same
 * shape as the file's selection (HDF5 maps a selection of the file's shape to the chunks at once,
 * one of another shape element by element: slower than a write a row). */
static int write_rows(sm__pl_out *o, int j, hsize_t r, hsize_t n, const void *buf, hsize_t pitch)
{
	const struct dspec *sp = &specs[j];
	hsize_t start[3] = {0, 0, 0}, count[3], mdims[2];
	const hsize_t mstart[2] = {0, 0};
	hid_t ms = o->ms[j];
	int k, rc = -1;

	for (k = 0; k < sp->rank; k++)
		count[k] = k == 0 ? n : sp->dims[k];
	start[0] = o->k + r; /* within the extent: sm__pl_out_append_rows checked every row */
	if (n > 1) {
		mdims[0] = n;
		mdims[1] = pitch > 0 ? pitch : sp->dims[1];
		if ((ms = H5Screate_simple(sp->rank, mdims, NULL)) < 0 ||
		    H5Sselect_hyperslab(ms, H5S_SELECT_SET, mstart, NULL, count, NULL) < 0)
			goto out;
	}
	if (H5Sselect_hyperslab(o->fs[j], H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
	    H5Dwrite(o->d[j], sp->is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, ms, o->fs[j],
		     H5P_DEFAULT, buf) < 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		h5_cause(o->why, sizeof(o->why)); /* before a later HDF5 call clears the stack */
	if (ms >= 0 && ms != o->ms[j])
		H5Sclose(ms);
	return rc;
}

int sm__pl_out_append(sm__pl_out *o, int64_t group_index, const double center[3], double r200,
		      double m200, const void *hist, sm_error *err)
{
	return sm__pl_out_append_rows(o, 1, &group_index, center, &r200, &m200, hist, err);
}

/* Rows [o->k, o->k + n) of dataset j (row i's bytes at buf + i * pitch) to the file as the
 * chunks' bytes (o->raw): a chunk of one row (hist2d) straight from buf; the rows of a chunk of
 * several gathered in the dataset's pending chunk (pend_at), which is written when full or when
 * it holds the dataset's last row (the rows past the extent zeros). 0 or -1. */
static int raw_rows(sm__pl_out *o, int j, hsize_t n, const unsigned char *buf, size_t pitch)
{
	const struct dspec *sp = &specs[j];
	const hsize_t cr = chunk_rows(sp);
	const size_t rb = row_bytes(sp), cb = (size_t)cr * rb;
	unsigned char *c = cr > 1 ? pend_at(o, j) : NULL;
	hsize_t i;

	for (i = 0; i < n; i++) {
		const hsize_t r = o->k + i, slot = r % cr;
		const unsigned char *src = buf + (size_t)i * pitch;

		if (c != NULL) {
			memcpy(c + (size_t)slot * rb, src, rb);
			src = c;
		}
		if (slot + 1 == cr || r + 1 == o->rows) {
			const hsize_t off[3] = {r - slot, 0, 0};

			if (H5Dwrite_chunk(o->d[j], H5P_DEFAULT, 0, off, cb, src) < 0) {
				h5_cause(o->why, sizeof(o->why));
				return -1;
			}
			if (c != NULL)
				memset(c, 0, cb);
		}
	}
	return 0;
}

int sm__pl_out_append_rows(sm__pl_out *o, uint64_t n, const int64_t *group_index,
			   const double *center, const double *r200, const double *m200,
			   const void *hists, sm_error *err)
{
	const unsigned char *h = hists;
	const size_t rb = SM_MODEL_RBINS * 8;
	const void *rows[D_N];
	int j;

	if (n == 0)
		return 0;
	if (o->k + n > o->rows) {
		j = 0;
		snprintf(o->why, sizeof(o->why), "row %llu beyond the %llu rows the file was created "
			 "with", (unsigned long long)(o->k + n - 1), (unsigned long long)o->rows);
		goto fail;
	}
	rows[D_HALO_INDEX] = group_index;
	rows[D_CENTER] = center;
	rows[D_R200] = r200;
	rows[D_M200] = m200;
	rows[D_COUNTS] = h;
	rows[D_SF_COUNTS] = h + rb;
	rows[D_MEAN_T] = h + 2 * rb;
	rows[D_HIST2D] = h + 3 * rb;
	for (j = 0; j < D_N; j++) {
		const size_t p = j >= D_COUNTS ? SM_MODEL_HISTOGRAM_BYTES : row_bytes(&specs[j]);
		uint64_t i;

		if (o->raw) {
			if (raw_rows(o, j, (hsize_t)n, rows[j], p) != 0)
				goto fail;
			continue;
		}
		if (specs[j].rank < 3) { /* rows of 2 dimensions at most: one write (write_rows) */
			if (write_rows(o, j, 0, (hsize_t)n, rows[j], p / 8) != 0)
				goto fail;
			continue;
		}
		for (i = 0; i < n; i++)
			if (write_rows(o, j, i, 1, (const unsigned char *)rows[j] + i * p, 0) != 0)
				goto fail;
	}
	o->k += n;
	return 0;
fail:
	if (n == 1)
		return sm_error_set(err, SM_EIO, "'%s': cannot append halo %llu to '%s': %s", o->tmp,
				    (unsigned long long)o->k, specs[j].name, o->why);
	return sm_error_set(err, SM_EIO, "'%s': cannot append halos %llu to %llu to '%s': %s",
			    o->tmp, (unsigned long long)o->k, (unsigned long long)(o->k + n - 1),
			    specs[j].name, o->why);
}

int sm__pl_out_commit(sm__pl_out *o, char *path, size_t len, sm_error *err)
{
	int j, bad = 0;

	close_spaces(o);
	/* fewer rows than created with: each dataset's chunk being filled holds rows not yet
	 * written (the chunk of the last row is written with it) */
	for (j = 0; j < D_HIST2D && o->raw && o->k != o->rows && !bad; j++) {
		const hsize_t cr = chunk_rows(&specs[j]), off[3] = {o->k - o->k % cr, 0, 0};

		if (o->k % cr != 0 &&
		    H5Dwrite_chunk(o->d[j], H5P_DEFAULT, 0, off, (size_t)cr * row_bytes(&specs[j]),
				   pend_at(o, j)) < 0)
			bad = 1;
	}
	for (j = 0; j < D_N && o->k != o->rows; j++) {
		/* fewer rows than created with (not in a run that completes): the extent shrinks to
		 * what was written */
		hsize_t dims[3] = {o->k, specs[j].dims[1], specs[j].dims[2]};

		if (H5Dset_extent(o->d[j], dims) < 0)
			bad = 1;
	}
	for (j = 0; j < D_N; j++) {
		if (o->d[j] >= 0 && H5Dclose(o->d[j]) < 0)
			bad = 1;
		o->d[j] = -1;
	}
	if (H5Fclose(o->file) < 0)
		bad = 1;
	o->file = -1;
	if (bad) {
		char why[160];

		sm_error_set(err, SM_EIO, "'%s': cannot finish writing the file: %s", o->tmp,
			     h5_cause(why, sizeof(why)));
		goto fail;
	}
	if (sm_outfile_commit(&o->of, err) != 0)
		goto fail;
	if (path != NULL && len > 0)
		snprintf(path, len, "%s", o->final);
	free(o);
	return 0;
fail:
	sm_outfile_abort(&o->of);
	free(o);
	return err != NULL && err->code != 0 ? err->code : SM_EIO;
}

void sm__pl_out_abort(sm__pl_out *o)
{
	if (o == NULL)
		return;
	close_all(o);
	sm_outfile_abort(&o->of);
	free(o);
}
