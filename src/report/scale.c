/*
 * `report --scale-to TNG300-1`: runs of the same options at two or more sizes, a least-squares fit
 * bytes = a + b*N for every stage (requested peak, allocated peak above the baseline, requested
 * live at the end) and every named array, extrapolated to TNG300-1's N and shown beside the
 * estimator (the embedded TNG300-1 input with the runs' options) and the reference notebook's
 * documented figures.
 *
 * What scales and what does not, said plainly in the output: whole-snapshot stages (fields,
 * temperature, positions) are a + b*N exactly and are judged against the estimator; load_halos
 * depends on the catalogue (G, K), build_index on a clamped cube root of N, and the per-halo
 * stages on the cells inside each sphere, which a fit over mock sizes extrapolates in proportion
 * to N while TNG300-1's spheres follow from halo masses (only the mask strategy's N-byte mask
 * scales with N) - those are shown, not judged. Documented figures: the notebook's arithmetic
 * (steps 2-4) must match; its measurements of a numpy process are compared, not judged; its
 * step-4 totals exceed temperature + positions and are flagged with the gap.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"
#include "snapmem/estimator.h"
#include "snapmem/units.h"

int sm_fit_linear(const double *x, const double *y, size_t n, sm_fit *out, sm_error *err)
{
	long double mx = 0, my = 0, sxx = 0, sxy = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (n < 2)
		return sm_error_set(err, SM_EINVAL, "a fit needs two points or more, got %zu", n);
	for (i = 0; i < n; i++) {
		mx += x[i];
		my += y[i];
	}
	mx /= (long double)n;
	my /= (long double)n;
	for (i = 0; i < n; i++) {
		sxx += ((long double)x[i] - mx) * ((long double)x[i] - mx);
		sxy += ((long double)x[i] - mx) * ((long double)y[i] - my);
	}
	if (sxx == 0)
		return sm_error_set(err, SM_EINVAL, "a fit needs two different sizes");
	out->b = (double)(sxy / sxx);
	out->a = (double)(my - (sxy / sxx) * mx);
	out->n = n;
	for (i = 0; i < n; i++) {
		double r = fabs(y[i] - (out->a + out->b * x[i]));

		if (r > out->max_residual)
			out->max_residual = r;
	}
	return 0;
}

int64_t sm_fit_at(const sm_fit *f, double x)
{
	long double v = (long double)f->a + (long double)f->b * (long double)x;

	if (v >= 9.2e18L)
		return INT64_MAX;
	if (v <= -9.2e18L)
		return INT64_MIN;
	return (int64_t)llroundl(v);
}

static uint64_t pos_or_zero(int64_t v)
{
	return v > 0 ? (uint64_t)v : 0;
}

static const sm_report_stage *rstage(const sm_report *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->nstages; i++)
		if (strcmp(r->stages[i].id, id) == 0 && r->stages[i].has_meas)
			return &r->stages[i];
	return NULL;
}

static const sm_report_array *rarray(const sm_report *r, const char *stage, const char *name)
{
	size_t i;

	for (i = 0; i < r->narrays; i++)
		if (strcmp(r->arrays[i].stage, stage) == 0 && strcmp(r->arrays[i].name, name) == 0 &&
		    r->arrays[i].has_meas)
			return &r->arrays[i];
	return NULL;
}

static const sm_est_stage *est_stage(const sm_estimate *e, const char *id)
{
	size_t i;

	for (i = 0; i < e->nstages; i++)
		if (strcmp(e->stages[i].id, id) == 0)
			return &e->stages[i];
	return NULL;
}

static const sm_est_array *est_array(const sm_estimate *e, const char *stage, const char *name)
{
	const sm_est_stage *s = est_stage(e, stage);
	size_t j;

	for (j = 0; s != NULL && j < s->narrays; j++)
		if (strcmp(s->arrays[j].name, name) == 0)
			return &s->arrays[j];
	return NULL;
}

/* Stages a + b*N describes exactly at any N (and so are judged). */
static int scales_with_n(const char *id)
{
	return strcmp(id, SM_STAGE_LOAD_GAS_FIELDS) == 0 || strcmp(id, SM_STAGE_COMPUTE_TEMPERATURE) == 0 ||
	       strcmp(id, SM_STAGE_LOAD_POSITIONS) == 0;
}

static const char *stage_note(const char *id, int per_halo, const char *select)
{
	if (scales_with_n(id))
		return "whole-snapshot arrays: exactly a + b*N";
	if (strcmp(id, SM_STAGE_LOAD_HALOS) == 0)
		return "depends on the catalogue (G groups, K halos), not on N: not judged";
	if (strcmp(id, SM_STAGE_BUILD_INDEX) == 0)
		return "grid of clamp(cbrt(N/32), 1, 512)^3 cells: not linear in N, not judged";
	if (per_halo && strcmp(select, SM_SELECT_NAME_MASK) == 0)
		return "per halo: the N-byte sphere_mask scales with N; the sphere arrays follow the "
		       "halo's cells, which the fit takes as proportional to N (TNG300-1's follow from "
		       "halo masses): not judged";
	if (per_halo)
		return "per halo: the fit applies to per-cell arrays only; sphere arrays follow the "
		       "halo's cells, which the fit takes as proportional to N (TNG300-1's follow from "
		       "halo masses): not judged";
	return "not in the model: not judged";
}

static int fit_runs(const sm_scale *s, const double *y, sm_fit *f, sm_error *err)
{
	double *x = malloc(s->nruns * sizeof(double));
	size_t i;
	int rc;

	if (x == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the fit");
	for (i = 0; i < s->nruns; i++)
		x[i] = (double)s->run_n[i];
	rc = sm_fit_linear(x, y, s->nruns, f, err);
	free(x);
	return rc;
}

/*
 * The whole process at the target, beside the estimate's resident peak for the same options, two
 * ways. Composed: the estimator's arrays at the target (its requested peak: the whole-snapshot
 * stages are exactly the runs' fit, see the stages; the per-halo spheres follow TNG300-1's halo
 * masses) plus the memory the runs hold beyond their arrays (VmHWM - requested peak: the
 * libraries, caches and page rounding, which do not grow with N: its mean, not extrapolated, its
 * fit's slope shown) - the figure compared at the tolerance. Fitted: every run's VmHWM a + b*N
 * extrapolated, which takes every sphere as a fixed fraction of N as the mock's halos hold; a
 * difference beyond the tolerance is split into the arrays' requested peak and the rest, each said
 * in words. Decided here once; the writers print the lines.
 */
static int scale_resident(sm_scale *s, const sm_report *runs, const sm_estimate *e, sm_error *err)
{
	double *y = calloc(s->nruns, sizeof(double)), *yb = calloc(s->nruns, sizeof(double));
	char a[40], b[40], c[40], d[40], p[40], g[40], h[40];
	double beyond = 0;
	int64_t dres, dreq;
	size_t i, k;
	int rc = 0;

	s->has_resident = 0;
	memset(s->resident_lines, 0, sizeof(s->resident_lines));
	if (y == NULL || yb == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "cannot allocate the fit");
		goto out;
	}
	for (i = 0; i < s->nruns; i++) {
		uint64_t req = 0;

		if (!runs[i].has_resident || runs[i].meas_vm_hwm == 0)
			goto out;
		for (k = 0; k < runs[i].nstages; k++)
			if (runs[i].stages[k].has_meas && runs[i].stages[k].meas_peak > req)
				req = runs[i].stages[k].meas_peak;
		y[i] = (double)runs[i].meas_vm_hwm;
		yb[i] = (double)runs[i].meas_vm_hwm - (double)req;
		beyond += yb[i] / (double)s->nruns;
	}
	if ((rc = fit_runs(s, y, &s->resident, err)) != 0 ||
	    (rc = fit_runs(s, yb, &s->beyond, err)) != 0)
		goto out;
	s->has_resident = 1;
	s->fitted_resident = sm_fit_at(&s->resident, (double)s->target_n);
	s->fitted_requested_peak = 0;
	for (i = 0; i < s->nstages; i++)
		if (s->stages[i].fitted_requested > s->fitted_requested_peak)
			s->fitted_requested_peak = s->stages[i].fitted_requested;
	s->est_resident = e->peak_resident;
	s->est_need = e->need;
	s->est_peak = e->peak;
	s->est_baseline_resident = e->baseline_resident;
	s->beyond_mean = (int64_t)(beyond >= 0 ? beyond + 0.5 : beyond - 0.5);
	s->composed_resident = (int64_t)e->peak + s->beyond_mean;
	sm_report_judge(s->est_resident, pos_or_zero(s->composed_resident), s->tolerance_pct, 0,
			&s->composed_cmp);
	sm_report_judge(s->est_resident, pos_or_zero(s->fitted_resident), s->tolerance_pct, 0,
			&s->resident_cmp);
	snprintf(s->resident_lines[0], sizeof(s->resident_lines[0]),
		 "resident peak at %s: `snapmem estimate` with these options: %s (need with page "
		 "tables %s)", s->target, sm__iec(s->est_resident, c, sizeof(c)),
		 sm__iec(s->est_need, d, sizeof(d)));
	snprintf(s->resident_lines[1], sizeof(s->resident_lines[1]),
		 "composed from the runs: the estimator's arrays at %s (requested peak %s; the "
		 "whole-snapshot stages are the runs' fit exactly, below) + the runs' memory beyond "
		 "their arrays (VmHWM - requested peak: mean %s, slope %.4f B per cell, not "
		 "extrapolated) = %s, %s (%s): %s %g%%", s->target, sm__iec(s->est_peak, a, sizeof(a)),
		 sm__iec(pos_or_zero(s->beyond_mean), b, sizeof(b)), s->beyond.b,
		 sm__iec(pos_or_zero(s->composed_resident), c, sizeof(c)),
		 sm__iec_signed(s->composed_cmp.diff, g, sizeof(g)),
		 sm__pct(&s->composed_cmp, p, sizeof(p)),
		 s->composed_cmp.verdict == SM_VERDICT_PASS ? "they agree within"
							     : "they do NOT agree within",
		 s->tolerance_pct);
	snprintf(s->resident_lines[2], sizeof(s->resident_lines[2]),
		 "the runs' VmHWM fitted a + b*N instead (a = %s B, b = %.4f B per cell): %s, %s (%s)%s",
		 sm__commas((uint64_t)(s->resident.a > 0 ? s->resident.a : 0), a, sizeof(a)),
		 s->resident.b, sm__iec(pos_or_zero(s->fitted_resident), b, sizeof(b)),
		 sm__iec_signed(s->resident_cmp.diff, g, sizeof(g)),
		 sm__pct(&s->resident_cmp, p, sizeof(p)),
		 s->resident_cmp.verdict == SM_VERDICT_PASS ? ": within the tolerance too" : "");
	if (s->resident_cmp.verdict == SM_VERDICT_PASS)
		goto out;
	dres = s->resident_cmp.diff;
	dreq = sm__sdiff(pos_or_zero(s->fitted_requested_peak), s->est_peak);
	snprintf(s->resident_lines[3], sizeof(s->resident_lines[3]),
		 "that fit is not within %g%%, explained: %s of it is the arrays' requested peak "
		 "(fitted %s against the estimate's %s): the fit takes every sphere as a fixed "
		 "fraction of N, as the mock's halos hold, while %s's spheres follow from its halo "
		 "masses (the per-halo stages, not judged below); the other %s is where the fit of "
		 "VmHWM and the fit of the requested peak part beyond the arrays: the runs' memory "
		 "beyond their arrays drifts %.4f B per cell (intercept %s, the model's resident "
		 "baseline %s) and the runs' small differences are multiplied %s times",
		 s->tolerance_pct, sm__iec_signed(dreq, a, sizeof(a)),
		 sm__iec(pos_or_zero(s->fitted_requested_peak), b, sizeof(b)),
		 sm__iec(s->est_peak, c, sizeof(c)), s->target,
		 sm__iec_signed(dres - dreq, g, sizeof(g)), s->beyond.b,
		 sm__iec((uint64_t)(s->beyond.a > 0 ? s->beyond.a : 0), h, sizeof(h)),
		 sm__iec(s->est_baseline_resident, d, sizeof(d)),
		 sm__commas(s->run_n[s->nruns - 1] > 0 ? s->target_n / s->run_n[s->nruns - 1] : 0, p,
			    sizeof(p)));
out:
	free(y);
	free(yb);
	return rc;
}

static int add_item(sm_scale_item **items, size_t *n, sm_error *err)
{
	sm_scale_item *q = realloc(*items, (*n + 1) * sizeof(**items));

	if (q == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the scale report");
	*items = q;
	memset(&q[*n], 0, sizeof(**items));
	(*n)++;
	return 0;
}

static int fit_stages(sm_scale *s, const sm_report *runs, const sm_estimate *e, sm_error *err)
{
	const sm_report *r0 = &runs[0];
	double *yr = NULL, *ya = NULL, *yl = NULL;
	size_t i, k;
	int rc = 0;

	yr = calloc(s->nruns, sizeof(double));
	ya = calloc(s->nruns, sizeof(double));
	yl = calloc(s->nruns, sizeof(double));
	if (yr == NULL || ya == NULL || yl == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "cannot allocate the fit");
		goto out;
	}
	for (i = 0; i < r0->nstages; i++) {
		const sm_report_stage *st0 = &r0->stages[i];
		const sm_est_stage *es;
		sm_scale_item *it;
		int all = st0->has_meas;

		for (k = 0; k < s->nruns && all; k++) {
			const sm_report_stage *st = rstage(&runs[k], st0->id);

			if (st == NULL) {
				all = 0;
				break;
			}
			yr[k] = (double)st->meas_peak;
			ya[k] = (double)st->meas_allocated;
			yl[k] = (double)st->live_end;
		}
		if (!all)
			continue;
		if ((rc = add_item(&s->stages, &s->nstages, err)) != 0)
			goto out;
		it = &s->stages[s->nstages - 1];
		snprintf(it->id, sizeof(it->id), "%s", st0->id);
		it->per_halo = st0->per_halo;
		if ((rc = fit_runs(s, yr, &it->requested, err)) != 0 ||
		    (rc = fit_runs(s, yl, &it->live_end, err)) != 0)
			goto out;
		if (s->measured && (rc = fit_runs(s, ya, &it->allocated, err)) != 0)
			goto out;
		it->fitted_requested = sm_fit_at(&it->requested, (double)s->target_n);
		it->fitted_live_end = sm_fit_at(&it->live_end, (double)s->target_n);
		it->fitted_allocated = s->measured ? sm_fit_at(&it->allocated, (double)s->target_n) : 0;
		it->note = stage_note(st0->id, st0->per_halo, r0->select);
		es = est_stage(e, st0->id);
		if (es != NULL) {
			it->has_est = 1;
			it->est_requested = es->peak;
			it->est_allocated = es->peak_allocated;
		}
		if (it->has_est && scales_with_n(it->id)) {
			sm_report_judge(it->est_requested, pos_or_zero(it->fitted_requested),
					s->tolerance_pct, SM_REPORT_ABS_BOUND, &it->cmp);
			if (it->cmp.verdict == SM_VERDICT_FAIL)
				s->nfail++;
		} else if (it->has_est) {
			sm_report_judge(it->est_requested, pos_or_zero(it->fitted_requested),
					s->tolerance_pct, SM_REPORT_ABS_BOUND, &it->cmp);
			it->cmp.verdict = SM_VERDICT_NA;
		}
	}
	for (i = 0; i < r0->narrays; i++) {
		const sm_report_array *a0 = &r0->arrays[i];
		const sm_report_stage *st0 = rstage(r0, a0->stage);
		const sm_est_array *ea;
		sm_scale_item *it;
		int all = a0->has_meas;

		for (k = 0; k < s->nruns && all; k++) {
			const sm_report_array *a = rarray(&runs[k], a0->stage, a0->name);

			if (a == NULL) {
				all = 0;
				break;
			}
			yr[k] = (double)a->meas_requested;
			ya[k] = (double)a->meas_allocated;
		}
		if (!all)
			continue;
		if ((rc = add_item(&s->arrays, &s->narrays, err)) != 0)
			goto out;
		it = &s->arrays[s->narrays - 1];
		snprintf(it->id, sizeof(it->id), "%s", a0->name);
		snprintf(it->stage, sizeof(it->stage), "%s", a0->stage);
		it->per_halo = st0 != NULL && st0->per_halo;
		if ((rc = fit_runs(s, yr, &it->requested, err)) != 0)
			goto out;
		if (s->measured && (rc = fit_runs(s, ya, &it->allocated, err)) != 0)
			goto out;
		it->fitted_requested = sm_fit_at(&it->requested, (double)s->target_n);
		it->fitted_allocated = s->measured ? sm_fit_at(&it->allocated, (double)s->target_n) : 0;
		if (it->per_halo && strcmp(it->id, "sphere_mask") == 0)
			it->note = "one byte per cell: scales with N";
		else if (it->per_halo && strcmp(it->id, "histogram") == 0)
			it->note = "fixed size";
		else if (it->per_halo)
			it->note = "sphere cells: the fit takes them as proportional to N; not judged";
		else
			it->note = stage_note(it->stage, 0, r0->select);
		ea = est_array(e, a0->stage, a0->name);
		if (ea != NULL) {
			it->has_est = 1;
			it->est_requested = ea->requested;
			it->est_allocated = ea->allocated;
			sm_report_judge(it->est_requested, pos_or_zero(it->fitted_requested),
					s->tolerance_pct, SM_REPORT_ABS_BOUND, &it->cmp);
			if (!scales_with_n(it->stage))
				it->cmp.verdict = SM_VERDICT_NA;
			else if (it->cmp.verdict == SM_VERDICT_FAIL)
				s->nfail++;
		}
	}
out:
	free(yr);
	free(ya);
	free(yl);
	return rc;
}

static const sm_scale_item *item(const sm_scale_item *items, size_t n, const char *stage,
				 const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((stage == NULL || strcmp(items[i].stage, stage) == 0) && strcmp(items[i].id, id) == 0)
			return &items[i];
	return NULL;
}

/* The fitted figure for a documented row; 0 when the runs cannot give one. */
static int doc_fitted(const sm_scale *s, const sm_est_documented *d, int64_t *out)
{
	const sm_scale_item *it, *a, *b, *c;
	int f32 = strcmp(s->positions, SM_DTYPE_NAME_F32) == 0;

	if (strcmp(d->stage, SM_STAGE_LOAD_HALOS) == 0 && strstr(d->what, "kept") != NULL) {
		it = item(s->stages, s->nstages, NULL, SM_STAGE_LOAD_HALOS);
		if (it != NULL)
			*out = it->fitted_live_end;
		return it != NULL;
	}
	if (strcmp(d->stage, SM_STAGE_LOAD_GAS_FIELDS) == 0) {
		a = item(s->arrays, s->narrays, SM_STAGE_LOAD_GAS_FIELDS, SM_ARRAY_INTERNAL_ENERGY);
		b = item(s->arrays, s->narrays, SM_STAGE_LOAD_GAS_FIELDS, SM_ARRAY_ELECTRON_ABUNDANCE);
		c = item(s->arrays, s->narrays, SM_STAGE_LOAD_GAS_FIELDS, SM_ARRAY_STAR_FORMATION_RATE);
		if (a == NULL || b == NULL || c == NULL)
			return 0;
		*out = a->fitted_requested + b->fitted_requested + c->fitted_requested;
		return 1;
	}
	if (strcmp(d->stage, SM_STAGE_COMPUTE_TEMPERATURE) == 0) {
		if (strstr(d->what, "peak") != NULL) {
			it = item(s->stages, s->nstages, NULL, SM_STAGE_COMPUTE_TEMPERATURE);
			if (it != NULL)
				*out = it->fitted_requested;
			return it != NULL;
		}
		it = item(s->arrays, s->narrays, SM_STAGE_COMPUTE_TEMPERATURE, SM_ARRAY_TEMPERATURE);
		if (it != NULL)
			*out = it->fitted_requested;
		return it != NULL;
	}
	if (strcmp(d->stage, SM_STAGE_LOAD_POSITIONS) == 0) {
		int want32 = strstr(d->what, SM_DTYPE_NAME_F32) != NULL;

		if (want32 != f32)
			return 0;
		if (strstr(d->what, "total") != NULL) {
			it = item(s->stages, s->nstages, NULL, SM_STAGE_LOAD_POSITIONS);
			if (it != NULL)
				*out = it->fitted_live_end;
			return it != NULL;
		}
		it = item(s->arrays, s->narrays, SM_STAGE_LOAD_POSITIONS, SM_ARRAY_COORDINATES);
		if (it != NULL)
			*out = it->fitted_requested;
		return it != NULL;
	}
	return 0;
}

static int documented(sm_scale *s, const sm_est_input *in, const sm_estimate *e, sm_error *err)
{
	sm_est_documented rows[SM_EST_MAX_DOCUMENTED];
	int n = sm_est_documented_rows(in, e, rows, SM_EST_MAX_DOCUMENTED, err), i;

	if (n < 0)
		return n;
	for (i = 0; i < n && s->ndocs < SM_SCALE_MAX_DOCS; i++) {
		const sm_est_documented *d = &rows[i];
		sm_scale_doc *o = &s->docs[s->ndocs++];
		uint64_t basis;

		memset(o, 0, sizeof(*o));
		o->step = d->step;
		o->stage = d->stage;
		o->what = d->what;
		o->documented_text = d->documented_text;
		o->note = d->note;
		o->documented = d->documented;
		o->estimated = d->estimated;
		if (d->unexplained)
			o->kind = SM_DOC_UNEXPLAINED;
		else if (strcmp(d->step, "1") != 0 &&
			 (d->notebook > 0 || strcmp(d->stage, SM_STAGE_LOAD_GAS_FIELDS) == 0))
			o->kind = SM_DOC_ARITHMETIC;
		else
			o->kind = SM_DOC_MEASURED;
		o->has_fitted = doc_fitted(s, d, &o->fitted);
		o->basis = o->has_fitted ? "fit" : "estimator";
		basis = o->has_fitted ? pos_or_zero(o->fitted) : o->estimated;
		o->gap = sm__sdiff(o->documented, basis);
		if (o->kind == SM_DOC_ARITHMETIC) {
			sm_report_cmp c;

			o->verdict = sm_report_judge(o->documented, basis, s->tolerance_pct,
						     SM_REPORT_ABS_BOUND, &c);
			if (o->verdict == SM_VERDICT_FAIL)
				s->nfail++;
		} else if (o->kind == SM_DOC_UNEXPLAINED) {
			sm_report_cmp c;

			/* a gap beyond the tolerance is flagged, not hidden */
			o->verdict = sm_report_judge(o->documented, basis, s->tolerance_pct,
						     SM_REPORT_ABS_BOUND, &c);
			if (o->verdict == SM_VERDICT_FAIL)
				s->nflagged++;
		} else {
			o->verdict = SM_VERDICT_NA;
		}
	}
	return 0;
}

/* The capacity verdict at the target: the estimator's (sm_est_verdict_compute) for the runs'
 * options, worded as `snapmem estimate --node-mem` words it. */
static int scale_verdict(sm_scale *s, const sm_est_input *in, const sm_estimate *e,
			 sm_error *err)
{
	sm_est_verdict v;
	char a[32], b[32], c[32];
	int rc;

	if ((rc = sm_est_verdict_compute(in, e, s->node_mem, s->headroom, &v, err)) != 0)
		return rc;
	s->fits = v.fits;
	s->margin = v.margin;
	snprintf(s->verdict_lines[0], sizeof(s->verdict_lines[0]),
		 "node memory %s%s%s%s%s at %s", sm__iec(v.node_mem, a, sizeof(a)),
		 v.headroom > 0 ? " less " : "", v.headroom > 0 ? sm__iec(v.headroom, b, sizeof(b)) : "",
		 v.headroom > 0 ? " headroom: the job may use " : "",
		 v.headroom > 0 ? sm__iec(v.usable, c, sizeof(c)) : "", s->target);
	snprintf(s->verdict_lines[1], sizeof(s->verdict_lines[1]),
		 "verdict: %s — %s: needs %s%s, %s %s", v.fits == 1 ? "FITS" : "does NOT fit",
		 s->options_text, sm__iec(v.configured.need, a, sizeof(a)),
		 v.configured.options.mpi ? " per rank" : "",
		 sm__iec((uint64_t)(v.margin < 0 ? -v.margin : v.margin), b, sizeof(b)),
		 v.fits == 1 ? "to spare" : "short");
	if (v.fits != 1 && v.nchoices > 0 && v.nfit > 0) {
		size_t n = strlen(s->verdict_lines[1]), i;
		char sw[200];

		for (i = 0; i < v.nchoices && !v.choices[i].fits; i++)
			;
		snprintf(s->verdict_lines[1] + n, sizeof(s->verdict_lines[1]) - n,
			 "; the cheapest of %zu combinations that fit: %s (needs %s)", v.nfit,
			 sm_est_options_switches(&v.choices[i].options, sw, sizeof(sw)),
			 sm__iec(v.choices[i].need, c, sizeof(c)));
	}
	sm_est_verdict_release(&v);
	return 0;
}

int sm_scale_compute(const char *const *rundirs, size_t nruns, const char *target,
		     double tolerance_pct, sm_scale *s, sm_error *err)
{
	return sm_scale_compute_node(rundirs, nruns, target, tolerance_pct, 0, 0, s, err);
}

/* The arguments every --scale-to shares: a known target, runs at two sizes or more, a tolerance. */
int sm__scale_check_args(const char *target, size_t nruns, double tolerance_pct, sm_error *err)
{
	if (target == NULL || strcmp(target, "TNG300-1") != 0)
		return sm_error_set(err, SM_EINVAL, "--scale-to: '%s' is not a known target (TNG300-1)",
				    target != NULL ? target : "");
	if (nruns < 2)
		return sm_error_set(err, SM_EINVAL, "--scale-to needs runs at two sizes or more, got %zu "
				    "run directory", nruns);
	if (!(tolerance_pct >= 0) || !isfinite(tolerance_pct))
		return sm_error_set(err, SM_EINVAL, "tolerance %g%% is not a percentage", tolerance_pct);
	return 0;
}

int sm_scale_compute_node(const char *const *rundirs, size_t nruns, const char *target,
			  double tolerance_pct, uint64_t node_mem, uint64_t headroom, sm_scale *s,
			  sm_error *err)
{
	sm_report *runs = NULL;
	sm_model_options o;
	sm_est_input in;
	sm_estimate e;
	size_t i, loaded = 0;
	int rc = 0, have_in = 0, have_e = 0, distinct = 0;

	memset(s, 0, sizeof(*s));
	if ((rc = sm__scale_check_args(target, nruns, tolerance_pct, err)) != 0)
		return rc;
	snprintf(s->target, sizeof(s->target), "%s", target);
	s->target_n = SM_TNG300_GAS_CELLS;
	s->node_mem = node_mem;
	s->headroom = headroom;
	s->fits = -1;
	s->tolerance_pct = tolerance_pct;
	s->nruns = nruns;
	runs = calloc(nruns, sizeof(*runs));
	s->rundirs = calloc(nruns, sizeof(char *));
	s->run_n = calloc(nruns, sizeof(uint64_t));
	if (runs == NULL || s->rundirs == NULL || s->run_n == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "cannot allocate the scale report");
		goto out;
	}
	for (i = 0; i < nruns; i++) {
		s->rundirs[i] = strdup(rundirs[i]);
		if (s->rundirs[i] == NULL) {
			rc = sm_error_set(err, SM_ENOMEM, "cannot allocate the scale report");
			goto out;
		}
		if ((rc = sm_report_load(&runs[i], rundirs[i], err)) != 0)
			goto out;
		loaded++;
		s->run_n[i] = runs[i].gas_cells;
		if (i > 0 && s->run_n[i] != s->run_n[0])
			distinct = 1;
		if (i > 0 && strcmp(runs[i].options_text, runs[0].options_text) != 0) {
			rc = sm_error_set(err, SM_EINVAL, "'%s': options '%s' differ from '%s' of '%s': "
					  "--scale-to needs runs of the same options", rundirs[i],
					  runs[i].options_text, runs[0].options_text, rundirs[0]);
			goto out;
		}
		if (i > 0 && runs[i].measured != runs[0].measured) {
			rc = sm_error_set(err, SM_EINVAL, "'%s': allocator '%s' differs from '%s' of '%s'",
					  rundirs[i], runs[i].allocator, runs[0].allocator, rundirs[0]);
			goto out;
		}
	}
	if (!distinct) {
		rc = sm_error_set(err, SM_EINVAL, "'%s': every run has %llu gas cells: --scale-to needs "
				  "two different sizes", rundirs[0], (unsigned long long)s->run_n[0]);
		goto out;
	}
	s->measured = runs[0].measured;
	snprintf(s->options_text, sizeof(s->options_text), "%s", runs[0].options_text);
	snprintf(s->positions, sizeof(s->positions), "%s", runs[0].positions);
	if ((rc = sm__report_model_options(&runs[0], &o, err)) != 0 ||
	    (rc = sm_est_input_embedded(&in, &o, err)) != 0)
		goto out;
	have_in = 1;
	if ((rc = sm_estimate_compute(&in, &o, &e, err)) != 0)
		goto out;
	have_e = 1;
	if ((rc = fit_stages(s, runs, &e, err)) != 0 || (rc = documented(s, &in, &e, err)) != 0 ||
	    (rc = scale_resident(s, runs, &e, err)) != 0 ||
	    (node_mem > 0 && (rc = scale_verdict(s, &in, &e, err)) != 0))
		goto out;
out:
	if (have_e)
		sm_estimate_release(&e);
	if (have_in)
		sm_est_input_release(&in);
	for (i = 0; i < loaded; i++)
		sm_report_release(&runs[i]);
	free(runs);
	if (rc != 0)
		sm_scale_release(s);
	return rc;
}

void sm_scale_release(sm_scale *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; s->rundirs != NULL && i < s->nruns; i++)
		free(s->rundirs[i]);
	free(s->rundirs);
	free(s->run_n);
	free(s->stages);
	free(s->arrays);
	memset(s, 0, sizeof(*s));
}

/* ---- rendering ------------------------------------------------------------------------------ */

/* GiB with two decimals, as the notebook prints; IEC for gaps below 1 GiB. */
static char *gib(int64_t v, char *buf, size_t len)
{
	if (v >= (INT64_C(1) << 30) || v <= -(INT64_C(1) << 30))
		snprintf(buf, len, "%.2f GiB", (double)v / 1073741824.0);
	else
		sm__iec_signed(v, buf, len);
	return buf;
}

static const char *kind_text(const sm_scale_doc *d, char *buf, size_t len)
{
	char g[32];

	switch (d->kind) {
	case SM_DOC_ARITHMETIC:
		snprintf(buf, len, "%s", d->verdict == SM_VERDICT_PASS ? "matched" : "MISSED");
		break;
	case SM_DOC_UNEXPLAINED:
		if (d->verdict == SM_VERDICT_FAIL)
			snprintf(buf, len, "FLAGGED: %s beyond what the arrays explain",
				 gib(d->gap, g, sizeof(g)));
		else
			snprintf(buf, len, "matched");
		break;
	default:
		snprintf(buf, len, "compared, not judged");
	}
	return buf;
}

static json_t *fit_json(const sm_fit *f)
{
	if (f->n == 0)
		return json_null();
	return json_pack("{s:f, s:f, s:I, s:f}", "a", f->a, "b", f->b, "points", (json_int_t)f->n,
			 "max_residual", f->max_residual);
}

static json_t *item_json(const sm_scale_item *it, int is_array)
{
	json_t *o = json_pack("{s:s, s:b, s:o, s:o, s:I, s:o}", is_array ? "name" : "id", it->id,
			      "per_halo", it->per_halo, "requested_fit", fit_json(&it->requested),
			      "allocated_fit", fit_json(&it->allocated),
			      "fitted_requested_bytes", (json_int_t)it->fitted_requested,
			      "fitted_allocated_bytes", it->allocated.n > 0
								? json_integer(it->fitted_allocated)
								: json_null());

	if (is_array)
		json_object_set_new(o, "stage", json_string(it->stage));
	else
		json_object_set_new(o, "fitted_live_end_bytes", json_integer(it->fitted_live_end));
	json_object_set_new(o, "estimated_requested_bytes",
			    it->has_est ? json_integer((json_int_t)it->est_requested) : json_null());
	json_object_set_new(o, "estimated_allocated_bytes",
			    it->has_est ? json_integer((json_int_t)it->est_allocated) : json_null());
	json_object_set_new(o, "difference_bytes",
			    it->has_est ? json_integer(it->cmp.diff) : json_null());
	json_object_set_new(o, "verdict", json_string(it->cmp.verdict == SM_VERDICT_PASS ? "pass"
						      : it->cmp.verdict == SM_VERDICT_FAIL ? "fail"
											   : "n/a"));
	json_object_set_new(o, "note", it->note != NULL ? json_string(it->note) : json_null());
	return o;
}

static int scale_json(const sm_scale *s, char **out, sm_error *err)
{
	json_t *root = json_object(), *runs = json_array(), *st = json_array(), *ar = json_array(),
	       *docs = json_array();
	size_t i;

	for (i = 0; i < s->nruns; i++)
		json_array_append_new(runs, json_pack("{s:s, s:I}", "rundir", s->rundirs[i],
						      "gas_cells", (json_int_t)s->run_n[i]));
	for (i = 0; i < s->nstages; i++)
		json_array_append_new(st, item_json(&s->stages[i], 0));
	for (i = 0; i < s->narrays; i++)
		json_array_append_new(ar, item_json(&s->arrays[i], 1));
	for (i = 0; i < s->ndocs; i++) {
		const sm_scale_doc *d = &s->docs[i];

		json_array_append_new(docs, json_pack(
			"{s:s, s:s, s:s, s:s, s:I, s:o, s:I, s:s, s:I, s:f, s:s, s:s, s:s}", "step",
			d->step, "stage", d->stage, "what", d->what, "documented_text",
			d->documented_text, "documented_bytes", (json_int_t)d->documented,
			"fitted_bytes", d->has_fitted ? json_integer(d->fitted) : json_null(),
			"estimated_bytes", (json_int_t)d->estimated, "basis", d->basis, "gap_bytes",
			(json_int_t)d->gap, "gap_gib", (double)d->gap / 1073741824.0, "kind",
			d->kind == SM_DOC_ARITHMETIC ? "arithmetic"
			: d->kind == SM_DOC_UNEXPLAINED ? "unexplained" : "measured",
			"verdict", d->kind == SM_DOC_ARITHMETIC
					   ? (d->verdict == SM_VERDICT_PASS ? "matched" : "missed")
				   : d->kind == SM_DOC_UNEXPLAINED
					   ? (d->verdict == SM_VERDICT_FAIL ? "flagged" : "matched")
					   : "n/a",
			"note", d->note));
	}
	json_object_set_new(root, "schema", json_string("snapmem.scale/1"));
	json_object_set_new(root, "target", json_string(s->target));
	json_object_set_new(root, "target_gas_cells", json_integer((json_int_t)s->target_n));
	json_object_set_new(root, "options", json_string(s->options_text));
	json_object_set_new(root, "tolerance_percent", json_real(s->tolerance_pct));
	json_object_set_new(root, "runs", runs);
	json_object_set_new(root, "stages", st);
	json_object_set_new(root, "arrays", ar);
	json_object_set_new(root, "documented", docs);
	json_object_set_new(root, "resident", !s->has_resident ? json_null() : json_pack(
		"{s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:o, s:o, s:[s,s,s,s]}",
		"fit_a", s->resident.a, "fit_b", s->resident.b,
		"fitted_vm_hwm_bytes", (json_int_t)s->fitted_resident,
		"estimated_peak_resident_bytes", (json_int_t)s->est_resident,
		"estimated_need_bytes", (json_int_t)s->est_need,
		"fitted_requested_peak_bytes", (json_int_t)s->fitted_requested_peak,
		"composed_bytes", (json_int_t)s->composed_resident,
		"beyond_arrays_mean_bytes", (json_int_t)s->beyond_mean,
		"beyond_arrays_per_cell", s->beyond.b,
		"composed_comparison", sm__cmp_json(&s->composed_cmp),
		"comparison", sm__cmp_json(&s->resident_cmp),
		"lines", s->resident_lines[0], s->resident_lines[1], s->resident_lines[2],
		s->resident_lines[3]));
	json_object_set_new(root, "verdict", s->node_mem == 0 ? json_null() : json_pack(
		"{s:I, s:I, s:b, s:I, s:[s,s]}", "node_mem_bytes", (json_int_t)s->node_mem,
		"headroom_bytes", (json_int_t)s->headroom, "fits", s->fits == 1,
		"margin_bytes", (json_int_t)s->margin, "lines", s->verdict_lines[0],
		s->verdict_lines[1]));
	json_object_set_new(root, "failed", json_integer((json_int_t)s->nfail));
	json_object_set_new(root, "flagged", json_integer((json_int_t)s->nflagged));
	*out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (*out == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot build the scale JSON");
	{
		size_t l = strlen(*out);
		char *t = realloc(*out, l + 2);

		if (t == NULL) {
			free(*out);
			*out = NULL;
			return sm_error_set(err, SM_ENOMEM, "cannot build the scale JSON");
		}
		t[l] = '\n';
		t[l + 1] = '\0';
		*out = t;
	}
	return 0;
}

static void scale_text(const sm_scale *s, FILE *f, int md)
{
	char a[40], b[40], c[40], d[40], e[40], k[128], n[40];
	size_t i;

	if (md)
		fprintf(f, "# snapmem: runs scaled to %s\n\n", s->target);
	else
		fprintf(f, "snapmem report --scale-to %s\n", s->target);
	fprintf(f, "%s%s N = %s gas cells; fit bytes = a + b*N over %zu runs (%s):\n", md ? "" : "  ",
		s->target, sm__commas(s->target_n, a, sizeof(a)), s->nruns, s->options_text);
	for (i = 0; i < s->nruns; i++)
		fprintf(f, "%s%s (N = %s)\n", md ? "- " : "    ", s->rundirs[i],
			sm__commas(s->run_n[i], a, sizeof(a)));
	fprintf(f, "%s%s\n\n", md ? "\n" : "  ",
		s->nfail == 0 ? "verdict: PASS, the notebook's arithmetic (steps 2-4) and every "
				"whole-snapshot stage match"
			      : "verdict: FAIL, a figure that must match does not");
	if (s->nflagged > 0)
		fprintf(f, "%s%zu documented figure%s flagged: a gap the notebook does not explain "
			"(below)\n\n", md ? "" : "  ", s->nflagged, s->nflagged > 1 ? "s" : "");
	if (s->verdict_lines[0][0] != '\0') {
		if (md)
			fprintf(f, "## Verdict: %s\n\n", s->verdict_lines[0]);
		else
			fprintf(f, "  %s\n", s->verdict_lines[0]);
		fprintf(f, "%s%s\n\n", md ? "" : "  ", s->verdict_lines[1]);
	}
	if (s->has_resident) {
		if (md)
			fprintf(f, "## The whole process at %s\n\n", s->target);
		for (i = 0; i < 4; i++)
			if (s->resident_lines[i][0] != '\0')
				fprintf(f, "%s%s\n", md ? "- " : "  ", s->resident_lines[i]);
		fputc('\n', f);
	}

	/* documented first: what the reader came for */
	if (md)
		fprintf(f, "## The notebook's documented figures\n\n| step | stage | what | documented | "
			"fitted | estimator | documented - %s | verdict |\n"
			"|---|---|---|---:|---:|---:|---:|---|\n", "basis");
	else
		fprintf(f, "DOCUMENTED FIGURES (notebook; its GB are GiB) beside the fit and the "
			"estimator\n  %-4s %-58s %22s %13s %13s %13s  %s\n", "step", "what",
			"documented", "fitted", "estimator", "gap", "verdict");
	for (i = 0; i < s->ndocs; i++) {
		const sm_scale_doc *dd = &s->docs[i];

		if (dd->has_fitted)
			sm__iec(pos_or_zero(dd->fitted), b, sizeof(b));
		else
			snprintf(b, sizeof(b), "n/a");
		sm__iec(dd->estimated, c, sizeof(c));
		gib(dd->gap, d, sizeof(d));
		kind_text(dd, k, sizeof(k));
		if (md)
			fprintf(f, "| %s | `%s` | %s | %s (%s B) | %s | %s | %s (%s) | %s%s%s |\n",
				dd->step, dd->stage, dd->what, dd->documented_text,
				sm__commas(dd->documented, a, sizeof(a)), b, c, d, dd->basis,
				dd->verdict == SM_VERDICT_FAIL ? "**" : "", k,
				dd->verdict == SM_VERDICT_FAIL ? "**" : "");
		else
			fprintf(f, "  %-4s %-58.58s %22s %13s %13s %13s  %s\n", dd->step, dd->what,
				dd->documented_text, b, c, d, k);
	}
	if (md)
		fprintf(f, "\nFitted: the runs' fit at %s's N; estimator: `snapmem estimate` with the "
			"notebook's choices; the gap is documented minus the fit where there is one. "
			"Measurements of the notebook's numpy process (temporaries) are compared, not "
			"judged.\n\n", s->target);
	else
		fprintf(f, "  gap = documented - fit (or estimator where the runs give no fit)\n\n");

	if (md)
		fprintf(f, "## Stages at %s\n\n| stage | fit a (B) | fit b (B/cell) | fitted requested "
			"| estimator | difference | verdict | fitted allocated | estimator allocated "
			"| note |\n|---|---:|---:|---:|---:|---:|---|---:|---:|---|\n", s->target);
	else
		fprintf(f, "STAGES at %s (requested peak; allocated above the baseline)\n  %-22s %14s "
			"%10s %13s %13s %12s %-5s %13s %13s  %s\n", s->target, "stage", "a (B)",
			"b (B/cell)", "fitted", "estimator", "difference", "", "fitted alloc",
			"est alloc", "note");
	for (i = 0; i < s->nstages; i++) {
		const sm_scale_item *it = &s->stages[i];

		snprintf(n, sizeof(n), "%.4f", it->requested.b);
		fprintf(f, md ? "| `%s` | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n"
			      : "  %-22s %14.0f %10s %13s %13s %12s %-5s %13s %13s  %s\n",
			it->id, it->requested.a, n, sm__iec(pos_or_zero(it->fitted_requested), a, sizeof(a)),
			it->has_est ? sm__iec(it->est_requested, b, sizeof(b)) : "n/a",
			it->has_est ? sm__iec_signed(it->cmp.diff, c, sizeof(c)) : "",
			sm_verdict_name(it->cmp.verdict),
			it->allocated.n > 0 ? sm__iec(pos_or_zero(it->fitted_allocated), d, sizeof(d)) : "n/a",
			it->has_est ? sm__iec(it->est_allocated, e, sizeof(e)) : "n/a", it->note);
	}
	if (md)
		fprintf(f, "\nAllocated figures are shown, not judged: jemalloc's size classes at "
			"%s's sizes (a 53.85 GiB request takes a 56 GiB class) do not follow a fit over "
			"small runs.\n\n## Arrays at %s\n\n| stage | array | fit a (B) | fit b (B/cell) "
			"| fitted | estimator | difference | verdict | note |\n"
			"|---|---|---:|---:|---:|---:|---:|---|---|\n", s->target, s->target);
	else
		fprintf(f, "  allocated: shown, not judged (size classes at these sizes do not follow "
			"a fit over small runs)\n\nARRAYS at %s (requested)\n  %-20s %-22s %12s %10s "
			"%13s %13s %12s %-5s  %s\n", s->target, "stage", "array", "a (B)", "b (B/cell)",
			"fitted", "estimator", "difference", "", "note");
	for (i = 0; i < s->narrays; i++) {
		const sm_scale_item *it = &s->arrays[i];

		snprintf(n, sizeof(n), "%.4f", it->requested.b);
		fprintf(f, md ? "| `%s` | `%s` | %.0f | %s | %s | %s | %s | %s | %s |\n"
			      : "  %-20s %-22s %12.0f %10s %13s %13s %12s %-5s  %s\n",
			it->stage, it->id, it->requested.a, n,
			sm__iec(pos_or_zero(it->fitted_requested), a, sizeof(a)),
			it->has_est ? sm__iec(it->est_requested, b, sizeof(b)) : "n/a",
			it->has_est ? sm__iec_signed(it->cmp.diff, c, sizeof(c)) : "",
			sm_verdict_name(it->cmp.verdict), it->note);
	}
}

int sm_scale_render(const sm_scale *s, sm_report_format fmt, char **out, sm_error *err)
{
	size_t len = 0;
	FILE *f;

	*out = NULL;
	if (fmt == SM_REPORT_JSON)
		return scale_json(s, out, err);
	if (fmt == SM_REPORT_HTML)
		return sm_error_set(err, SM_EINVAL, "--scale-to writes table, markdown or json");
	f = open_memstream(out, &len);
	if (f == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the report text");
	scale_text(s, f, fmt == SM_REPORT_MARKDOWN);
	if (fclose(f) != 0) {
		free(*out);
		*out = NULL;
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the report text");
	}
	return 0;
}
