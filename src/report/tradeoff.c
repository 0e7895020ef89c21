/*
 * `report --tradeoff RUN_F32 RUN_F64`: what float32 positions save and what they cost, measured.
 * Memory per stage comes from the two memory.json files. Precision comes from the data: the
 * snapshot named in memory.json "run" (options.base_path, options.snap) is re-read in blocks of
 * Coordinates as float64 and as float32 (sm_snapshot_read_range), and for every halo of the float64
 * run's profiles.hdf5 (center, r200) each cell's minimum-image distance is computed the way the
 * pipeline does in each type (float32 arithmetic with a float32 centre and box for float32), giving
 * the largest radius difference and the cells that change radial bin or cross 2 R200. Mean
 * temperatures and counts per bin come from both runs' profiles.hdf5. When the snapshot cannot be
 * re-read the radii are reported as not measured (note says why) and the profiles still compared.
 *
 * The pair must differ in --positions only, or the saving would be credited to float32 when
 * another option made it: every model option both runs recorded (memory.json run.options and
 * estimate.json options: select, temperature, stream block, mpi, ranks, halos, mass-min, sphere
 * cells...) and the input's identity (base path, snapshot number, the snapshot header in
 * estimate.json, the catalogue's group count) are compared, and a pair differing in any is refused
 * with one line naming each difference (SM_EINVAL).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "report/internal.h"

#define RBINS 50
#define BLOCK ((uint64_t)1 << 18)

struct profiles {
	uint64_t k;
	double *center, *r200, *mean_t;
	int64_t *counts, *halo_index;
};

static void profiles_release(struct profiles *p)
{
	free(p->center);
	free(p->r200);
	free(p->mean_t);
	free(p->counts);
	free(p->halo_index);
	memset(p, 0, sizeof(*p));
}

static int read_ds(hid_t f, const char *path, const char *name, hid_t memtype, int rank,
		   uint64_t k, hsize_t d1, void **out, size_t esize, sm_error *err)
{
	hid_t d = -1, s = -1;
	hsize_t dims[3] = {0, 0, 0};
	int rc = 0;

	*out = NULL;
	d = H5Dopen2(f, name, H5P_DEFAULT);
	if (d < 0)
		return sm_error_set(err, SM_EFORMAT, "'%s': no dataset '%s'", path, name);
	s = H5Dget_space(d);
	if (s < 0 || H5Sget_simple_extent_ndims(s) != rank ||
	    H5Sget_simple_extent_dims(s, dims, NULL) < 0 || (k != UINT64_MAX && dims[0] != k) ||
	    (rank == 2 && dims[1] != d1)) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': dataset '%s' has an unexpected shape", path,
				  name);
		goto out;
	}
	*out = calloc(dims[0] * (rank == 2 ? d1 : 1) + 1, esize);
	if (*out == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "'%s': cannot allocate '%s'", path, name);
		goto out;
	}
	if (dims[0] > 0 && H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': cannot read dataset '%s'", path, name);
		goto out;
	}
out:
	if (s >= 0)
		H5Sclose(s);
	H5Dclose(d);
	if (rc != 0) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

/* The string attribute "run_id" of profiles.hdf5's root into buf ("" when absent). */
static void profiles_run_id(hid_t f, char *buf, size_t len)
{
	hid_t a = -1, t = -1, mt = -1;
	size_t n;

	buf[0] = '\0';
	if (H5Aexists(f, "run_id") <= 0 || (a = H5Aopen(f, "run_id", H5P_DEFAULT)) < 0 ||
	    (t = H5Aget_type(a)) < 0 || H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) > 0 ||
	    (n = H5Tget_size(t)) == 0 || n >= len || (mt = H5Tcopy(H5T_C_S1)) < 0 ||
	    H5Tset_size(mt, n + 1) < 0 || H5Tset_cset(mt, H5Tget_cset(t)) < 0 ||
	    H5Aread(a, mt, buf) < 0)
		buf[0] = '\0';
	else
		buf[n] = '\0';
	if (mt >= 0)
		H5Tclose(mt);
	if (t >= 0)
		H5Tclose(t);
	if (a >= 0)
		H5Aclose(a);
}

/* rundir/profiles.hdf5; its run id must be run_id (the run's estimate.json and memory.json). */
static int load_profiles(const char *rundir, const char *run_id, struct profiles *p, sm_error *err)
{
	char path[SM_PATH_MAX], pid[48];
	hid_t f, d, s;
	hsize_t dims[2] = {0, 0};
	int rc;

	memset(p, 0, sizeof(*p));
	sm_hdf5_quiet();
	if ((size_t)snprintf(path, sizeof(path), "%s/profiles.hdf5", rundir) >= sizeof(path))
		return sm_error_set(err, SM_EINVAL, "'%.200s...': path too long", rundir);
	if ((rc = sm_file_check_regular(path, err)) != 0)
		return rc;
	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (f < 0)
		return sm_error_set(err, SM_ENOTFOUND, "'%s': cannot open as HDF5", path);
	profiles_run_id(f, pid, sizeof(pid));
	if (strcmp(pid, run_id) != 0) {
		H5Fclose(f);
		return sm_error_set(err, SM_EFORMAT, "'%s' (run %s) and '%s/memory.json' (run %s) come "
				    "from different runs", path, pid[0] ? pid : "without id", rundir,
				    run_id[0] ? run_id : "without id");
	}
	d = H5Dopen2(f, "r200", H5P_DEFAULT);
	if (d < 0 || (s = H5Dget_space(d)) < 0 || H5Sget_simple_extent_dims(s, dims, NULL) != 1) {
		if (d >= 0)
			H5Dclose(d);
		H5Fclose(f);
		return sm_error_set(err, SM_EFORMAT, "'%s': no one-dimensional dataset 'r200'", path);
	}
	H5Sclose(s);
	H5Dclose(d);
	p->k = dims[0];
	if ((rc = read_ds(f, path, "center", H5T_NATIVE_DOUBLE, 2, p->k, 3, (void **)&p->center, 8, err)) != 0 ||
	    (rc = read_ds(f, path, "r200", H5T_NATIVE_DOUBLE, 1, p->k, 0, (void **)&p->r200, 8, err)) != 0 ||
	    (rc = read_ds(f, path, "mean_temperature", H5T_NATIVE_DOUBLE, 2, p->k, RBINS,
			  (void **)&p->mean_t, 8, err)) != 0 ||
	    (rc = read_ds(f, path, "counts", H5T_NATIVE_INT64, 2, p->k, RBINS, (void **)&p->counts, 8,
			  err)) != 0 ||
	    (rc = read_ds(f, path, "halo_index", H5T_NATIVE_INT64, 1, p->k, 0,
			  (void **)&p->halo_index, 8, err)) != 0)
		profiles_release(p);
	H5Fclose(f);
	return rc;
}

static int rbin(double r, double r200)
{
	double x = r / r200 * (RBINS / 2.0);

	return x > 0 ? (x < RBINS ? (int)x : RBINS - 1) : 0;
}

static double wrap64(double d, double box)
{
	if (d > box / 2)
		d -= box;
	else if (d < -box / 2)
		d += box;
	return d;
}

static float wrap32(float d, float box)
{
	if (d > box / 2)
		d -= box;
	else if (d < -box / 2)
		d += box;
	return d;
}

/* Radii of every cell to every halo in both precisions, block by block. */
static int compare_radii(sm_tradeoff *t, const char *base, int snap, double box,
			 const struct profiles *p, sm_error *err)
{
	sm_snapshot snp;
	double *x64 = NULL;
	float *x32 = NULL;
	uint64_t n, first, i, h;
	int rc;

	if ((rc = sm_snapshot_open_base(&snp, base, snap, err)) != 0)
		return rc;
	n = snp.header.npart_total[0];
	x64 = malloc(BLOCK * 3 * sizeof(double));
	x32 = malloc(BLOCK * 3 * sizeof(float));
	if (x64 == NULL || x32 == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "cannot allocate the coordinate blocks");
		goto out;
	}
	if (box <= 0)
		box = snp.header.box_size;
	for (first = 0; first < n; first += BLOCK) {
		uint64_t cnt = n - first < BLOCK ? n - first : BLOCK;

		if ((rc = sm_snapshot_read_range(&snp, 0, "Coordinates", SM_DTYPE_F64, 3, first, cnt,
						 x64, NULL, err)) != 0 ||
		    (rc = sm_snapshot_read_range(&snp, 0, "Coordinates", SM_DTYPE_F32, 3, first, cnt,
						 x32, NULL, err)) != 0)
			goto out;
		for (h = 0; h < p->k; h++) {
			const double *c = p->center + 3 * h, r200 = p->r200[h], lim = 2 * r200;
			float c32[3] = {(float)c[0], (float)c[1], (float)c[2]}, b32 = (float)box;

			if (!(r200 > 0))
				continue;
			for (i = 0; i < cnt; i++) {
				double dx = wrap64(x64[3 * i] - c[0], box), dy, dz, r64, dr;
				float fx, fy, fz;
				double r32;
				int in64, in32;

				if (fabs(dx) > lim * 1.001 + 1e-6)
					continue;
				dy = wrap64(x64[3 * i + 1] - c[1], box);
				if (fabs(dy) > lim * 1.001 + 1e-6)
					continue;
				dz = wrap64(x64[3 * i + 2] - c[2], box);
				r64 = sqrt(dx * dx + dy * dy + dz * dz);
				fx = wrap32(x32[3 * i] - c32[0], b32);
				fy = wrap32(x32[3 * i + 1] - c32[1], b32);
				fz = wrap32(x32[3 * i + 2] - c32[2], b32);
				r32 = (double)sqrtf(fx * fx + fy * fy + fz * fz);
				in64 = r64 < lim;
				in32 = r32 < lim;
				if (!in64 && !in32)
					continue;
				t->cells += in64;
				dr = fabs(r32 - r64);
				if (dr > t->max_dr)
					t->max_dr = dr;
				if (dr / r200 > t->max_dr_rel)
					t->max_dr_rel = dr / r200;
				if (in64 != in32) {
					t->membership_changes++;
					t->bin_moves++;
				} else if (rbin(r64, r200) != rbin(r32, r200)) {
					t->bin_moves++;
				}
			}
		}
	}
	t->radii_measured = 1;
out:
	free(x64);
	free(x32);
	sm_snapshot_release(&snp);
	return rc;
}

/* ---- the pair differs in --positions only ---------------------------------------------------- */

/* Keys of the run options that are not model options: the run directory, a limit checked before
 * the run. */
static int not_compared(const char *key)
{
	return strcmp(key, "positions") == 0 || strcmp(key, "out") == 0 ||
	       strcmp(key, "max_mem") == 0;
}

static void value_text(const json_t *v, char *buf, size_t len)
{
	if (v == NULL)
		snprintf(buf, len, "(not recorded)");
	else if (json_is_null(v))
		snprintf(buf, len, "unset");
	else if (json_is_string(v))
		snprintf(buf, len, "%.120s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.17g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
	else
		snprintf(buf, len, "(a %s)", json_is_array(v) ? "list" : "object");
}

/* Equal as the runs' options: JSON-equal, numbers by value (1e14 and 100000000000000), paths
 * naming the same directory. */
static int same_value(const char *key, const json_t *a, const json_t *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	if (json_is_string(a) && json_is_string(b) && strcmp(key, "base_path") == 0) {
		char ra[PATH_MAX], rb[PATH_MAX];

		if (realpath(json_string_value(a), ra) != NULL &&
		    realpath(json_string_value(b), rb) != NULL)
			return strcmp(ra, rb) == 0;
	}
	return json_equal((json_t *)a, (json_t *)b);
}

/* Appends "LABEL A vs B" to the list when a and b (the values of key) differ; a label already
 * listed is not repeated (run.options and estimate.json options name the same options). */
static void note_diff(char *list, size_t len, const char *key, const char *label, const json_t *a,
		      const json_t *b, size_t *n)
{
	char va[160], vb[160], item[400];
	size_t used = strlen(list);

	if (same_value(key, a, b))
		return;
	snprintf(item, sizeof(item), "%s ", label);
	if (strncmp(list, item, strlen(item)) == 0)
		return;
	snprintf(item, sizeof(item), ", %s ", label);
	if (strstr(list, item) != NULL)
		return;
	value_text(a, va, sizeof(va));
	value_text(b, vb, sizeof(vb));
	snprintf(list + used, len - used, "%s%s %s vs %s", used > 0 ? ", " : "", label, va, vb);
	(*n)++;
}

/* "--stream-block" for "stream_block". */
static void option_label(const char *key, char *buf, size_t len)
{
	size_t i;

	snprintf(buf, len, "--%s", key);
	for (i = 2; buf[i] != '\0'; i++)
		if (buf[i] == '_')
			buf[i] = '-';
}

static void diff_objects(char *list, size_t len, const json_t *a, const json_t *b, int options,
			 const char *prefix, size_t *n)
{
	const char *key;
	json_t *v;
	char label[128];

	if (!json_is_object(a) && !json_is_object(b))
		return;
	json_object_foreach((json_t *)a, key, v) {
		if (options && not_compared(key))
			continue;
		if (options)
			option_label(key, label, sizeof(label));
		else
			snprintf(label, sizeof(label), "%s%s", prefix, key);
		note_diff(list, len, key, label, v, json_object_get(b, key), n);
	}
	json_object_foreach((json_t *)b, key, v) {
		if (json_object_get(a, key) != NULL || (options && not_compared(key)))
			continue;
		if (options)
			option_label(key, label, sizeof(label));
		else
			snprintf(label, sizeof(label), "%s%s", prefix, key);
		note_diff(list, len, key, label, NULL, v, n);
	}
}

/* 0 when the two runs differ in --positions only; SM_EINVAL naming every difference otherwise. */
static int same_but_positions(const sm_report *a, const sm_report *b, sm_error *err)
{
	json_t *ma = sm__report_doc_memory(a), *mb = sm__report_doc_memory(b),
	       *ea = sm__report_doc_estimate(a), *eb = sm__report_doc_estimate(b);
	json_t *ra = json_object_get(ma, "run"), *rb = json_object_get(mb, "run");
	char list[1536] = "";
	size_t n = 0;

	diff_objects(list, sizeof(list), json_object_get(ra, "options"),
		     json_object_get(rb, "options"), 1, "", &n);
	diff_objects(list, sizeof(list), json_object_get(ea, "options"),
		     json_object_get(eb, "options"), 1, "", &n);
	diff_objects(list, sizeof(list), json_object_get(ea, "header"),
		     json_object_get(eb, "header"), 0, "snapshot ", &n);
	note_diff(list, sizeof(list), "groups_total", "catalogue groups",
		  json_object_get(json_object_get(ea, "halos"), "groups_total"),
		  json_object_get(json_object_get(eb, "halos"), "groups_total"), &n);
	if (n == 0)
		return 0;
	return sm_error_set(err, SM_EINVAL, "'%s' and '%s' differ in more than --positions: %s "
			    "(report --tradeoff compares runs that differ in --positions only)",
			    a->rundir, b->rundir, list);
}

static const sm_report_stage *find(const sm_report *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->nstages; i++)
		if (strcmp(r->stages[i].id, id) == 0 && r->stages[i].has_meas)
			return &r->stages[i];
	return NULL;
}

int sm_tradeoff_compute(const char *run32, const char *run64, double tol, sm_tradeoff *t,
			sm_error *err)
{
	sm_report a, b;
	struct profiles p32, p64;
	int rc, have_a = 0, have_b = 0, have_p = 0;
	size_t i;
	uint64_t h;

	memset(t, 0, sizeof(*t));
	memset(&p32, 0, sizeof(p32));
	memset(&p64, 0, sizeof(p64));
	if (!(tol >= 0) || !isfinite(tol))
		return sm_error_set(err, SM_EINVAL, "tolerance %g%% is not a percentage", tol);
	snprintf(t->run32, sizeof(t->run32), "%s", run32);
	snprintf(t->run64, sizeof(t->run64), "%s", run64);
	t->tolerance_pct = tol;
	if ((rc = sm_report_load(&a, run32, err)) != 0)
		goto out;
	have_a = 1;
	if ((rc = sm_report_load(&b, run64, err)) != 0)
		goto out;
	have_b = 1;
	if (strcmp(a.positions, SM_DTYPE_NAME_F32) != 0) {
		rc = sm_error_set(err, SM_EINVAL, "'%s': positions are %s, expected the float32 run first",
				  run32, a.positions);
		goto out;
	}
	if (strcmp(b.positions, SM_DTYPE_NAME_F64) != 0) {
		rc = sm_error_set(err, SM_EINVAL, "'%s': positions are %s, expected a float64 run second",
				  run64, b.positions);
		goto out;
	}
	if (a.gas_cells != b.gas_cells) {
		rc = sm_error_set(err, SM_EINVAL, "'%s' has %llu gas cells, '%s' %llu: not the same "
				  "snapshot", run32, (unsigned long long)a.gas_cells, run64,
				  (unsigned long long)b.gas_cells);
		goto out;
	}
	if ((rc = same_but_positions(&a, &b, err)) != 0)
		goto out;
	/* memory per stage */
	for (i = 0; i < a.nstages; i++) {
		const sm_report_stage *sa = &a.stages[i], *sb = find(&b, a.stages[i].id);
		sm_tradeoff_stage *q;

		if (!sa->has_meas || sb == NULL)
			continue;
		q = realloc(t->stages, (t->nstages + 1) * sizeof(*q));
		if (q == NULL) {
			rc = sm_error_set(err, SM_ENOMEM, "cannot allocate the trade-off");
			goto out;
		}
		t->stages = q;
		q = &t->stages[t->nstages++];
		memset(q, 0, sizeof(*q));
		snprintf(q->id, sizeof(q->id), "%s", sa->id);
		q->requested32 = sa->meas_peak;
		q->requested64 = sb->meas_peak;
		q->allocated32 = sa->meas_allocated;
		q->allocated64 = sb->meas_allocated;
		if (q->requested32 > t->peak32)
			t->peak32 = q->requested32;
		if (q->requested64 > t->peak64)
			t->peak64 = q->requested64;
	}
	/* profiles */
	if ((rc = load_profiles(run32, a.run_id, &p32, err)) != 0 ||
	    (rc = load_profiles(run64, b.run_id, &p64, err)) != 0)
		goto out;
	have_p = 1;
	if (p32.k != p64.k) {
		rc = sm_error_set(err, SM_EINVAL, "'%s/profiles.hdf5' has %llu halos, '%s/profiles.hdf5' "
				  "%llu", run32, (unsigned long long)p32.k, run64,
				  (unsigned long long)p64.k);
		goto out;
	}
	t->halos = p64.k;
	/* rows pair by group index: the two runs need not list their halos in the same order */
	for (h = 0; h < p64.k; h++) {
		uint64_t h32, bin;

		for (h32 = 0; h32 < p32.k; h32++)
			if (p32.halo_index[h32] == p64.halo_index[h])
				break;
		if (h32 == p32.k) {
			rc = sm_error_set(err, SM_EINVAL, "'%s/profiles.hdf5' has no halo of group %lld "
					  "that '%s/profiles.hdf5' has: not the same selection", run32,
					  (long long)p64.halo_index[h], run64);
			goto out;
		}
		for (bin = 0; bin < RBINS; bin++) {
			double t32 = p32.mean_t[h32 * RBINS + bin], t64 = p64.mean_t[h * RBINS + bin];
			int64_t c32 = p32.counts[h32 * RBINS + bin], c64 = p64.counts[h * RBINS + bin];

			if (c32 != c64) {
				double rel = fabs((double)(c32 - c64)) / (double)(c64 > 0 ? c64 : 1);

				t->count_changes++;
				if (rel > t->max_rel_count)
					t->max_rel_count = rel;
			}
			if (isnan(t32) && isnan(t64))
				continue;
			if (isnan(t32) || isnan(t64)) {
				t->max_rel_temperature = INFINITY;
				continue;
			}
			t->bins_compared++;
			if (t64 != 0 && fabs(t32 - t64) / fabs(t64) > t->max_rel_temperature)
				t->max_rel_temperature = fabs(t32 - t64) / fabs(t64);
		}
	}
	/* radii, by re-reading the snapshot */
	{
		json_t *mem = sm__report_doc_memory(&b), *run = json_object_get(mem, "run"),
		       *opt = json_object_get(run, "options"), *bp = json_object_get(opt, "base_path"),
		       *sn = json_object_get(opt, "snap"), *bx = json_object_get(run, "box_size");
		sm_error e2 = {0};

		if (!json_is_string(bp) || !json_is_integer(sn))
			snprintf(t->note, sizeof(t->note), "radii not measured: '%.300s' has no run.options."
				 "base_path and run.options.snap", b.memory_path);
		else if (compare_radii(t, json_string_value(bp), (int)json_integer_value(sn),
				       json_is_number(bx) ? json_number_value(bx) : 0, &p64, &e2) != 0)
			snprintf(t->note, sizeof(t->note), "radii not measured: %.400s", e2.msg);
	}
	t->profiles_changed = t->max_rel_temperature > tol / 100.0 || t->max_rel_count > tol / 100.0;
	{
		char s1[32], s2[32];
		uint64_t saved = t->peak64 > t->peak32 ? t->peak64 - t->peak32 : 0;
		double pc = t->peak64 > 0 ? 100.0 * (double)saved / (double)t->peak64 : 0;

		sm__iec(saved, s1, sizeof(s1));
		if (!t->profiles_changed)
			snprintf(t->recommendation, sizeof(t->recommendation),
				 "use float32 positions: they save %s (%.1f%%) of the peak and change no "
				 "profile beyond %g%% (%llu cells change radial bin)", s1, pc, tol,
				 (unsigned long long)t->bin_moves);
		else
			snprintf(t->recommendation, sizeof(t->recommendation),
				 "keep float64 positions: float32 saves %s (%.1f%%) of the peak but changes "
				 "a profile beyond %g%% (mean temperature up to %s, %llu cells change "
				 "radial bin)", s1, pc, tol,
				 isinf(t->max_rel_temperature) ? "a bin emptied or filled"
				 : (snprintf(s2, sizeof(s2), "%.3g%%", 100 * t->max_rel_temperature), s2),
				 (unsigned long long)t->bin_moves);
	}
	rc = 0;
out:
	if (have_p || p32.k || p64.k) {
		profiles_release(&p32);
		profiles_release(&p64);
	}
	if (have_a)
		sm_report_release(&a);
	if (have_b)
		sm_report_release(&b);
	if (rc != 0)
		sm_tradeoff_release(t);
	return rc;
}

void sm_tradeoff_release(sm_tradeoff *t)
{
	if (t == NULL)
		return;
	free(t->stages);
	t->stages = NULL;
	t->nstages = 0;
}

static int tradeoff_json(const sm_tradeoff *t, char **out, sm_error *err)
{
	json_t *root = json_object(), *st = json_array();
	size_t i;

	for (i = 0; i < t->nstages; i++)
		json_array_append_new(st, json_pack("{s:s, s:I, s:I, s:I, s:I}", "id", t->stages[i].id,
						    "requested_float32_bytes", (json_int_t)t->stages[i].requested32,
						    "requested_float64_bytes", (json_int_t)t->stages[i].requested64,
						    "allocated_float32_bytes", (json_int_t)t->stages[i].allocated32,
						    "allocated_float64_bytes", (json_int_t)t->stages[i].allocated64));
	json_object_set_new(root, "schema", json_string("snapmem.report-tradeoff/1"));
	json_object_set_new(root, "recommendation", json_string(t->recommendation));
	json_object_set_new(root, "run_float32", json_string(t->run32));
	json_object_set_new(root, "run_float64", json_string(t->run64));
	json_object_set_new(root, "tolerance_percent", json_real(t->tolerance_pct));
	json_object_set_new(root, "stages", st);
	json_object_set_new(root, "peak_float32_bytes", json_integer((json_int_t)t->peak32));
	json_object_set_new(root, "peak_float64_bytes", json_integer((json_int_t)t->peak64));
	json_object_set_new(root, "halos", json_integer((json_int_t)t->halos));
	json_object_set_new(root, "radii_measured", json_boolean(t->radii_measured));
	json_object_set_new(root, "cells", t->radii_measured ? json_integer((json_int_t)t->cells) : json_null());
	json_object_set_new(root, "max_radius_difference", t->radii_measured ? json_real(t->max_dr) : json_null());
	json_object_set_new(root, "max_radius_difference_r200", t->radii_measured ? json_real(t->max_dr_rel) : json_null());
	json_object_set_new(root, "bin_moves", t->radii_measured ? json_integer((json_int_t)t->bin_moves) : json_null());
	json_object_set_new(root, "membership_changes", t->radii_measured ? json_integer((json_int_t)t->membership_changes) : json_null());
	json_object_set_new(root, "max_relative_mean_temperature_change",
			    isfinite(t->max_rel_temperature) ? json_real(t->max_rel_temperature) : json_null());
	json_object_set_new(root, "bins_emptied_or_filled", json_boolean(isinf(t->max_rel_temperature)));
	json_object_set_new(root, "count_changes", json_integer((json_int_t)t->count_changes));
	json_object_set_new(root, "max_relative_count_change", json_real(t->max_rel_count));
	json_object_set_new(root, "profiles_changed", json_boolean(t->profiles_changed));
	json_object_set_new(root, "note", t->note[0] ? json_string(t->note) : json_null());
	*out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (*out == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot build the trade-off JSON");
	{
		size_t l = strlen(*out);
		char *q = realloc(*out, l + 2);

		if (q == NULL) {
			free(*out);
			*out = NULL;
			return sm_error_set(err, SM_ENOMEM, "cannot build the trade-off JSON");
		}
		q[l] = '\n';
		q[l + 1] = '\0';
		*out = q;
	}
	return 0;
}

int sm_tradeoff_render(const sm_tradeoff *t, sm_report_format fmt, char **out, sm_error *err)
{
	char a[32], b[32], c[32], d[32], e[32];
	size_t len = 0, i;
	int md = fmt == SM_REPORT_MARKDOWN;
	FILE *f;

	*out = NULL;
	if (fmt == SM_REPORT_JSON)
		return tradeoff_json(t, out, err);
	if (fmt == SM_REPORT_HTML)
		return sm_error_set(err, SM_EINVAL, "--tradeoff writes table, markdown or json");
	f = open_memstream(out, &len);
	if (f == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the report text");
	fprintf(f, md ? "# float32 vs float64 positions\n\n**Recommendation: %s.**\n\n"
		      : "recommendation: %s\n\n", t->recommendation);
	fprintf(f, "%sfloat32 run %s, float64 run %s\n\n", md ? "" : "  ", t->run32, t->run64);
	if (md)
		fprintf(f, "| stage | requested float32 | requested float64 | saved | allocated float32 "
			"| allocated float64 |\n|---|---:|---:|---:|---:|---:|\n");
	else
		fprintf(f, "MEMORY PER STAGE (requested peak; allocated above the baseline)\n  %-22s "
			"%12s %12s %12s %12s %12s\n", "stage", SM_DTYPE_NAME_F32, SM_DTYPE_NAME_F64,
			"saved", "alloc f32", "alloc f64");
	for (i = 0; i < t->nstages; i++) {
		const sm_tradeoff_stage *s = &t->stages[i];

		fprintf(f, md ? "| `%s` | %s | %s | %s | %s | %s |\n"
			      : "  %-22s %12s %12s %12s %12s %12s\n", s->id,
			sm__iec(s->requested32, a, sizeof(a)), sm__iec(s->requested64, b, sizeof(b)),
			sm__iec_signed(sm__sdiff(s->requested64, s->requested32), c, sizeof(c)),
			sm__iec(s->allocated32, d, sizeof(d)), sm__iec(s->allocated64, e, sizeof(e)));
	}
	fprintf(f, md ? "\n## Precision on this data (%llu halos)\n\n" : "\nPRECISION ON THIS DATA (%llu halos)\n",
		(unsigned long long)t->halos);
	if (t->radii_measured)
		fprintf(f, "%slargest radius difference: %.6g code length units (%.3g R200) over %llu "
			"cells inside 2 R200\n%scells in another radial bin: %llu (of which %llu cross "
			"2 R200)\n", md ? "- " : "  ", t->max_dr, t->max_dr_rel,
			(unsigned long long)t->cells, md ? "- " : "  ",
			(unsigned long long)t->bin_moves, (unsigned long long)t->membership_changes);
	else
		fprintf(f, "%s%s\n", md ? "- " : "  ", t->note);
	if (isinf(t->max_rel_temperature))
		fprintf(f, "%slargest relative change of a mean temperature: a bin is empty in one "
			"run only\n", md ? "- " : "  ");
	else
		fprintf(f, "%slargest relative change of a mean temperature: %.3g (%llu bins "
			"compared)\n", md ? "- " : "  ", t->max_rel_temperature,
			(unsigned long long)t->bins_compared);
	fprintf(f, "%sbins whose count changes: %llu (largest relative change %.3g)\n%sprofiles "
		"changed beyond %g%%: %s\n", md ? "- " : "  ", (unsigned long long)t->count_changes,
		t->max_rel_count, md ? "- " : "  ", t->tolerance_pct, t->profiles_changed ? "YES" : "no");
	if (fclose(f) != 0) {
		free(*out);
		*out = NULL;
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the report text");
	}
	return 0;
}
