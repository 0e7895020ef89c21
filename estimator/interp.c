/*
 * The interpreter of pipeline descriptions (docs/PIPELINES.md "Events"): the quantities are taken
 * from the input (header counts, the catalogue, the selected halos and their modelled sphere cells,
 * the work split), the options from the model options (each switch onto the description's option
 * of the same name, `--set` for the others, the description's defaults otherwise), and the stages
 * are replayed in order on a small simulated heap: arrays allocated in listed order, freed right
 * after another (`free: {after: X}`) or at the end of a stage (`free: end`, `free: STAGE`), so that
 * each stage's peak and live-after figures come from the event list, as estimator/model.c's replay
 * did when the pipeline was hard-coded. The per-halo loop is reported for the halo with the
 * largest sphere, and replayed once per halo for the halos' own peaks. The process baseline comes
 * from the description's process section.
 *
 * Every count and byte figure is overflow-checked; an error names the source and the array and,
 * for an expression, FILE:LINE:COL of the description. Pure: no I/O, no printing.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/estimator.h"
#include "snapmem/model.h"
#include "snapmem/profiler.h"
#include "snapmem/units.h"

#include "describe.h"
#include "internal.h"

#define MAX_LIVE 64

uint64_t sm__est_halo_grid_side(double box, double radius_max)
{
	return sm_model_halo_grid_side(box, radius_max);
}

uint64_t sm_est_baseline_bytes(void)
{
	const sm_pipeline_desc *d;
	sm__env *env;
	sm_error err = {0};
	uint64_t v = 0;
	size_t i;

	/* the default description's one-process baseline: its options at their defaults */
	if (sm_desc_default(&d, &err) != 0 || d->baseline_allocated == NULL ||
	    (env = calloc(1, sizeof(*env))) == NULL)
		return 0;
	env->d = d;
	env->ctx = SM__CTX_PROCESS;
	for (i = 0; i < d->noptions; i++) {
		env->opt_word[i] = d->options[i].numeric ? NULL : d->options[i].def;
		env->opt_u[i] = d->options[i].def_u;
	}
	env->q[SM__Q_RANKS] = 1;
	if (sm__expr_u64(d->baseline_allocated, env, "baseline_allocated", &v, &err) != 0)
		v = 0;
	free(env);
	return v;
}

struct live {
	const sm__desc_array *a;
	int stage;                  /* where it was allocated */
	uint64_t req, alloc, res;
};

struct sim {
	const sm_pipeline_desc *d;
	const sm_est_input *in;
	sm__env *env;
	struct live live[MAX_LIVE];
	size_t nlive;
	uint64_t req, alloc, res;   /* live totals */
	uint64_t cum_alloc;         /* size classes of every array allocated so far */
	uint64_t peak_req;          /* the per-halo replay's peak */
	int runs[SM_EST_MAX_STAGES];
	int per_halo[SM_EST_MAX_STAGES];
	sm_est_stage *st;           /* NULL: a per-halo replay (no figures recorded) */
	sm_error *err;
};

static int aerr(struct sim *s, const sm__desc_array *a, int code, const char *what)
{
	return sm_error_set(s->err, code, "%s:%d:%d: '%s' %s", s->d->file, a->line, a->col, a->name,
			    what);
}

/* An error of an expression of array a: the expression's own line, prefixed with the source and
 * the array when the data (not the description) is at fault. */
static int array_expr_err(struct sim *s, const sm__desc_array *a, int rc)
{
	if (rc == SM_EOVERFLOW) {
		char msg[SM_ERROR_MSG_MAX];

		snprintf(msg, sizeof(msg), "%s", s->err->msg);
		return sm_error_set(s->err, rc, "'%s': %s: %s", s->in->source_name, a->name, msg);
	}
	return rc;
}

static void free_live(struct sim *s, size_t i)
{
	s->req -= s->live[i].req;
	s->alloc -= s->live[i].alloc;
	s->res -= s->live[i].res;
	s->live[i] = s->live[--s->nlive];
}

/* The allocated bytes of a request: jemalloc's size class, or under `allocator: profile` what
 * snapmem profile counts (glibc's usable size from 128 KiB up). */
static uint64_t nallocx(const struct sim *s, uint64_t req)
{
	uint64_t al = s->d->profile_allocator ? sm_prof_profile_allocated(req) : sm_prof_nallocx(req);

	return al < req ? req : al;  /* beyond the largest size class: the request */
}

/* Allocates array j of stage si (*done 0: skipped by its when:). */
static int alloc(struct sim *s, int si, size_t j, int *done)
{
	const sm__desc_stage *ds = &s->d->stages[si];
	const sm__desc_array *a = &ds->arrays[j];
	uint64_t count, touched, req, al, res, size;
	int dt, rc, on = 1;
	size_t i;

	*done = 0;
	if (a->when != NULL && (rc = sm__expr_bool(a->when, s->env, &on, s->err)) != 0)
		return rc;
	if (!on)
		return 0;
	*done = 1;
	if ((rc = sm__expr_dtype(a->dtype, s->env, &dt, s->err)) != 0 ||
	    (rc = sm__expr_u64(a->count, s->env, "count", &count, s->err)) != 0)
		return array_expr_err(s, a, rc);
	touched = count;
	if (a->touched != NULL &&
	    (rc = sm__expr_u64(a->touched, s->env, "touched", &touched, s->err)) != 0)
		return array_expr_err(s, a, rc);
	if (touched > count)
		return aerr(s, a, SM_EFORMAT, "touches more elements than it has");
	size = sm__dtype_size(dt);
	if (sm_mul_u64(count, size, &req) != 0)
		return sm_error_set(s->err, SM_EOVERFLOW,
				    "'%s': %s:%d:%d: %s of %llu %s elements: byte count does not fit "
				    "in 64 bits", s->in->source_name, s->d->file, a->count->line,
				    a->count->col, a->name, (unsigned long long)count,
				    sm__dtype_name(dt));
	for (i = 0; i < s->nlive; i++) {
		if (strcmp(s->live[i].a->name, a->name) == 0) {
			char m[200];

			snprintf(m, sizeof(m), "allocated while already live (allocated in stage "
				 "'%s' at %d:%d)", s->d->stages[s->live[i].stage].id,
				 s->live[i].a->line, s->live[i].a->col);
			return aerr(s, a, SM_EFORMAT, m);
		}
	}
	if (a->free == SM__FREE_STAGE && !s->runs[a->free_stage]) {
		char m[200];

		snprintf(m, sizeof(m), "is to be freed in stage '%s', which does not run in this "
			 "variant (its when: is false)", s->d->stages[a->free_stage].id);
		return aerr(s, a, SM_EFORMAT, m);
	}
	if (s->nlive >= MAX_LIVE)
		return aerr(s, a, SM_EFORMAT, "is one more than 64 arrays live at once");
	if (s->st == NULL) {  /* a halo's replay: requested bytes only */
		if (sm_add_u64(s->req, req, &s->req) != 0)
			return sm_error_set(s->err, SM_EOVERFLOW,
					    "'%s': %s:%d:%d: live bytes with %s do not fit in 64 bits",
					    s->in->source_name, s->d->file, a->line, a->col, a->name);
		s->live[s->nlive].a = a;
		s->live[s->nlive].stage = si;
		s->live[s->nlive].req = req;
		s->live[s->nlive].alloc = s->live[s->nlive].res = 0;
		s->nlive++;
		if (s->req > s->peak_req)
			s->peak_req = s->req;
		return 0;
	}
	al = nallocx(s, req);
	res = sm_est_array_resident(req, al);
	s->cum_alloc = s->cum_alloc + al < s->cum_alloc ? UINT64_MAX : s->cum_alloc + al;
	if (touched < count) {
		uint64_t tb = touched * size;  /* < req: no overflow */
		uint64_t tr = sm_est_array_resident(tb, nallocx(s, tb));

		if (tr < res)
			res = tr;
	}
	if (a->huge) {  /* mapped in up to the next huge page (src/pipeline/run.c, prefault) */
		uint64_t tb = touched * size, hx = sm_model_huge_extent(tb, al);

		if (hx > tb)  /* a whole 2 MiB: above the 4 KiB pages of the touched bytes */
			res = hx;
	}
	if (sm_add_u64(s->req, req, &s->req) != 0 || sm_add_u64(s->alloc, al, &s->alloc) != 0 ||
	    sm_add_u64(s->res, res, &s->res) != 0)
		return sm_error_set(s->err, SM_EOVERFLOW,
				    "'%s': %s:%d:%d: live bytes with %s do not fit in 64 bits",
				    s->in->source_name, s->d->file, a->line, a->col, a->name);
	{
		sm_est_stage *st = s->st;
		sm_est_array *ea;

		if (st->narrays >= SM_EST_MAX_ARRAYS)
			return aerr(s, a, SM_EFORMAT, "is one more than 16 arrays in a stage");
		ea = &st->arrays[st->narrays++];
		ea->name = a->name;
		ea->dtype = sm__dtype_model(dt);
		ea->dtype_name = sm__dtype_name(dt);
		ea->count = count;
		ea->requested = req;
		ea->allocated = al;
		ea->resident = res;
		ea->freed_in = a->free == SM__FREE_NEVER ? NULL : s->d->stages[a->free_stage].id;
		if (s->req > st->peak)
			st->peak = s->req;
		if (s->alloc > st->peak_allocated)
			st->peak_allocated = s->alloc;
		if (s->res > st->peak_resident)
			st->peak_resident = s->res;
	}
	s->live[s->nlive].a = a;
	s->live[s->nlive].stage = si;
	s->live[s->nlive].req = req;
	s->live[s->nlive].alloc = al;
	s->live[s->nlive].res = res;
	s->nlive++;
	return 0;
}

/* Runs stage si's arrays and frees (the figures into s->st when it is set). */
static int run_stage(struct sim *s, int si)
{
	const sm__desc_stage *ds = &s->d->stages[si];
	size_t j, i;
	int rc;

	for (j = 0; j < ds->narrays; j++) {
		int done;

		if ((rc = alloc(s, si, j, &done)) != 0)
			return rc;
		if (!done)
			continue;
		/* free: {after: this one} */
		for (i = 0; i < s->nlive;) {
			const sm__desc_array *a = s->live[i].a;

			if (s->live[i].stage == si && a->free == SM__FREE_AFTER &&
			    &ds->arrays[a->free_after] == &ds->arrays[j] &&
			    a != &ds->arrays[j])
				free_live(s, i);
			else
				i++;
		}
	}
	for (i = 0; i < s->nlive;) {
		const sm__desc_array *a = s->live[i].a;

		if (a->free == SM__FREE_AFTER && s->live[i].stage == si)
			return aerr(s, a, SM_EFORMAT, "is to be freed after an array that is not "
				    "allocated in this variant (its when: is false)");
		if (a->free == SM__FREE_STAGE && a->free_stage == si)
			free_live(s, i);
		else
			i++;
	}
	return 0;
}

/* The model switches in force: given on the command line, or set to other than their defaults
 * (a library caller sets the fields). */
static unsigned switches(const sm_model_options *o)
{
	unsigned g = o->given & ~SM_MODEL_GIVEN_MPI;  /* the fields say it: mpi, ranks */

	if (o->positions != SM_DTYPE_F32)
		g |= SM_MODEL_GIVEN_POSITIONS;
	if (o->select != SM_SELECT_INDEX)
		g |= SM_MODEL_GIVEN_SELECT;
	if (o->temperature != SM_TEMP_IN_MEMORY)
		g |= SM_MODEL_GIVEN_TEMPERATURE;
	if (o->stream_block != SM_MODEL_STREAM_BLOCK_DEFAULT)
		g |= SM_MODEL_GIVEN_STREAM_BLOCK;
	if (o->mpi || o->ranks > 1)
		g |= SM_MODEL_GIVEN_MPI;
	return g;
}

static const struct {
	unsigned bit;
	const char *option, *flag;
} switch_options[] = {
	{SM_MODEL_GIVEN_POSITIONS, "positions", "--positions"},
	{SM_MODEL_GIVEN_SELECT, "select", "--select"},
	{SM_MODEL_GIVEN_TEMPERATURE, "temperature", "--temperature"},
	{SM_MODEL_GIVEN_STREAM_BLOCK, "stream_block", "--stream-block"},
	{SM_MODEL_GIVEN_MPI, "strategy", "--mpi"},
};

/* The options' values: the switches in force onto the options of the same names, then --set. */
static int options_env(const sm_pipeline_desc *d, const sm_model_options *o, sm__env *env,
		       sm_error *err)
{
	unsigned g = switches(o);
	size_t i, v;

	for (i = 0; i < sizeof(switch_options) / sizeof(switch_options[0]); i++) {
		char sw[48];

		if (!(g & switch_options[i].bit) || sm__desc_option_index(d, switch_options[i].option) >= 0)
			continue;
		/* the strategy: name what was typed (--mpi, --ranks R or both) */
		if (switch_options[i].bit == SM_MODEL_GIVEN_MPI)
			return sm_error_set(err, SM_EINVAL, "%s: pipeline '%s' (%s) declares no option "
					    "'strategy': it has no distributed variant%s",
					    sm_model_strategy_switch(o, sw, sizeof(sw)), d->id, d->file,
					    (o->given & SM_MODEL_GIVEN_RANKS) && o->ranks > 1
					    ? " (--ranks R > 1 is the distributed strategy)" : "");
		return sm_error_set(err, SM_EINVAL, "%s: pipeline '%s' (%s) declares no option "
				    "'%s'", switch_options[i].flag, d->id, d->file,
				    switch_options[i].option);
	}
	for (i = 0; i < d->noptions; i++) {
		const sm__desc_option *op = &d->options[i];
		const char *w = op->def, *set = sm_model_option_get(o, op->name);
		uint64_t u = op->def_u;

		if (strcmp(op->name, "positions") == 0 && (g & SM_MODEL_GIVEN_POSITIONS))
			w = sm_model_positions_name(o->positions);
		else if (strcmp(op->name, "select") == 0 && (g & SM_MODEL_GIVEN_SELECT))
			w = sm_model_select_name(o->select);
		else if (strcmp(op->name, "temperature") == 0 && (g & SM_MODEL_GIVEN_TEMPERATURE))
			w = sm_model_temperature_name(o->temperature);
		else if (strcmp(op->name, "strategy") == 0 && (g & SM_MODEL_GIVEN_MPI))
			w = "distributed";
		else if (strcmp(op->name, "stream_block") == 0 && (g & SM_MODEL_GIVEN_STREAM_BLOCK))
			u = o->stream_block;
		if (set != NULL) {
			sm_error e = {0};

			if (op->numeric && sm_parse_u64("--set", set, &u, &e) != 0)
				return sm_error_set(err, SM_EINVAL, "--set '%s=%s': not an integer",
						    op->name, set);
			w = set;
		}
		if (op->numeric) {
			if (u < op->min || u > op->max)
				return sm_error_set(err, SM_EINVAL, "option '%s' of pipeline '%s': %llu "
						    "is outside %llu..%llu", op->name, d->id,
						    (unsigned long long)u,
						    (unsigned long long)op->min,
						    (unsigned long long)op->max);
			env->opt_u[i] = u;
			continue;
		}
		for (v = 0; v < op->nvalues; v++)
			if (strcmp(op->values[v], w) == 0)
				break;
		if (v == op->nvalues)
			return sm_error_set(err, SM_EINVAL, "option '%s' of pipeline '%s': '%s' is not "
					    "one of its values", op->name, d->id, w);
		env->opt_word[i] = op->values[v];
	}
	/* --set of an option the description does not declare */
	{
		const char *p;

		for (p = o->set; *p != '\0'; p += strlen(p) + 1) {
			int rc = sm_desc_check_setting(d, p, err);

			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

int sm__desc_option_values(const sm_pipeline_desc *d, const sm_model_options *o,
			   const char **words, uint64_t *nums, sm_error *err)
{
	sm__env *env = calloc(1, sizeof(*env));
	size_t i;
	int rc;

	if (env == NULL)
		return sm_error_set(err, SM_ENOMEM, "estimator: out of memory");
	env->d = d;
	rc = options_env(d, o, env, err);
	for (i = 0; rc == 0 && i < d->noptions; i++) {
		words[i] = env->opt_word[i];
		nums[i] = env->opt_u[i];
	}
	free(env);
	return rc;
}

/* The options' values back into the model options (the estimate's "options"). */
static void options_back(const sm_pipeline_desc *d, const sm__env *env, sm_model_options *o)
{
	size_t i;

	for (i = 0; i < d->noptions; i++) {
		const char *n = d->options[i].name, *w = env->opt_word[i];

		/* a description's value the model has no field for is left to the description */
		if (strcmp(n, "positions") == 0 && w != NULL)
			(void)sm_model_positions_parse(w, &o->positions);
		else if (strcmp(n, "select") == 0 && w != NULL)
			(void)sm_model_select_parse(w, &o->select);
		else if (strcmp(n, "temperature") == 0 && w != NULL)
			(void)sm_model_temperature_parse(w, &o->temperature);
		else if (strcmp(n, "stream_block") == 0 && d->options[i].numeric)
			o->stream_block = env->opt_u[i];
	}
}

/* The quantities of in (the halos' sphere cells already in e). */
static void quantities(const sm_est_input *in, const sm_model_options *o, sm_estimate *e,
		       uint64_t largest, sm__env *env)
{
	const sm_header *h = &in->header;
	uint64_t gc = 0, i;
	double smax = 0;
	sm_error gerr = {0};

	env->q[SM__Q_GAS_CELLS] = env->q[SM__Q_NPART_GAS] = h->npart_total[0];
	env->q[SM__Q_NPART_DM] = h->npart_total[1];
	env->q[SM__Q_NPART_TRACERS] = h->npart_total[3];
	env->q[SM__Q_NPART_STARS] = h->npart_total[4];
	env->q[SM__Q_NPART_BH] = h->npart_total[5];
	env->q[SM__Q_GROUPS] = in->groups_total;
	env->q[SM__Q_SUBHALOS] = in->subhalos_total;
	if (in->subhalos_unknown)
		env->subhalos_unknown = in->source_name;
	if (in->halos_unknown)
		env->halos_err = &in->halos_err;
	env->q[SM__Q_FILES] = (uint64_t)(e->files > 0 ? e->files : 1);
	env->q[SM__Q_HALOS] = in->nhalos;
	env->q[SM__Q_SPHERE_MAX] = largest;
	env->q[SM__Q_RANKS] = o->ranks;
	if (sm__est_groups_chunk(in, &gc, &gerr) != 0) {
		env->gc_rc = gerr.code;
		env->gc_err = gerr;
	}
	env->q[SM__Q_GROUPS_CHUNK_MAX] = gc;
	env->q[SM__Q_CELLS_PER_RANK_MAX] = e->have_cells_per_rank ? e->cells_per_rank_max
								 : h->npart_total[0];
	env->q[SM__Q_CELLS_PER_RANK_MIN] = e->have_cells_per_rank ? e->cells_per_rank_min : 0;
	/* the largest chunk files: read with the chunk sizes, else an even spread (an assumption
	 * printed when the description reads them) */
	{
		uint64_t f = env->q[SM__Q_FILES], gmax = 0;
		int64_t c;

		for (c = 0; in->chunk_gas != NULL && c < in->nchunks; c++)
			if (in->chunk_gas[c] > gmax)
				gmax = in->chunk_gas[c];
		env->q[SM__Q_GAS_CHUNK_MAX] = in->chunk_gas != NULL
			? gmax : h->npart_total[0] / f + (h->npart_total[0] % f != 0);
		env->q[SM__Q_DM_CHUNK_MAX] = in->chunk_gas != NULL
			? in->dm_chunk_max : h->npart_total[1] / f + (h->npart_total[1] % f != 0);
	}
	for (i = 0; i < in->nhalos; i++) {
		const sm_est_halo *hh = &in->halos[i];
		double r = hh->r200 > 0 ? hh->r200 : sm__est_r200(h, hh->m200_msun);

		if (2.0 * r > smax)
			smax = 2.0 * r;
	}
	e->sphere_radius_max = smax;
	e->halo_grid_side = in->nhalos > 0 ? sm__est_halo_grid_side(h->box_size, smax) : 1;
	env->q_real[SM__Q_SPHERE_RADIUS_MAX] = 1;
	env->qd[SM__Q_SPHERE_RADIUS_MAX] = smax;
	env->q_real[SM__Q_BOX_SIZE] = 1;
	env->qd[SM__Q_BOX_SIZE] = h->box_size;
	env->q_real[SM__Q_MASS_TABLE_DM] = 1;
	env->qd[SM__Q_MASS_TABLE_DM] = h->mass_table[1];
}

/* The requested peak of the per-halo loop for one halo of s cells, from live base. */
static int halo_replay(struct sim *s, int first, int last, uint64_t base, uint64_t sphere,
		       uint64_t *out)
{
	int si, rc = 0;

	s->st = NULL;
	s->nlive = 0;
	s->req = s->peak_req = base;
	s->env->q[SM__Q_SPHERE] = sphere;
	for (si = first; si <= last && rc == 0; si++)
		if (s->runs[si])
			rc = run_stage(s, si);
	if (rc == SM_EOVERFLOW && s->err->code != SM_EOVERFLOW)
		rc = sm_error_set(s->err, SM_EOVERFLOW, "'%s': peak of a halo of %llu cells does not "
				  "fit in 64 bits", s->in->source_name, (unsigned long long)sphere);
	*out = s->peak_req;
	return rc;
}

int sm__desc_replay(const sm_pipeline_desc *d, const sm_est_input *in, const sm_model_options *o,
		    sm_estimate *e, const sm_error *sphere_err, uint64_t *cum_alloc, sm_error *err)
{
	struct sim *s = NULL;
	sm__env *env = NULL;
	uint64_t largest = 0, base_live = 0, i;
	int64_t inst = -1;
	int rc = 0, first = -1, last = -1, all = -1, prev_run = -1;
	size_t si;

	s = calloc(1, sizeof(*s));
	env = calloc(1, sizeof(*env));
	if (s == NULL || env == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "estimator: out of memory");
		goto out;
	}
	s->d = env->d = d;
	s->in = in;
	s->env = env;
	s->err = err;
	if ((rc = options_env(d, o, env, err)) != 0)
		goto out;
	options_back(d, env, &e->options);
	for (i = 0; i < in->nhalos; i++) {
		if (inst < 0 || e->halo_sphere_cells[i] > largest) {
			largest = e->halo_sphere_cells[i];
			inst = (int64_t)i;
		}
	}
	quantities(in, o, e, largest, env);
	if (sphere_err != NULL) {
		env->sphere_rc = sphere_err->code != 0 ? sphere_err->code : SM_EINVAL;
		env->sphere_err = *sphere_err;
	}
	for (si = 0; si < d->nstages; si++) {
		const sm__desc_stage *ds = &d->stages[si];
		int on = 1, ph = ds->per_halo;

		if ((ds->when != NULL && (rc = sm__expr_bool(ds->when, env, &on, err)) != 0) ||
		    (on && ds->per_halo_x != NULL &&
		     (rc = sm__expr_bool(ds->per_halo_x, env, &ph, err)) != 0))
			goto out;
		s->runs[si] = on;
		s->per_halo[si] = on && ph;
		if (on && ph) {
			if (first >= 0 && last != prev_run) {
				rc = sm_error_set(err, SM_EFORMAT, "%s:%d:%d: per_halo stage '%s' is not "
						  "next to the other per_halo stages (one loop: "
						  "consecutive stages)", d->file, ds->line, ds->col,
						  ds->id);
				goto out;
			}
			if (first < 0)
				first = (int)si;
			last = (int)si;
		}
		if (on)
			prev_run = (int)si;
		if (on && ds->all_halos && all < 0)
			all = (int)si;
	}
	/* a loop over the halos needs them */
	if ((first >= 0 || all >= 0) && env->halos_err != NULL) {
		const sm__desc_stage *ds = &d->stages[first >= 0 ? first : all];

		rc = sm_error_set(err, env->halos_err->code != 0 ? env->halos_err->code : SM_EINVAL,
				  "%s:%d:%d: stage '%s' works on the halos: %s", d->file, ds->line,
				  ds->col, ds->id, env->halos_err->msg);
		goto out;
	}
	/* a per-halo array is freed within the loop */
	for (si = 0; first >= 0 && si < d->nstages; si++) {
		size_t j;

		if (!s->per_halo[si])
			continue;
		for (j = 0; j < d->stages[si].narrays; j++) {
			const sm__desc_array *a = &d->stages[si].arrays[j];

			if (a->free == SM__FREE_NEVER || a->free_stage > last) {
				rc = sm_error_set(err, SM_EFORMAT, "%s:%d:%d: per-halo array '%s' must "
						  "be freed within the per-halo loop (stages '%s' to "
						  "'%s')", d->file, a->line, a->col, a->name,
						  d->stages[first].id, d->stages[last].id);
				goto out;
			}
		}
	}
	for (si = 0; si < d->nstages; si++) {
		const sm__desc_stage *ds = &d->stages[si];
		sm_est_stage *st;

		if (!s->runs[si])
			continue;
		if ((int)si == first)
			base_live = s->req;
		st = &e->stages[e->nstages++];
		memset(st, 0, sizeof(*st));
		st->id = ds->id;
		st->per_halo = s->per_halo[si];
		st->instance = s->per_halo[si] ? inst : -1;
		st->peak = s->req;
		st->peak_allocated = s->alloc;
		st->peak_resident = s->res;
		s->st = st;
		env->ctx = s->per_halo[si] ? SM__CTX_HALO : 0;
		env->q[SM__Q_SPHERE] = largest;
		if (s->per_halo[si] && inst < 0) {
			/* no halo: the loop's stages are listed without arrays */
			size_t k;

			for (k = 0; k < s->nlive;) {
				const sm__desc_array *a = s->live[k].a;

				if (a->free == SM__FREE_STAGE && a->free_stage == (int)si)
					free_live(s, k);
				else
					k++;
			}
		} else if ((rc = run_stage(s, (int)si)) != 0) {
			goto out;
		}
		st->live_after = s->req;
		st->live_after_allocated = s->alloc;
	}
	*cum_alloc = s->cum_alloc;

	/* each halo's own peak */
	if (first >= 0) {
		env->ctx = SM__CTX_HALO;
		for (i = 0; i < e->nhalos; i++)
			if ((rc = halo_replay(s, first, last, base_live, e->halo_sphere_cells[i],
					      &e->halo_peak[i])) != 0)
				goto out;
	} else {
		uint64_t p = 0;

		for (si = 0; si < e->nstages; si++)
			if (all >= 0 ? e->stages[si].id == d->stages[all].id : e->stages[si].peak > p)
				p = e->stages[si].peak;
		for (i = 0; i < e->nhalos; i++)
			e->halo_peak[i] = p;
	}

	/* the process */
	env->ctx = SM__CTX_PROCESS;
	{
		uint64_t pa = 0, pr = 0;

		for (si = 0; si < e->nstages; si++) {
			if (e->stages[si].peak_allocated > pa)
				pa = e->stages[si].peak_allocated;
			if (e->stages[si].peak > pr)
				pr = e->stages[si].peak;
		}
		env->q[SM__Q_PEAK_ALLOCATED] = pa;
		env->q[SM__Q_PEAK_REQUESTED] = pr;
		env->q[SM__Q_ALLOCATED_TOTAL] = s->cum_alloc;
		e->baseline = e->baseline_resident = e->baseline_address_space = 0;
		e->baseline_resident_other = 0;
		if ((d->baseline_allocated != NULL &&
		     (rc = sm__expr_u64(d->baseline_allocated, env, "baseline_allocated", &e->baseline,
					err)) != 0) ||
		    (d->baseline_resident != NULL &&
		     (rc = sm__expr_u64(d->baseline_resident, env, "baseline_resident",
					&e->baseline_resident, err)) != 0) ||
		    (d->baseline_resident_other != NULL &&
		     (rc = sm__expr_u64(d->baseline_resident_other, env,
					"baseline_resident_other_ranks", &e->baseline_resident_other,
					err)) != 0) ||
		    (d->baseline_address_space != NULL &&
		     (rc = sm__expr_u64(d->baseline_address_space, env, "baseline_address_space",
					&e->baseline_address_space, err)) != 0))
			goto out;
		if (d->arrays_address_space == NULL) {
			e->peak_address_space = pa;
		} else if ((rc = sm__expr_u64(d->arrays_address_space, env, "arrays_address_space",
					      &e->peak_address_space, err)) != 0) {
			if (rc != SM_EOVERFLOW)
				goto out;
			rc = 0;
			e->peak_address_space = UINT64_MAX;  /* saturates, as VmPeak would */
		}
		if (sm_add_u64(e->peak_address_space, e->baseline_address_space,
			       &e->peak_address_space) != 0)
			e->peak_address_space = UINT64_MAX;
	}
	/* the description's assumption sentences */
	e->ndesc_assumptions = 0;
	for (i = 0; i < d->nassumptions && e->ndesc_assumptions < SM_EST_MAX_DESC_ASSUMPTIONS; i++) {
		int on = 1;

		if (d->assumptions[i].when != NULL &&
		    (rc = sm__expr_bool(d->assumptions[i].when, env, &on, err)) != 0)
			goto out;
		if (on)
			e->desc_assumptions[e->ndesc_assumptions++] = d->assumptions[i].text;
	}
	/* the description's documented figures, beside the model's of their stage */
	e->ndesc_documented = 0;
	for (i = 0; i < d->ndocumented; i++) {
		const sm__desc_documented *x = &d->documented[i];
		const sm__desc_stage *ds = &d->stages[x->stage];
		const sm_est_stage *st = NULL;
		sm_est_documented *r;
		uint64_t est = 0;
		size_t k, j;
		int on = 1;

		if (x->when != NULL && (rc = sm__expr_bool(x->when, env, &on, err)) != 0)
			goto out;
		for (k = 0; on && k < e->nstages; k++)
			if (strcmp(e->stages[k].id, ds->id) == 0)
				st = &e->stages[k];
		if (!on || st == NULL)
			continue;  /* not this source, or the stage does not run in this variant */
		if (x->narrays == 0)
			est = st->peak;
		for (j = 0; j < x->narrays; j++)
			for (k = 0; k < st->narrays; k++)
				if (strcmp(st->arrays[k].name, ds->arrays[x->arrays[j]].name) == 0)
					est += st->arrays[k].requested;
		r = &e->desc_documented[e->ndesc_documented++];
		memset(r, 0, sizeof(*r));
		r->step = "";
		r->stage = ds->id;
		r->what = x->what;
		r->documented_text = x->text;
		r->documented = x->value;
		r->estimated = est;
		r->difference = (int64_t)(x->value - est);
		r->note = x->note != NULL ? x->note : "";
		r->source = x->source;
		r->model = x->model;
	}
	e->quantities_used = env->used;
out:
	free(env);
	free(s);
	return rc;
}

unsigned sm_est_reads(const sm_estimate *e)
{
#define Q(x) (UINT64_C(1) << (x))
	uint64_t u = e->quantities_used;
	unsigned r = 0;
	size_t i;

	if (u & (Q(SM__Q_HALOS) | Q(SM__Q_SPHERE) | Q(SM__Q_SPHERE_MAX) | Q(SM__Q_SPHERE_RADIUS_MAX)))
		r |= SM_EST_READS_HALOS;
	for (i = 0; i < e->nstages; i++)
		if (e->stages[i].per_halo)
			r |= SM_EST_READS_HALOS;
	if (u & (Q(SM__Q_SPHERE) | Q(SM__Q_SPHERE_MAX)))
		r |= SM_EST_READS_SPHERES;
	if (u & (Q(SM__Q_GROUPS) | Q(SM__Q_GROUPS_CHUNK_MAX)))
		r |= SM_EST_READS_GROUPS;
	if (u & Q(SM__Q_SUBHALOS))
		r |= SM_EST_READS_SUBHALOS;
	if (u & (Q(SM__Q_GAS_CELLS) | Q(SM__Q_NPART_GAS) | Q(SM__Q_GAS_CHUNK_MAX) |
		 Q(SM__Q_CELLS_PER_RANK_MAX) | Q(SM__Q_CELLS_PER_RANK_MIN)))
		r |= SM_EST_READS_GAS;
	if (u & (Q(SM__Q_NPART_DM) | Q(SM__Q_DM_CHUNK_MAX)))
		r |= SM_EST_READS_DM;
	return r;
#undef Q
}

/* ---- the variants (tradeoff, the verdict's choices) ------------------------------------------ */

#define MAX_VARIANTS 64

struct variants {
	const sm_pipeline_desc *d;
	const sm_model_options *o;
	sm__env *env;                /* the values assigned so far (the rest at their defaults) */
	const char *conf_word[SM__DESC_MAX_OPTIONS];
	uint64_t conf_u[SM__DESC_MAX_OPTIONS];
	int with_sweep;
	sm_model_options *out;
	size_t n;
	sm_error *err;
};

/* The model options of the variant in v->env. */
static int variant_emit(struct variants *v)
{
	const sm_pipeline_desc *d = v->d;
	sm_model_options *x;
	size_t i;
	int rc;

	if (v->n >= MAX_VARIANTS)
		return sm_error_set(v->err, SM_EINVAL, "pipeline '%s' (%s) declares more than %d "
				    "variants: fix some options with the model switches or --set",
				    d->id, d->file, MAX_VARIANTS);
	x = &v->out[v->n];
	*x = *v->o;
	x->set[0] = '\0';
	x->given = 0;
	for (i = 0; i < d->noptions; i++) {
		const char *n = d->options[i].name, *w = v->env->opt_word[i];
		char buf[160];

		if (strcmp(n, "positions") == 0 && w != NULL &&
		    sm_model_positions_parse(w, &x->positions) == 0) {
			x->given |= SM_MODEL_GIVEN_POSITIONS;
		} else if (strcmp(n, "select") == 0 && w != NULL &&
			   sm_model_select_parse(w, &x->select) == 0) {
			x->given |= SM_MODEL_GIVEN_SELECT;
		} else if (strcmp(n, "temperature") == 0 && w != NULL &&
			   sm_model_temperature_parse(w, &x->temperature) == 0) {
			x->given |= SM_MODEL_GIVEN_TEMPERATURE;
		} else if (strcmp(n, "strategy") == 0 && w != NULL &&
			   (strcmp(w, "serial") == 0 || strcmp(w, "distributed") == 0)) {
			x->mpi = strcmp(w, "distributed") == 0;
			if (!x->mpi)
				x->ranks = 1;
		} else if (strcmp(n, "stream_block") == 0 && d->options[i].numeric) {
			x->stream_block = v->env->opt_u[i];
			x->given |= SM_MODEL_GIVEN_STREAM_BLOCK;
		} else {
			if (w != NULL)
				snprintf(buf, sizeof(buf), "%s=%s", n, w);
			else
				snprintf(buf, sizeof(buf), "%s=%llu", n,
					 (unsigned long long)v->env->opt_u[i]);
			if ((rc = sm_model_option_set(x, buf, v->err)) != 0)
				return rc;
		}
	}
	v->n++;
	return 0;
}

/* Option i and the ones after it, in declaration order (the first varies slowest). */
static int variant_walk(struct variants *v, size_t i)
{
	const sm_pipeline_desc *d = v->d;
	const sm__desc_option *op;
	int on = 1, rc = 0;
	size_t k;

	if (i == d->noptions)
		return variant_emit(v);
	op = &d->options[i];
	if (op->when != NULL && (rc = sm__expr_bool(op->when, v->env, &on, v->err)) != 0)
		return rc;
	if (!on) {  /* not in force: an enumerated option at its default, a numeric one as given */
		if (op->numeric) {
			v->env->opt_u[i] = v->conf_u[i];
		} else {
			for (k = 0; k < op->nvalues; k++)
				if (strcmp(op->values[k], op->def) == 0)
					v->env->opt_word[i] = op->values[k];
		}
		rc = variant_walk(v, i + 1);
	} else if (!op->numeric) {
		for (k = 0; k < op->nvalues && rc == 0; k++) {
			v->env->opt_word[i] = op->values[k];
			rc = variant_walk(v, i + 1);
		}
	} else {
		int have = 0;

		for (k = 0; v->with_sweep && k < op->nsweep && rc == 0; k++) {
			v->env->opt_u[i] = op->sweep[k];
			have |= op->sweep[k] == v->conf_u[i];
			rc = variant_walk(v, i + 1);
		}
		if (!have && rc == 0) {
			v->env->opt_u[i] = v->conf_u[i];
			rc = variant_walk(v, i + 1);
		}
	}
	/* back to the default for the walks of earlier options */
	if (op->numeric)
		v->env->opt_u[i] = op->def_u;
	else
		v->env->opt_word[i] = op->def;
	return rc;
}

int sm__desc_variants(const sm_pipeline_desc *d, const sm_model_options *o, int with_sweep,
		      sm_model_options **out, size_t *n, sm_error *err)
{
	struct variants v;
	size_t i;
	int rc;

	memset(&v, 0, sizeof(v));
	*out = NULL;
	*n = 0;
	v.d = d;
	v.o = o;
	v.with_sweep = with_sweep;
	v.err = err;
	v.env = calloc(1, sizeof(*v.env));
	v.out = calloc(MAX_VARIANTS, sizeof(*v.out));
	if (v.env == NULL || v.out == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "estimator: cannot allocate the variants");
		goto out;
	}
	v.env->d = d;
	if ((rc = sm__desc_option_values(d, o, v.conf_word, v.conf_u, err)) != 0)
		goto out;
	for (i = 0; i < d->noptions; i++) {
		v.env->opt_word[i] = d->options[i].numeric ? NULL : d->options[i].def;
		v.env->opt_u[i] = d->options[i].def_u;
	}
	if ((rc = variant_walk(&v, 0)) != 0)
		goto out;
	*out = v.out;
	*n = v.n;
	v.out = NULL;
out:
	free(v.out);
	free(v.env);
	return rc;
}
