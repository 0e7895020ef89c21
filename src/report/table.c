/*
 * The run report as a plain-text table for a terminal: findings first (allocations no tracked
 * array explains, arrays and stages the model does not know), then the baseline on its own line,
 * the stage verdicts (requested, allocated above the baseline, resident, documented), the named
 * arrays, the per-halo distribution and the top allocation sites. IEC units with exact byte
 * counts where a difference matters.
 */
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"

static const char *stage_name(const sm_report_stage *s, char *buf, size_t len)
{
	if (s->per_halo && s->instance >= 0)
		snprintf(buf, len, "%s [halo %lld]", s->id, (long long)s->instance);
	else
		snprintf(buf, len, "%s", s->id);
	return buf;
}

static void findings(const sm_report *r, FILE *f)
{
	char a[32], b[32];
	size_t i, j, n = 0;

	fprintf(f, "FINDINGS (unmodelled memory first)\n");
	for (i = 0; i < r->nfindings; i++) {
		const sm_report_finding *fd = &r->findings[i];

		if (fd->kind == SM_FINDING_UNMODELLED_STAGE) {
			fprintf(f, "  - stage '%s' ran but is not in the model (requested peak %s)\n",
				r->stages[fd->index].id, sm__iec(fd->bytes, a, sizeof(a)));
		} else if (fd->kind == SM_FINDING_UNMODELLED_ARRAY) {
			const sm_report_array *ar = &r->arrays[fd->index];

			fprintf(f, "  - array '%s' in '%s' is not in the model: %s requested (%s B)\n",
				ar->name, ar->stage, sm__iec(fd->bytes, a, sizeof(a)),
				sm__commas(fd->bytes, b, sizeof(b)));
		} else {
			const sm_report_stage *s = &r->stages[fd->index];

			fprintf(f, "  - %s: %s (%s B) allocated at the peak that no tracked array "
				"explains\n", s->id, sm__iec(fd->bytes, a, sizeof(a)),
				sm__commas(fd->bytes, b, sizeof(b)));
			for (j = 0; j < s->nsites; j++)
				if (!s->sites[j].tracked)
					fprintf(f, "      untracked site %lld: %s  %s\n",
						(long long)s->sites[j].id,
						sm__iec(s->sites[j].bytes, a, sizeof(a)),
						s->sites[j].where);
		}
	}
	n = r->nfindings;
	if (n == 0)
		fprintf(f, "  none: every stage's allocated bytes beyond %s are explained by tracked "
			"arrays the model knows\n", sm__iec(r->abs_bound, a, sizeof(a)));
	if (!r->measured)
		fprintf(f, "  (allocator '%s' not measured: allocated and unexplained bytes are n/a)\n",
			r->allocator);
	fputc('\n', f);
}

int sm__report_table(const sm_report *r, FILE *f)
{
	char n1[96], a[32], b[32], c[32], d[32], e[32], g[32], h[32], p1[32], p2[32], vt[96];
	size_t i, j;

	fprintf(f, "snapmem report: %s\n", r->rundir);
	if (r->pipeline[0] != '\0' && strcmp(r->pipeline, "radial-profiles") != 0)
		fprintf(f, "  %s%s%s\n", r->options_text, r->source[0] ? "; source " : "", r->source);
	else
		fprintf(f, "  source %s, %s gas cells, %llu halos; %s\n", r->source,
			sm__commas(r->gas_cells, a, sizeof(a)), (unsigned long long)r->nhalos_selected,
			r->options_text);
	fprintf(f, "  allocator %s%s; run %s%s%s\n", r->allocator, r->measured ? " (measured)" : " (not measured)",
		r->complete ? "complete" : "INCOMPLETE", r->complete ? "" : ": ",
		r->complete ? "" : r->incomplete_reason);
	if (r->run_id[0] != '\0')
		fprintf(f, "  run id %s%s%s\n", r->run_id, r->run_started[0] ? ", started " : "",
			r->run_started);
	fprintf(f, "  tolerance %g%% for figures of 1 MiB and more, %s below\n", r->tolerance_pct,
		sm__iec(r->abs_bound, a, sizeof(a)));
	fprintf(f, "  verdict: %s\n", sm__verdict_text(r, vt, sizeof(vt)));
	for (i = 0; i < 2; i++)
		if (r->capacity_lines[i][0] != '\0')
			fprintf(f, "  %s\n", r->capacity_lines[i]);
	fputc('\n', f);
	findings(r, f);

	fprintf(f, "baseline (%s, allocated): estimated %s, measured %s, %s (%s); "
		"resident %s\n\n", r->profiled ? "the program at its first modelled stage" : "process",
		sm__iec(r->est_baseline, a, sizeof(a)),
		r->measured ? sm__iec(r->meas_baseline, b, sizeof(b)) : "n/a",
		r->measured ? sm__iec_signed(r->baseline.diff, c, sizeof(c)) : "n/a",
		r->measured ? sm__pct(&r->baseline, p1, sizeof(p1)) : "n/a",
		r->measured ? sm__iec(r->meas_baseline_resident, d, sizeof(d)) : "n/a");
	for (i = 0; i < 4; i++)
		if (r->resident_lines[i][0] != '\0')
			fprintf(f, "%s%s\n", i == 0 ? "" : "  ", r->resident_lines[i]);
	if (r->resident_lines[0][0] != '\0')
		fputc('\n', f);

	fprintf(f, "STAGES (requested peak; allocated: %s; documented: n/a for "
		"this run, see --scale-to TNG300-1)\n",
		r->profiled ? "the program's peak above its memory when its first modelled stage "
			      "began; requested: the tracked arrays alone, not judged"
		: r->strict ? "the process's peak above the baseline (--strict)"
			  : "the tracked arrays' size classes at the peak, untracked memory under FINDINGS");
	fprintf(f, "  %-30s %11s %11s %12s %9s %-5s | %11s %11s %12s %9s %-5s | %11s %10s\n",
		"stage", "est req", "meas req", "diff", "%", "", "est alloc", "meas alloc", "diff",
		"%", "", "resident", "documented");
	for (i = 0; i < r->nstages; i++) {
		const sm_report_stage *s = &r->stages[i];

		stage_name(s, n1, sizeof(n1));
		if (!s->has_est) {
			fprintf(f, "  %-30s %11s %11s %12s %9s %-5s | %11s %11s %12s %9s %-5s | %11s %10s\n",
				n1, "not modelled", sm__iec(s->meas_peak, a, sizeof(a)), "", "", "", "",
				r->measured ? sm__iec(s->meas_allocated, b, sizeof(b)) : "n/a", "", "", "",
				r->measured ? sm__iec(s->meas_resident, c, sizeof(c)) : "n/a", "n/a");
			continue;
		}
		if (!s->has_meas) {
			fprintf(f, "  %-30s %11s %11s %12s %9s %-5s | %11s\n", n1,
				sm__iec(s->est_peak, a, sizeof(a)),
				s->requested.verdict == SM_VERDICT_NA ? "no halo" : "not run", "", "",
				sm_verdict_name(s->requested.verdict),
				sm__iec(s->est_peak_allocated, b, sizeof(b)));
			continue;
		}
		fprintf(f, "  %-30s %11s %11s %12s %9s %-5s | %11s %11s %12s %9s %-5s | %11s %10s\n", n1,
			sm__iec(s->est_peak, a, sizeof(a)), sm__iec(s->meas_peak, b, sizeof(b)),
			sm__iec_signed(s->requested.diff, c, sizeof(c)),
			sm__pct(&s->requested, p1, sizeof(p1)), sm_verdict_name(s->requested.verdict),
			sm__iec(s->est_peak_allocated, d, sizeof(d)),
			r->measured ? sm__iec(s->allocated.measured, e, sizeof(e)) : "n/a",
			r->measured ? sm__iec_signed(s->allocated.diff, g, sizeof(g)) : "",
			r->measured ? sm__pct(&s->allocated, p2, sizeof(p2)) : "",
			sm_verdict_name(s->allocated.verdict),
			r->measured ? sm__iec(s->meas_resident, h, sizeof(h)) : "n/a", "n/a");
	}
	fputc('\n', f);
	sm__report_mpi_table(r, f);

	fprintf(f, "ARRAYS (requested bytes; per-halo arrays of the halo shown)\n");
	fprintf(f, "  %-22s %-30s %19s %19s %14s %11s %11s\n", "stage", "array", "estimated",
		"measured", "diff", "est alloc", "meas alloc");
	for (i = 0; i < r->narrays; i++) {
		const sm_report_array *ar = &r->arrays[i];

		fprintf(f, "  %-22s %-30s %19s %19s %14s %11s %11s%s\n", ar->stage, ar->name,
			ar->has_est ? sm__commas(ar->est_requested, a, sizeof(a)) : "not modelled",
			ar->has_meas ? sm__commas(ar->meas_requested, b, sizeof(b)) : "not measured",
			ar->has_est && ar->has_meas
				? (ar->meas_requested == ar->est_requested
					   ? "exact"
					   : sm__iec_signed(sm__sdiff(ar->meas_requested, ar->est_requested),
							    c, sizeof(c)))
				: "",
			ar->has_est ? sm__iec(ar->est_allocated, d, sizeof(d)) : "",
			ar->has_meas && r->measured ? sm__iec(ar->meas_allocated, e, sizeof(e)) : "",
			ar->has_est && ar->has_meas && ar->meas_requested != ar->est_requested
				? "  MISMATCH" : "");
	}
	fputc('\n', f);

	for (i = 0; i < r->nstages; i++) {
		const sm_report_stage *s = &r->stages[i];
		uint64_t lo = UINT64_MAX, hi = 0;

		if (!s->per_halo || s->nhalos == 0)
			continue;
		for (j = 0; j < s->nhalos; j++) {
			if (s->halos[j].requested_peak < lo)
				lo = s->halos[j].requested_peak;
			if (s->halos[j].requested_peak > hi)
				hi = s->halos[j].requested_peak;
		}
		fprintf(f, "per halo %-22s %zu halos, requested peak %s .. %s (largest: halo %lld)\n",
			s->id, s->nhalos, sm__iec(lo, a, sizeof(a)), sm__iec(hi, b, sizeof(b)),
			(long long)s->instance);
	}
	fputc('\n', f);

	fprintf(f, "TOP ALLOCATION SITES live at each stage's peak\n");
	for (i = 0; i < r->nstages; i++) {
		const sm_report_stage *s = &r->stages[i];

		if (s->nsites == 0)
			continue;
		fprintf(f, "  %s\n", stage_name(s, n1, sizeof(n1)));
		for (j = 0; j < s->nsites; j++)
			fprintf(f, "    %11s  %-9s %s\n", sm__iec(s->sites[j].bytes, a, sizeof(a)),
				s->sites[j].tracked ? "tracked" : "untracked", s->sites[j].where);
	}
	return 0;
}
