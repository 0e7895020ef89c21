/*
 * FoF/Subfind group catalogues: opening by base path or file, and reading one /Group field across
 * the chunk files. Chunks with Ngroups_ThisFile = 0 are skipped without looking at /Group (TNG's
 * empty chunks keep an empty /Group). Header integers of any width, as for snapshots.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/snapshot-internal.h"

#define MAX_CHUNKS 1000000

static const char *cat_name(const sm_catalog *c)
{
	return c->base[0] != '\0' ? c->base : c->pattern;
}

/* Opens chunk i's file and reads Ngroups_ThisFile (and, for chunk 0, the totals into c). */
static int open_chunk(sm_catalog *c, int64_t i, char *path, hid_t *fout, uint64_t *ngroups,
		      sm_error *err)
{
	hid_t f = -1, g = -1;
	uint64_t v;
	int rc;

	if (sm__pattern_path(c->pattern, i, path, SM_PATH_MAX) != 0)
		return sm_error_set(err, SM_EOVERFLOW, "'%s': path too long", cat_name(c));
	if ((rc = sm__h5_open(path, &f, err)) != 0)
		return rc;
	if (!sm__h5_exists(f, "Header")) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': no /Header group", path);
		goto out;
	}
	g = H5Gopen2(f, "Header", H5P_DEFAULT);
	if (g < 0) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': /Header cannot be opened", path);
		goto out;
	}
	if ((rc = sm__attr_u64(g, path, "/Header", "Ngroups_ThisFile", ngroups, 1, 1, err)) != 0)
		goto out;
	if (i == 0) {
		if ((rc = sm__attr_u64(g, path, "/Header", "Ngroups_Total", &c->ngroups_total, 1, 1,
				       err)) != 0)
			goto out;
		rc = sm__attr_u64(g, path, "/Header", "Nsubgroups_Total", &c->nsubgroups_total, 1, 0,
				  err);
		if (rc < 0)
			goto out;
		rc = sm__attr_u64(g, path, "/Header", "NumFiles", &v, 1, 0, err);
		if (rc < 0)
			goto out;
		if (rc == 1)
			v = 1;
		if (v < 1 || v > MAX_CHUNKS) {
			rc = sm_error_set(err, SM_EFORMAT, "'%s': /Header attribute 'NumFiles' is %llu, "
					  "expected 1 to %d", path, (unsigned long long)v,
					  MAX_CHUNKS);
			goto out;
		}
		c->num_files_header = (int64_t)v;
		rc = sm__attr_double(g, path, "/Header", "HubbleParam", &c->hubble_param, 0, err);
		if (rc < 0)
			goto out;
		rc = 0;
	}
	*fout = f;
	f = -1;
out:
	if (g >= 0)
		H5Gclose(g);
	if (f >= 0)
		H5Fclose(f);
	return rc;
}

static int open_first(sm_catalog *c, int single, sm_error *err)
{
	char path[SM_PATH_MAX];
	hid_t f = -1;
	int rc;

	if ((rc = open_chunk(c, 0, path, &f, &c->ngroups_file0, err)) != 0)
		return rc;
	H5Fclose(f);
	c->nfiles = single ? 1 : c->num_files_header;
	c->ngroups_read = single && c->num_files_header > 1 ? c->ngroups_file0 : c->ngroups_total;
	return 0;
}

int sm__catalog_scan(sm_catalog *c, sm_error *err)
{
	char path[SM_PATH_MAX];
	uint64_t sum, n;
	hid_t f;
	int64_t i;
	int rc;

	if (c->nfiles == 1 && c->num_files_header > 1) {
		c->ngroups_chunk_max = c->ngroups_file0;
		return 0; /* one chunk of many, given directly: only its groups are read */
	}
	sum = c->ngroups_file0;
	c->ngroups_chunk_max = c->ngroups_file0;
	for (i = 1; i < c->nfiles; i++) {
		if ((rc = open_chunk(c, i, path, &f, &n, err)) != 0)
			return rc;
		H5Fclose(f);
		if (n > c->ngroups_chunk_max)
			c->ngroups_chunk_max = n;
		if (n > UINT64_MAX - sum)
			return sm_error_set(err, SM_EFORMAT, "'%s': Ngroups_ThisFile %llu overflows the "
					    "sum of the chunks", path, (unsigned long long)n);
		sum += n;
	}
	if (sum != c->ngroups_total)
		return sm_error_set(err, SM_EFORMAT, "'%s': Ngroups_ThisFile of the %lld chunk files "
				    "add up to %llu, but Ngroups_Total is %llu", cat_name(c),
				    (long long)c->nfiles, (unsigned long long)sum,
				    (unsigned long long)c->ngroups_total);
	return 0;
}

int sm_catalog_open_file(sm_catalog *c, const char *path, sm_error *err)
{
	int rc;

	sm_hdf5_quiet();
	memset(c, 0, sizeof(*c));
	c->snap = -1;
	if (path == NULL || *path == '\0')
		return sm_error_set(err, SM_EINVAL, "empty catalogue file name");
	if (sm__pattern_make(c->pattern, sizeof(c->pattern), path, "") != 0)
		return sm_error_set(err, SM_EOVERFLOW, "'%s': path too long", path);
	if ((rc = open_first(c, 1, err)) != 0)
		sm_catalog_release(c);
	return rc;
}

int sm_catalog_open_base(sm_catalog *c, const char *base, int snap, sm_error *err)
{
	static const char *const tails[] = {
		"groups_%03d/fof_subhalo_tab_%03d.%%lld.hdf5", "groups_%03d/groups_%03d.%%lld.hdf5",
	};
	size_t ntails = sizeof(tails) / sizeof(tails[0]);
	int rc, i;

	sm_hdf5_quiet();
	memset(c, 0, sizeof(*c));
	c->snap = snap;
	i = sm__layout_find(base, snap, tails, ntails, c->base, sizeof(c->base), c->pattern,
			    sizeof(c->pattern), err);
	if (i < 0)
		return i;
	if ((size_t)i == ntails)
		return sm_error_set(err, SM_ENOTFOUND,
				    "'%s': no group catalogue for snapshot %03d (looked for "
				    "groups_%03d/fof_subhalo_tab_%03d.0.hdf5 and groups_%03d.0.hdf5)",
				    base, snap, snap, snap, snap);
	if ((rc = open_first(c, 0, err)) != 0) {
		sm_catalog_release(c);
		c->snap = snap;
	}
	return rc;
}

void sm_catalog_release(sm_catalog *c)
{
	if (c == NULL)
		return;
	free(c->priv);
	c->priv = NULL;
}

/* Reads /Group/<field> of one open chunk (ng rows) into dst. */
static int read_chunk_field(hid_t f, const char *path, const char *field, uint64_t ng,
			    sm_dtype memtype, int ncomp, void *dst, sm_error *err)
{
	char name[300];
	hid_t d = -1, t = -1, sp = -1;
	hsize_t dims[H5S_MAX_RANK];
	sm_dtype dt;
	int rank, rc = 0, mfloat;

	snprintf(name, sizeof(name), "/Group/%s", field);
	if (!sm__h5_exists(f, "Group"))
		return sm_error_set(err, SM_EFORMAT,
				    "'%s': no /Group although Ngroups_ThisFile is %llu", path,
				    (unsigned long long)ng);
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
	mfloat = memtype == SM_DTYPE_F32 || memtype == SM_DTYPE_F64;
	if (dt == SM_DTYPE_NONE || mfloat != (dt == SM_DTYPE_F32 || dt == SM_DTYPE_F64)) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s is %s on disk and cannot be read as %s",
				  path, name, dt == SM_DTYPE_NONE ? "of an unsupported type"
								  : sm_dtype_name(dt),
				  sm_dtype_name(memtype));
		goto out;
	}
	rank = H5Sget_simple_extent_ndims(sp);
	if (rank < 1 || rank > 2 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0 ||
	    (rank == 1 && ncomp != 1) || (rank == 2 && dims[1] != (hsize_t)ncomp)) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s has rank %d%s, expected %s%d%s", path,
				  name, rank, rank == 2 ? " with a wrong second dimension" : "",
				  ncomp == 1 ? "[N]" : "[N,", ncomp, ncomp == 1 ? " component" : "]");
		goto out;
	}
	if (dims[0] != ng) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s has %llu rows but Ngroups_ThisFile is "
				  "%llu", path, name, (unsigned long long)dims[0],
				  (unsigned long long)ng);
		goto out;
	}
	if (H5Dread(d, sm__h5_memtype(memtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
		rc = sm_error_set(err, SM_EIO, "'%s': reading %s failed", path, name);
		goto out;
	}
out:
	if (sp >= 0)
		H5Sclose(sp);
	if (t >= 0)
		H5Tclose(t);
	H5Dclose(d);
	return rc;
}

int sm_catalog_read_group_fields(sm_catalog *c, const sm_catalog_field *fields, size_t nfields,
				 sm_error *err)
{
	char path[SM_PATH_MAX];
	uint64_t done = 0, ng, want = c->ngroups_read;
	int64_t i;
	size_t k;
	int rc = 0;

	sm_hdf5_quiet();
	if (c->nfiles < 1)
		return sm_error_set(err, SM_EINVAL, "catalogue is not open");
	for (k = 0; k < nfields; k++) {
		const sm_catalog_field *fd = &fields[k];

		if (sm__h5_memtype(fd->memtype) < 0 || fd->ncomp < 1 || fd->ncomp > 1000 ||
		    fd->name == NULL || (fd->buf == NULL && want > 0))
			return sm_error_set(err, SM_EINVAL, "'%s': bad read of /Group/%s",
					    cat_name(c), fd->name != NULL ? fd->name : "(null)");
	}
	/* One pass over the chunk files for all fields: opening a file costs more than reading a
	 * column of it, and a TNG300-1 catalogue has 600 of them. */
	for (i = 0; i < c->nfiles; i++) {
		hid_t f = -1;

		if ((rc = open_chunk(c, i, path, &f, &ng, err)) != 0)
			return rc;
		if (ng > want - done) {
			rc = sm_error_set(err, SM_EFORMAT,
					  "'%s': Ngroups_ThisFile of the chunks up to this one add up "
					  "to more than the %llu groups of Ngroups_Total", path,
					  (unsigned long long)want);
		} else if (ng > 0) {
			for (k = 0; k < nfields && rc == 0; k++) {
				const sm_catalog_field *fd = &fields[k];
				uint64_t elem = (uint64_t)fd->ncomp * sm_dtype_size(fd->memtype);

				rc = read_chunk_field(f, path, fd->name, ng, fd->memtype, fd->ncomp,
						      (char *)fd->buf + done * elem, err);
			}
			done += ng;
		}
		H5Fclose(f);
		if (rc != 0)
			return rc;
	}
	if (done != want)
		return sm_error_set(err, SM_EFORMAT,
				    "'%s': Ngroups_ThisFile of the %lld chunk files add up to %llu, "
				    "but Ngroups_Total is %llu", cat_name(c), (long long)c->nfiles,
				    (unsigned long long)done, (unsigned long long)want);
	return 0;
}

int sm_catalog_read_group_field(sm_catalog *c, const char *field, sm_dtype memtype, int ncomp,
				void *buf, sm_error *err)
{
	sm_catalog_field fd = {field, memtype, ncomp, buf};

	return sm_catalog_read_group_fields(c, &fd, 1, err);
}
