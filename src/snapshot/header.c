/*
 * Snapshot opening, header reading and the chunk scan (see include/snapmem/snapshot.h).
 *
 * Header facts come from the first chunk. Integer attributes go through sm__attr_u64, which takes
 * any width and signedness. Every header read is range-checked (BoxSize and the units finite and
 * positive, the cosmology finite, ...: SM_EFORMAT naming the file and attribute). sm_snapshot_scan
 * reads every chunk's header, checks that it agrees with chunk 0's (NumPart_Total,
 * NumFilesPerSnapshot exactly; BoxSize, HubbleParam, Redshift, Time and the units to a relative
 * 1e-6) and that the NumPart_ThisFile sums match; a chunk whose header claims particles of a
 * type whose header total is 0 and that has no PartTypeN group counts zero of them (Paicos
 * rewrites keep stale NumPart_ThisFile entries for types they dropped).
 *
 * Each header is first read without HDF5 (fast_snap_header, the metadata reader of h5meta.c: a
 * few pread(2)s where H5Fopen costs ~70 us and the attributes as much again); only when that
 * reader vouches for every attribute and every check passes is its answer taken, else the file
 * is read through HDF5, whose answer and error are then the only ones. SNAPMEM_FASTREAD=0 reads
 * every header through HDF5.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/snapshot-internal.h"

/* NumFilesPerSnapshot beyond this is taken as a damaged header, not a snapshot. */
#define MAX_CHUNKS 1000000

const char *sm__snap_name(const sm_snapshot *s)
{
	return s->base[0] != '\0' ? s->base : s->pattern;
}

sm__snap_priv *sm__snap_priv_get(sm_snapshot *s)
{
	sm__snap_priv *p = s->priv;

	if (p == NULL) {
		p = calloc(1, sizeof(*p));
		if (p == NULL)
			return NULL;
		p->chunk = -1;
		p->file = -1;
		p->dset = -1;
		p->meta_ptype = -1;
		s->priv = p;
	}
	return p;
}

void sm__snap_close_kept(sm_snapshot *s)
{
	sm__snap_priv *p = s->priv;

	if (p == NULL)
		return;
	if (p->dset >= 0)
		H5Dclose(p->dset);
	if (p->file >= 0)
		H5Fclose(p->file);
	if (p->meta_open)
		sm__h5m_close(&p->meta->m);
	p->meta_open = 0;
	p->meta_ptype = -1;
	p->dset = -1;
	p->file = -1;
	p->chunk = -1;
	p->field[0] = '\0';
	p->nkept = 0;
}

/* Header values outside their range (non-finite, a box or a unit of 0 or less, a redshift at or
 * below -1) are a damaged file: nothing downstream can make sense of them. */
static int check_values(const sm_header *h, const char *path, sm_error *err)
{
	static const char *const mt = "MassTable";
	const struct {
		const char *name;
		double v, min;
		int open_min; /* 1: v > min, 0: v >= min */
		const char *want;
	} c[] = {
		{"BoxSize", h->box_size, 0, 1, "a positive finite length"},
		{"HubbleParam", h->hubble_param, 0, 0, "a finite number >= 0"},
		{"Omega0", h->omega0, 0, 0, "a finite number >= 0"},
		{"OmegaBaryon", h->omega_baryon, 0, 0, "a finite number >= 0"},
		{"OmegaLambda", h->omega_lambda, -HUGE_VAL, 1, "a finite number"},
		{"Redshift", h->redshift, -1, 1, "a finite number > -1"},
		{"Time", h->time, 0, 0, "a finite number >= 0"},
		{"UnitLength_in_cm", h->unit_length_cm, 0, 1, "a positive finite number"},
		{"UnitMass_in_g", h->unit_mass_g, 0, 1, "a positive finite number"},
		{"UnitVelocity_in_cm_per_s", h->unit_velocity_cm_s, 0, 1, "a positive finite number"},
	};
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (!isfinite(c[i].v) || (c[i].open_min ? !(c[i].v > c[i].min) : !(c[i].v >= c[i].min)))
			return sm_error_set(err, SM_EFORMAT, "'%s': /Header attribute '%s' is %g, "
					    "expected %s", path, c[i].name, c[i].v, c[i].want);
	for (i = 0; i < SM_NTYPES; i++)
		if (!isfinite(h->mass_table[i]) || !(h->mass_table[i] >= 0))
			return sm_error_set(err, SM_EFORMAT, "'%s': /Header attribute '%s' [%zu] is "
					    "%g, expected a finite mass >= 0", path, mt, i,
					    h->mass_table[i]);
	return 0;
}

/* a and b agree to a relative 1e-6 (float32 and float64 copies of one value do), or both are
 * within 1e-12 of each other (a redshift of 2.2e-16 against 0). */
static int close_enough(double a, double b)
{
	return fabs(a - b) <= 1e-6 * fmax(fabs(a), fabs(b)) + 1e-12;
}

int sm__snap_header_match(const sm_header *h0, const char *path0, const sm_header *h,
			  const char *path, sm_error *err)
{
	const struct {
		const char *name;
		double a, b;
	} f[] = {
		{"BoxSize", h0->box_size, h->box_size},
		{"HubbleParam", h0->hubble_param, h->hubble_param},
		{"Redshift", h0->redshift, h->redshift},
		{"Time", h0->time, h->time},
		{"UnitLength_in_cm", h0->unit_length_cm, h->unit_length_cm},
		{"UnitMass_in_g", h0->unit_mass_g, h->unit_mass_g},
		{"UnitVelocity_in_cm_per_s", h0->unit_velocity_cm_s, h->unit_velocity_cm_s},
	};
	size_t i;
	int t;

	for (t = 0; t < SM_NTYPES; t++)
		if (h->npart_total[t] != h0->npart_total[t])
			return sm_error_set(err, SM_EFORMAT, "'%s': /Header 'NumPart_Total' [%d] is "
					    "%llu, but %llu in '%s': the chunk files disagree", path,
					    t, (unsigned long long)h->npart_total[t],
					    (unsigned long long)h0->npart_total[t], path0);
	if (h->num_files != h0->num_files)
		return sm_error_set(err, SM_EFORMAT, "'%s': /Header attribute 'NumFilesPerSnapshot' "
				    "is %lld, but %lld in '%s': the chunk files disagree", path,
				    (long long)h->num_files, (long long)h0->num_files, path0);
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (!close_enough(f[i].a, f[i].b))
			return sm_error_set(err, SM_EFORMAT, "'%s': /Header attribute '%s' is %.9g, "
					    "but %.9g in '%s': the chunk files disagree", path,
					    f[i].name, f[i].b, f[i].a, path0);
	return 0;
}

int sm__read_snap_header(hid_t f, const char *path, sm_header *h, sm_error *err)
{
	static const char *obj = "/Header";
	uint64_t total[SM_NTYPES], hw[SM_NTYPES], nf;
	hid_t g = -1;
	int rc, i, r1, r2, r3;

	memset(h, 0, sizeof(*h));
	if (!sm__h5_exists(f, "Header"))
		return sm_error_set(err, SM_EFORMAT, "'%s': no /Header group", path);
	g = H5Gopen2(f, "Header", H5P_DEFAULT);
	if (g < 0)
		return sm_error_set(err, SM_EFORMAT, "'%s': /Header cannot be opened", path);
	if ((rc = sm__attr_u64(g, path, obj, "NumPart_ThisFile", h->npart_file0, SM_NTYPES, 1,
			       err)) != 0 ||
	    (rc = sm__attr_u64(g, path, obj, "NumPart_Total", total, SM_NTYPES, 1, err)) != 0)
		goto out;
	rc = sm__attr_u64(g, path, obj, "NumPart_Total_HighWord", hw, SM_NTYPES, 0, err);
	if (rc < 0)
		goto out;
	h->has_highword = rc == 0;
	for (i = 0; i < SM_NTYPES; i++) {
		uint64_t high = h->has_highword ? hw[i] : 0;

		if (high > UINT32_MAX) {
			rc = sm_error_set(err, SM_EFORMAT,
					  "'%s': /Header attribute 'NumPart_Total_HighWord' [%d] = %llu "
					  "does not fit 32 bits", path, i, (unsigned long long)high);
			goto out;
		}
		if (total[i] > UINT32_MAX) {
			/* a 64-bit writer (Paicos) stores the whole count; HighWord repeats it or is 0 */
			if (high != 0 && high != total[i] >> 32) {
				rc = sm_error_set(err, SM_EFORMAT,
						  "'%s': /Header 'NumPart_Total' [%d] = %llu disagrees "
						  "with 'NumPart_Total_HighWord' %llu", path, i,
						  (unsigned long long)total[i],
						  (unsigned long long)high);
				goto out;
			}
			h->npart_total[i] = total[i];
		} else {
			h->npart_total[i] = total[i] | high << 32;
		}
	}
	rc = sm__attr_u64(g, path, obj, "NumFilesPerSnapshot", &nf, 1, 0, err);
	if (rc < 0)
		goto out;
	if (rc == 1)
		nf = 1;
	if (nf < 1 || nf > MAX_CHUNKS) {
		rc = sm_error_set(err, SM_EFORMAT,
				  "'%s': /Header attribute 'NumFilesPerSnapshot' is %llu, expected "
				  "1 to %d", path, (unsigned long long)nf, MAX_CHUNKS);
		goto out;
	}
	h->num_files = (int64_t)nf;
	if ((rc = sm__attr_double(g, path, obj, "BoxSize", &h->box_size, 1, err)) < 0)
		goto out;
	if ((rc = sm__attr_doubles(g, path, obj, "MassTable", h->mass_table, SM_NTYPES, 0,
				   err)) < 0 ||
	    (rc = sm__attr_double(g, path, obj, "HubbleParam", &h->hubble_param, 0, err)) < 0 ||
	    (rc = sm__attr_double(g, path, obj, "Omega0", &h->omega0, 0, err)) < 0 ||
	    (rc = sm__attr_double(g, path, obj, "OmegaBaryon", &h->omega_baryon, 0, err)) < 0 ||
	    (rc = sm__attr_double(g, path, obj, "OmegaLambda", &h->omega_lambda, 0, err)) < 0 ||
	    (rc = sm__attr_double(g, path, obj, "Redshift", &h->redshift, 0, err)) < 0 ||
	    (rc = sm__attr_double(g, path, obj, "Time", &h->time, 0, err)) < 0)
		goto out;
	h->unit_length_cm = 3.085678e21;
	h->unit_mass_g = 1.989e43;
	h->unit_velocity_cm_s = 1e5;
	if ((r1 = sm__attr_double(g, path, obj, "UnitLength_in_cm", &h->unit_length_cm, 0,
				  err)) < 0 ||
	    (r2 = sm__attr_double(g, path, obj, "UnitMass_in_g", &h->unit_mass_g, 0, err)) < 0 ||
	    (r3 = sm__attr_double(g, path, obj, "UnitVelocity_in_cm_per_s",
				  &h->unit_velocity_cm_s, 0, err)) < 0) {
		rc = err != NULL ? err->code : SM_EFORMAT;
		goto out;
	}
	h->has_units = r1 == 0 && r2 == 0 && r3 == 0;
	rc = check_values(h, path, err);
out:
	H5Gclose(g);
	return rc;
}

/* ---- the header without HDF5 (h5meta.c), where that reader vouches for every value ---------- */

/* The metadata reader's working memory (~70 KiB, malloc'd: a chunk opened through HDF5 takes
 * more, its metadata cache alone half a megabyte). */
struct fast_hdr {
	sm__h5m m;
	sm__h5m_obj root, hdr;
};

/*
 * sm__read_snap_header's result for path without HDF5: 0 when the metadata reader vouches for
 * every attribute and every check passes (the file then stays open in w->m, w->root holding the
 * root group, until sm__h5m_close), else nonzero, the file closed, and the caller reads it
 * through HDF5, which gives the answer and the words of any error.
 */
static int fast_snap_header(struct fast_hdr *w, const char *path, sm_header *h)
{
	uint64_t total[SM_NTYPES], hw[SM_NTYPES], nf = 1, oh;
	double *units[3];
	static const char *const unit_names[3] = {"UnitLength_in_cm", "UnitMass_in_g",
						  "UnitVelocity_in_cm_per_s"};
	static const char *const opt[6] = {"HubbleParam", "Omega0", "OmegaBaryon", "OmegaLambda",
					   "Redshift", "Time"};
	double *optv[6];
	int rc = -1, r, i, have_units = 1;

	memset(h, 0, sizeof(*h));
	if (w == NULL || !sm__fast_enabled() || sm__h5m_open(&w->m, path) != 0)
		return -1;
	if (sm__h5m_object(&w->m, w->m.root, &w->root) != 0 ||
	    sm__h5m_lookup(&w->m, &w->root, "Header", &oh) != 0 ||
	    sm__h5m_object(&w->m, oh, &w->hdr) != 0 ||
	    sm__h5m_u64s(&w->hdr, "NumPart_ThisFile", h->npart_file0, SM_NTYPES) != 0 ||
	    sm__h5m_u64s(&w->hdr, "NumPart_Total", total, SM_NTYPES) != 0 ||
	    (r = sm__h5m_u64s(&w->hdr, "NumPart_Total_HighWord", hw, SM_NTYPES)) < 0)
		goto out;
	h->has_highword = r == 0;
	for (i = 0; i < SM_NTYPES; i++) {
		uint64_t high = h->has_highword ? hw[i] : 0;

		if (high > UINT32_MAX)
			goto out;
		if (total[i] > UINT32_MAX) {
			if (high != 0 && high != total[i] >> 32)
				goto out;
			h->npart_total[i] = total[i];
		} else {
			h->npart_total[i] = total[i] | high << 32;
		}
	}
	if ((r = sm__h5m_u64s(&w->hdr, "NumFilesPerSnapshot", &nf, 1)) < 0)
		goto out;
	if (r == 1)
		nf = 1;
	if (nf < 1 || nf > MAX_CHUNKS)
		goto out;
	h->num_files = (int64_t)nf;
	optv[0] = &h->hubble_param, optv[1] = &h->omega0, optv[2] = &h->omega_baryon;
	optv[3] = &h->omega_lambda, optv[4] = &h->redshift, optv[5] = &h->time;
	if (sm__h5m_doubles(&w->hdr, "BoxSize", &h->box_size, 1) != 0 ||
	    sm__h5m_doubles(&w->hdr, "MassTable", h->mass_table, SM_NTYPES) < 0)
		goto out;
	for (i = 0; i < 6; i++)
		if (sm__h5m_doubles(&w->hdr, opt[i], optv[i], 1) < 0)
			goto out;
	h->unit_length_cm = 3.085678e21;
	h->unit_mass_g = 1.989e43;
	h->unit_velocity_cm_s = 1e5;
	units[0] = &h->unit_length_cm, units[1] = &h->unit_mass_g;
	units[2] = &h->unit_velocity_cm_s;
	for (i = 0; i < 3; i++) {
		if ((r = sm__h5m_doubles(&w->hdr, unit_names[i], units[i], 1)) < 0)
			goto out;
		have_units = have_units && r == 0;
	}
	h->has_units = have_units;
	if (check_values(h, path, NULL) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0) {
		sm__h5m_close(&w->m);
		memset(h, 0, sizeof(*h));
	}
	return rc;
}

/* Opens chunk 0 (s->pattern set), reads its header; nfiles from it unless single. */
static int open_first(sm_snapshot *s, int single, sm_error *err)
{
	char path[SM_PATH_MAX];
	hid_t f = -1;
	int rc;

	struct fast_hdr *w;

	if ((rc = sm__pattern_path(s->pattern, 0, path, sizeof(path))) != 0)
		return sm_error_set(err, rc, "'%s': path too long", s->pattern);
	w = malloc(sizeof(*w));
	rc = fast_snap_header(w, path, &s->header);
	if (rc == 0)
		sm__h5m_close(&w->m);
	free(w);
	if (rc != 0) {
		if ((rc = sm__h5_open(path, &f, err)) != 0)
			return rc;
		rc = sm__read_snap_header(f, path, &s->header, err);
		H5Fclose(f);
		if (rc != 0)
			return rc;
	}
	s->nfiles = single ? 1 : s->header.num_files;
	return 0;
}

int sm_snapshot_open_file(sm_snapshot *s, const char *path, sm_error *err)
{
	int rc;

	sm_hdf5_quiet();
	memset(s, 0, sizeof(*s));
	s->snap = -1;
	if (path == NULL || *path == '\0')
		return sm_error_set(err, SM_EINVAL, "empty snapshot file name");
	if (sm__pattern_make(s->pattern, sizeof(s->pattern), path, "") != 0)
		return sm_error_set(err, SM_EOVERFLOW, "'%s': path too long", path);
	rc = open_first(s, 1, err);
	if (rc != 0)
		sm_snapshot_release(s);
	return rc;
}

int sm_snapshot_open_base(sm_snapshot *s, const char *base, int snap, sm_error *err)
{
	static const char *const tails[] = {
		"snapdir_%03d/snap_%03d.%%lld.hdf5", "snapdir_%03d/snapshot_%03d.%%lld.hdf5",
		"snap_%03d.%%lld.hdf5", "snapshot_%03d.%%lld.hdf5",
		"snap_%03d.hdf5", "snapshot_%03d.hdf5",
	};
	size_t ntails = sizeof(tails) / sizeof(tails[0]);
	int rc, i;

	sm_hdf5_quiet();
	memset(s, 0, sizeof(*s));
	s->snap = snap;
	i = sm__layout_find(base, snap, tails, ntails, s->base, sizeof(s->base), s->pattern,
			    sizeof(s->pattern), err);
	if (i < 0)
		return i;
	if ((size_t)i == ntails) {
		rc = sm_error_set(err, SM_ENOTFOUND,
				  "'%s': no snapshot %03d (looked for snapdir_%03d/snap_%03d.0.hdf5 "
				  "and the other illustris names)", base, snap, snap, snap);
		goto fail;
	}
	if ((rc = open_first(s, i >= 4, err)) != 0)
		goto fail;
	return 0;
fail:
	sm_snapshot_release(s);
	s->snap = snap;
	return rc;
}

int sm_snapshot_chunk_path(const sm_snapshot *s, int64_t i, char *buf, size_t len, sm_error *err)
{
	if (i < 0 || i >= s->nfiles)
		return sm_error_set(err, SM_EINVAL, "'%s': chunk %lld out of range (0 to %lld)",
				    sm__snap_name(s), (long long)i, (long long)s->nfiles - 1);
	if (sm__pattern_path(s->pattern, i, buf, len) != 0)
		return sm_error_set(err, SM_EOVERFLOW, "'%s': chunk %lld path too long",
				    sm__snap_name(s), (long long)i);
	return 0;
}

/* NumPart_ThisFile of one chunk, with stale entries of absent types taken as zero; the chunk's
 * whole header is read (and so checked) and, beyond chunk 0, compared with chunk 0's. */
static int chunk_counts(sm_snapshot *s, int64_t i, uint64_t *counts, struct fast_hdr *w,
			sm_error *err)
{
	char path[SM_PATH_MAX], path0[SM_PATH_MAX], grp[16];
	sm_header h;
	hid_t f = -1;
	int rc, t;

	if ((rc = sm_snapshot_chunk_path(s, i, path, sizeof(path), err)) != 0)
		return rc;
	if (fast_snap_header(w, path, &h) == 0) {
		/* a stale count's group is looked for by the metadata reader as well; when it does not
		 * vouch for the answer, the chunk goes through HDF5 */
		for (t = 0; t < SM_NTYPES; t++) {
			uint64_t oh;

			snprintf(grp, sizeof(grp), "PartType%d", t);
			if (h.npart_file0[t] > 0 && s->header.npart_total[t] == 0 &&
			    sm__h5m_lookup(&w->m, &w->root, grp, &oh) != 0)
				break;
		}
		sm__h5m_close(&w->m);
		if (t == SM_NTYPES) {
			if (i > 0 &&
			    ((rc = sm_snapshot_chunk_path(s, 0, path0, sizeof(path0), err)) != 0 ||
			     (rc = sm__snap_header_match(&s->header, path0, &h, path, err)) != 0))
				return rc;
			memcpy(counts, h.npart_file0, sizeof(h.npart_file0));
			return 0;
		}
	}
	if ((rc = sm__h5_open(path, &f, err)) != 0)
		return rc;
	if ((rc = sm__read_snap_header(f, path, &h, err)) != 0)
		goto out;
	if (i > 0 && ((rc = sm_snapshot_chunk_path(s, 0, path0, sizeof(path0), err)) != 0 ||
		      (rc = sm__snap_header_match(&s->header, path0, &h, path, err)) != 0))
		goto out;
	memcpy(counts, h.npart_file0, sizeof(h.npart_file0));
	for (t = 0; t < SM_NTYPES; t++) {
		snprintf(grp, sizeof(grp), "PartType%d", t);
		if (counts[t] > 0 && s->header.npart_total[t] == 0 && !sm__h5_exists(f, grp))
			counts[t] = 0;
	}
out:
	H5Fclose(f);
	return rc;
}

int sm_snapshot_scan(sm_snapshot *s, sm_error *err)
{
	uint64_t sum[SM_NTYPES] = {0};
	uint64_t *counts = NULL;
	struct fast_hdr *w = NULL;
	int64_t i;
	int rc = 0, t;

	sm_hdf5_quiet();
	if (s->chunk_counts != NULL)
		return 0;
	if (s->nfiles < 1 || s->nfiles > MAX_CHUNKS)
		return sm_error_set(err, SM_EINVAL, "'%s': snapshot is not open",
				    sm__snap_name(s));
	counts = calloc((size_t)s->nfiles * SM_NTYPES, sizeof(*counts));
	if (counts == NULL)
		return sm_error_set(err, SM_ENOMEM, "'%s': cannot hold the counts of %lld chunks",
				    sm__snap_name(s), (long long)s->nfiles);
	w = malloc(sizeof(*w)); /* NULL: every chunk through HDF5 */
	for (i = 0; i < s->nfiles; i++) {
		uint64_t *c = counts + (size_t)i * SM_NTYPES;

		if ((rc = chunk_counts(s, i, c, w, err)) != 0)
			goto out;
		for (t = 0; t < SM_NTYPES; t++)
			if (sm_add_u64(sum[t], c[t], &sum[t]) != 0) {
				rc = sm_error_set(err, SM_EFORMAT,
						  "'%s': NumPart_ThisFile[%d] overflows 64 bits "
						  "when summed over the chunks", sm__snap_name(s), t);
				goto out;
			}
	}
	for (t = 0; t < SM_NTYPES; t++) {
		if (sum[t] == s->header.npart_total[t])
			continue;
		if (s->nfiles == 1 && s->header.num_files > 1)
			rc = sm_error_set(err, SM_EFORMAT,
					  "'%s': one chunk of a %lld-file snapshot holds %llu of the "
					  "%llu particles of type %d (open the snapshot by its base "
					  "path to read fields)", sm__snap_name(s),
					  (long long)s->header.num_files,
					  (unsigned long long)sum[t],
					  (unsigned long long)s->header.npart_total[t], t);
		else
			rc = sm_error_set(err, SM_EFORMAT,
					  "'%s': NumPart_ThisFile[%d] of the %lld chunk file%s add%s "
					  "up to %llu, but NumPart_Total[%d] is %llu",
					  sm__snap_name(s), t, (long long)s->nfiles,
					  s->nfiles == 1 ? "" : "s", s->nfiles == 1 ? "s" : "",
					  (unsigned long long)sum[t], t,
					  (unsigned long long)s->header.npart_total[t]);
		goto out;
	}
	s->chunk_counts = counts;
	counts = NULL;
out:
	free(w);
	free(counts);
	return rc;
}

void sm_snapshot_release(sm_snapshot *s)
{
	if (s == NULL)
		return;
	sm__snap_close_kept(s);
	if (s->priv != NULL)
		free(((sm__snap_priv *)s->priv)->meta);
	free(s->priv);
	s->priv = NULL;
	free(s->chunk_counts);
	s->chunk_counts = NULL;
}
