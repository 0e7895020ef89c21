/*
 * The run report as one self-contained HTML page: inline CSS and inline SVG, no script, no font,
 * image or style sheet from anywhere else (not even an XML namespace URL: HTML5 parsers place
 * inline <svg> without one). Two plots:
 *   - memory over time: allocated and resident bytes from memory.json's timeline, every stage as a
 *     shaded band, and the estimate (estimated allocated peak + estimated baseline) as a step line
 *     over each stage's band;
 *   - estimated vs measured per stage: grouped bars (requested, allocated above the baseline) on a
 *     logarithmic axis so that KiB and GiB stages are both visible.
 * Then the same tables as the Markdown report, findings first.
 */
#include <math.h>
#include <string.h>

#include "report/internal.h"
#include "snapmem/estimator.h"

#define W 960.0
#define H 380.0
#define ML 80.0
#define MR 20.0
#define MT 30.0
#define MB 60.0

static const char *palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
				"#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

static size_t stage_index(const sm_report *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->nstages; i++)
		if (strcmp(r->stages[i].id, id) == 0)
			return i;
	return 0;
}

/* A tick step of 1, 2 or 5 times a power of ten of IEC unit u, giving about 5 ticks up to max. */
static double nice_step(double max, double *unit, const char **uname)
{
	static const char *names[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double u = 1.0, raw, p, m;
	int k = 0;

	while (max / u >= 1024.0 && k < 5) {
		u *= 1024.0;
		k++;
	}
	*unit = u;
	*uname = names[k];
	raw = max / u / 5.0;
	if (raw <= 0)
		return u;
	p = pow(10.0, floor(log10(raw)));
	m = raw / p;
	m = m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10;
	return m * p * u;
}

static void timeline_plot(const sm_report *r, FILE *f)
{
	double t0 = INFINITY, t1 = -INFINITY, ymax = 0, step, unit, y, pw = W - ML - MR,
	       ph = H - MT - MB;
	const char *uname;
	size_t i;
	int have_est = 0, halo_label = 0;

	for (i = 0; i < r->ntl; i++) {
		if (r->tl_t[i] < t0)
			t0 = r->tl_t[i];
		if (r->tl_t[i] > t1)
			t1 = r->tl_t[i];
		if ((double)r->tl_allocated[i] > ymax)
			ymax = (double)r->tl_allocated[i];
		if ((double)r->tl_resident[i] > ymax)
			ymax = (double)r->tl_resident[i];
	}
	for (i = 0; i < r->nbands; i++) {
		if (r->bands[i].t0 < t0)
			t0 = r->bands[i].t0;
		if (r->bands[i].t1 > t1)
			t1 = r->bands[i].t1;
		if ((double)r->bands[i].est_allocated > ymax)
			ymax = (double)r->bands[i].est_allocated;
	}
	fprintf(f, "<svg class=\"plot\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
		"role=\"img\" aria-label=\"memory over time\">\n", W, H, W, H);
	if (!(t1 > t0) || ymax <= 0) {
		fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">no timeline recorded "
			"in memory.json</text>\n</svg>\n", W / 2, H / 2);
		return;
	}
	ymax *= 1.08;
#define X(t) (ML + ((t) - t0) / (t1 - t0) * pw)
#define Y(v) (MT + ph - (v) / ymax * ph)
	/* stage bands */
	for (i = 0; i < r->nbands; i++) {
		const sm_report_band *b = &r->bands[i];
		size_t k = stage_index(r, b->id);
		double x0 = X(b->t0), x1 = X(b->t1);

		fprintf(f, "<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%.0f\" fill=\"%s\" "
			"fill-opacity=\"%s\"><title>", x0, MT, x1 - x0 > 0.3 ? x1 - x0 : 0.3, ph,
			palette[k % 10], b->instance >= 0 ? "0.10" : "0.16");
		sm__html_escape(f, b->id);
		if (b->instance >= 0)
			fprintf(f, " (halo %lld)", (long long)b->instance);
		fprintf(f, ": %.3f s</title></rect>\n", b->t1 - b->t0);
		if (b->instance < 0 && x1 - x0 > 14)
			fprintf(f, "<text class=\"band\" transform=\"translate(%.1f %.0f) rotate(-90)\">%s"
				"</text>\n", x0 + 11, MT + ph - 4, b->id);
		if (b->instance >= 0 && !halo_label++)
			fprintf(f, "<text class=\"band\" transform=\"translate(%.1f %.0f) rotate(-90)\">"
				"per halo from here</text>\n", x0 + 11, MT + ph - 4);
	}
	/* axes and grid */
	step = nice_step(ymax, &unit, &uname);
	for (y = 0; y <= ymax; y += step) {
		fprintf(f, "<line class=\"grid\" x1=\"%.0f\" x2=\"%.0f\" y1=\"%.2f\" y2=\"%.2f\"/>"
			"<text class=\"tick\" x=\"%.0f\" y=\"%.2f\" text-anchor=\"end\">%g %s</text>\n",
			ML, W - MR, Y(y), Y(y), ML - 6, Y(y) + 4, y / unit, uname);
	}
	for (i = 0; i <= 5; i++) {
		double t = t0 + (t1 - t0) * (double)i / 5.0;

		fprintf(f, "<text class=\"tick\" x=\"%.2f\" y=\"%.0f\" text-anchor=\"middle\">%.2f s"
			"</text>\n", X(t), MT + ph + 16, t - t0);
	}
	fprintf(f, "<line class=\"axis\" x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\"/>"
		"<line class=\"axis\" x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\"/>\n", ML, W - MR,
		MT + ph, MT + ph, ML, ML, MT, MT + ph);
	/* the estimate as a step line over the bands (top-level and halo bands, in time order) */
	fprintf(f, "<polyline class=\"est\" points=\"");
	{
		double last_t = -INFINITY;

		for (i = 0; i < r->nbands; i++) {
			const sm_report_band *b = &r->bands[i];

			if (b->est_allocated == 0 || b->t0 < last_t)
				continue;
			fprintf(f, "%.2f,%.2f %.2f,%.2f ", X(b->t0), Y((double)b->est_allocated), X(b->t1),
				Y((double)b->est_allocated));
			last_t = b->t1;
			have_est = 1;
		}
	}
	fprintf(f, "\"/>\n");
	fprintf(f, "<polyline class=\"res\" points=\"");
	for (i = 0; i < r->ntl; i++)
		fprintf(f, "%.2f,%.2f ", X(r->tl_t[i]), Y((double)r->tl_resident[i]));
	fprintf(f, "\"/>\n<polyline class=\"alloc\" points=\"");
	for (i = 0; i < r->ntl; i++)
		fprintf(f, "%.2f,%.2f ", X(r->tl_t[i]), Y((double)r->tl_allocated[i]));
	fprintf(f, "\"/>\n");
	if (r->ntl == 0)
		fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">no timeline samples: "
			"stage bands and the estimate only</text>\n", W / 2, MT + 20);
	/* legend */
	fprintf(f, "<g class=\"legend\" transform=\"translate(%.0f %.0f)\">"
		"<line class=\"alloc\" x1=\"0\" x2=\"24\" y1=\"0\" y2=\"0\"/><text x=\"30\" y=\"4\">"
		"allocated (jemalloc)</text>"
		"<line class=\"res\" x1=\"170\" x2=\"194\" y1=\"0\" y2=\"0\"/><text x=\"200\" y=\"4\">"
		"resident</text>%s</g>\n", ML, H - 14,
		have_est ? "<line class=\"est\" x1=\"290\" x2=\"314\" y1=\"0\" y2=\"0\"/>"
			   "<text x=\"320\" y=\"4\">estimate: allocated peak + baseline per stage "
			   "(per-halo stages: the largest halo)</text>" : "");
	fprintf(f, "</svg>\n");
#undef X
#undef Y
}

static void bar_plot(const sm_report *r, FILE *f)
{
	static const char *cls[] = {"b-er", "b-mr", "b-ea", "b-ma"};
	double lo = 1.0, hi = 1024.0, mn = INFINITY, pw = W - ML - MR, ph = H - MT - MB - 40, gw, bw;
	size_t i, k, n = 0, g;
	double e;

	for (i = 0; i < r->nstages; i++) {
		const sm_report_stage *s = &r->stages[i];
		uint64_t v[4] = {s->est_peak, s->meas_peak, s->est_peak_allocated, s->meas_allocated};

		if (!s->has_est && !s->has_meas)
			continue;
		n++;
		for (k = 0; k < 4; k++) {
			if ((double)v[k] > hi)
				hi = (double)v[k];
			if (v[k] > 0 && (double)v[k] < mn)
				mn = (double)v[k];
		}
	}
	while (isfinite(mn) && lo * 32.0 <= mn)
		lo *= 32.0;
	fprintf(f, "<svg class=\"plot\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
		"role=\"img\" aria-label=\"estimated vs measured per stage\">\n", W, H, W, H);
	if (n == 0) {
		fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">no stages</text></svg>\n", W / 2, H / 2);
		return;
	}
	hi = pow(2.0, ceil(log2(hi)) + 1);
#define YL(v) (MT + ph - (log2((v) < lo ? lo : (v)) - log2(lo)) / (log2(hi) - log2(lo)) * ph)
	for (e = lo; e <= hi; e *= 32.0) {
		char b[32];

		fprintf(f, "<line class=\"grid\" x1=\"%.0f\" x2=\"%.0f\" y1=\"%.2f\" y2=\"%.2f\"/>"
			"<text class=\"tick\" x=\"%.0f\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n", ML,
			W - MR, YL(e), YL(e), ML - 6, YL(e) + 4, sm__iec((uint64_t)e, b, sizeof(b)));
	}
	gw = pw / (double)n;
	bw = gw * 0.8 / 4.0;
	g = 0;
	for (i = 0; i < r->nstages; i++) {
		const sm_report_stage *s = &r->stages[i];
		uint64_t v[4] = {s->est_peak, s->meas_peak, s->est_peak_allocated, s->meas_allocated};
		int have[4] = {s->has_est, s->has_meas, s->has_est, s->has_meas && r->measured};
		double x = ML + gw * (double)g + gw * 0.1;

		if (!s->has_est && !s->has_meas)
			continue;
		for (k = 0; k < 4; k++) {
			char b[32];

			if (!have[k] || v[k] == 0)
				continue;
			fprintf(f, "<rect class=\"%s\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\">"
				"<title>%s %s: %s (%llu B)</title></rect>\n", cls[k], x + bw * (double)k,
				YL((double)v[k]), bw, MT + ph - YL((double)v[k]), s->id,
				k == 0 ? "estimated requested" : k == 1 ? "measured requested"
				: k == 2 ? "estimated allocated" : "measured allocated above baseline",
				sm__iec(v[k], b, sizeof(b)), (unsigned long long)v[k]);
		}
		if ((s->requested.verdict == SM_VERDICT_FAIL || s->allocated.verdict == SM_VERDICT_FAIL))
			fprintf(f, "<text class=\"fail\" x=\"%.2f\" y=\"%.0f\" text-anchor=\"middle\">FAIL"
				"</text>\n", x + gw * 0.4, MT - 8);
		fprintf(f, "<text class=\"tick\" transform=\"translate(%.2f %.0f) rotate(-25)\" "
			"text-anchor=\"end\">%s</text>\n", x + gw * 0.4, MT + ph + 14, s->id);
		g++;
	}
	fprintf(f, "<line class=\"axis\" x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\"/>\n", ML,
		W - MR, MT + ph, MT + ph);
	fprintf(f, "<g class=\"legend\" transform=\"translate(%.0f %.0f)\">", ML, H - 12);
	for (k = 0; k < 4; k++)
		fprintf(f, "<rect class=\"%s\" x=\"%zu\" y=\"-9\" width=\"12\" height=\"12\"/>"
			"<text x=\"%zu\" y=\"2\">%s</text>", cls[k], k * 210, k * 210 + 16,
			k == 0 ? "estimated requested" : k == 1 ? "measured requested"
			: k == 2 ? "estimated allocated" : "measured allocated above baseline");
	fprintf(f, "</g>\n</svg>\n");
#undef YL
}

static void td_bytes(FILE *f, int have, uint64_t v)
{
	char a[32], b[32];

	if (!have)
		fprintf(f, "<td class=\"na\">n/a</td>");
	else
		fprintf(f, "<td title=\"%s B\">%s</td>", sm__commas(v, b, sizeof(b)),
			sm__iec(v, a, sizeof(a)));
}

static void td_cmp(FILE *f, const sm_report_cmp *c, int have)
{
	char a[32], p[32];

	if (!have || c->verdict == SM_VERDICT_NA) {
		fprintf(f, "<td></td><td class=\"na\">n/a</td>");
		return;
	}
	fprintf(f, "<td title=\"%lld B\">%s (%s)</td><td class=\"%s\">%s</td>", (long long)c->diff,
		sm__iec_signed(c->diff, a, sizeof(a)), sm__pct(c, p, sizeof(p)),
		c->verdict == SM_VERDICT_PASS ? "pass" : "fail", sm_verdict_name(c->verdict));
}

int sm__report_html(const sm_report *r, FILE *f)
{
	char a[32], b[32], vt[96];
	size_t i, j, k, n = 0;

	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		"<title>snapmem report: ");
	sm__html_escape(f, r->rundir);
	fprintf(f, "</title>\n<style>\n"
		"body{font-family:sans-serif;margin:2em;color:#222;max-width:1100px}\n"
		"table{border-collapse:collapse;margin:0.5em 0 1.5em}\n"
		"td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}\n"
		"th{background:#f0f0f0}td.l,th.l{text-align:left}\n"
		"td.pass{color:#1a7f37}td.fail{color:#c62828;font-weight:bold}td.na{color:#888}\n"
		".verdict-pass{color:#1a7f37}.verdict-fail{color:#c62828}\n"
		".finding{background:#fff4e5;border-left:4px solid #f28e2b;padding:0.5em 1em}\n"
		"svg.plot{border:1px solid #ddd;background:#fff;max-width:100%%;height:auto}\n"
		".grid{stroke:#eee}.axis{stroke:#444}.tick{font-size:11px;fill:#444}\n"
		".band{font-size:11px;fill:#333}.legend text{font-size:12px}\n"
		".alloc{fill:none;stroke:#1f4e99;stroke-width:2}\n"
		".res{fill:none;stroke:#59a14f;stroke-width:1.5;stroke-dasharray:5 3}\n"
		".est{fill:none;stroke:#c62828;stroke-width:2}\n"
		".b-er{fill:#9ecae1}.b-mr{fill:#1f4e99}.b-ea{fill:#fdd0a2}.b-ma{fill:#e6550d}\n"
		".fail{fill:#c62828;font-size:11px;font-weight:bold}\n"
		"</style>\n</head>\n<body>\n<h1>snapmem report</h1>\n<p>Run <code>");
	sm__html_escape(f, r->rundir);
	fprintf(f, "</code>: ");
	sm__html_escape(f, r->source);
	fprintf(f, ", %s gas cells, %llu halos; %s.<br>Allocator %s (%s); run %s",
		sm__commas(r->gas_cells, a, sizeof(a)), (unsigned long long)r->nhalos_selected,
		r->options_text, r->allocator, r->measured ? "measured" : "not measured",
		r->complete ? "complete" : "<b>incomplete</b>: ");
	if (!r->complete)
		sm__html_escape(f, r->incomplete_reason);
	if (r->run_id[0] != '\0') {
		fprintf(f, ".<br>Run id <code>");
		sm__html_escape(f, r->run_id);
		fprintf(f, "</code>");
		if (r->run_started[0] != '\0') {
			fprintf(f, ", started ");
			sm__html_escape(f, r->run_started);
		}
	}
	fprintf(f, ".<br>Tolerance %g%% for figures of 1 MiB and more, %s below.</p>\n",
		r->tolerance_pct, sm__iec(r->abs_bound, a, sizeof(a)));
	sm__verdict_text(r, vt, sizeof(vt));
	fprintf(f, "<p class=\"verdict-%s\"><b>Verdict: %.4s</b>%s.</p>\n",
		r->nfail == 0 ? "pass" : "fail", vt, vt + 4);
	/* the headline's second answer: will the run fit (sm_est_verdict, capacity.c) */
	if (r->capacity_lines[0][0] != '\0') {
		fprintf(f, "<p class=\"capacity %s\"><b>",
			r->capacity == NULL ? "capacity-none" : r->capacity->fits == 1
			? "verdict-pass" : "verdict-fail");
		sm__html_escape(f, r->capacity_lines[0]);
		fprintf(f, "</b>");
		if (r->capacity_lines[1][0] != '\0') {
			fprintf(f, "<br>");
			sm__html_escape(f, r->capacity_lines[1]);
		}
		fprintf(f, "</p>\n");
	}

	fprintf(f, "<h2>Findings: unmodelled memory</h2>\n<div class=\"finding\"><ul>\n");
	for (i = 0; i < r->nfindings; i++) {
		const sm_report_finding *fd = &r->findings[i];

		if (fd->kind == SM_FINDING_UNMODELLED_STAGE) {
			fprintf(f, "<li>stage <code>%s</code> ran but is not in the model (requested "
				"peak %s)</li>\n", r->stages[fd->index].id,
				sm__iec(fd->bytes, a, sizeof(a)));
		} else if (fd->kind == SM_FINDING_UNMODELLED_ARRAY) {
			const sm_report_array *ar = &r->arrays[fd->index];

			fprintf(f, "<li>array <code>%s</code> in <code>%s</code> is not in the model: %s "
				"(%s B)</li>\n", ar->name, ar->stage, sm__iec(fd->bytes, a, sizeof(a)),
				sm__commas(fd->bytes, b, sizeof(b)));
		} else {
			const sm_report_stage *s = &r->stages[fd->index];

			fprintf(f, "<li><code>%s</code>: <b>%s</b> (%s B) allocated at the peak that no "
				"tracked array explains", s->id, sm__iec(fd->bytes, a, sizeof(a)),
				sm__commas(fd->bytes, b, sizeof(b)));
			for (j = 0, k = 0; j < s->nsites; j++) {
				if (s->sites[j].tracked)
					continue;
				fprintf(f, "%s%s at <code>", k++ == 0 ? "; untracked sites: " : ", ",
					sm__iec(s->sites[j].bytes, a, sizeof(a)));
				sm__html_escape(f, s->sites[j].where);
				fprintf(f, "</code>");
			}
			fprintf(f, "</li>\n");
		}
	}
	n = r->nfindings;
	if (n == 0)
		fprintf(f, "<li>none: every stage's allocated bytes beyond %s are explained by tracked "
			"arrays the model knows</li>\n", sm__iec(r->abs_bound, a, sizeof(a)));
	fprintf(f, "</ul></div>\n");

	fprintf(f, "<h2>Memory over time</h2>\n");
	timeline_plot(r, f);
	fprintf(f, "<h2>Estimated vs measured per stage</h2>\n");
	bar_plot(r, f);

	fprintf(f, "<h2>Baseline</h2>\n<p>Process baseline (allocated): estimated %s",
		sm__iec(r->est_baseline, a, sizeof(a)));
	if (r->measured)
		fprintf(f, ", measured %s (resident %s)", sm__iec(r->meas_baseline, a, sizeof(a)),
			sm__iec(r->meas_baseline_resident, b, sizeof(b)));
	else
		fprintf(f, ", measured n/a");
	fprintf(f, ". Informational: %s.</p>\n", r->profiled ? "A program measured by snapmem profile: the baseline is its allocated memory when its first modelled stage began, every stage is judged by its allocated peak above it, and requested counts its tracked arrays alone (shown, not judged)" : "the stage verdicts judge the tracked arrays (with --strict, the process above this baseline)");
	if (r->resident_lines[0][0] != '\0') {
		fprintf(f, "<h2>Resident peak</h2>\n<ul>\n");
		for (i = 0; i < 4; i++)
			if (r->resident_lines[i][0] != '\0') {
				fprintf(f, "<li>");
				sm__html_escape(f, r->resident_lines[i]);
				fprintf(f, "</li>\n");
			}
		fprintf(f, "</ul>\n");
	}

	fprintf(f, "<h2>Stages</h2>\n<p>Documented figures: n/a for this run (the notebook's are for "
		"TNG300-1; see <code>snapmem report --scale-to TNG300-1</code>).</p>\n<table>\n"
		"<tr><th class=\"l\">stage</th><th>estimated requested</th><th>measured requested</th>"
		"<th>difference</th><th>verdict</th><th>estimated allocated</th>"
		"<th>measured allocated</th><th>difference</th><th>verdict</th>"
		"<th>resident</th><th>documented</th></tr>\n");
	for (i = 0; i < r->nstages; i++) {
		const sm_report_stage *s = &r->stages[i];

		fprintf(f, "<tr><td class=\"l\"><code>%s</code>", s->id);
		if (s->per_halo && s->instance >= 0)
			fprintf(f, " (halo %lld)", (long long)s->instance);
		fprintf(f, "%s</td>", s->has_est ? "" : " <b>not modelled</b>");
		td_bytes(f, s->has_est, s->est_peak);
		td_bytes(f, s->has_meas, s->meas_peak);
		if (s->has_est && !s->has_meas)
			fprintf(f, "<td>not run%s</td><td class=\"%s\">%s</td>",
				s->requested.verdict == SM_VERDICT_NA ? " (no halo)" : "",
				s->requested.verdict == SM_VERDICT_NA ? "na" : "fail",
				sm_verdict_name(s->requested.verdict));
		else
			td_cmp(f, &s->requested, s->has_est && s->has_meas);
		td_bytes(f, s->has_est, s->est_peak_allocated);
		td_bytes(f, s->has_meas && r->measured, s->allocated.measured);
		td_cmp(f, &s->allocated, s->has_est && s->has_meas && r->measured);
		td_bytes(f, s->has_meas && r->measured, s->meas_resident);
		fprintf(f, "<td class=\"na\">n/a</td></tr>\n");
	}
	fprintf(f, "</table>\n");
	sm__report_mpi_html(r, f);
	fprintf(f, "<h2>Named arrays</h2>\n<table>\n<tr><th class=\"l\">stage</th>"
		"<th class=\"l\">array</th><th>estimated</th><th>measured</th><th>difference</th>"
		"<th>estimated allocated</th><th>measured allocated</th></tr>\n");
	for (i = 0; i < r->narrays; i++) {
		const sm_report_array *ar = &r->arrays[i];

		fprintf(f, "<tr><td class=\"l\"><code>%s</code></td><td class=\"l\"><code>%s</code></td>",
			ar->stage, ar->name);
		td_bytes(f, ar->has_est, ar->est_requested);
		td_bytes(f, ar->has_meas, ar->meas_requested);
		if (ar->has_est && ar->has_meas)
			fprintf(f, "<td class=\"%s\">%s</td>",
				ar->est_requested == ar->meas_requested ? "pass" : "fail",
				ar->est_requested == ar->meas_requested
					? "exact"
					: sm__iec_signed(sm__sdiff(ar->meas_requested, ar->est_requested), a,
							 sizeof(a)));
		else
			fprintf(f, "<td class=\"na\">%s</td>", ar->has_est ? "not measured" : "not modelled");
		td_bytes(f, ar->has_est, ar->est_allocated);
		td_bytes(f, ar->has_meas && r->measured, ar->meas_allocated);
		fprintf(f, "</tr>\n");
	}
	fprintf(f, "</table>\n<h2>Top allocation sites at each stage's peak</h2>\n<table>\n"
		"<tr><th class=\"l\">stage</th><th>bytes</th><th class=\"l\">kind</th>"
		"<th class=\"l\">where</th></tr>\n");
	for (i = 0; i < r->nstages; i++) {
		const sm_report_stage *s = &r->stages[i];

		for (j = 0; j < s->nsites; j++) {
			fprintf(f, "<tr><td class=\"l\"><code>%s</code></td><td>%s</td><td class=\"l\">%s"
				"</td><td class=\"l\"><code>", s->id,
				sm__iec(s->sites[j].bytes, a, sizeof(a)),
				s->sites[j].tracked ? "tracked" : "untracked");
			sm__html_escape(f, s->sites[j].where);
			fprintf(f, "</code></td></tr>\n");
		}
	}
	fprintf(f, "</table>\n<p><small>Generated by snapmem. Every figure in bytes: "
		"<code>snapmem report --format json</code>.</small></p>\n</body>\n</html>\n");
	return 0;
}
