/*
 * The comparison model: one verdict rule (sm_report_judge) applied to every stage of a loaded
 * report, the text helpers the writers share, the format dispatch, and the pipeline's entry point
 * sm_report_write_files (report.md and report.html beside estimate.json and memory.json, each
 * written through the shared writer, sm_out_write).
 *
 * The rule: a figure of 1 MiB or more passes when |measured - estimated| <= tolerance % of the
 * estimate; below 1 MiB an absolute bound (64 KiB by default) applies, because a few KiB of HDF5 or
 * libc state are noise there, not a modelling error. Requested bytes and allocated bytes above the
 * baseline are judged separately; allocated is n/a when the allocator was not measured.
 * "Allocated" is what jemalloc reserved for the tracked arrays live at the stage's peak: the part the
 * model claims to predict. Memory no array explains (HDF5's state while a file is open, libraries)
 * is a finding, listed first with its sites, and judged only under --strict, where the process's
 * allocated peak above the baseline must match the estimate. A distributed run's ranks are judged
 * the same way against the estimate's per-rank peak (mpi.c); nfail counts stages and ranks.
 * A stage the estimate models but the run never reached fails, except the per-halo stages of a
 * run that selected no halo (n/a); an estimate that models no stage at all is refused.
 * A program measured by `snapmem profile` (any program, any description's stage ids) is judged by
 * its allocated peak above its memory when its first modelled stage began (its temporaries are
 * not tracked arrays); its requested figure, the tracked arrays alone, is shown, not judged.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/internal.h"
#include "snapmem/outfile.h"
#include "snapmem/units.h"

int sm_report_format_from_name(const char *name, sm_report_format *out)
{
	static const char *names[] = {"table", "markdown", "json", "html"};
	size_t i;

	for (i = 0; i < 4; i++)
		if (name != NULL && strcmp(name, names[i]) == 0) {
			*out = (sm_report_format)i;
			return 0;
		}
	return SM_EINVAL;
}

const char *sm_verdict_name(sm_verdict v)
{
	return v == SM_VERDICT_PASS ? "pass" : v == SM_VERDICT_FAIL ? "FAIL" : "n/a";
}

int64_t sm__sdiff(uint64_t a, uint64_t b)
{
	if (a >= b)
		return a - b > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(a - b);
	return b - a > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)(b - a);
}

sm_verdict sm_report_judge(uint64_t estimated, uint64_t measured, double pct, uint64_t abs_bound,
			   sm_report_cmp *c)
{
	uint64_t ad = measured > estimated ? measured - estimated : estimated - measured;
	sm_report_cmp tmp;

	if (c == NULL)
		c = &tmp;
	memset(c, 0, sizeof(*c));
	c->estimated = estimated;
	c->measured = measured;
	c->diff = sm__sdiff(measured, estimated);
	if (estimated > 0)
		c->pct = (double)c->diff / (double)estimated * 100.0;
	else
		c->pct = measured == 0 ? 0.0 : INFINITY;
	if (estimated >= SM_REPORT_SMALL_STAGE) {
		long double b = (long double)estimated * (long double)pct / 100.0L;

		c->bound = b >= (long double)UINT64_MAX ? UINT64_MAX : (uint64_t)b;
	} else {
		c->bound = abs_bound;
		c->absolute = 1;
	}
	c->verdict = ad <= c->bound ? SM_VERDICT_PASS : SM_VERDICT_FAIL;
	return c->verdict;
}

int sm_report_compare(sm_report *r, double tolerance_pct, uint64_t abs_bound, sm_error *err)
{
	size_t i;

	if (!(tolerance_pct >= 0.0) || !isfinite(tolerance_pct))
		return sm_error_set(err, SM_EINVAL, "tolerance %g%% is not a percentage", tolerance_pct);
	for (i = 0; i < r->nstages && !r->stages[i].has_est; i++)
		;
	if (i == r->nstages)
		return sm_error_set(err, SM_EFORMAT, "'%s': the estimate models no stage: nothing to "
				    "judge the run against", r->estimate_path);
	r->tolerance_pct = tolerance_pct;
	r->abs_bound = abs_bound;
	r->nfail = 0;
	sm_report_judge(r->est_baseline, r->meas_baseline, tolerance_pct, abs_bound, &r->baseline);
	if (!r->measured)
		r->baseline.verdict = SM_VERDICT_NA;
	for (i = 0; i < r->nstages; i++) {
		sm_report_stage *s = &r->stages[i];

		memset(&s->requested, 0, sizeof(s->requested));
		memset(&s->allocated, 0, sizeof(s->allocated));
		if (!s->has_est) {
			/* measured only: not modelled, a finding rather than a verdict */
			s->requested.measured = s->meas_peak;
			s->allocated.measured = s->meas_allocated;
			if (r->profiled)
				s->unexplained = s->meas_allocated;
			continue;
		}
		if (!s->has_meas) {
			/* the model has a stage the run never reached: a failure, unless it is a
			 * per-halo stage and no halo was selected (an honest empty result) */
			s->requested.estimated = s->est_peak;
			if (s->per_halo && r->nhalos_selected == 0) {
				s->requested.verdict = SM_VERDICT_NA;
				s->allocated.verdict = SM_VERDICT_NA;
				continue;
			}
			s->requested.verdict = SM_VERDICT_FAIL;
			r->nfail++;
			continue;
		}
		sm_report_judge(s->est_peak, s->meas_peak, tolerance_pct, abs_bound, &s->requested);
		if (r->profiled) {
			/* a program's requested figure counts its tracked arrays alone (numpy's
			 * temporaries are not): shown; the allocated peak above its start judged, and
			 * what of it the model does not explain is the finding */
			s->requested.verdict = SM_VERDICT_NA;
			s->unexplained = s->meas_allocated > s->est_peak_allocated
						 ? s->meas_allocated - s->est_peak_allocated : 0;
		}
		if (r->measured)
			sm_report_judge(s->est_peak_allocated,
					r->strict || r->profiled ? s->meas_allocated
								 : s->tracked_allocated_peak,
					tolerance_pct, abs_bound, &s->allocated);
		else {
			s->allocated.estimated = s->est_peak_allocated;
			s->allocated.verdict = SM_VERDICT_NA;
		}
		if (s->requested.verdict == SM_VERDICT_FAIL || s->allocated.verdict == SM_VERDICT_FAIL)
			r->nfail++;
	}
	/* a distributed run: every rank against the estimate's per-rank peak, counted in nfail */
	if (sm__report_mpi_of(r) != NULL)
		r->nfail += sm__report_mpi_compare(r, sm__report_mpi_of(r));
	/* the whole process's resident peak against VmHWM (resident.c), counted in nfail */
	sm__report_resident(r, tolerance_pct);
	if (r->resident_failed)
		r->nfail++;
	return sm__report_findings(r, err);
}

const char *sm__verdict_text(const sm_report *r, char *buf, size_t len)
{
	const sm__report_mpi *m = sm__report_mpi_of(r);
	size_t fr = m != NULL ? m->nfail : 0, fs = r->nfail - fr - (size_t)r->resident_failed;

	if (r->resident_failed)
		snprintf(buf, len, "FAIL, the resident peak misses VmHWM by more than %g%%%s",
			 r->resident_tolerance_pct, fs + fr > 0 ? "; more below" : "");
	else if (r->nfail == 0)
		snprintf(buf, len, "PASS, every stage%s within the tolerance",
			 m != NULL ? " and every rank" : "");
	else if (fr == 0)
		snprintf(buf, len, "FAIL, %zu stage%s miss the tolerance", fs, fs > 1 ? "s" : "");
	else if (fs == 0)
		snprintf(buf, len, "FAIL, %zu rank%s miss the tolerance", fr, fr > 1 ? "s" : "");
	else
		snprintf(buf, len, "FAIL, %zu stage%s and %zu rank%s miss the tolerance", fs,
			 fs > 1 ? "s" : "", fr, fr > 1 ? "s" : "");
	return buf;
}

int sm__stage_has_finding(const sm_report *r, const sm_report_stage *s)
{
	if (s->has_meas && !s->has_est)
		return 1;
	return r->measured && s->has_meas && s->unexplained > r->abs_bound;
}

/* ---- text helpers --------------------------------------------------------------------------- */

char *sm__commas(uint64_t v, char *buf, size_t len)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v), i, j = 0;

	for (i = 0; i < n && (size_t)j + 2 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[j++] = ',';
		buf[j++] = tmp[i];
	}
	buf[j] = '\0';
	return buf;
}

char *sm__iec(uint64_t v, char *buf, size_t len)
{
	return sm_format_iec(v, buf, len);
}

char *sm__iec_signed(int64_t v, char *buf, size_t len)
{
	return sm_format_iec_signed(v, buf, len);
}

char *sm__pct(const sm_report_cmp *c, char *buf, size_t len)
{
	if (isinf(c->pct))
		snprintf(buf, len, "new");
	else if (c->diff == 0)
		snprintf(buf, len, "exact");
	else
		snprintf(buf, len, "%+.3f%%", c->pct);
	return buf;
}

void sm__html_escape(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

void sm__md_escape(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '|' || *s == '*' || *s == '_' || *s == '`' || *s == '<' || *s == '>')
			fputc('\\', f);
		fputc(*s, f);
	}
}

/* ---- dispatch and files --------------------------------------------------------------------- */

int sm_report_render(const sm_report *r, sm_report_format fmt, char **out, sm_error *err)
{
	size_t len = 0;
	FILE *f;
	int rc = 0;

	*out = NULL;
	if (fmt == SM_REPORT_JSON)
		return sm__report_json(r, out, err);
	f = open_memstream(out, &len);
	if (f == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the report text");
	switch (fmt) {
	case SM_REPORT_MARKDOWN: rc = sm__report_markdown(r, f); break;
	case SM_REPORT_HTML: rc = sm__report_html(r, f); break;
	default: rc = sm__report_table(r, f); break;
	}
	if (fclose(f) != 0 || rc != 0) {
		free(*out);
		*out = NULL;
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the report text");
	}
	return 0;
}

int sm_report_write_text(const char *path, const char *text, sm_error *err)
{
	return sm_out_write(path, text, strlen(text), NULL, 0, err);
}

int sm_report_write_files_as(const char *rundir, const char *shown, double tolerance_pct,
			     sm_error *err)
{
	sm_report r;
	char path[SM_PATH_MAX], *md = NULL, *html = NULL;
	int rc;

	if ((rc = sm_report_load(&r, rundir, err)) != 0)
		return rc;
	if (shown != NULL)
		snprintf(r.rundir, sizeof(r.rundir), "%s", shown);
	if ((rc = sm_report_compare(&r, tolerance_pct, SM_REPORT_ABS_BOUND, err)) != 0 ||
	    (rc = sm_report_render(&r, SM_REPORT_MARKDOWN, &md, err)) != 0 ||
	    (rc = sm_report_render(&r, SM_REPORT_HTML, &html, err)) != 0)
		goto out;
	if ((size_t)snprintf(path, sizeof(path), "%s/report.md", rundir) >= sizeof(path)) {
		rc = sm_error_set(err, SM_EINVAL, "'%.200s...': path too long", rundir);
		goto out;
	}
	if ((rc = sm_report_write_text(path, md, err)) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/report.html", rundir);
	rc = sm_report_write_text(path, html, err);
out:
	free(html);
	free(md);
	sm_report_release(&r);
	return rc;
}

int sm_report_write_files(const char *rundir, double tolerance_pct, sm_error *err)
{
	return sm_report_write_files_as(rundir, NULL, tolerance_pct, err);
}
