/*
 * What the model needs, gathered once from a source: the first chunk's header (never the particle
 * data, never the other chunks), the group catalogue's Group_M_Crit200 and Group_R_Crit200 to select
 * halos exactly as the pipeline does (docs/MODEL.md: by mass descending, ties by lower group index;
 * strictly above --mass-min, or the --halos N most massive), and optionally the sphere cells an
 * earlier run measured (--calibrate RUNDIR, its memory.json run.halos[].sphere_cells).
 *
 * With --mpi the base-path source also reads every chunk's NumPart_ThisFile (the chunk headers, no
 * particle data): the distributed run deals chunk files to ranks by their gas cells. With a
 * catalogue, every catalogue chunk's Ngroups_ThisFile gives Gc, the largest (the distributed run's
 * load_halos holds one chunk's columns at a time, in arrays of Gc groups).
 *
 * Without a catalogue, --halos N is modelled with the TNG300-1 mass-function shape; --mass-min then
 * cannot be answered and is refused with one line saying so.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "snapmem/describe.h"
#include "snapmem/estimator.h"
#include "snapmem/snapshot.h"
#include "snapshot/snapshot-internal.h"

#include "internal.h"

void sm_est_input_release(sm_est_input *in)
{
	if (in == NULL)
		return;
	free(in->halos);
	free(in->chunk_gas);
	in->halos = NULL;
	in->nhalos = 0;
	in->chunk_gas = NULL;
	in->nchunks = 0;
}

static void set_name(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Catalogues of at most this many groups are read in one pass, without the scan first. */
#define ONE_PASS_GROUPS (UINT64_C(1) << 25)

struct cand {
	uint64_t index;
	float m;
};

/* The pipeline's order, the model's (sm_model_halo_cmp). */
static int by_mass_desc(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	return sm_model_halo_cmp(x->m, (int64_t)x->index, y->m, (int64_t)y->index);
}

/* Gc, the largest chunk's Ngroups_ThisFile, from the scan. With --mpi every chunk header is also
 * opened alone, as the distributed run's load_halos opens them (sm_catalog_open_file, which needs
 * Ngroups_Total in each), so that both fail alike; the serial model does not pay for that. */
static int groups_chunk_max(sm_est_input *in, sm_catalog *c, const sm_model_options *o,
			    sm_error *err)
{
	char path[SM_PATH_MAX];
	uint64_t gc = c->ngroups_chunk_max > 0 ? c->ngroups_chunk_max : c->ngroups_file0;
	int64_t i;
	int rc;

	for (i = 1; o->mpi && i < c->nfiles; i++) {
		sm_catalog cc;

		if (sm__pattern_path(c->pattern, i, path, sizeof(path)) != 0)
			return sm_error_set(err, SM_EOVERFLOW, "'%s': path of catalogue chunk %lld too "
					    "long", in->path, (long long)i);
		if ((rc = sm_catalog_open_file(&cc, path, err)) != 0)
			return rc;
		if (cc.ngroups_file0 > gc)
			gc = cc.ngroups_file0;
		sm_catalog_release(&cc);
	}
	in->groups_chunk_max = gc;
	return 0;
}

/* Selects halos from the catalogue exactly as the pipeline does. */
static int select_from_catalog(sm_est_input *in, sm_catalog *c, const sm_model_options *o,
			       sm_error *err)
{
	float *m = NULL, *r = NULL;
	struct cand *cand = NULL;
	uint64_t g = c->ngroups_total, i, nc = 0, k;
	double h = in->header.hubble_param > 0 ? in->header.hubble_param : c->hubble_param;
	int rc = 0, one_pass;

	if (!(h > 0)) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': HubbleParam is missing or not positive: "
				  "cannot convert Group_M_Crit200 to Msun", in->path);
		goto out;
	}
	in->groups_total = g;
	in->subhalos_total = c->nsubgroups_total;
	in->subhalos_unknown = !c->has_nsubgroups_total;
	/* The chunk scan checks Ngroups_Total before buffers are sized by it. A catalogue of up to
	 * ONE_PASS_GROUPS groups (whose buffers are small whatever the files hold) is read in one
	 * pass instead, which checks the same sums as it goes: half the file opens, the cost of an
	 * estimate of a many-chunk snapshot. Should that pass fail, the scan runs after all, so
	 * that the error is the one the scan would have given first. With --mpi the old order
	 * stays (every chunk is also opened alone, as the distributed run does). */
	one_pass = !o->mpi && g <= ONE_PASS_GROUPS;
	if (!one_pass && (rc = sm__catalog_scan(c, err)) != 0)
		goto out;
	if (!one_pass && g > 0 && (rc = groups_chunk_max(in, c, o, err)) != 0)
		goto out;
	if (g > SIZE_MAX / sizeof(struct cand)) {
		rc = sm_error_set(err, SM_EOVERFLOW, "'%s': Ngroups_Total %llu is too large",
				  in->path, (unsigned long long)g);
		goto out;
	}
	m = malloc((g > 0 ? g : 1) * sizeof(float));
	r = malloc((g > 0 ? g : 1) * sizeof(float));
	cand = malloc((g > 0 ? g : 1) * sizeof(*cand));
	if (m == NULL || r == NULL || cand == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "'%s': cannot hold the masses of %llu groups",
				  in->path, (unsigned long long)g);
		goto out;
	}
	if (g > 0) {
		sm_catalog_field fields[2] = {{"Group_M_Crit200", SM_DTYPE_F32, 1, m},
					      {"Group_R_Crit200", SM_DTYPE_F32, 1, r}};

		rc = sm_catalog_read_group_fields(c, fields, 2, err);
		if (rc != 0 && one_pass) {
			sm_error scan_err;

			sm_error_clear(&scan_err);
			if (sm__catalog_scan(c, &scan_err) != 0) {
				if (err != NULL)
					*err = scan_err;
				rc = scan_err.code;
			}
		}
		if (rc != 0)
			goto out;
		if (one_pass && (rc = groups_chunk_max(in, c, o, err)) != 0)
			goto out;
	}
	for (i = 0; i < g; i++) {
		if (o->halos < 0 && !sm_model_halo_above(m[i], h, o->mass_min))
			continue;
		cand[nc].index = i;
		cand[nc].m = m[i];
		nc++;
	}
	qsort(cand, nc, sizeof(*cand), by_mass_desc);
	k = nc;
	if (o->halos >= 0 && (uint64_t)o->halos < k)
		k = (uint64_t)o->halos;
	in->halos = calloc(k > 0 ? k : 1, sizeof(*in->halos));
	if (in->halos == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "'%s': cannot allocate %llu halos", in->path,
				  (unsigned long long)k);
		goto out;
	}
	for (i = 0; i < k; i++) {
		/* the run's own checks of a selected halo, with its words: an estimate of a run
		 * that cannot start would be nonsense */
		if ((rc = sm_catalog_check_halo(c, cand[i].index, i, in->header.box_size, cand[i].m,
						r[cand[i].index], err)) != 0)
			goto out;
		in->halos[i].group_index = (int64_t)cand[i].index;
		in->halos[i].m200_msun = sm_model_m200_msun(cand[i].m, h);
		in->halos[i].r200 = r[cand[i].index];
	}
	in->nhalos = k;
out:
	free(cand);
	free(r);
	free(m);
	return rc;
}

/* The distributed run deals chunk files to ranks by their gas cells: every chunk's count (and, for
 * pipeline descriptions, the largest chunk's dark-matter particles). */
static int chunk_gas(sm_est_input *in, sm_snapshot *s, sm_error *err)
{
	int64_t i;
	int rc;

	if ((rc = sm_snapshot_scan(s, err)) != 0)
		return rc;
	if (s->nfiles <= 0 || (uint64_t)s->nfiles > SIZE_MAX / sizeof(uint64_t))
		return sm_error_set(err, SM_EFORMAT, "'%s': %lld chunk files", in->path,
				    (long long)s->nfiles);
	in->chunk_gas = malloc((size_t)s->nfiles * sizeof(uint64_t));
	if (in->chunk_gas == NULL)
		return sm_error_set(err, SM_ENOMEM, "'%s': cannot hold the cells of %lld chunk files",
				    in->path, (long long)s->nfiles);
	for (i = 0; i < s->nfiles; i++) {
		in->chunk_gas[i] = s->chunk_counts[i * SM_NTYPES + 0];
		if (s->chunk_counts[i * SM_NTYPES + 1] > in->dm_chunk_max)
			in->dm_chunk_max = s->chunk_counts[i * SM_NTYPES + 1];
	}
	in->nchunks = s->nfiles;
	return 0;
}

/* A description other than the default may read no halo: the missing catalogue is its error only
 * if it does (the replay raises in->halos_err); the radial-profile pipeline always reads them. */
static int defer_halos(sm_est_input *in, const sm_model_options *o)
{
	in->halos_unknown = o->pipeline != NULL && !sm_desc_is_default(o->pipeline);
	return in->halos_unknown;
}

int sm_est_input_from_base(sm_est_input *in, const char *base, int snap, const sm_model_options *o,
			   sm_error *err)
{
	sm_snapshot s;
	sm_catalog c;
	int rc;

	memset(in, 0, sizeof(*in));
	memset(&s, 0, sizeof(s));
	memset(&c, 0, sizeof(c));
	strcpy(in->source_kind, "base_path");
	set_name(in->source_name, sizeof(in->source_name), base);
	set_name(in->path, sizeof(in->path), base);
	in->snap = snap;
	if ((rc = sm_snapshot_open_base(&s, base, snap, err)) != 0)
		goto fail;
	in->header = s.header;
	/* the chunk sizes: the distributed run's work split, a description's gas_chunk_max */
	if ((o->mpi || (o->pipeline != NULL && !sm_desc_is_default(o->pipeline))) &&
	    (rc = chunk_gas(in, &s, err)) != 0) {
		sm_snapshot_release(&s);
		goto fail;
	}

	rc = sm_catalog_open_base(&c, base, snap, err);
	if (rc == 0 && (rc = sm_catalog_match_snapshot(&c, &s, err)) != 0)
		sm_catalog_release(&c);
	sm_snapshot_release(&s);
	if (rc == SM_ENOTFOUND) {
		if (o->halos < 0) {
			rc = sm_error_set(defer_halos(in, o) ? &in->halos_err : err, SM_ENOTFOUND,
					  "'%s': no group catalogue for snapshot %d: --mass-min needs "
					  "one (give --halos N to model the halos)", base, snap);
			if (in->halos_unknown)
				goto calibrate;
			goto fail;
		}
		if ((rc = sm__est_model_halos(in, o, err)) != 0)
			goto fail;
	} else if (rc != 0) {
		goto fail;
	} else {
		rc = select_from_catalog(in, &c, o, err);
		sm_catalog_release(&c);
		if (rc != 0)
			goto fail;
	}
calibrate:
	if (o->calibrate[0] != '\0' && (rc = sm__est_calibrate(in, o->calibrate, err)) != 0)
		goto fail;
	return 0;
fail:
	sm_est_input_release(in);
	return rc;
}

int sm_est_input_from_file(sm_est_input *in, const char *path, const sm_model_options *o,
			   sm_error *err)
{
	sm_snapshot s;
	int rc;

	memset(in, 0, sizeof(*in));
	memset(&s, 0, sizeof(s));
	strcpy(in->source_kind, "snapshot");
	set_name(in->source_name, sizeof(in->source_name), path);
	set_name(in->path, sizeof(in->path), path);
	in->snap = -1;
	if ((rc = sm_snapshot_open_file(&s, path, err)) != 0)
		goto fail;
	in->header = s.header;
	sm_snapshot_release(&s);
	if (o->halos < 0) {
		rc = sm_error_set(defer_halos(in, o) ? &in->halos_err : err, SM_EINVAL,
				  "'%s': a single snapshot file has no group catalogue: --mass-min "
				  "needs one (give --halos N, or --base-path DIR --snap N)", path);
		if (!in->halos_unknown)
			goto fail;
	} else if ((rc = sm__est_model_halos(in, o, err)) != 0) {
		goto fail;
	}
	if (o->calibrate[0] != '\0' && (rc = sm__est_calibrate(in, o->calibrate, err)) != 0)
		goto fail;
	return 0;
fail:
	sm_est_input_release(in);
	return rc;
}

/* ---- calibration from an earlier run ---------------------------------------------------------- */

int sm__est_calibrate(sm_est_input *in, const char *rundir, sm_error *err)
{
	char path[SM_PATH_MAX + 16];
	json_error_t jerr;
	json_t *root = NULL, *run, *halos, *hv;
	size_t i;
	int rc = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/memory.json", rundir) >= sizeof(path))
		return sm_error_set(err, SM_EINVAL, "--calibrate: path '%s' is too long", rundir);
	/* a FIFO or a directory would block or mislead json_load_file */
	{
		sm_error fe;

		sm_error_clear(&fe);
		if ((rc = sm_file_check_regular(path, &fe)) != 0 && rc != SM_ENOTFOUND) {
			sm_error_set(err, rc, "--calibrate: %s", fe.msg);
			goto out;
		}
		rc = 0;
	}
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (jerr.line < 0 || jerr.position == 0)
			rc = sm_error_set(err, SM_ENOTFOUND, "--calibrate: cannot read '%s': %s", path,
					  jerr.text);
		else
			rc = sm_error_set(err, SM_EFORMAT, "--calibrate: '%s' line %d: %s", path,
					  jerr.line, jerr.text);
		goto out;
	}
	run = json_object_get(root, "run");
	halos = run != NULL ? json_object_get(run, "halos") : NULL;
	if (!json_is_object(root) || !json_is_object(run) || !json_is_array(halos)) {
		rc = sm_error_set(err, SM_EFORMAT, "--calibrate: '%s' has no run.halos array", path);
		goto out;
	}
	/* spheres measured in other data (another snapshot, a mock for a full-size estimate) say
	 * nothing of these halos */
	hv = json_object_get(run, "gas_cells");
	if (hv != NULL && in->header.npart_total[0] > 0 &&
	    (!json_is_integer(hv) || json_integer_value(hv) < 0 ||
	     (uint64_t)json_integer_value(hv) != in->header.npart_total[0])) {
		rc = json_is_integer(hv) && json_integer_value(hv) >= 0
			     ? sm_error_set(err, SM_EINVAL,
					    "--calibrate: '%s' is a run of other data (%lld gas "
					    "cells, not %llu here): its sphere sizes are not these "
					    "halos'", path, (long long)json_integer_value(hv),
					    (unsigned long long)in->header.npart_total[0])
			     : sm_error_set(err, SM_EFORMAT,
					    "--calibrate: '%s': run.gas_cells is not a non-negative "
					    "integer", path);
		goto out;
	}
	json_array_foreach(halos, i, hv) {
		json_t *sc = json_object_get(hv, "sphere_cells");
		json_t *ins = json_object_get(hv, "instance");
		json_t *gi = json_object_get(hv, "group_index");
		json_int_t inst = ins != NULL ? (json_is_integer(ins) ? json_integer_value(ins) : -1)
					      : (json_int_t)i;

		if (!json_is_object(hv) || !json_is_integer(sc) || json_integer_value(sc) < 0 ||
		    inst < 0) {
			rc = sm_error_set(err, SM_EFORMAT,
					  "--calibrate: '%s': run.halos[%zu] needs a non-negative "
					  "integer sphere_cells and instance", path, i);
			goto out;
		}
		if (in->header.npart_total[0] > 0 &&
		    (uint64_t)json_integer_value(sc) > in->header.npart_total[0]) {
			rc = sm_error_set(err, SM_EFORMAT,
					  "--calibrate: '%s': run.halos[%zu].sphere_cells %lld is more "
					  "than the %llu gas cells here: not the same snapshot", path, i,
					  (long long)json_integer_value(sc),
					  (unsigned long long)in->header.npart_total[0]);
			goto out;
		}
		if ((uint64_t)inst >= in->nhalos)
			continue;
		if (json_is_integer(gi) && in->halos[inst].group_index >= 0 &&
		    json_integer_value(gi) != in->halos[inst].group_index) {
			rc = sm_error_set(err, SM_EINVAL,
					  "--calibrate: '%s': halo %lld is group %lld there, group "
					  "%lld here: not the same snapshot or selection", path,
					  (long long)inst, (long long)json_integer_value(gi),
					  (long long)in->halos[inst].group_index);
			goto out;
		}
		in->halos[inst].sphere_cells = (uint64_t)json_integer_value(sc);
	}
out:
	json_decref(root);
	return rc;
}

/* ---- speed from an earlier run (estimate --format slurm --calibrate RUNDIR) ------------------- */

static int speed_str(const char *path, json_t *o, const char *where, const char *key,
		     const char **out, sm_error *err)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return sm_error_set(err, SM_EFORMAT, "--calibrate: '%s': %s.%s is missing or not a "
				    "string", path, where, key);
	*out = json_string_value(v);
	return 0;
}

int sm_est_calibration_speed(const char *rundir, const sm_est_input *in,
			     const sm_model_options *o, sm_est_speed *out, sm_error *err)
{
	char path[SM_PATH_MAX + 32];
	json_error_t jerr;
	json_t *root = NULL, *run, *opts, *v;
	const char *pos = NULL, *sel = NULL, *tmp = NULL, *base = NULL;
	int rc = 0, mpi;

	memset(out, 0, sizeof(*out));
	if ((size_t)snprintf(path, sizeof(path), "%s/memory.json", rundir) >= sizeof(path))
		return sm_error_set(err, SM_EINVAL, "--calibrate: path '%s' is too long", rundir);
	root = json_load_file(path, 0, &jerr);
	if (root == NULL) {
		rc = sm_error_set(err, access(path, F_OK) != 0 ? SM_ENOTFOUND : SM_EFORMAT,
				  "--calibrate: cannot read '%s': %s", path, jerr.text);
		goto out;
	}
	v = json_object_get(root, "schema");
	if (!json_is_string(v) || strcmp(json_string_value(v), "snapmem.memory/1") != 0) {
		rc = sm_error_set(err, SM_EFORMAT, "--calibrate: '%s' is not a snapmem memory.json "
				  "(schema snapmem.memory/1)", path);
		goto out;
	}
	if (!json_is_true(json_object_get(root, "complete"))) {
		rc = sm_error_set(err, SM_EINVAL, "--calibrate: '%s' is of an incomplete run: its "
				  "speed says nothing of a whole one", path);
		goto out;
	}
	run = json_object_get(root, "run");
	opts = json_object_get(run, "options");
	if (!json_is_object(run) || !json_is_object(opts)) {
		rc = sm_error_set(err, SM_EFORMAT, "--calibrate: '%s' has no run.options object", path);
		goto out;
	}
	if ((rc = speed_str(path, opts, "run.options", "positions", &pos, err)) != 0 ||
	    (rc = speed_str(path, opts, "run.options", "select", &sel, err)) != 0 ||
	    (rc = speed_str(path, opts, "run.options", "temperature", &tmp, err)) != 0)
		goto out;
	mpi = json_is_true(json_object_get(opts, "mpi"));
	if (strcmp(pos, sm_model_positions_name(o->positions)) != 0 ||
	    (!(o->mpi || o->ranks > 1) &&
	     (strcmp(sel, sm_model_select_name(o->select)) != 0 ||
	      strcmp(tmp, sm_model_temperature_name(o->temperature)) != 0)) ||
	    mpi != (o->mpi || o->ranks > 1)) {
		rc = sm_error_set(err, SM_EINVAL, "--calibrate: '%s' is a run of other options "
				  "(positions %s, select %s, temperature %s%s): its speed is not "
				  "this run's", path, pos, sel, tmp, mpi ? ", --mpi" : "");
		goto out;
	}
	v = json_object_get(opts, "base_path");
	if (json_is_string(v))
		base = json_string_value(v);
	if (strcmp(in->source_kind, "base_path") == 0 &&
	    (base == NULL || strcmp(base, in->path) != 0 ||
	     !json_is_integer(json_object_get(opts, "snap")) ||
	     json_integer_value(json_object_get(opts, "snap")) != in->snap)) {
		rc = sm_error_set(err, SM_EINVAL, "--calibrate: '%s' is a run of other data ('%s'), "
				  "not '%s' snapshot %d", path, base != NULL ? base : "?", in->path,
				  in->snap);
		goto out;
	}
	v = json_object_get(run, "gas_cells");
	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		rc = sm_error_set(err, SM_EFORMAT, "--calibrate: '%s': run.gas_cells is missing or "
				  "not a positive integer", path);
		goto out;
	}
	out->cells = (uint64_t)json_integer_value(v);
	v = json_object_get(run, "wall_s");
	if (!json_is_number(v) || !(json_number_value(v) > 0) ||
	    !isfinite(json_number_value(v))) {
		rc = sm_error_set(err, SM_EFORMAT, "--calibrate: '%s': run.wall_s is missing or not a "
				  "positive number of seconds", path);
		goto out;
	}
	out->wall_s = json_number_value(v);
	out->cells_per_s = (double)out->cells / out->wall_s;
	v = json_object_get(opts, "ranks");
	out->ranks = json_is_integer(v) && json_integer_value(v) > 0 ? (uint32_t)json_integer_value(v)
								     : 1;
out:
	json_decref(root);
	return rc;
}
