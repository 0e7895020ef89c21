/*
 * FoF/Subfind group catalogues: opening by base path or file, and reading one /Group field across
 * the chunk files. Chunks with Ngroups_ThisFile = 0 are skipped without looking at /Group (TNG's
 * empty chunks keep an empty /Group). Header integers of any width, as for snapshots. Every chunk
 * opened after chunk 0 must agree with it on Ngroups_Total and NumFiles (exactly) and BoxSize,
 * Redshift and HubbleParam (to a relative 1e-6); sm_catalog_match_snapshot holds the catalogue
 * against its snapshot's header. Chunk 0's header is read without HDF5 where the metadata reader
 * vouches for all of it (fast_first), as the columns are (sm__catalog_read_fast, below).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/parallel.h"
#include "snapshot/snapshot-internal.h"

#define MAX_CHUNKS 1000000

static const char *cat_name(const sm_catalog *c)
{
	return c->base[0] != '\0' ? c->base : c->pattern;
}

/* Header facts every chunk of one catalogue must share. */
struct cat_facts {
	uint64_t ngroups_total;
	int64_t num_files;
	double box_size, redshift, hubble_param; /* 0 when absent */
	int has_box, has_redshift;
};

static int close_enough(double a, double b)
{
	return fabs(a - b) <= 1e-6 * fmax(fabs(a), fabs(b)) + 1e-12;
}

/* Reads and range-checks the shared facts of one chunk's /Header. */
static int read_facts(hid_t g, const char *path, struct cat_facts *cf, sm_error *err)
{
	uint64_t v;
	int rc;

	memset(cf, 0, sizeof(*cf));
	if ((rc = sm__attr_u64(g, path, "/Header", "Ngroups_Total", &cf->ngroups_total, 1, 1,
			       err)) != 0)
		return rc;
	rc = sm__attr_u64(g, path, "/Header", "NumFiles", &v, 1, 0, err);
	if (rc < 0)
		return rc;
	if (rc == 1)
		v = 1;
	if (v < 1 || v > MAX_CHUNKS)
		return sm_error_set(err, SM_EFORMAT, "'%s': /Header attribute 'NumFiles' is %llu, "
				    "expected 1 to %d", path, (unsigned long long)v, MAX_CHUNKS);
	cf->num_files = (int64_t)v;
	if ((rc = sm__attr_double(g, path, "/Header", "HubbleParam", &cf->hubble_param, 0,
				  err)) < 0)
		return rc;
	if (!isfinite(cf->hubble_param) || !(cf->hubble_param >= 0))
		return sm_error_set(err, SM_EFORMAT, "'%s': /Header attribute 'HubbleParam' is %g, "
				    "expected a finite number >= 0", path, cf->hubble_param);
	if ((rc = sm__attr_double(g, path, "/Header", "BoxSize", &cf->box_size, 0, err)) < 0)
		return rc;
	cf->has_box = rc == 0;
	if (cf->has_box && (!isfinite(cf->box_size) || !(cf->box_size > 0)))
		return sm_error_set(err, SM_EFORMAT, "'%s': /Header attribute 'BoxSize' is %g, "
				    "expected a positive finite length", path, cf->box_size);
	if ((rc = sm__attr_double(g, path, "/Header", "Redshift", &cf->redshift, 0, err)) < 0)
		return rc;
	cf->has_redshift = rc == 0;
	if (cf->has_redshift && (!isfinite(cf->redshift) || !(cf->redshift > -1)))
		return sm_error_set(err, SM_EFORMAT, "'%s': /Header attribute 'Redshift' is %g, "
				    "expected a finite number > -1", path, cf->redshift);
	return 0;
}

/* Chunk 0's facts kept in c (both ways of reading chunk 0 end here). */
static void keep_facts(sm_catalog *c, const struct cat_facts *cf)
{
	c->num_files_header = cf->num_files;
	c->hubble_param = cf->hubble_param;
	c->box_size = cf->box_size;
	c->has_box_size = cf->has_box;
	c->redshift = cf->redshift;
	c->has_redshift = cf->has_redshift;
}

/* Chunk i's facts against chunk 0's (kept in c): SM_EFORMAT naming both files. */
static int match_facts(const sm_catalog *c, const struct cat_facts *cf, const char *path,
		       sm_error *err)
{
	char p0[SM_PATH_MAX];
	const char *what = NULL;
	double a = 0, b = 0;

	if (sm__pattern_path(c->pattern, 0, p0, sizeof(p0)) != 0)
		snprintf(p0, sizeof(p0), "%s", cat_name(c));
	if (cf->ngroups_total != c->ngroups_total)
		return sm_error_set(err, SM_EFORMAT, "'%s': /Header attribute 'Ngroups_Total' is "
				    "%llu, but %llu in '%s': the chunk files disagree", path,
				    (unsigned long long)cf->ngroups_total,
				    (unsigned long long)c->ngroups_total, p0);
	if (cf->num_files != c->num_files_header)
		return sm_error_set(err, SM_EFORMAT, "'%s': /Header attribute 'NumFiles' is %lld, "
				    "but %lld in '%s': the chunk files disagree", path,
				    (long long)cf->num_files, (long long)c->num_files_header, p0);
	if (cf->has_box != c->has_box_size || !close_enough(cf->box_size, c->box_size))
		what = "BoxSize", a = cf->box_size, b = c->box_size;
	else if (cf->has_redshift != c->has_redshift || !close_enough(cf->redshift, c->redshift))
		what = "Redshift", a = cf->redshift, b = c->redshift;
	else if (!close_enough(cf->hubble_param, c->hubble_param))
		what = "HubbleParam", a = cf->hubble_param, b = c->hubble_param;
	if (what != NULL)
		return sm_error_set(err, SM_EFORMAT, "'%s': /Header attribute '%s' is %.9g, but "
				    "%.9g in '%s': the chunk files disagree (0 stands for absent)",
				    path, what, a, b, p0);
	return 0;
}

/* Opens chunk i's file and reads Ngroups_ThisFile (and, for chunk 0, the totals into c); the
 * other chunks' shared facts are checked against chunk 0's. */
static int open_chunk(sm_catalog *c, int64_t i, char *path, hid_t *fout, uint64_t *ngroups,
		      sm_error *err)
{
	struct cat_facts cf;
	hid_t f = -1, g = -1;
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
	if ((rc = sm__attr_u64(g, path, "/Header", "Ngroups_ThisFile", ngroups, 1, 1, err)) != 0 ||
	    (rc = read_facts(g, path, &cf, err)) != 0)
		goto out;
	if (i == 0) {
		c->ngroups_total = cf.ngroups_total;
		/* Subfind writes Nsubgroups_Total; newer writers (SWIFT, some AREPO
		 * versions) Nsubhalos_Total */
		rc = sm__attr_u64(g, path, "/Header", "Nsubgroups_Total", &c->nsubgroups_total, 1, 0,
				  err);
		if (rc == 1)
			rc = sm__attr_u64(g, path, "/Header", "Nsubhalos_Total",
					  &c->nsubgroups_total, 1, 0, err);
		if (rc < 0)
			goto out;
		c->has_nsubgroups_total = rc == 0;
		keep_facts(c, &cf);
		rc = 0;
	} else if ((rc = match_facts(c, &cf, path, err)) != 0) {
		goto out;
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

int sm_catalog_match_chunk(const sm_catalog *c, const sm_catalog *chunk, const char *path,
			   sm_error *err)
{
	struct cat_facts cf;

	memset(&cf, 0, sizeof(cf));
	cf.ngroups_total = chunk->ngroups_total;
	cf.num_files = chunk->num_files_header;
	cf.box_size = chunk->box_size;
	cf.has_box = chunk->has_box_size;
	cf.redshift = chunk->redshift;
	cf.has_redshift = chunk->has_redshift;
	cf.hubble_param = chunk->hubble_param;
	return match_facts(c, &cf, path, err);
}

int sm_catalog_match_snapshot(const sm_catalog *c, const sm_snapshot *s, sm_error *err)
{
	char cp[SM_PATH_MAX], sp[SM_PATH_MAX];
	const sm_header *h = &s->header;
	const char *what = NULL;
	double a = 0, b = 0;

	if (sm__pattern_path(c->pattern, 0, cp, sizeof(cp)) != 0)
		snprintf(cp, sizeof(cp), "%s", cat_name(c));
	if (sm__pattern_path(s->pattern, 0, sp, sizeof(sp)) != 0)
		snprintf(sp, sizeof(sp), "%s", sm__snap_name(s));
	if (c->has_box_size && !close_enough(c->box_size, h->box_size))
		what = "BoxSize", a = c->box_size, b = h->box_size;
	else if (c->has_redshift && !close_enough(c->redshift, h->redshift))
		what = "Redshift", a = c->redshift, b = h->redshift;
	else if (c->hubble_param > 0 && h->hubble_param > 0 &&
		 !close_enough(c->hubble_param, h->hubble_param))
		what = "HubbleParam", a = c->hubble_param, b = h->hubble_param;
	if (what != NULL)
		return sm_error_set(err, SM_EFORMAT, "'%s': /Header attribute '%s' is %.9g, but %.9g "
				    "in the snapshot's '%s': the catalogue belongs to another "
				    "snapshot", cp, what, a, b, sp);
	return 0;
}

static int fast_first(sm_catalog *c);

/* Chunk 0's header: without HDF5 when the metadata reader vouches for all of it (fast_first),
 * else through HDF5 (open_chunk), whose answer and errors are then the only ones. */
static int open_first(sm_catalog *c, int single, sm_error *err)
{
	char path[SM_PATH_MAX];
	hid_t f = -1;
	int rc;

	if (fast_first(c) != 0) {
		if ((rc = open_chunk(c, 0, path, &f, &c->ngroups_file0, err)) != 0)
			return rc;
		H5Fclose(f);
	}
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

/* ---- the fast path: the chunks' headers and columns through h5meta.c, on worker threads ------ */

/*
 * sm_catalog_read_group_fields first tries every chunk without HDF5 (src/snapshot/h5meta.c), the
 * files spread over the worker threads: phase 1 reads each chunk's header and finds its columns,
 * the calling thread then checks the chunks in order exactly as the HDF5 loop does and places
 * each chunk's rows, and phase 2 reads the columns into place. Any chunk the metadata reader does
 * not vouch for, any check that would fail, any read that comes up short, and the whole read goes
 * through HDF5 from the start instead: the HDF5 loop's answer and error are then the only ones
 * anybody sees, and the fast path only ever answers what HDF5 would (the same values, converted
 * as HDF5's hardware conversions do: float32 and float64 copied or byte-swapped, little-endian
 * float64 narrowed and float32 widened by the C cast). SNAPMEM_FASTREAD=0 turns it off.
 */
#define FAST_FIELDS 8
#define FAST_FILES_PER_PART 8 /* a worker thread per this many chunk files */
#define FAST_SCRATCH (UINT64_C(64) << 10)
#define FAST_KEEP_MAX 512u /* descriptors kept open between the phases (at most 1/4 of the limit) */

struct fast_loc {
	uint64_t addr, bytes;
	sm__h5m_type type;
};

struct fast_chunk {
	uint64_t ng, row;
	int fd;       /* kept open from phase 1 for phase 2 (-1: opened again) */
	uint64_t eoa; /* its end of allocation, with fd */
	struct cat_facts cf;
	struct fast_loc loc[FAST_FIELDS];
};

/* One part's working memory, allocated by the calling thread (parts never allocate). */
struct fast_ws {
	int dirfd;   /* the chunks' directory (openat: no path walk a file), or AT_FDCWD */
	unsigned kept; /* descriptors this part keeps open for phase 2 */
	sm__h5m m;
	sm__h5m_obj a, b;
	unsigned char scratch[FAST_SCRATCH];
};

struct fast_job {
	const sm_catalog *c;
	const sm_catalog_field *fields;
	size_t nfields;
	struct fast_chunk *ch;
	int64_t n;
	struct fast_ws *ws;
	int phase; /* 1: headers and locations; 2: the columns */
	int failed;
	size_t dirlen;  /* the chunk paths' common directory: its length (with the '/'), or 0 */
	unsigned keep;  /* descriptors a part may keep open between the phases */
};

/* Chunk i's path; *rel: the part of it relative to the directory the part holds open. */
static int fast_path(const struct fast_job *J, const struct fast_ws *w, int64_t i, char *path,
		     const char **rel)
{
	if (sm__pattern_path(J->c->pattern, i, path, SM_PATH_MAX) != 0)
		return -1;
	*rel = path;
	if (w->dirfd != AT_FDCWD && strncmp(path, J->c->pattern, J->dirlen) == 0 &&
	    strchr(path + J->dirlen, '/') == NULL)
		*rel = path + J->dirlen;
	return 0;
}

/* read_facts and Ngroups_ThisFile, where every check passes. */
static int fast_facts(const sm__h5m_obj *o, uint64_t *ng, struct cat_facts *cf)
{
	uint64_t v;
	int rc;

	memset(cf, 0, sizeof(*cf));
	if (sm__h5m_u64s(o, "Ngroups_ThisFile", ng, 1) != 0 ||
	    sm__h5m_u64s(o, "Ngroups_Total", &cf->ngroups_total, 1) != 0)
		return -1;
	if ((rc = sm__h5m_u64s(o, "NumFiles", &v, 1)) < 0)
		return -1;
	if (rc == 1)
		v = 1;
	if (v < 1 || v > MAX_CHUNKS)
		return -1;
	cf->num_files = (int64_t)v;
	if ((rc = sm__h5m_doubles(o, "HubbleParam", &cf->hubble_param, 1)) < 0 ||
	    !isfinite(cf->hubble_param) || !(cf->hubble_param >= 0))
		return -1;
	if ((rc = sm__h5m_doubles(o, "BoxSize", &cf->box_size, 1)) < 0)
		return -1;
	cf->has_box = rc == 0;
	if (cf->has_box && (!isfinite(cf->box_size) || !(cf->box_size > 0)))
		return -1;
	if ((rc = sm__h5m_doubles(o, "Redshift", &cf->redshift, 1)) < 0)
		return -1;
	cf->has_redshift = rc == 0;
	if (cf->has_redshift && (!isfinite(cf->redshift) || !(cf->redshift > -1)))
		return -1;
	return 0;
}

/*
 * open_chunk's work for chunk 0 without HDF5: its header facts, Ngroups_ThisFile and
 * Nsubgroups_Total (else Nsubhalos_Total) into c, only when the metadata reader vouches for each
 * and every check passes (0); else nonzero and c untouched. Opening a chunk through HDF5 costs
 * ~150 us with its header (the distributed run's load_halos opens every chunk four times); this
 * costs a few pread(2)s and one allocation.
 */
static int fast_first(sm_catalog *c)
{
	struct {
		sm__h5m m;
		sm__h5m_obj a, b;
	} *w;
	char path[SM_PATH_MAX];
	struct cat_facts cf;
	uint64_t ng, oh, nsub = 0;
	int rc = -1, has;

	if (!sm__fast_enabled() || sm__pattern_path(c->pattern, 0, path, sizeof(path)) != 0 ||
	    (w = malloc(sizeof(*w))) == NULL)
		return -1;
	if (sm__h5m_open(&w->m, path) != 0)
		goto out;
	if (sm__h5m_object(&w->m, w->m.root, &w->a) != 0 ||
	    sm__h5m_lookup(&w->m, &w->a, "Header", &oh) != 0 ||
	    sm__h5m_object(&w->m, oh, &w->b) != 0 || fast_facts(&w->b, &ng, &cf) != 0)
		goto out;
	has = sm__h5m_u64s(&w->b, "Nsubgroups_Total", &nsub, 1);
	if (has == 1)
		has = sm__h5m_u64s(&w->b, "Nsubhalos_Total", &nsub, 1);
	if (has < 0)
		goto out;
	c->ngroups_file0 = ng;
	c->ngroups_total = cf.ngroups_total;
	c->nsubgroups_total = has == 0 ? nsub : 0;
	c->has_nsubgroups_total = has == 0;
	keep_facts(c, &cf);
	rc = 0;
out:
	sm__h5m_close(&w->m);
	free(w);
	return rc;
}

/* The conversions done here, each as HDF5 does it: 0 none needed or done, else -1. */
static int fast_convertible(const sm__h5m_type *t, sm_dtype mem)
{
	if (t->cls != SM__H5M_FLOAT)
		return -1;
	if (sm_dtype_size(mem) == t->size)
		return 0; /* a copy, or a byte swap */
	return t->big ? -1 : 0; /* narrowed or widened by the C cast from little-endian data */
}

/* Phase 1 for chunk i: its header, its facts and where its columns lie. */
static int fast_meta(struct fast_job *J, struct fast_ws *w, int64_t i)
{
	char path[SM_PATH_MAX];
	struct fast_chunk *ch = &J->ch[i];
	uint64_t oh;
	size_t k;
	int rc = -1;

	const char *rel;

	ch->fd = -1;
	if (fast_path(J, w, i, path, &rel) != 0 || sm__h5m_open_at(&w->m, w->dirfd, rel) != 0)
		return -1;
	if (sm__h5m_object(&w->m, w->m.root, &w->a) != 0 ||
	    sm__h5m_lookup(&w->m, &w->a, "Header", &oh) != 0 || sm__h5m_object(&w->m, oh, &w->b) ||
	    fast_facts(&w->b, &ch->ng, &ch->cf) != 0)
		goto out;
	if (ch->ng > 0) {
		/* a: the root, then /Group; b: each column's header */
		if (sm__h5m_lookup(&w->m, &w->a, "Group", &oh) != 0 ||
		    sm__h5m_object(&w->m, oh, &w->a) != 0)
			goto out;
		for (k = 0; k < J->nfields; k++) {
			const sm_catalog_field *fd = &J->fields[k];
			sm__h5m_dset d;

			if (sm__h5m_lookup(&w->m, &w->a, fd->name, &oh) != 0 ||
			    sm__h5m_object(&w->m, oh, &w->b) != 0 ||
			    sm__h5m_dataset(&w->m, &w->b, &d) != 0 ||
			    fast_convertible(&d.type, fd->memtype) != 0 || d.rank < 1 || d.rank > 2 ||
			    (d.rank == 1 && fd->ncomp != 1) ||
			    (d.rank == 2 && d.dims[1] != (uint64_t)fd->ncomp) || d.dims[0] != ch->ng)
				goto out;
			ch->loc[k].addr = d.addr;
			ch->loc[k].bytes = d.bytes;
			ch->loc[k].type = d.type;
		}
		if (w->kept < J->keep) { /* phase 2 reads through it, not opening the file again */
			ch->fd = w->m.fd;
			ch->eoa = w->m.eoa;
			w->m.fd = -1;
			w->kept++;
		}
	}
	rc = 0;
out:
	sm__h5m_close(&w->m);
	return rc;
}

static int fast_pread(int fd, void *dst, uint64_t len, uint64_t at)
{
	uint64_t got = 0;
	ssize_t n;

	while (got < len) {
		n = pread(fd, (unsigned char *)dst + got, (size_t)(len - got), (off_t)(at + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (uint64_t)n;
	}
	return 0;
}

/* Phase 2 for chunk i: its columns, converted, into their rows. */
static int fast_columns(struct fast_job *J, struct fast_ws *w, int64_t i)
{
	char path[SM_PATH_MAX];
	const struct fast_chunk *ch = &J->ch[i];
	const char *rel;
	size_t k;
	int rc = -1;

	if (ch->ng == 0)
		return 0;
	if (ch->fd >= 0) {
		w->m.fd = -1; /* the chunk's own, closed by the caller */
		w->m.eoa = ch->eoa;
	} else if (fast_path(J, w, i, path, &rel) != 0 ||
		   sm__h5m_open_at(&w->m, w->dirfd, rel) != 0) {
		return -1;
	}
	for (k = 0; k < J->nfields; k++) {
		const sm_catalog_field *fd = &J->fields[k];
		const struct fast_loc *l = &ch->loc[k];
		int fdes = ch->fd >= 0 ? ch->fd : w->m.fd;
		size_t msize = sm_dtype_size(fd->memtype);
		uint64_t n = l->bytes / l->type.size, end, j, e;
		unsigned char *dst = (unsigned char *)fd->buf + ch->row * (uint64_t)fd->ncomp * msize;

		/* the file as it is now (it was opened again) */
		if (sm_add_u64(l->addr, l->bytes, &end) != 0 || end > w->m.eoa)
			goto out;
		if (msize == l->type.size) {
			if (fast_pread(fdes, dst, l->bytes, l->addr) != 0)
				goto out;
			if (l->type.big && msize == 4)
				for (j = 0; j < n; j++)
					((uint32_t *)dst)[j] = __builtin_bswap32(((uint32_t *)dst)[j]);
			else if (l->type.big)
				for (j = 0; j < n; j++)
					((uint64_t *)dst)[j] = __builtin_bswap64(((uint64_t *)dst)[j]);
			continue;
		}
		for (j = 0; j < n; j += e) {
			e = FAST_SCRATCH / l->type.size;
			if (e > n - j)
				e = n - j;
			if (fast_pread(fdes, w->scratch, e * l->type.size,
				       l->addr + j * l->type.size) != 0)
				goto out;
			if (l->type.size == 8) {
				sm__narrow_f64((const double *)(void *)w->scratch, (float *)dst + j, e,
					       NULL);
			} else {
				const float *f = (const float *)(void *)w->scratch;
				uint64_t q;

				for (q = 0; q < e; q++)
					((double *)dst)[j + q] = (double)f[q];
			}
		}
	}
	rc = 0;
out:
	sm__h5m_close(&w->m);
	return rc;
}

static void fast_part(void *arg, unsigned part, unsigned parts)
{
	struct fast_job *J = arg;
	struct fast_ws *w = &J->ws[part];
	int64_t i;

	w->dirfd = AT_FDCWD;
	w->kept = 0;
	if (J->dirlen > 0) {
		char dir[SM_PATH_MAX];

		memcpy(dir, J->c->pattern, J->dirlen - 1);
		dir[J->dirlen - 1] = '\0';
		w->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (w->dirfd < 0)
			w->dirfd = AT_FDCWD;
	}
	for (i = part; i < J->n && !__atomic_load_n(&J->failed, __ATOMIC_RELAXED); i += parts)
		if ((J->phase == 1 ? fast_meta(J, w, i) : fast_columns(J, w, i)) != 0)
			__atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
	if (w->dirfd != AT_FDCWD)
		close(w->dirfd);
}

int sm__catalog_read_fast(sm_catalog *c, const sm_catalog_field *fields, size_t nfields)
{
	struct fast_job J;
	uint64_t done = 0, want = c->ngroups_read, chunk_max = c->ngroups_chunk_max;
	unsigned parts = sm__threads(), per;
	int64_t i;
	size_t k;
	int rc = -1;

	if (!sm__fast_enabled() || c->nfiles < 1 || nfields > FAST_FIELDS)
		return -1;
	for (k = 0; k < nfields; k++)
		if ((fields[k].memtype != SM_DTYPE_F32 && fields[k].memtype != SM_DTYPE_F64) ||
		    strchr(fields[k].name, '/') != NULL)
			return -1;
	per = (unsigned)((c->nfiles + FAST_FILES_PER_PART - 1) / FAST_FILES_PER_PART);
	if (parts > per)
		parts = per;
	if (parts < 1)
		parts = 1;
	memset(&J, 0, sizeof(J));
	J.c = c;
	J.fields = fields;
	J.nfields = nfields;
	J.n = c->nfiles;
	if ((uint64_t)c->nfiles > SIZE_MAX / sizeof(*J.ch))
		return -1;
	J.ch = calloc((size_t)c->nfiles, sizeof(*J.ch));
	J.ws = malloc(parts * sizeof(*J.ws));
	if (J.ch == NULL || J.ws == NULL)
		goto out;
	for (i = 0; i < c->nfiles; i++)
		J.ch[i].fd = -1;
	/* the pattern's directory, when the chunk number is only in the file's name (a '%' in the
	 * directory part is a doubled one) */
	{
		const char *slash = strrchr(c->pattern, '/');
		struct rlimit rl;
		uint64_t keep = FAST_KEEP_MAX;

		if (slash != NULL && slash > c->pattern &&
		    memchr(c->pattern, '%', (size_t)(slash - c->pattern)) == NULL)
			J.dirlen = (size_t)(slash - c->pattern) + 1;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
		    rl.rlim_cur / 4 < keep)
			keep = rl.rlim_cur / 4;
		J.keep = (unsigned)(keep / parts);
	}
	J.phase = 1;
	sm__parallel(fast_part, &J, parts);
	if (J.failed)
		goto out;
	/* the HDF5 loop's checks, in its order */
	for (i = 0; i < c->nfiles; i++) {
		sm_error scratch;

		sm_error_clear(&scratch);
		if (match_facts(c, &J.ch[i].cf, "", &scratch) != 0 || J.ch[i].ng > want - done)
			goto out;
		J.ch[i].row = done;
		done += J.ch[i].ng;
		if (J.ch[i].ng > chunk_max)
			chunk_max = J.ch[i].ng;
	}
	if (done != want)
		goto out;
	J.phase = 2;
	sm__parallel(fast_part, &J, parts);
	if (J.failed)
		goto out;
	c->ngroups_chunk_max = chunk_max;
	rc = 0;
out:
	for (i = 0; J.ch != NULL && i < c->nfiles; i++)
		if (J.ch[i].fd >= 0)
			close(J.ch[i].fd);
	free(J.ws);
	free(J.ch);
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
	if (sm__catalog_read_fast(c, fields, nfields) == 0)
		return 0;
	/* One pass over the chunk files for all fields: opening a file costs more than reading a
	 * column of it, and a TNG300-1 catalogue has 600 of them. */
	for (i = 0; i < c->nfiles; i++) {
		hid_t f = -1;

		if ((rc = open_chunk(c, i, path, &f, &ng, err)) != 0)
			return rc;
		if (ng > c->ngroups_chunk_max)
			c->ngroups_chunk_max = ng;
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

void sm_catalog_group_file(const sm_catalog *c, uint64_t gi, char *buf, size_t len)
{
	char path[SM_PATH_MAX];
	uint64_t first = 0, n;
	int64_t i;

	snprintf(buf, len, "%s", cat_name(c));
	if (c->nfiles == 1) {
		if (sm__pattern_path(c->pattern, 0, path, sizeof(path)) == 0)
			snprintf(buf, len, "%s", path);
		return;
	}
	for (i = 0; i < c->nfiles; i++) {
		hid_t f = -1, g = -1;
		int rc = -1;

		if (sm__pattern_path(c->pattern, i, path, sizeof(path)) != 0 ||
		    sm__h5_open(path, &f, NULL) != 0)
			return;
		g = H5Gopen2(f, "Header", H5P_DEFAULT);
		if (g >= 0)
			rc = sm__attr_u64(g, path, "/Header", "Ngroups_ThisFile", &n, 1, 1, NULL);
		if (g >= 0)
			H5Gclose(g);
		H5Fclose(f);
		if (rc != 0)
			return;
		if (gi - first < n) {
			snprintf(buf, len, "%s", path);
			return;
		}
		first += n;
	}
}

int sm_catalog_check_halo(const sm_catalog *c, uint64_t gi, uint64_t i, double box, double m200,
			  double r200, sm_error *err)
{
	char where[SM_PATH_MAX], what[160];

	what[0] = '\0';
	/* NaN masses are allowed (ranked last, reported as unknown); an infinite or negative one
	 * is a broken catalogue. R200 beyond the box cannot be a halo's, and would overflow the
	 * grid arithmetic of the sphere scans. */
	if (isinf(m200) || m200 < 0)
		snprintf(what, sizeof(what), "Group_M_Crit200 %g: must be finite and >= 0", m200);
	else if (!(r200 > 0))
		snprintf(what, sizeof(what), "Group_R_Crit200 <= 0 or NaN (%g)", r200);
	else if (isinf(r200))
		snprintf(what, sizeof(what), "Group_R_Crit200 %g: must be finite", r200);
	else if (r200 > box)
		snprintf(what, sizeof(what), "Group_R_Crit200 %g, larger than the box (BoxSize %g)",
			 r200, box);
	if (what[0] == '\0')
		return 0;
	sm_catalog_group_file(c, gi, where, sizeof(where));
	return sm_error_set(err, SM_EFORMAT, "'%s': group %llu (selected halo %llu) has %s", where,
			    (unsigned long long)gi, (unsigned long long)i, what);
}
