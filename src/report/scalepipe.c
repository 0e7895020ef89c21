/*
 * `report --scale-to TNG300-1 --pipeline FILE RUN...`: runs of any described program (each a run
 * directory holding memory.json and the description's estimate.json for that run, docs/REPORT.md
 * "Any program beside a description's estimate") scaled to the target through the description
 * itself. The size that drives a description is not always the gas cells (a dark-matter map
 * follows npart_dm and its grid), so the fit is over what the description predicts: for every
 * stage, measured allocated bytes (above the program's start) = a + b * estimated allocated bytes
 * over the runs, evaluated at the description's estimate for the target (the embedded TNG300-1
 * header, the runs' options). A model that is right at the runs' sizes gives b = 1 and a the bytes
 * it leaves out (HDF5's state, Python objects); the fitted figure at the target then says what the
 * program would take there by the same errors. When every run has the same estimate for a stage
 * (it does not grow with the runs' sizes) the mean difference stands for the fit. Each stage is
 * judged at the tolerance: |fitted - estimated| at the target.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"
#include "snapmem/describe.h"
#include "snapmem/estimator.h"

static int same_options(const sm_report *a, const sm_report *b)
{
	return strcmp(a->options_text, b->options_text) == 0;
}

/* The description's options of run r's estimate.json ("pipeline"."options") as --set settings. */
static int settings_of(const sm_report *r, sm_model_options *o, sm_error *err)
{
	json_t *pl = json_object_get(sm__report_doc_estimate(r), "pipeline"), *opt, *v;
	const char *key;
	char buf[192];
	int rc;

	opt = json_is_object(pl) ? json_object_get(pl, "options") : NULL;
	if (!json_is_object(opt))
		return 0;
	json_object_foreach(opt, key, v) {
		if (json_is_string(v))
			snprintf(buf, sizeof(buf), "%s=%s", key, json_string_value(v));
		else if (json_is_integer(v))
			snprintf(buf, sizeof(buf), "%s=%lld", key, (long long)json_integer_value(v));
		else
			continue;
		if ((rc = sm_model_option_set(o, buf, err)) != 0)
			return rc;
	}
	return 0;
}

static int fit_stage(sm_scalep *s, const sm_report *runs, size_t nruns, const char *id,
		     const sm_estimate *e, sm_error *err)
{
	double *x = calloc(nruns, sizeof(double)), *y = calloc(nruns, sizeof(double));
	sm_scalep_stage *st;
	size_t i, j, n = 0;
	int rc = 0, distinct = 0;

	if (x == NULL || y == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "cannot allocate the scale report");
		goto out;
	}
	st = &s->stages[s->nstages];
	memset(st, 0, sizeof(*st));
	snprintf(st->id, sizeof(st->id), "%s", id);
	for (i = 0; i < nruns; i++)
		for (j = 0; j < runs[i].nstages; j++) {
			const sm_report_stage *rs = &runs[i].stages[j];

			if (strcmp(rs->id, id) != 0 || !rs->has_est || !rs->has_meas)
				continue;
			x[n] = (double)rs->est_peak_allocated;
			y[n] = (double)rs->meas_allocated;
			st->per_halo = rs->per_halo;
			distinct |= n > 0 && x[n] != x[0];
			n++;
		}
	st->n = n;
	if (n == 0)
		goto out;          /* a stage no run reached: nothing to fit */
	for (i = 0; i < e->nstages; i++)
		if (strcmp(e->stages[i].id, id) == 0) {
			st->has_target = 1;
			st->target_est = e->stages[i].peak_allocated;
		}
	if (distinct) {
		if ((rc = sm_fit_linear(x, y, n, &st->fit, err)) != 0)
			goto out;
	} else {
		double d = 0;

		for (i = 0; i < n; i++)
			d += y[i] - x[i];
		st->fit.a = d / (double)n;
		st->fit.b = 1.0;
		st->fit.n = n;
		st->constant = 1;
	}
	if (st->has_target) {
		st->fitted = sm_fit_at(&st->fit, (double)st->target_est);
		sm_report_judge(st->target_est, st->fitted > 0 ? (uint64_t)st->fitted : 0,
				s->tolerance_pct, SM_REPORT_ABS_BOUND, &st->cmp);
		if (st->cmp.verdict == SM_VERDICT_FAIL)
			s->nfail++;
	}
	s->nstages++;
out:
	free(x);
	free(y);
	return rc;
}

int sm_scalep_compute(const char *const *rundirs, size_t nruns, const char *target,
		      const char *pipeline, double tolerance_pct, sm_scalep *s, sm_error *err)
{
	sm_report *runs = NULL;
	sm_pipeline_desc *desc = NULL;
	sm_model_options o;
	sm_est_input in;
	sm_estimate e;
	size_t i, j, loaded = 0;
	int rc = 0, have_in = 0, have_e = 0;

	memset(s, 0, sizeof(*s));
	if ((rc = sm__scale_check_args(target, nruns, tolerance_pct, err)) != 0)
		return rc;
	snprintf(s->target, sizeof(s->target), "%s", target);
	snprintf(s->file, sizeof(s->file), "%s", pipeline);
	s->tolerance_pct = tolerance_pct;
	if ((rc = sm_desc_load(pipeline, &desc, err)) != 0)
		return rc;
	snprintf(s->pipeline, sizeof(s->pipeline), "%s", sm_desc_id(desc));
	runs = calloc(nruns, sizeof(*runs));
	s->stages = calloc(SM_EST_MAX_STAGES + 1, sizeof(*s->stages));
	s->run_peak = calloc(nruns, sizeof(uint64_t));
	if (runs == NULL || s->stages == NULL || s->run_peak == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "cannot allocate the scale report");
		goto out;
	}
	s->nruns = nruns;
	for (i = 0; i < nruns; i++) {
		if ((rc = sm_report_load(&runs[i], rundirs[i], err)) != 0)
			goto out;
		loaded++;
		if (strcmp(runs[i].pipeline, s->pipeline) != 0) {
			rc = sm_error_set(err, SM_EINVAL, "'%s': its estimate.json is of pipeline '%s', "
					  "not '%s' ('%s')", rundirs[i], runs[i].pipeline,
					  s->pipeline, pipeline);
			goto out;
		}
		if (i > 0 && !same_options(&runs[i], &runs[0])) {
			rc = sm_error_set(err, SM_EINVAL, "'%s': options '%s' differ from '%s' of '%s': "
					  "--scale-to needs runs of the same options", rundirs[i],
					  runs[i].options_text, runs[0].options_text, rundirs[0]);
			goto out;
		}
		if ((rc = sm_report_compare(&runs[i], tolerance_pct, SM_REPORT_ABS_BOUND,
					    err)) != 0)
			goto out;
		for (j = 0; j < runs[i].nstages; j++)
			if (runs[i].stages[j].has_est &&
			    runs[i].stages[j].est_peak_allocated > s->run_peak[i])
				s->run_peak[i] = runs[i].stages[j].est_peak_allocated;
	}
	if (!runs[0].measured) {
		rc = sm_error_set(err, SM_EINVAL, "'%s': allocator '%s' not measured: nothing to fit",
				  rundirs[0], runs[0].allocator);
		goto out;
	}
	snprintf(s->options_text, sizeof(s->options_text), "%s", runs[0].options_text);
	if ((rc = sm__report_model_options(&runs[0], &o, err)) != 0)
		goto out;
	o.pipeline = desc;
	if ((rc = settings_of(&runs[0], &o, err)) != 0 ||
	    (rc = sm_est_input_embedded(&in, &o, err)) != 0)
		goto out;
	have_in = 1;
	if ((rc = sm_estimate_compute(&in, &o, &e, err)) != 0)
		goto out;
	have_e = 1;
	s->target_peak = e.peak_allocated;
	s->target_need = e.need;
	/* the stages in the description's order at the target, then any only the runs have */
	for (i = 0; i < e.nstages && rc == 0; i++)
		rc = fit_stage(s, runs, nruns, e.stages[i].id, &e, err);
	for (i = 0; i < runs[0].nstages && rc == 0; i++) {
		for (j = 0; j < s->nstages; j++)
			if (strcmp(s->stages[j].id, runs[0].stages[i].id) == 0)
				break;
		if (j == s->nstages && runs[0].stages[i].has_est && s->nstages < SM_EST_MAX_STAGES)
			rc = fit_stage(s, runs, nruns, runs[0].stages[i].id, &e, err);
	}
out:
	if (have_e)
		sm_estimate_release(&e);
	if (have_in)
		sm_est_input_release(&in);
	for (i = 0; i < loaded; i++)
		sm_report_release(&runs[i]);
	free(runs);
	sm_desc_free(desc);
	if (rc != 0)
		sm_scalep_release(s);
	return rc;
}

void sm_scalep_release(sm_scalep *s)
{
	if (s == NULL)
		return;
	free(s->stages);
	free(s->run_peak);
	memset(s, 0, sizeof(*s));
}

static void text(const sm_scalep *s, FILE *f, int md)
{
	char a[32], b[32], c[32], p[32];
	size_t i;

	if (md)
		fprintf(f, "# snapmem report --scale-to %s --pipeline %s\n\n", s->target, s->file);
	else
		fprintf(f, "snapmem report --scale-to %s --pipeline %s\n", s->target, s->file);
	fprintf(f, "%s%zu runs of %s; each stage: measured allocated above the program's start = "
		"a + b x (estimated allocated), over the runs, at the description's estimate for %s "
		"(the embedded header, the runs' options)\n", md ? "" : "  ", s->nruns,
		s->options_text, s->target);
	fprintf(f, "%sverdict: %s (tolerance %g%%)\n\n", md ? "\n" : "  ",
		s->nfail == 0 ? "PASS, every stage's fit within the tolerance at the target"
			      : "FAIL, a stage's fit misses the tolerance at the target",
		s->tolerance_pct);
	if (md)
		fprintf(f, "| stage | runs | a | b | estimated at %s | fitted at %s | difference | "
			"verdict |\n|---|---:|---:|---:|---:|---:|---:|---|\n", s->target, s->target);
	else
		fprintf(f, "  %-22s %4s %13s %9s %14s %14s %10s %s\n", "stage", "runs", "a", "b",
			"estimated", "fitted", "%", "");
	for (i = 0; i < s->nstages; i++) {
		const sm_scalep_stage *st = &s->stages[i];

		snprintf(a, sizeof(a), "%+.0f B", st->fit.a);
		if (!st->has_target) {
			fprintf(f, md ? "| %s | %zu | %s | %.6f | not at the target | | | n/a |\n"
				      : "  %-22s %4zu %13s %9.6f %14s\n", st->id, st->n, a, st->fit.b,
				"not at the target");
			continue;
		}
		sm__iec(st->target_est, b, sizeof(b));
		sm__iec(st->fitted > 0 ? (uint64_t)st->fitted : 0, c, sizeof(c));
		sm__pct(&st->cmp, p, sizeof(p));
		fprintf(f, md ? "| %s%s | %zu | %s | %.6f%s | %s | %s | %s | %s |\n"
			      : "  %-16s%-6s %4zu %13s %9.6f%s %14s %14s %10s %s\n",
			st->id, st->per_halo ? " (max)" : "", st->n, a, st->fit.b,
			st->constant ? "*" : " ", b, c, p,
			sm_verdict_name(st->cmp.verdict));
	}
	for (i = 0; i < s->nstages && !s->stages[i].constant; i++)
		;
	if (i < s->nstages)
		fprintf(f, "\n%s* the same estimate in every run (the stage does not grow with the runs' "
			"sizes): b = 1 and a the mean difference\n", md ? "" : "  ");
	sm__iec(s->target_peak, a, sizeof(a));
	sm__iec(s->target_need, b, sizeof(b));
	fprintf(f, "\n%sthe description at %s: allocated peak %s, need %s (snapmem estimate "
		"--pipeline %s)\n", md ? "" : "  ", s->target, a, b, s->file);
}

int sm_scalep_render(const sm_scalep *s, sm_report_format fmt, char **out, sm_error *err)
{
	size_t len = 0, i;
	FILE *f;

	*out = NULL;
	if (fmt == SM_REPORT_JSON) {
		json_t *root = json_object(), *st = json_array();

		if (root == NULL || st == NULL) {
			json_decref(root);
			json_decref(st);
			return sm_error_set(err, SM_ENOMEM, "cannot build the scale report JSON");
		}
		json_object_set_new(root, "schema", json_string("snapmem.scale-pipeline/1"));
		json_object_set_new(root, "target", json_string(s->target));
		json_object_set_new(root, "pipeline", json_string(s->pipeline));
		json_object_set_new(root, "file", json_string(s->file));
		json_object_set_new(root, "options", json_string(s->options_text));
		json_object_set_new(root, "runs", json_integer((json_int_t)s->nruns));
		json_object_set_new(root, "tolerance_pct", json_real(s->tolerance_pct));
		json_object_set_new(root, "verdict", json_string(s->nfail == 0 ? "pass" : "fail"));
		json_object_set_new(root, "target_peak_allocated_bytes",
				    json_integer((json_int_t)s->target_peak));
		json_object_set_new(root, "target_need_bytes", json_integer((json_int_t)s->target_need));
		for (i = 0; i < s->nstages; i++) {
			const sm_scalep_stage *x = &s->stages[i];

			json_array_append_new(st, json_pack("{s:s, s:b, s:I, s:f, s:f, s:b, s:o, s:o, s:o}",
				"id", x->id, "per_halo", x->per_halo, "runs", (json_int_t)x->n,
				"a", x->fit.a, "b", x->fit.b, "constant", x->constant,
				"estimated_bytes", x->has_target ? json_integer((json_int_t)x->target_est)
								 : json_null(),
				"fitted_bytes", x->has_target ? json_integer((json_int_t)x->fitted)
							      : json_null(),
				"compare", x->has_target ? sm__cmp_json(&x->cmp) : json_null()));
		}
		json_object_set_new(root, "stages", st);
		*out = json_dumps(root, JSON_INDENT(2));
		json_decref(root);
		if (*out == NULL)
			return sm_error_set(err, SM_ENOMEM, "cannot build the scale report JSON");
		return 0;
	}
	f = open_memstream(out, &len);
	if (f == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the report text");
	text(s, f, fmt == SM_REPORT_MARKDOWN);
	if (fclose(f) != 0) {
		free(*out);
		*out = NULL;
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the report text");
	}
	return 0;
}
