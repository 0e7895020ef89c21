/*
 * The run report in Markdown, for pasting into a proposal or an issue: the same sections as the
 * table (findings first, baseline line, stage verdicts, arrays, per-halo distribution, sites), as
 * GitHub-flavoured tables with IEC units and exact byte counts.
 */
#include <string.h>

#include "report/internal.h"

static void name_md(FILE *f, const sm_report_stage *s)
{
	fprintf(f, "`%s`", s->id);
	if (s->per_halo && s->instance >= 0)
		fprintf(f, " (halo %lld)", (long long)s->instance);
}

int sm__report_markdown(const sm_report *r, FILE *f)
{
	char a[32], b[32], c[32], d[32], e[32], g[32], h[32], p1[32], p2[32], vt[96];
	size_t i, j, k, n = 0;

	fprintf(f, "# snapmem report: ");
	sm__md_escape(f, r->rundir);
	fprintf(f, "\n\n- source: ");
	sm__md_escape(f, r->source);
	fprintf(f, ", %s gas cells, %llu halos\n- options: %s\n", sm__commas(r->gas_cells, a, sizeof(a)),
		(unsigned long long)r->nhalos_selected, r->options_text);
	fprintf(f, "- allocator: %s (%s); run %s", r->allocator,
		r->measured ? "measured" : "not measured: allocated figures n/a",
		r->complete ? "complete" : "**incomplete**: ");
	if (!r->complete)
		sm__md_escape(f, r->incomplete_reason);
	if (r->run_id[0] != '\0') {
		fprintf(f, "\n- run id: ");
		sm__md_escape(f, r->run_id);
		if (r->run_started[0] != '\0') {
			fprintf(f, ", started ");
			sm__md_escape(f, r->run_started);
		}
	}
	fprintf(f, "\n- tolerance: %g%% for figures of 1 MiB and more, %s below\n", r->tolerance_pct,
		sm__iec(r->abs_bound, a, sizeof(a)));
	sm__verdict_text(r, vt, sizeof(vt));
	fprintf(f, "- **verdict: %.4s**%s\n", vt, vt + 4);
	for (i = 0; i < 2; i++)
		if (r->capacity_lines[i][0] != '\0') {
			fprintf(f, "- ");
			sm__md_escape(f, r->capacity_lines[i]);
			fputc('\n', f);
		}
	fputc('\n', f);

	fprintf(f, "## Findings: unmodelled memory\n\n");
	for (i = 0; i < r->nfindings; i++) {
		const sm_report_finding *fd = &r->findings[i];

		if (fd->kind == SM_FINDING_UNMODELLED_STAGE) {
			fprintf(f, "- stage `%s` ran but is not in the model (requested peak %s)\n",
				r->stages[fd->index].id, sm__iec(fd->bytes, a, sizeof(a)));
		} else if (fd->kind == SM_FINDING_UNMODELLED_ARRAY) {
			const sm_report_array *ar = &r->arrays[fd->index];

			fprintf(f, "- array `%s` in `%s` is not in the model: %s (%s B) requested\n",
				ar->name, ar->stage, sm__iec(fd->bytes, a, sizeof(a)),
				sm__commas(fd->bytes, b, sizeof(b)));
		} else {
			const sm_report_stage *s = &r->stages[fd->index];

			fprintf(f, "- `%s`: **%s** (%s B) allocated at the peak that no tracked array "
				"explains", s->id, sm__iec(fd->bytes, a, sizeof(a)),
				sm__commas(fd->bytes, b, sizeof(b)));
			for (j = 0, k = 0; j < s->nsites; j++) {
				if (s->sites[j].tracked)
					continue;
				fprintf(f, "%s%s at ", k++ == 0 ? "; untracked sites: " : ", ",
					sm__iec(s->sites[j].bytes, a, sizeof(a)));
				sm__md_escape(f, s->sites[j].where);
			}
			fprintf(f, "\n");
		}
	}
	n = r->nfindings;
	if (n == 0)
		fprintf(f, "None: every stage's allocated bytes beyond %s are explained by tracked "
			"arrays the model knows.\n", sm__iec(r->abs_bound, a, sizeof(a)));
	if (!r->measured)
		fprintf(f, "\nThe allocator was not measured: allocated and unexplained bytes are n/a.\n");

	fprintf(f, "\n## Baseline\n\nProcess baseline (allocated): estimated %s (%s B), measured %s",
		sm__iec(r->est_baseline, a, sizeof(a)), sm__commas(r->est_baseline, b, sizeof(b)),
		r->measured ? sm__iec(r->meas_baseline, c, sizeof(c)) : "n/a");
	if (r->measured)
		fprintf(f, " (%s B), difference %s (%s); resident %s", sm__commas(r->meas_baseline, d, sizeof(d)),
			sm__iec_signed(r->baseline.diff, e, sizeof(e)), sm__pct(&r->baseline, p1, sizeof(p1)),
			sm__iec(r->meas_baseline_resident, g, sizeof(g)));
	fprintf(f, ". Informational: %s.\n\n", r->profiled ? "A program measured by snapmem profile: the baseline is its allocated memory when its first modelled stage began, every stage is judged by its allocated peak above it, and requested counts its tracked arrays alone (shown, not judged)" : "the stage verdicts judge the tracked arrays (with `--strict`, the process above this baseline)");
	if (r->resident_lines[0][0] != '\0') {
		fprintf(f, "## Resident peak\n\n");
		for (i = 0; i < 4; i++)
			if (r->resident_lines[i][0] != '\0') {
				fprintf(f, "- ");
				sm__md_escape(f, r->resident_lines[i]);
				fputc('\n', f);
			}
		fputc('\n', f);
	}

	fprintf(f, "## Stages\n\nRequested peak (must match the model) and allocated bytes (%s) "
		"against the estimated allocated peak. Documented: n/a for this run (the ",
		r->profiled ? "the program's peak above its memory when its first modelled stage began"
		: r->strict ? "the process's peak above the baseline, `--strict`"
			  : "jemalloc's size classes of the tracked arrays live at the peak; memory no "
			    "array explains is listed under Findings");
	fprintf(f, "notebook's figures are for TNG300-1; see `snapmem report --scale-to TNG300-1`).\n\n");
	fprintf(f, "| stage | estimated requested | measured requested | difference | verdict | "
		"estimated allocated | measured allocated | difference | verdict | resident | documented |\n"
		"|---|---:|---:|---:|---|---:|---:|---:|---|---:|---|\n");
	for (i = 0; i < r->nstages; i++) {
		const sm_report_stage *s = &r->stages[i];

		fprintf(f, "| ");
		name_md(f, s);
		if (!s->has_est) {
			fprintf(f, " | not modelled | %s | | | | %s | | | %s | n/a |\n",
				sm__iec(s->meas_peak, a, sizeof(a)),
				r->measured ? sm__iec(s->meas_allocated, b, sizeof(b)) : "n/a",
				r->measured ? sm__iec(s->meas_resident, c, sizeof(c)) : "n/a");
			continue;
		}
		if (!s->has_meas) {
			fprintf(f, " | %s | not run%s | | %s%s%s | %s | | | | | n/a |\n",
				sm__iec(s->est_peak, a, sizeof(a)),
				s->requested.verdict == SM_VERDICT_NA ? " (no halo)" : "",
				s->requested.verdict == SM_VERDICT_FAIL ? "**" : "",
				sm_verdict_name(s->requested.verdict),
				s->requested.verdict == SM_VERDICT_FAIL ? "**" : "",
				sm__iec(s->est_peak_allocated, b, sizeof(b)));
			continue;
		}
		fprintf(f, " | %s | %s | %s (%s) | %s%s%s | %s | %s | %s | %s%s%s | %s | n/a |\n",
			sm__iec(s->est_peak, a, sizeof(a)), sm__iec(s->meas_peak, b, sizeof(b)),
			sm__iec_signed(s->requested.diff, c, sizeof(c)),
			sm__pct(&s->requested, p1, sizeof(p1)),
			s->requested.verdict == SM_VERDICT_FAIL ? "**" : "",
			sm_verdict_name(s->requested.verdict),
			s->requested.verdict == SM_VERDICT_FAIL ? "**" : "",
			sm__iec(s->est_peak_allocated, d, sizeof(d)),
			r->measured ? sm__iec(s->allocated.measured, e, sizeof(e)) : "n/a",
			r->measured ? sm__iec_signed(s->allocated.diff, g, sizeof(g)) : "",
			s->allocated.verdict == SM_VERDICT_FAIL ? "**" : "",
			sm_verdict_name(s->allocated.verdict),
			s->allocated.verdict == SM_VERDICT_FAIL ? "**" : "",
			r->measured ? sm__iec(s->meas_resident, h, sizeof(h)) : "n/a");
		(void)p2;
	}

	fprintf(f, "\n");
	sm__report_mpi_markdown(r, f);
	fprintf(f, "## Named arrays\n\nRequested bytes, matched by name and stage (per-halo arrays: "
		"the halo shown above).\n\n| stage | array | estimated (B) | measured (B) | difference | "
		"estimated allocated | measured allocated |\n|---|---|---:|---:|---:|---:|---:|\n");
	for (i = 0; i < r->narrays; i++) {
		const sm_report_array *ar = &r->arrays[i];

		fprintf(f, "| `%s` | `%s` | %s | %s | %s | %s | %s |\n", ar->stage, ar->name,
			ar->has_est ? sm__commas(ar->est_requested, a, sizeof(a)) : "not modelled",
			ar->has_meas ? sm__commas(ar->meas_requested, b, sizeof(b)) : "not measured",
			ar->has_est && ar->has_meas
				? (ar->meas_requested == ar->est_requested
					   ? "exact"
					   : sm__iec_signed(sm__sdiff(ar->meas_requested, ar->est_requested),
							    c, sizeof(c)))
				: "",
			ar->has_est ? sm__iec(ar->est_allocated, d, sizeof(d)) : "",
			ar->has_meas && r->measured ? sm__iec(ar->meas_allocated, e, sizeof(e)) : "n/a");
	}

	n = 0;
	for (i = 0; i < r->nstages; i++) {
		const sm_report_stage *s = &r->stages[i];
		uint64_t lo = UINT64_MAX, hi = 0;

		if (!s->per_halo || s->nhalos == 0)
			continue;
		if (n++ == 0)
			fprintf(f, "\n## Per-halo stages\n\n| stage | halos | smallest requested peak | "
				"largest requested peak | largest halo |\n|---|---:|---:|---:|---:|\n");
		for (j = 0; j < s->nhalos; j++) {
			if (s->halos[j].requested_peak < lo)
				lo = s->halos[j].requested_peak;
			if (s->halos[j].requested_peak > hi)
				hi = s->halos[j].requested_peak;
		}
		fprintf(f, "| `%s` | %zu | %s | %s | %lld |\n", s->id, s->nhalos,
			sm__iec(lo, a, sizeof(a)), sm__iec(hi, b, sizeof(b)), (long long)s->instance);
	}
	if (n > 0)
		fprintf(f, "\nEvery halo's figures are in the JSON report (`--format json`).\n");

	fprintf(f, "\n## Top allocation sites live at each stage's peak\n\n");
	n = 0;
	for (i = 0; i < r->nstages; i++) {
		const sm_report_stage *s = &r->stages[i];

		for (j = 0; j < s->nsites; j++) {
			if (n++ == 0)
				fprintf(f, "| stage | bytes | kind | where |\n|---|---:|---|---|\n");
			fprintf(f, "| ");
			name_md(f, s);
			fprintf(f, " | %s | %s | ", sm__iec(s->sites[j].bytes, a, sizeof(a)),
				s->sites[j].tracked ? "tracked" : "untracked");
			sm__md_escape(f, s->sites[j].where);
			fprintf(f, " |\n");
		}
	}
	if (n == 0)
		fprintf(f, "No sites recorded.\n");
	return 0;
}
