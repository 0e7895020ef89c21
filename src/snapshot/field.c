/*
 * Field reads across chunk files: shape and type checks, hyperslab reads converted by HDF5 in
 * bounded pieces, the field list of a particle type, and the per-chunk consistency check used by
 * `snapmem info`.
 *
 * A range read walks the chunks in order and reads only the rows it needs from each: by the fast
 * path (fastread.c: pread on the worker threads) when the dataset is contiguous, unfiltered and of
 * a standard type, else through HDF5, which converts from the file's type to the memory type
 * through its type-conversion buffer (1 MiB by default, or the caller's sm_io_buffer). Either way
 * no copy of the field in the file's type ever exists, and both give the same bytes. The last
 * chunk file and dataset stay open in s->priv so that streaming callers, which read consecutive
 * ranges, do not reopen a file per block; and the fields of that chunk the fast path reads keep
 * their checked extents there (up to SM__KEPT_EXTENTS), so that a caller taking several fields a
 * block (the distributed run: four) opens each dataset once a chunk, not once a block (an HDF5
 * open and check took ~200 us: 13 ms of the distributed run at 1e7 cells, 6 ms at 1e6). Where the
 * metadata reader (h5meta.c) vouches for a field the fast path reads, the chunk is not opened
 * through HDF5 at all (meta_field: a few pread(2)s a field instead of an HDF5 open of the file,
 * ~160 us, and of each dataset; idle-gated interleaved pairs against HDF5 opens: the distributed
 * run 0.85 at 1e6 cells, the serial run 0.99 at 1e6 and 0.94 at 1e7; 0.3-0.7 MB less resident at
 * the serial run's peak, 1.1-1.6 MB a rank).
 *
 * The per-chunk check (sm_snapshot_check_fields, used by `snapmem run` and `snapmem info`) opens
 * each chunk once for all its fields, and without HDF5 where the metadata reader (h5meta.c)
 * vouches for every dataset in it and every one passes; any other chunk is checked through HDF5,
 * whose answers and errors are then the only ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/limits.h"
#include "snapmem/units.h"
#include "snapshot/snapshot-internal.h"

static int is_float(sm_dtype t)
{
	return t == SM_DTYPE_F32 || t == SM_DTYPE_F64;
}

static const char *shape_str(int rank, const hsize_t *dims, char *buf, size_t len)
{
	if (rank == 1)
		snprintf(buf, len, "[%llu]", (unsigned long long)dims[0]);
	else if (rank == 2)
		snprintf(buf, len, "[%llu,%llu]", (unsigned long long)dims[0],
			 (unsigned long long)dims[1]);
	else
		snprintf(buf, len, "of rank %d", rank);
	return buf;
}

/*
 * Opens /PartType<ptype>/<field> in f and checks it: a known element type (compatible with memtype
 * unless NONE), rank 1 or 2, ncomp components (0: any), rows rows (UINT64_MAX: any).
 * Returns 0 with *dset (and *disk, *ncomp_out), or a negative code.
 */
static int open_field(hid_t f, const char *path, int ptype, const char *field, uint64_t rows,
		      int ncomp, sm_dtype memtype, hid_t *dset, sm_dtype *disk, int *ncomp_out,
		      sm_error *err)
{
	char grp[16], name[300], shp[64];
	hid_t d = -1, t = -1, sp = -1;
	hsize_t dims[H5S_MAX_RANK];
	sm_dtype dt;
	int rank, nc, rc = 0;

	snprintf(grp, sizeof(grp), "PartType%d", ptype);
	snprintf(name, sizeof(name), "/PartType%d/%s", ptype, field);
	if (!sm__h5_exists(f, grp))
		return sm_error_set(err, SM_EFORMAT,
				    "'%s': no /%s group although NumPart_ThisFile[%d] is %llu",
				    path, grp, ptype, (unsigned long long)rows);
	if (strchr(field, '/') != NULL || !sm__h5_exists(f, name))
		return sm_error_set(err, SM_ENOTFOUND, "'%s': no dataset %s", path, name);
	d = H5Dopen2(f, name, H5P_DEFAULT);
	if (d < 0)
		return sm_error_set(err, SM_EFORMAT, "'%s': %s is not a readable dataset", path,
				    name);
	t = H5Dget_type(d);
	sp = H5Dget_space(d);
	if (t < 0 || sp < 0) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s is damaged", path, name);
		goto out;
	}
	dt = sm__dtype_of_h5(t);
	if (dt == SM_DTYPE_NONE) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s has an unsupported element type", path,
				  name);
		goto out;
	}
	if (memtype != SM_DTYPE_NONE && is_float(memtype) != is_float(dt)) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s is %s on disk and cannot be read as %s",
				  path, name, sm_dtype_name(dt), sm_dtype_name(memtype));
		goto out;
	}
	rank = H5Sget_simple_extent_ndims(sp);
	if (rank < 1 || rank > 2 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s has rank %d, expected [N] or [N,k]",
				  path, name, rank);
		goto out;
	}
	nc = rank == 1 ? 1 : (int)(dims[1] > 1000000 ? 1000000 : dims[1]);
	if (ncomp > 0 && nc != ncomp) {
		if (ncomp == 1)
			snprintf(grp, sizeof(grp), "[N]");
		else
			snprintf(grp, sizeof(grp), "[N,%d]", ncomp);
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s has shape %s, expected %s", path, name,
				  shape_str(rank, dims, shp, sizeof(shp)), grp);
		goto out;
	}
	if (rank == 2 && dims[1] == 0) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s has shape %s", path, name,
				  shape_str(rank, dims, shp, sizeof(shp)));
		goto out;
	}
	if (rows != UINT64_MAX && dims[0] != rows) {
		rc = sm_error_set(err, SM_EFORMAT,
				  "'%s': %s has %llu rows but NumPart_ThisFile[%d] is %llu", path,
				  name, (unsigned long long)dims[0], ptype, (unsigned long long)rows);
		goto out;
	}
	*dset = d;
	d = -1;
	if (disk != NULL)
		*disk = dt;
	if (ncomp_out != NULL)
		*ncomp_out = nc;
out:
	if (sp >= 0)
		H5Sclose(sp);
	if (t >= 0)
		H5Tclose(t);
	if (d >= 0)
		H5Dclose(d);
	return rc;
}

/* The first chunk holding particles of ptype (from chunk 0's header, else from the scan). */
static int first_holding(sm_snapshot *s, int ptype, int64_t *chunk, sm_error *err)
{
	int64_t i;
	int rc;

	if (s->header.npart_file0[ptype] > 0) {
		*chunk = 0;
		return 0;
	}
	if (s->header.npart_total[ptype] == 0)
		return sm_error_set(err, SM_ENOTFOUND, "'%s': no particles of type %d",
				    sm__snap_name(s), ptype);
	if ((rc = sm_snapshot_scan(s, err)) != 0)
		return rc;
	for (i = 0; i < s->nfiles; i++)
		if (s->chunk_counts[(size_t)i * SM_NTYPES + (size_t)ptype] > 0) {
			*chunk = i;
			return 0;
		}
	return sm_error_set(err, SM_ENOTFOUND, "'%s': no particles of type %d", sm__snap_name(s),
			    ptype);
}

static int check_ptype(const sm_snapshot *s, int ptype, sm_error *err)
{
	if (ptype < 0 || ptype >= SM_NTYPES)
		return sm_error_set(err, SM_EINVAL, "'%s': particle type %d out of range",
				    sm__snap_name(s), ptype);
	if (s->nfiles < 1)
		return sm_error_set(err, SM_EINVAL, "snapshot is not open");
	return 0;
}

int sm_snapshot_field_info(sm_snapshot *s, int ptype, const char *field, sm_field_info *out,
			   sm_error *err)
{
	char path[SM_PATH_MAX];
	hid_t f = -1, d = -1;
	int64_t chunk;
	sm_dtype dt;
	uint64_t bytes;
	int rc, nc;

	sm_hdf5_quiet();
	memset(out, 0, sizeof(*out));
	if ((rc = check_ptype(s, ptype, err)) != 0 || (rc = first_holding(s, ptype, &chunk, err)) != 0)
		return rc;
	if ((rc = sm_snapshot_chunk_path(s, chunk, path, sizeof(path), err)) != 0 ||
	    (rc = sm__h5_open(path, &f, err)) != 0)
		return rc;
	rc = open_field(f, path, ptype, field, UINT64_MAX, 0, SM_DTYPE_NONE, &d, &dt, &nc, err);
	if (rc != 0)
		goto out;
	if (sm_mul_u64(s->header.npart_total[ptype], (uint64_t)nc, &bytes) != 0 ||
	    sm_mul_u64(bytes, sm_dtype_size(dt), &bytes) != 0) {
		rc = sm_error_set(err, SM_EOVERFLOW, "'%s': /PartType%d/%s: size overflows 64 bits",
				  path, ptype, field);
		goto out;
	}
	out->disk_type = dt;
	out->ncomp = nc;
	out->count = s->header.npart_total[ptype];
	out->bytes = bytes;
out:
	if (d >= 0)
		H5Dclose(d);
	H5Fclose(f);
	return rc;
}

/* The kept extent of the open chunk's (ptype, field) as checked with these arguments, or NULL. */
static const sm__kept_extent *kept_extent(const sm__snap_priv *p, int ptype, const char *field,
					  uint64_t rows, int ncomp, sm_dtype memtype)
{
	int k;

	for (k = 0; k < p->nkept; k++) {
		const sm__kept_extent *e = &p->kept[k];

		if (e->ptype == ptype && e->rows == rows && e->ncomp == ncomp &&
		    e->memtype == memtype && strcmp(e->field, field) == 0)
			return e;
	}
	return NULL;
}

/* sm__dtype_of_h5 for a type the metadata reader parsed. */
static sm_dtype fast_dtype(const sm__h5m_type *t)
{
	if (t->cls == SM__H5M_INT) {
		if (t->size == 1 && !t->sign)
			return SM_DTYPE_U8;
		if (t->size == 4)
			return t->sign ? SM_DTYPE_I32 : SM_DTYPE_U32;
		if (t->size == 8)
			return t->sign ? SM_DTYPE_I64 : SM_DTYPE_U64;
	} else if (t->cls == SM__H5M_FLOAT) {
		return t->size == 4 ? SM_DTYPE_F32 : SM_DTYPE_F64;
	}
	return SM_DTYPE_NONE;
}

/* The metadata reader's /PartType<ptype> group of the file open in w->m, into w->grp: 0, or
 * nonzero when it does not vouch for it. */
static int meta_group(sm__meta_chunk *w, int ptype)
{
	char grp[16];
	uint64_t oh;

	snprintf(grp, sizeof(grp), "PartType%d", ptype);
	return sm__h5m_object(&w->m, w->m.root, &w->obj) != 0 ||
	       sm__h5m_lookup(&w->m, &w->obj, grp, &oh) != 0 ||
	       sm__h5m_object(&w->m, oh, &w->grp) != 0;
}

/* Dataset `field` of w->grp through the metadata reader, with open_field's shape checks (a known
 * type, [N] or [N,k] with k components when ncomp > 0, rows rows when rows != UINT64_MAX): 0 when
 * it vouches for the dataset and every check passes (*d, its type *dt, its components *nc), else
 * nonzero. */
static int meta_dataset(sm__meta_chunk *w, const char *field, uint64_t rows, int ncomp,
			sm__h5m_dset *d, sm_dtype *dt, int *nc)
{
	uint64_t oh, c;

	if (strchr(field, '/') != NULL || sm__h5m_lookup(&w->m, &w->grp, field, &oh) != 0 ||
	    sm__h5m_object(&w->m, oh, &w->obj) != 0 || sm__h5m_dataset(&w->m, &w->obj, d) != 0)
		return -1;
	c = d->rank == 2 ? d->dims[1] : 1;
	*dt = fast_dtype(&d->type);
	*nc = (int)(c > 1000000 ? 1000000 : c);
	return *dt == SM_DTYPE_NONE || d->rank < 1 || d->rank > 2 || c == 0 ||
	       (ncomp > 0 && *nc != ncomp) || (rows != UINT64_MAX && d->dims[0] != rows);
}

/*
 * Dataset /PartType<ptype>/field of chunk file path (chunk `chunk` of s) through the metadata
 * reader, with open_field's checks (rows, ncomp, memtype's kind) and where its bytes lie: 0 when
 * that reader vouches for every check and the fast path may read the bytes (p->ext, p->disk),
 * else nonzero, and the caller opens the chunk through HDF5, whose answers and errors are then
 * the only ones. The file stays open in p->meta until sm__snap_close_kept: a chunk's fields cost
 * a few pread(2)s each instead of an HDF5 open of the file and of each dataset.
 */
static int meta_field(sm__snap_priv *p, const char *path, int ptype, const char *field,
		      uint64_t rows, int ncomp, sm_dtype memtype)
{
	sm__h5m_dset d;
	sm_dtype dt;
	int nc;

	if (!sm__fast_enabled())
		return -1;
	if (p->meta == NULL && (p->meta = malloc(sizeof(*p->meta))) == NULL)
		return -1;
	if (!p->meta_open) {
		if (sm__h5m_open(&p->meta->m, path) != 0)
			return -1;
		p->meta_open = 1;
		p->meta_ptype = -1;
	}
	if (p->meta_ptype != ptype) {
		if (meta_group(p->meta, ptype) != 0)
			return -1;
		p->meta_ptype = ptype;
	}
	if (meta_dataset(p->meta, field, rows, ncomp, &d, &dt, &nc) != 0 ||
	    (memtype != SM_DTYPE_NONE && is_float(memtype) != is_float(dt)))
		return -1;
	memset(&p->ext, 0, sizeof(p->ext));
	p->ext.ok = 1;
	p->ext.fd = p->meta->m.fd;
	p->ext.offset = d.addr;
	p->ext.bytes = d.bytes;
	p->ext.disk = dt;
	p->ext.swap = d.type.size > 1 && d.type.big != sm__host_big_endian();
	p->disk = dt;
	return 0;
}

/* Makes (chunk i, ptype, field) current, opening what is needed: a field of the open chunk
 * checked before, whose bytes the fast path reads, is taken from the kept extents without HDF5
 * (want_dset 0); otherwise, or when the HDF5 dataset itself is wanted, it is opened and checked. */
static int keep_dataset(sm_snapshot *s, sm__snap_priv *p, int64_t i, int ptype, const char *field,
			uint64_t rows, int ncomp, sm_dtype memtype, int want_dset, sm_error *err)
{
	char path[SM_PATH_MAX];
	const sm__kept_extent *e;
	int rc;

	if (p->chunk == i && p->field[0] != '\0' && p->ptype == ptype &&
	    strcmp(p->field, field) == 0 && (p->dset >= 0 || !want_dset))
		return 0;
	if (p->chunk != i) {
		sm__snap_close_kept(s);
		if ((rc = sm_snapshot_chunk_path(s, i, path, sizeof(path), err)) != 0)
			return rc;
		p->chunk = i;
	} else {
		if (p->dset >= 0)
			H5Dclose(p->dset);
		p->dset = -1;
		p->field[0] = '\0';
		if (!want_dset && (e = kept_extent(p, ptype, field, rows, ncomp, memtype)) != NULL) {
			p->ext = e->ext;
			p->disk = e->disk;
			p->ptype = ptype;
			snprintf(p->field, sizeof(p->field), "%s", field);
			return 0;
		}
		if ((rc = sm_snapshot_chunk_path(s, i, path, sizeof(path), err)) != 0)
			return rc;
	}
	/* the fast path's fields without HDF5 where the metadata reader vouches for them; HDF5
	 * opens the file (once a chunk) for anything else */
	if (!want_dset && meta_field(p, path, ptype, field, rows, ncomp, memtype) == 0)
		goto keep;
	if (p->file < 0 && (rc = sm__h5_open(path, &p->file, err)) != 0) {
		sm__snap_close_kept(s);
		return rc;
	}
	rc = open_field(p->file, path, ptype, field, rows, ncomp, memtype, &p->dset, &p->disk, NULL,
			err);
	if (rc != 0) {
		p->dset = -1;
		return rc;
	}
	sm__extent_probe(p->file, p->dset, &p->ext);
keep:
	p->ptype = ptype;
	snprintf(p->field, sizeof(p->field), "%s", field);
	if (p->ext.ok && strlen(field) < sizeof(p->kept[0].field) &&
	    kept_extent(p, ptype, field, rows, ncomp, memtype) == NULL &&
	    p->nkept < SM__KEPT_EXTENTS) {
		sm__kept_extent *k = &p->kept[p->nkept++];

		k->ptype = ptype;
		k->ncomp = ncomp;
		k->rows = rows;
		k->memtype = memtype;
		k->disk = p->disk;
		snprintf(k->field, sizeof(k->field), "%s", field);
		k->ext = p->ext;
	}
	return 0;
}

/* Below this headroom under RLIMIT_AS / RLIMIT_DATA a failed HDF5 read is taken as want of
 * memory: HDF5 allocates its type-conversion and chunk buffers inside H5Dread and reports their
 * failure as a read error. */
#define READ_HEADROOM_MIN (UINT64_C(16) << 20)

/* The message of a failed read of rows [lo, hi) of chunk i, as HDF5's path words it; out of
 * memory (exit 3) when the address-space limit leaves less than READ_HEADROOM_MIN. */
static int read_failed(sm_snapshot *s, int64_t i, int ptype, const char *field, uint64_t lo,
		       uint64_t hi, sm_error *err)
{
	char path[SM_PATH_MAX], a[32], b[32];
	uint64_t lim, used, room = sm__vm_headroom(&lim, &used);

	sm_snapshot_chunk_path(s, i, path, sizeof(path), NULL);
	if (room != SM_LIMIT_NONE && room < READ_HEADROOM_MIN)
		return sm_error_set(err, SM_ENOMEM, "'%s': reading /PartType%d/%s rows %llu to %llu "
				    "failed for want of memory: the address-space limit (ulimit -v "
				    "or -d) is %s and %s is mapped", path, ptype, field,
				    (unsigned long long)lo, (unsigned long long)hi,
				    sm_format_iec(lim, a, sizeof(a)), sm_format_iec(used, b, sizeof(b)));
	return sm_error_set(err, SM_EIO, "'%s': reading /PartType%d/%s rows %llu to %llu failed "
			    "(damaged file, or conversion buffer too small)", path, ptype, field,
			    (unsigned long long)lo, (unsigned long long)hi);
}

/* Rows [lo, lo + n) of the kept dataset through H5Dread into out as mt. */
static int h5_rows(sm__snap_priv *p, hid_t mt, int ncomp, uint64_t lo, uint64_t n, hid_t dxpl,
		   void *out)
{
	hsize_t fstart[2] = {lo, 0}, fcount[2] = {n, (hsize_t)ncomp};
	hid_t fsp = H5Dget_space(p->dset), msp = -1;
	int ok = 0;

	if (fsp >= 0)
		msp = H5Screate_simple(ncomp == 1 && H5Sget_simple_extent_ndims(fsp) == 1 ? 1 : 2,
				       fcount, NULL);
	if (fsp >= 0 && msp >= 0 &&
	    H5Sselect_hyperslab(fsp, H5S_SELECT_SET, fstart, NULL, fcount, NULL) >= 0)
		ok = H5Dread(p->dset, mt, msp, fsp, dxpl, out) >= 0 ? 1 : -1;
	if (msp >= 0)
		H5Sclose(msp);
	if (fsp >= 0)
		H5Sclose(fsp);
	return ok;
}

/*
 * Rows [lo, hi) of the kept dataset (chunk i) into out, through HDF5. A checked read of float64
 * into float32 with a scratch buffer reads plain float64 blocks into it and narrows them here
 * (sm__narrow_f64, as the fast path does); any other read lets HDF5 convert, then checks the
 * result. *bad: the first element outside b, or (hi - lo) * ncomp.
 */
static int h5_read(sm_snapshot *s, sm__snap_priv *p, int64_t i, int ptype, const char *field,
		   sm_dtype memtype, int ncomp, uint64_t lo, uint64_t hi, void *out,
		   const sm_io_buffer *iob, hid_t dxpl, const sm__bounds *b, uint64_t *bad,
		   sm_error *err)
{
	uint64_t ne = (hi - lo) * (uint64_t)ncomp;
	int r;

	*bad = ne;
	if (b != NULL && p->disk == SM_DTYPE_F64 && memtype == SM_DTYPE_F32 && iob != NULL &&
	    iob->tconv != NULL && iob->size >= 8 * (size_t)ncomp) {
		uint64_t rows = iob->size / (8 * (uint64_t)ncomp), r0, k, e;

		for (r0 = lo; r0 < hi; r0 += k) {
			k = hi - r0 < rows ? hi - r0 : rows;
			if (h5_rows(p, H5T_NATIVE_DOUBLE, ncomp, r0, k, H5P_DEFAULT, iob->tconv) <= 0)
				return read_failed(s, i, ptype, field, lo, hi, err);
			e = sm__narrow_f64(iob->tconv, (float *)out + (r0 - lo) * (uint64_t)ncomp,
					   k * (uint64_t)ncomp, b);
			if (e < k * (uint64_t)ncomp) {
				*bad = (r0 - lo) * (uint64_t)ncomp + e;
				return 0;
			}
		}
		return 0;
	}
	r = h5_rows(p, sm__h5_memtype(memtype), ncomp, lo, hi - lo, dxpl, out);
	if (r == 0)
		return sm_error_set(err, SM_EFORMAT, "'%s' chunk %lld: /PartType%d/%s: cannot "
				    "select rows %llu to %llu", sm__snap_name(s), (long long)i,
				    ptype, field, (unsigned long long)lo, (unsigned long long)hi);
	if (r < 0)
		return read_failed(s, i, ptype, field, lo, hi, err);
	if (b != NULL)
		*bad = sm__first_outside_any(out, memtype, ne, b);
	return 0;
}

/* A range read's arguments (buf: its destination, any non-NULL pointer to check none): the
 * particle type, memtype, ncomp and field name, the chunks scanned, and rows [first, first +
 * count) within the type's particles, *end set. 0 or an error naming what is wrong. */
static int check_range(sm_snapshot *s, int ptype, const char *field, sm_dtype memtype, int ncomp,
		       uint64_t first, uint64_t count, const void *buf, uint64_t *end, sm_error *err)
{
	int rc;

	if ((rc = check_ptype(s, ptype, err)) != 0)
		return rc;
	if (sm__h5_memtype(memtype) < 0 || ncomp < 1 || ncomp > 1000 || field == NULL ||
	    strlen(field) >= 256 || (buf == NULL && count > 0))
		return sm_error_set(err, SM_EINVAL, "'%s': bad read of /PartType%d/%s",
				    sm__snap_name(s), ptype, field != NULL ? field : "(null)");
	if ((rc = sm_snapshot_scan(s, err)) != 0)
		return rc;
	if (sm_add_u64(first, count, end) != 0 || *end > s->header.npart_total[ptype])
		return sm_error_set(err, SM_EINVAL,
				    "'%s': range [%llu, +%llu) beyond the %llu particles of type %d",
				    sm__snap_name(s), (unsigned long long)first,
				    (unsigned long long)count,
				    (unsigned long long)s->header.npart_total[ptype], ptype);
	return 0;
}

/* The range read behind sm_snapshot_read_range(_checked): each chunk's rows by the fast path when
 * its preconditions hold, else through HDF5. */
static int read_range(sm_snapshot *s, int ptype, const char *field, sm_dtype memtype, int ncomp,
		      uint64_t first, uint64_t count, void *buf, const sm_io_buffer *iob,
		      const sm__bounds *b, uint64_t *bad, sm_error *err)
{
	sm__snap_priv *p;
	hid_t dxpl = H5P_DEFAULT;
	uint64_t end, start = 0, elem, done = 0, tmp;
	int64_t i;
	int rc = 0;

	sm_hdf5_quiet();
	*bad = count;
	if ((rc = check_range(s, ptype, field, memtype, ncomp, first, count, buf, &end, err)) != 0)
		return rc;
	elem = (uint64_t)ncomp * sm_dtype_size(memtype);
	if (sm_mul_u64(count, elem, &tmp) != 0 || tmp > SIZE_MAX)
		return sm_error_set(err, SM_EOVERFLOW, "'%s': %llu elements do not fit in memory",
				    sm__snap_name(s), (unsigned long long)count);
	if (count == 0)
		return 0;
	p = sm__snap_priv_get(s);
	if (p == NULL)
		return sm_error_set(err, SM_ENOMEM, "'%s': out of memory", sm__snap_name(s));
	if (iob != NULL && iob->tconv != NULL && iob->size > 0) {
		dxpl = H5Pcreate(H5P_DATASET_XFER);
		if (dxpl < 0 || H5Pset_buffer(dxpl, iob->size, iob->tconv, NULL) < 0) {
			rc = sm_error_set(err, SM_EINVAL,
					  "'%s': cannot use a conversion buffer of %zu bytes",
					  sm__snap_name(s), iob->size);
			goto out;
		}
	}
	for (i = 0; i < s->nfiles && done < count; i++) {
		uint64_t n = s->chunk_counts[(size_t)i * SM_NTYPES + (size_t)ptype];
		uint64_t lo, hi, nc = (uint64_t)ncomp, e;
		void *out;
		int errnum;

		if (n == 0 || start + n <= first) {
			start += n;
			continue;
		}
		lo = first > start ? first - start : 0;
		hi = end - start < n ? end - start : n;
		if ((rc = keep_dataset(s, p, i, ptype, field, n, ncomp, memtype, 0, err)) != 0)
			goto out;
		out = (char *)buf + done * elem;
		rc = sm__fast_read(&p->ext, memtype, lo * nc, (hi - lo) * nc, out,
				   iob != NULL ? iob->tconv : NULL, iob != NULL ? iob->size : 0, b, &e,
				   &errnum);
		if (rc == SM_EIO) {
			rc = read_failed(s, i, ptype, field, lo, hi, err);
			goto out;
		}
		/* not for the fast path: through HDF5, the dataset opened if it was not */
		if (rc == 1 && ((rc = keep_dataset(s, p, i, ptype, field, n, ncomp, memtype, 1,
						   err)) != 0 ||
				(rc = h5_read(s, p, i, ptype, field, memtype, ncomp, lo, hi, out,
					      iob, dxpl, b, &e, err)) != 0))
			goto out;
		if (b != NULL && e < (hi - lo) * nc) {
			*bad = done + e / nc;
			goto out;
		}
		done += hi - lo;
		start += n;
	}
out:
	if (dxpl != H5P_DEFAULT)
		H5Pclose(dxpl);
	if (rc != 0)
		sm__snap_close_kept(s);
	return rc;
}

void sm__snapshot_direct(sm_snapshot *s, int ptype, const char *field, sm_dtype memtype, int ncomp,
			 uint64_t first, uint64_t count, int bounded, sm__direct *d)
{
	sm__snap_priv *p;
	sm_error quiet;
	uint64_t start = 0, end, n;
	int64_t i;

	memset(d, 0, sizeof(*d));
	memset(&quiet, 0, sizeof(quiet));
	sm_hdf5_quiet();
	if (!sm__fast_enabled() || count == 0 ||
	    check_range(s, ptype, field, memtype, ncomp, first, count, d, &end, &quiet) != 0 ||
	    (p = sm__snap_priv_get(s)) == NULL)
		return;
	for (i = 0; i < s->nfiles; i++, start += n) {
		n = s->chunk_counts[(size_t)i * SM_NTYPES + (size_t)ptype];
		if (start + n > first)
			break;
	}
	/* one chunk file holds the whole range, whose dataset the fast path reads as memtype */
	if (i >= s->nfiles || end > start + n ||
	    keep_dataset(s, p, i, ptype, field, n, ncomp, memtype, 0, &quiet) != 0 || !p->ext.ok ||
	    !sm__fast_converts(&p->ext, memtype, bounded))
		return;
	d->x = p->ext;
	d->memtype = memtype;
	d->e0 = (first - start) * (uint64_t)ncomp;
	d->ne = count * (uint64_t)ncomp;
	d->ok = 1;
}

int sm_snapshot_read_range(sm_snapshot *s, int ptype, const char *field, sm_dtype memtype,
			   int ncomp, uint64_t first, uint64_t count, void *buf,
			   const sm_io_buffer *iob, sm_error *err)
{
	uint64_t bad;

	return read_range(s, ptype, field, memtype, ncomp, first, count, buf, iob, NULL, &bad, err);
}

int sm_snapshot_read_range_checked(sm_snapshot *s, int ptype, const char *field,
				   sm_dtype memtype, int ncomp, uint64_t first, uint64_t count,
				   void *buf, const sm_io_buffer *iob, double lo, double hi,
				   uint64_t *bad, sm_error *err)
{
	sm__bounds b = {lo, hi};

	return read_range(s, ptype, field, memtype, ncomp, first, count, buf, iob, &b, bad, err);
}

int sm_snapshot_read_field(sm_snapshot *s, int ptype, const char *field, sm_dtype memtype,
			   int ncomp, void *buf, const sm_io_buffer *iob, sm_error *err)
{
	if (ptype < 0 || ptype >= SM_NTYPES)
		return sm_error_set(err, SM_EINVAL, "'%s': particle type %d out of range",
				    sm__snap_name(s), ptype);
	return sm_snapshot_read_range(s, ptype, field, memtype, ncomp, 0,
				      s->header.npart_total[ptype], buf, iob, err);
}

struct names {
	char **v;
	size_t n, cap;
	int oom;
};

static herr_t add_name(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
	struct names *nm = data;
	H5O_info_t oi;
	char **v;

	(void)info;
	if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET)
		return 0;
	if (nm->n == nm->cap) {
		size_t cap = nm->cap ? nm->cap * 2 : 16;

		v = realloc(nm->v, cap * sizeof(*v));
		if (v == NULL)
			goto oom;
		nm->v = v;
		nm->cap = cap;
	}
	nm->v[nm->n] = strdup(name);
	if (nm->v[nm->n] == NULL)
		goto oom;
	nm->n++;
	return 0;
oom:
	nm->oom = 1;
	return -1;
}

void sm_field_names_free(char **names, size_t n)
{
	size_t i;

	for (i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
}

int sm_snapshot_field_names(sm_snapshot *s, int ptype, char ***names, size_t *n, sm_error *err)
{
	struct names nm = {0};
	char path[SM_PATH_MAX], grp[16];
	hid_t f = -1, g = -1;
	int64_t chunk;
	int rc;

	sm_hdf5_quiet();
	*names = NULL;
	*n = 0;
	if ((rc = check_ptype(s, ptype, err)) != 0)
		return rc;
	rc = first_holding(s, ptype, &chunk, err);
	if (rc == SM_ENOTFOUND) {
		sm_error_clear(err);
		return 0;
	}
	if (rc != 0)
		return rc;
	if ((rc = sm_snapshot_chunk_path(s, chunk, path, sizeof(path), err)) != 0 ||
	    (rc = sm__h5_open(path, &f, err)) != 0)
		return rc;
	snprintf(grp, sizeof(grp), "PartType%d", ptype);
	if (!sm__h5_exists(f, grp))
		goto out; /* headers only */
	g = H5Gopen2(f, grp, H5P_DEFAULT);
	if (g < 0 || H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, add_name, &nm) < 0) {
		rc = nm.oom ? sm_error_set(err, SM_ENOMEM, "'%s': out of memory", path)
			    : sm_error_set(err, SM_EFORMAT, "'%s': /%s cannot be listed", path, grp);
		sm_field_names_free(nm.v, nm.n);
		goto out;
	}
	*names = nm.v;
	*n = nm.n;
out:
	if (g >= 0)
		H5Gclose(g);
	H5Fclose(f);
	return rc;
}

/* One field's state in a check over the chunks. */
struct field_check {
	sm_dtype first_dt;
	int64_t first_chunk;
	int ncomp;
};

/*
 * open_field's checks of fields[0..n) in chunk file path without HDF5: 0 when the metadata reader
 * vouches for every dataset (contiguous, in HDF5's default format) and every one passes (rows
 * rows, fc's components, a known type: dt[j], nc[j]), else nonzero and the chunk is checked
 * through HDF5, whose answers and errors are then the only ones.
 */
static int fast_check_chunk(sm__meta_chunk *w, const char *path, int ptype,
			    const sm_field_check *fields, const struct field_check *fc, size_t n,
			    uint64_t rows, sm_dtype *dt, int *nc)
{
	sm__h5m_dset d;
	size_t j;
	int rc = -1;

	if (w == NULL || !sm__fast_enabled() || sm__h5m_open(&w->m, path) != 0)
		return -1;
	if (meta_group(w, ptype) != 0)
		goto out;
	for (j = 0; j < n; j++)
		if (meta_dataset(w, fields[j].name, rows, fc[j].ncomp, &d, &dt[j], &nc[j]) != 0)
			goto out;
	rc = 0;
out:
	sm__h5m_close(&w->m);
	return rc;
}

int sm_snapshot_check_fields(sm_snapshot *s, int ptype, const sm_field_check *fields, size_t n,
			     sm_error *err)
{
	char path[SM_PATH_MAX];
	struct field_check fc[SM_CHECK_FIELDS_MAX];
	sm__meta_chunk *w;
	sm_dtype dt, fdt[SM_CHECK_FIELDS_MAX];
	size_t lim = n, j;
	int64_t i;
	int rc = 0, nc, fnc[SM_CHECK_FIELDS_MAX], fast;

	sm_hdf5_quiet();
	if (n > SM_CHECK_FIELDS_MAX)
		return sm_error_set(err, SM_EINVAL, "'%s': %zu fields to check, at most %d",
				    sm__snap_name(s), n, SM_CHECK_FIELDS_MAX);
	if ((rc = check_ptype(s, ptype, err)) != 0 || (rc = sm_snapshot_scan(s, err)) != 0)
		return rc;
	for (j = 0; j < n; j++) {
		fc[j].first_dt = SM_DTYPE_NONE;
		fc[j].first_chunk = -1;
		fc[j].ncomp = fields[j].ncomp;
	}
	w = malloc(sizeof(*w)); /* NULL: every chunk through HDF5 */
	/* Chunk by chunk, each file opened once; fields [0, lim) are still in question, lim the
	 * lowest field found bad so far (err holds its error): the outcome of checking the fields
	 * one after the other over all chunks, stopping at the first bad one. */
	for (i = 0; i < s->nfiles && lim > 0; i++) {
		uint64_t rows = s->chunk_counts[(size_t)i * SM_NTYPES + (size_t)ptype];
		hid_t f = -1;

		if (rows == 0)
			continue;
		if ((rc = sm_snapshot_chunk_path(s, i, path, sizeof(path), err)) != 0)
			goto out;
		fast = fast_check_chunk(w, path, ptype, fields, fc, lim, rows, fdt, fnc) == 0;
		if (!fast && (rc = sm__h5_open(path, &f, err)) != 0)
			goto out; /* every field still in question fails here, field 0 first */
		for (j = 0; j < lim; j++) {
			hid_t d = -1;
			int frc = 0;

			if (fast) {
				dt = fdt[j];
				nc = fnc[j];
			} else {
				frc = open_field(f, path, ptype, fields[j].name, rows, fc[j].ncomp,
						 SM_DTYPE_NONE, &d, &dt, &nc, err);
			}
			if (d >= 0)
				H5Dclose(d);
			if (frc == 0 && fc[j].first_chunk < 0) {
				fc[j].first_chunk = i;
				fc[j].first_dt = dt;
				fc[j].ncomp = nc;
			} else if (frc == 0 && dt != fc[j].first_dt) {
				frc = sm_error_set(err, SM_EFORMAT,
						   "'%s': /PartType%d/%s is %s here but %s in chunk "
						   "%lld", path, ptype, fields[j].name,
						   sm_dtype_name(dt), sm_dtype_name(fc[j].first_dt),
						   (long long)fc[j].first_chunk);
			}
			if (frc != 0) {
				rc = frc;
				lim = j;
			}
		}
		if (f >= 0)
			H5Fclose(f);
	}
out:
	free(w);
	return rc;
}

int sm_snapshot_check_field(sm_snapshot *s, int ptype, const char *field, int ncomp,
			    sm_error *err)
{
	sm_field_check one;

	one.name = field;
	one.ncomp = ncomp;
	return sm_snapshot_check_fields(s, ptype, &one, 1, err);
}
