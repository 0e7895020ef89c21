/*
 * The per-rank section of a distributed run's report (docs/MPI.md): memory.json's "mpi" object,
 * read and checked key by key (every fault one SM_EFORMAT line naming the file and the key), each
 * rank's requested and allocated peak judged against the estimate's per-rank peak with the same
 * verdict rule as the stages, and the section written in every format.
 *
 * Every rank holds the same arrays whatever its share, so every rank is judged against the same
 * estimate (estimate.json peak_bytes / peak_allocated_bytes: one rank's). The requested peak must
 * match exactly in practice; "allocated" is the tracked arrays' jemalloc bytes at the peak, or with
 * --strict the rank's process allocated peak above its own baseline. VmHWM is judged against the
 * rank's resident estimate (the libraries and MPI's own buffers in its measured resident baseline;
 * a rank touches as much of its block as its largest chunk file fills) by the whole process's
 * resident rule (resident.c). The document's
 * max and sum rows must agree with its per-rank rows (a runtime that miscounts is a bad document).
 */
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"

/* ---- loading -------------------------------------------------------------------------------- */

static int bad(sm__jdoc *d, const char *fmt, const char *where, const char *what)
{
	return sm_error_set(d->err, SM_EFORMAT, fmt, d->path, where, what);
}

/* The figures common to a rank and to the max/sum rows. */
static int load_figures(sm__jdoc *d, json_t *o, const char *where, sm__rank *k)
{
	int rc;

	if ((rc = sm__j_u64(d, o, where, "cells", &k->cells)) != 0 ||
	    (rc = sm__j_num(d, o, where, "wall_s", &k->wall_s)) != 0 ||
	    (rc = sm__j_u64(d, o, where, "requested_peak", &k->requested_peak)) != 0 ||
	    (rc = sm__j_u64(d, o, where, "tracked_allocated_peak", &k->tracked_allocated_peak)) != 0 ||
	    (rc = sm__j_u64(d, o, where, "allocated_peak", &k->allocated_peak)) != 0 ||
	    (rc = sm__j_u64(d, o, where, "vm_hwm", &k->vm_hwm)) != 0)
		return rc;
	if (k->wall_s < 0)
		return bad(d, "'%s': %s.wall_s is %s", where, "negative");
	return 0;
}

static int load_rank(sm__jdoc *d, json_t *o, size_t i, sm__rank *k)
{
	char where[64], w2[96];
	const char *host;
	json_t *files, *stages, *v;
	size_t j;
	int rc;

	snprintf(where, sizeof(where), "mpi.per_rank[%zu]", i);
	if (!json_is_object(o))
		return bad(d, "'%s': %s is %s", where, "not an object");
	if ((rc = sm__j_i64(d, o, where, "rank", &k->rank)) != 0 ||
	    (rc = sm__j_str(d, o, where, "host", &host)) != 0 ||
	    (rc = sm__j_arr(d, o, where, "files", &files)) != 0 ||
	    (rc = load_figures(d, o, where, k)) != 0 ||
	    (rc = sm__j_u64(d, o, where, "baseline_allocated", &k->baseline_allocated)) != 0 ||
	    (rc = sm__j_arr(d, o, where, "stages", &stages)) != 0)
		return rc;
	snprintf(k->host, sizeof(k->host), "%s", host);
	k->allocated_above = k->allocated_peak > k->baseline_allocated
				     ? k->allocated_peak - k->baseline_allocated : 0;
	k->files = calloc(json_array_size(files) + 1, sizeof(*k->files));
	k->stages = calloc(json_array_size(stages) + 1, sizeof(*k->stages));
	if (k->files == NULL || k->stages == NULL)
		return sm_error_set(d->err, SM_ENOMEM, "cannot allocate the report");
	json_array_foreach(files, j, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			snprintf(w2, sizeof(w2), "%s.files[%zu]", where, j);
			return bad(d, "'%s': %s is %s", w2, "not a file number (an integer >= 0)");
		}
		k->files[k->nfiles++] = (int64_t)json_integer_value(v);
	}
	json_array_foreach(stages, j, v) {
		sm__rank_stage *s = &k->stages[k->nstages];
		const char *id;

		snprintf(w2, sizeof(w2), "%s.stages[%zu]", where, j);
		if ((rc = sm__j_str(d, v, w2, "id", &id)) != 0 ||
		    (rc = sm__j_i64(d, v, w2, "instance", &s->instance)) != 0 ||
		    (rc = sm__j_num(d, v, w2, "wall_s", &s->wall_s)) != 0 ||
		    (rc = sm__j_u64(d, v, w2, "requested_peak", &s->requested_peak)) != 0 ||
		    (rc = sm__j_u64(d, v, w2, "tracked_allocated_peak",
				    &s->tracked_allocated_peak)) != 0 ||
		    (rc = sm__j_u64(d, v, w2, "allocated_peak", &s->allocated_peak)) != 0 ||
		    (rc = sm__j_u64(d, v, w2, "vm_hwm", &s->vm_hwm)) != 0)
			return rc;
		if (id[0] == '\0' || strlen(id) >= sizeof(s->id))
			return bad(d, "'%s': %s.id is %s", w2, "empty or too long");
		snprintf(s->id, sizeof(s->id), "%s", id);
		k->nstages++;
	}
	return 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* The document's max/sum row against the per-rank rows: integer figures must agree exactly. */
static int check_row(sm__jdoc *d, const char *name, const sm__rank *row, const sm__rank *want)
{
	static const char *keys[] = {"cells", "requested_peak", "tracked_allocated_peak",
				     "allocated_peak", "vm_hwm"};
	const uint64_t got[] = {row->cells, row->requested_peak, row->tracked_allocated_peak,
				row->allocated_peak, row->vm_hwm};
	const uint64_t exp[] = {want->cells, want->requested_peak, want->tracked_allocated_peak,
				want->allocated_peak, want->vm_hwm};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (got[i] != exp[i])
			return sm_error_set(d->err, SM_EFORMAT, "'%s': mpi.%s.%s is %llu but the "
					    "per_rank rows give %llu", d->path, name, keys[i],
					    (unsigned long long)got[i], (unsigned long long)exp[i]);
	return 0;
}

static int by_rank(const void *x, const void *y)
{
	const sm__rank *a = x, *b = y;

	return a->rank < b->rank ? -1 : a->rank > b->rank;
}

void sm__report_mpi_free(sm__report_mpi *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nranks; i++) {
		free(m->per_rank[i].files);
		free(m->per_rank[i].stages);
	}
	free(m->per_rank);
	free(m);
}

/*
 * Every rank's resident peak as the estimate has it: estimate.json mpi.per_rank_peak_resident_bytes
 * (one per rank, by rank number; a rank touches as much of its block as its largest chunk file
 * fills), else peak_resident_bytes for every rank (the busiest rank's); none in an estimate
 * without resident figures.
 */
static int load_rank_resident(const sm_report *r, sm__jdoc *de, json_t *est, sm__report_mpi *m)
{
	json_t *mo = json_object_get(est, "mpi"), *per = NULL, *v;
	size_t i;

	m->has_resident = r->has_resident;
	if (!r->has_resident)
		return 0;
	for (i = 0; i < m->nranks; i++)
		m->per_rank[i].est_resident = r->est_resident;
	if (json_is_object(mo))
		per = json_object_get(mo, "per_rank_peak_resident_bytes");
	if (per == NULL || json_is_null(per))
		return 0;
	if (!json_is_array(per) || json_array_size(per) != m->ranks)
		return sm_error_set(de->err, SM_EFORMAT, "'%s': mpi.per_rank_peak_resident_bytes is "
				    "not an array of %llu byte counts (one per rank)", de->path,
				    (unsigned long long)m->ranks);
	for (i = 0; i < m->nranks; i++) {
		v = json_array_get(per, (size_t)m->per_rank[i].rank);
		if (!json_is_integer(v) || json_integer_value(v) <= 0)
			return sm_error_set(de->err, SM_EFORMAT, "'%s': mpi.per_rank_peak_resident_bytes"
					    "[%lld] is not a byte count above 0", de->path,
					    (long long)m->per_rank[i].rank);
		m->per_rank[i].est_resident = (uint64_t)json_integer_value(v);
	}
	return 0;
}

int sm__report_mpi_load(sm_report *r, json_t *est, json_t *mem, sm__report_mpi **out,
			sm_error *err)
{
	sm__jdoc d = {r->memory_path, err}, de = {r->estimate_path, err};
	json_t *mj, *per, *mx, *sm, *opt, *v;
	const char *assign;
	sm__report_mpi *m = NULL;
	sm__rank want_max, want_sum;
	size_t i;
	int rc = 0;

	*out = NULL;
	mj = json_object_get(mem, "mpi");
	if (mj == NULL || json_is_null(mj))
		return 0;
	if (!json_is_object(mj))
		return sm_error_set(err, SM_EFORMAT, "'%s': mpi is not an object", d.path);
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the report");
	if ((rc = sm__j_u64(&d, mj, "mpi", "ranks", &m->ranks)) != 0 ||
	    (rc = sm__j_str(&d, mj, "mpi", "assignment", &assign)) != 0 ||
	    (rc = sm__j_arr(&d, mj, "mpi", "per_rank", &per)) != 0 ||
	    (rc = sm__j_obj(&d, mj, "mpi", "max", &mx)) != 0 ||
	    (rc = sm__j_obj(&d, mj, "mpi", "sum", &sm)) != 0)
		goto fail;
	snprintf(m->assignment, sizeof(m->assignment), "%s", assign);
	if (m->ranks == 0 || m->ranks != json_array_size(per)) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': mpi.ranks is %llu but mpi.per_rank has %zu "
				  "rank%s", d.path, (unsigned long long)m->ranks,
				  json_array_size(per), json_array_size(per) != 1 ? "s" : "");
		goto fail;
	}
	m->per_rank = calloc(m->ranks, sizeof(*m->per_rank));
	if (m->per_rank == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "cannot allocate the report");
		goto fail;
	}
	memset(&want_max, 0, sizeof(want_max));
	memset(&want_sum, 0, sizeof(want_sum));
	json_array_foreach(per, i, v) {
		sm__rank *k = &m->per_rank[i];

		m->nranks++;
		if ((rc = load_rank(&d, v, i, k)) != 0)
			goto fail;
		if (k->rank < 0 || (uint64_t)k->rank >= m->ranks) {
			rc = sm_error_set(err, SM_EFORMAT, "'%s': mpi.per_rank[%zu].rank is %lld, not "
					  "between 0 and %llu", d.path, i, (long long)k->rank,
					  (unsigned long long)(m->ranks - 1));
			goto fail;
		}
#define MAXSUM(f)                                                                                 \
	do {                                                                                      \
		if (k->f > want_max.f)                                                            \
			want_max.f = k->f;                                                        \
		want_sum.f = sat_add(want_sum.f, k->f);                                           \
	} while (0)
		MAXSUM(cells);
		MAXSUM(requested_peak);
		MAXSUM(tracked_allocated_peak);
		MAXSUM(allocated_peak);
		MAXSUM(vm_hwm);
#undef MAXSUM
	}
	qsort(m->per_rank, m->nranks, sizeof(*m->per_rank), by_rank);
	for (i = 1; i < m->nranks; i++)
		if (m->per_rank[i].rank == m->per_rank[i - 1].rank) {
			rc = sm_error_set(err, SM_EFORMAT, "'%s': mpi.per_rank: rank %lld appears "
					  "twice", d.path, (long long)m->per_rank[i].rank);
			goto fail;
		}
	if ((rc = load_figures(&d, mx, "mpi.max", &m->max)) != 0 ||
	    (rc = load_figures(&d, sm, "mpi.sum", &m->sum)) != 0 ||
	    (rc = check_row(&d, "max", &m->max, &want_max)) != 0 ||
	    (rc = check_row(&d, "sum", &m->sum, &want_sum)) != 0)
		goto fail;

	/* The estimate must be the distributed one: its stages are one rank's. */
	if ((rc = sm__j_obj(&de, est, "", "options", &opt)) != 0)
		goto fail;
	v = json_object_get(opt, "mpi");
	if (!json_is_true(v)) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': options.mpi is %s but '%s' has an mpi "
				  "object (%llu ranks): not this run's estimate", de.path,
				  v == NULL ? "missing" : json_is_false(v) ? "false" : "not true or false",
				  d.path, (unsigned long long)m->ranks);
		goto fail;
	}
	if ((rc = sm__j_u64(&de, est, "", "peak_bytes", &m->est_requested)) != 0 ||
	    (rc = sm__j_u64(&de, est, "", "peak_allocated_bytes", &m->est_allocated)) != 0 ||
	    (rc = load_rank_resident(r, &de, est, m)) != 0)
		goto fail;
	m->est_total = r->est_peak_total;
	*out = m;
	return 0;
fail:
	sm__report_mpi_free(m);
	return rc;
}

/* ---- judging -------------------------------------------------------------------------------- */

size_t sm__report_mpi_compare(const sm_report *r, sm__report_mpi *m)
{
	size_t i;

	m->nfail = 0;
	for (i = 0; i < m->nranks; i++) {
		sm__rank *k = &m->per_rank[i];

		sm_report_judge(m->est_requested, k->requested_peak, r->tolerance_pct, r->abs_bound,
				&k->requested);
		if (r->measured) {
			sm_report_judge(m->est_allocated,
					r->strict ? k->allocated_above : k->tracked_allocated_peak,
					r->tolerance_pct, r->abs_bound, &k->allocated);
		} else {
			memset(&k->allocated, 0, sizeof(k->allocated));
			k->allocated.estimated = m->est_allocated;
			k->allocated.verdict = SM_VERDICT_NA;
		}
		/* the resident rule of the whole process (resident.c), rank by rank: each rank's
		 * VmHWM (MPI's shared memory included) against its own resident estimate */
		memset(&k->resident, 0, sizeof(k->resident));
		k->resident.estimated = k->est_resident;
		k->resident.measured = k->vm_hwm;
		if (m->has_resident && r->measured && r->complete)
			sm__report_judge_resident(k->est_resident, k->vm_hwm, r->tolerance_pct,
						  &k->resident);
		if (k->requested.verdict == SM_VERDICT_FAIL || k->allocated.verdict == SM_VERDICT_FAIL ||
		    k->resident.verdict == SM_VERDICT_FAIL)
			m->nfail++;
	}
	return m->nfail;
}

/* ---- writing -------------------------------------------------------------------------------- */

/* "3 (0, 4, 7)" with at most a few numbers, "…" after them. */
static const char *files_text(const sm__rank *k, char *buf, size_t len)
{
	size_t i, n = 0;
	int w;

	w = snprintf(buf, len, "%zu", k->nfiles);
	n = w > 0 ? (size_t)w : 0;
	for (i = 0; i < k->nfiles && i < 4 && n + 24 < len; i++) {
		w = snprintf(buf + n, len - n, "%s%lld", i == 0 ? " (" : ",", (long long)k->files[i]);
		n += w > 0 ? (size_t)w : 0;
	}
	if (k->nfiles > 0 && n + 8 < len)
		snprintf(buf + n, len - n, "%s)", k->nfiles > 4 ? ",..." : "");
	return buf;
}

static uint64_t times(uint64_t v, size_t n)
{
	return n > 0 && v > UINT64_MAX / n ? UINT64_MAX : v * n;
}

/* The allocated figure judged for a rank (or a max/sum row). */
static uint64_t judged_alloc(const sm_report *r, const sm__rank *k)
{
	return r->strict ? k->allocated_above : k->tracked_allocated_peak;
}

static const char *alloc_kind(const sm_report *r)
{
	return r->strict ? "the rank's process allocated peak above its own baseline (--strict)"
			 : "the tracked arrays' jemalloc bytes at the peak";
}

/* How VmHWM is judged, in words. */
static const char *resident_rule(const sm_report *r, const sm__report_mpi *m, char *buf,
				 size_t len)
{
	double tol = r->tolerance_pct > SM_REPORT_RESIDENT_TOLERANCE ? r->tolerance_pct
								    : SM_REPORT_RESIDENT_TOLERANCE;

	if (!m->has_resident)
		snprintf(buf, len, "the estimate has none: shown, not judged");
	else if (!r->measured)
		snprintf(buf, len, "not judged: the allocator was not measured");
	else if (!r->complete)
		snprintf(buf, len, "not judged: incomplete run");
	else
		snprintf(buf, len, "within %g%%, at least %llu MiB", tol,
			 (unsigned long long)(SM_REPORT_RESIDENT_FLOOR >> 20));
	return buf;
}

void sm__report_mpi_table(const sm_report *r, FILE *f)
{
	const sm__report_mpi *m = sm__report_mpi_of(r);
	char a[32], b[32], c[32], d[32], e[32], g[96], h[32], p1[32], p2[32], p3[32], x[32], fl[64];
	uint64_t sum_req, sum_al;
	size_t i;

	if (m == NULL)
		return;
	fprintf(f, "RANKS (distributed run: %llu rank%s, %s; every rank against the estimate's "
		"per-rank peak: requested %s, allocated %s, %s with the baseline)\n",
		(unsigned long long)m->ranks, m->ranks != 1 ? "s" : "", m->assignment,
		sm__iec(m->est_requested, a, sizeof(a)), sm__iec(m->est_allocated, b, sizeof(b)),
		sm__iec(m->est_total, c, sizeof(c)));
	fprintf(f, "  allocated: %s; above baseline: the rank's process allocated peak minus its "
		"baseline; VmHWM: against the rank's resident estimate (%s)\n", alloc_kind(r),
		resident_rule(r, m, g, sizeof(g)));
	fprintf(f, "  %-5s %-16s %-18s %15s %8s | %11s %12s %9s %-5s | %11s %12s %9s %-5s | %11s %11s "
		"%11s %9s %-5s\n",
		"rank", "host", "files", "cells", "wall s", "requested", "diff", "%", "", "allocated",
		"diff", "%", "", "above base", "VmHWM", "est. res.", "%", "");
	for (i = 0; i < m->nranks; i++) {
		const sm__rank *k = &m->per_rank[i];

		fprintf(f, "  %-5lld %-16.16s %-18s %15s %8.3f | %11s %12s %9s %-5s | %11s %12s %9s "
			"%-5s | %11s %11s %11s %9s %-5s\n", (long long)k->rank, k->host,
			files_text(k, fl, sizeof(fl)), sm__commas(k->cells, a, sizeof(a)), k->wall_s,
			sm__iec(k->requested_peak, b, sizeof(b)),
			sm__iec_signed(k->requested.diff, c, sizeof(c)),
			sm__pct(&k->requested, p1, sizeof(p1)), sm_verdict_name(k->requested.verdict),
			r->measured ? sm__iec(judged_alloc(r, k), d, sizeof(d)) : "n/a",
			r->measured ? sm__iec_signed(k->allocated.diff, e, sizeof(e)) : "",
			r->measured ? sm__pct(&k->allocated, p2, sizeof(p2)) : "",
			sm_verdict_name(k->allocated.verdict),
			r->measured ? sm__iec(k->allocated_above, g, sizeof(g)) : "n/a",
			sm__iec(k->vm_hwm, h, sizeof(h)),
			m->has_resident ? sm__iec(k->est_resident, x, sizeof(x)) : "n/a",
			k->resident.verdict != SM_VERDICT_NA ? sm__pct(&k->resident, p3, sizeof(p3)) : "",
			sm_verdict_name(k->resident.verdict));
	}
	fprintf(f, "  %-5s %-16s %-18s %15s %8.3f | %11s %12s %9s %-5s | %11s %12s %9s %-5s | %11s %11s\n",
		"max", "", "", sm__commas(m->max.cells, a, sizeof(a)), m->max.wall_s,
		sm__iec(m->max.requested_peak, b, sizeof(b)),
		sm__iec_signed(sm__sdiff(m->max.requested_peak, m->est_requested), c, sizeof(c)), "",
		"", r->measured && !r->strict ? sm__iec(m->max.tracked_allocated_peak, d, sizeof(d)) : "",
		r->measured && !r->strict
			? sm__iec_signed(sm__sdiff(m->max.tracked_allocated_peak, m->est_allocated), e,
					 sizeof(e))
			: "",
		"", "", "", sm__iec(m->max.vm_hwm, h, sizeof(h)));
	sum_req = times(m->est_requested, m->nranks);
	sum_al = times(m->est_allocated, m->nranks);
	fprintf(f, "  %-5s %-16s %-18s %15s %8.3f | %11s %12s %9s %-5s | %11s %12s %9s %-5s | %11s %11s\n",
		"sum", "", "", sm__commas(m->sum.cells, a, sizeof(a)), m->sum.wall_s,
		sm__iec(m->sum.requested_peak, b, sizeof(b)),
		sm__iec_signed(sm__sdiff(m->sum.requested_peak, sum_req), c, sizeof(c)), "", "",
		r->measured && !r->strict ? sm__iec(m->sum.tracked_allocated_peak, d, sizeof(d)) : "",
		r->measured && !r->strict
			? sm__iec_signed(sm__sdiff(m->sum.tracked_allocated_peak, sum_al), e, sizeof(e))
			: "",
		"", "", "", sm__iec(m->sum.vm_hwm, h, sizeof(h)));
	fprintf(f, "  (max and sum rows: differences against the estimate for one rank and for %zu "
		"ranks)\n", m->nranks);
	if (m->nfail == 0)
		fprintf(f, "  every rank within the tolerance\n\n");
	else
		fprintf(f, "  %zu rank%s miss the tolerance\n\n", m->nfail, m->nfail != 1 ? "s" : "");
}

static void md_verdict(FILE *f, sm_verdict v)
{
	fprintf(f, v == SM_VERDICT_FAIL ? "**%s**" : "%s", sm_verdict_name(v));
}

void sm__report_mpi_markdown(const sm_report *r, FILE *f)
{
	const sm__report_mpi *m = sm__report_mpi_of(r);
	char a[32], b[32], c[32], d[32], e[32], g[32], h[32], p1[32], p2[32], p3[32], x[32], fl[64];
	char rule[96];
	size_t i;

	if (m == NULL)
		return;
	fprintf(f, "## Ranks\n\nDistributed run: %llu rank%s, ", (unsigned long long)m->ranks,
		m->ranks != 1 ? "s" : "");
	sm__md_escape(f, m->assignment);
	fprintf(f, ". Every rank holds the same arrays "
		"whatever its share, so each is judged against the estimate's per-rank peak: requested "
		"%s (%s B), allocated %s (%s B); %s with the baseline. *Allocated* is %s; *above "
		"baseline* is the rank's process allocated peak minus its own baseline; VmHWM is "
		"against the rank's resident estimate (%s).\n\n", sm__iec(m->est_requested, a, sizeof(a)),
		sm__commas(m->est_requested, b, sizeof(b)), sm__iec(m->est_allocated, c, sizeof(c)),
		sm__commas(m->est_allocated, d, sizeof(d)), sm__iec(m->est_total, e, sizeof(e)),
		alloc_kind(r), resident_rule(r, m, rule, sizeof(rule)));
	fprintf(f, "| rank | host | files | cells | wall s | requested | difference | verdict | "
		"allocated | difference | verdict | above baseline | VmHWM | estimated resident | "
		"difference | verdict |\n"
		"|---:|---|---|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---|\n");
	for (i = 0; i < m->nranks; i++) {
		const sm__rank *k = &m->per_rank[i];

		fprintf(f, "| %lld | ", (long long)k->rank);
		sm__md_escape(f, k->host);
		fprintf(f, " | %s | %s | %.3f | %s | %s (%s) | ", files_text(k, fl, sizeof(fl)),
			sm__commas(k->cells, a, sizeof(a)), k->wall_s,
			sm__iec(k->requested_peak, b, sizeof(b)),
			sm__iec_signed(k->requested.diff, c, sizeof(c)),
			sm__pct(&k->requested, p1, sizeof(p1)));
		md_verdict(f, k->requested.verdict);
		fprintf(f, " | %s | %s%s%s%s | ",
			r->measured ? sm__iec(judged_alloc(r, k), d, sizeof(d)) : "n/a",
			r->measured ? sm__iec_signed(k->allocated.diff, e, sizeof(e)) : "",
			r->measured ? " (" : "", r->measured ? sm__pct(&k->allocated, p2, sizeof(p2)) : "",
			r->measured ? ")" : "");
		md_verdict(f, k->allocated.verdict);
		fprintf(f, " | %s | %s | %s | %s | ",
			r->measured ? sm__iec(k->allocated_above, g, sizeof(g)) : "n/a",
			sm__iec(k->vm_hwm, h, sizeof(h)),
			m->has_resident ? sm__iec(k->est_resident, x, sizeof(x)) : "n/a",
			k->resident.verdict != SM_VERDICT_NA ? sm__pct(&k->resident, p3, sizeof(p3)) : "");
		md_verdict(f, k->resident.verdict);
		fprintf(f, " |\n");
	}
	fprintf(f, "| **max** | | | %s | %.3f | %s | %s | | %s | | | | %s | | | |\n",
		sm__commas(m->max.cells, a, sizeof(a)), m->max.wall_s,
		sm__iec(m->max.requested_peak, b, sizeof(b)),
		sm__iec_signed(sm__sdiff(m->max.requested_peak, m->est_requested), c, sizeof(c)),
		r->measured && !r->strict ? sm__iec(m->max.tracked_allocated_peak, d, sizeof(d)) : "",
		sm__iec(m->max.vm_hwm, h, sizeof(h)));
	fprintf(f, "| **sum** | | | %s | %.3f | %s | %s | | %s | | | | %s | | | |\n",
		sm__commas(m->sum.cells, a, sizeof(a)), m->sum.wall_s,
		sm__iec(m->sum.requested_peak, b, sizeof(b)),
		sm__iec_signed(sm__sdiff(m->sum.requested_peak, times(m->est_requested, m->nranks)), c,
			       sizeof(c)),
		r->measured && !r->strict ? sm__iec(m->sum.tracked_allocated_peak, d, sizeof(d)) : "",
		sm__iec(m->sum.vm_hwm, h, sizeof(h)));
	fprintf(f, "\nThe max and sum rows' differences are against the estimate for one rank and "
		"for %zu ranks. %s\n\n", m->nranks,
		m->nfail == 0 ? "Every rank is within the tolerance." : "");
	if (m->nfail > 0)
		fprintf(f, "**%zu rank%s miss the tolerance.**\n\n", m->nfail, m->nfail != 1 ? "s" : "");
}

static void td_cmp(FILE *f, const sm_report_cmp *c, int have)
{
	char a[32], p[32];

	if (!have) {
		fprintf(f, "<td></td><td>n/a</td>");
		return;
	}
	fprintf(f, "<td>%s (%s)</td><td class=\"%s\">%s</td>", sm__iec_signed(c->diff, a, sizeof(a)),
		sm__pct(c, p, sizeof(p)), c->verdict == SM_VERDICT_FAIL ? "fail" : "pass",
		sm_verdict_name(c->verdict));
}

void sm__report_mpi_html(const sm_report *r, FILE *f)
{
	const sm__report_mpi *m = sm__report_mpi_of(r);
	char a[32], b[32], c[32], d[32], e[32], x[32], fl[64], rule[96];
	size_t i;

	if (m == NULL)
		return;
	fprintf(f, "<h2>Ranks</h2>\n<p>Distributed run: %llu rank%s, ", (unsigned long long)m->ranks,
		m->ranks != 1 ? "s" : "");
	sm__html_escape(f, m->assignment);
	fprintf(f, ". Every rank is judged against the estimate's per-rank peak: requested %s, "
		"allocated %s (%s with the baseline). Allocated is %s; above baseline is the rank's "
		"process allocated peak minus its own baseline; VmHWM is against the rank's resident "
		"estimate (%s).</p>\n",
		sm__iec(m->est_requested, a, sizeof(a)), sm__iec(m->est_allocated, b, sizeof(b)),
		sm__iec(m->est_total, c, sizeof(c)), alloc_kind(r),
		resident_rule(r, m, rule, sizeof(rule)));
	fprintf(f, "<table>\n<tr><th>rank</th><th>host</th><th>files</th><th>cells</th>"
		"<th>wall s</th><th>requested</th><th>difference</th><th>verdict</th>"
		"<th>allocated</th><th>difference</th><th>verdict</th><th>above baseline</th>"
		"<th>VmHWM</th><th>estimated resident</th><th>difference</th><th>verdict</th>"
		"</tr>\n");
	for (i = 0; i < m->nranks; i++) {
		const sm__rank *k = &m->per_rank[i];

		fprintf(f, "<tr><td>%lld</td><td>", (long long)k->rank);
		sm__html_escape(f, k->host);
		fprintf(f, "</td><td>%s</td><td>%s</td><td>%.3f</td><td>%s</td>",
			files_text(k, fl, sizeof(fl)), sm__commas(k->cells, a, sizeof(a)), k->wall_s,
			sm__iec(k->requested_peak, b, sizeof(b)));
		td_cmp(f, &k->requested, 1);
		fprintf(f, "<td>%s</td>", r->measured ? sm__iec(judged_alloc(r, k), c, sizeof(c)) : "n/a");
		td_cmp(f, &k->allocated, r->measured);
		fprintf(f, "<td>%s</td><td>%s</td><td>%s</td>",
			r->measured ? sm__iec(k->allocated_above, d, sizeof(d)) : "n/a",
			sm__iec(k->vm_hwm, e, sizeof(e)),
			m->has_resident ? sm__iec(k->est_resident, x, sizeof(x)) : "n/a");
		td_cmp(f, &k->resident, k->resident.verdict != SM_VERDICT_NA);
		fprintf(f, "</tr>\n");
	}
	fprintf(f, "<tr><th>max</th><td></td><td></td><td>%s</td><td>%.3f</td><td>%s</td><td>%s</td>"
		"<td></td><td>%s</td><td></td><td></td><td></td><td>%s</td><td></td><td></td><td></td>"
		"</tr>\n",
		sm__commas(m->max.cells, a, sizeof(a)), m->max.wall_s,
		sm__iec(m->max.requested_peak, b, sizeof(b)),
		sm__iec_signed(sm__sdiff(m->max.requested_peak, m->est_requested), c, sizeof(c)),
		r->measured && !r->strict ? sm__iec(m->max.tracked_allocated_peak, d, sizeof(d)) : "",
		sm__iec(m->max.vm_hwm, e, sizeof(e)));
	fprintf(f, "<tr><th>sum</th><td></td><td></td><td>%s</td><td>%.3f</td><td>%s</td><td>%s</td>"
		"<td></td><td>%s</td><td></td><td></td><td></td><td>%s</td><td></td><td></td><td></td>"
		"</tr>\n</table>\n",
		sm__commas(m->sum.cells, a, sizeof(a)), m->sum.wall_s,
		sm__iec(m->sum.requested_peak, b, sizeof(b)),
		sm__iec_signed(sm__sdiff(m->sum.requested_peak, times(m->est_requested, m->nranks)), c,
			       sizeof(c)),
		r->measured && !r->strict ? sm__iec(m->sum.tracked_allocated_peak, d, sizeof(d)) : "",
		sm__iec(m->sum.vm_hwm, e, sizeof(e)));
	fprintf(f, "<p>%s</p>\n", m->nfail == 0 ? "Every rank is within the tolerance."
					     : "Ranks marked FAIL miss the tolerance.");
}

static json_t *u(uint64_t v)
{
	return json_integer(v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v);
}

static json_t *row_json(const sm__rank *k)
{
	return json_pack("{s:o, s:f, s:o, s:o, s:o, s:o}", "cells", u(k->cells), "wall_s", k->wall_s,
			 "requested_bytes", u(k->requested_peak),
			 "tracked_allocated_bytes", u(k->tracked_allocated_peak),
			 "allocated_peak_bytes", u(k->allocated_peak), "vm_hwm_bytes", u(k->vm_hwm));
}

json_t *sm__report_mpi_json(const sm_report *r)
{
	const sm__report_mpi *m = sm__report_mpi_of(r);
	json_t *per, *o;
	size_t i, j;

	if (m == NULL)
		return json_null();
	per = json_array();
	for (i = 0; i < m->nranks; i++) {
		const sm__rank *k = &m->per_rank[i];
		json_t *files = json_array(), *stages = json_array();

		for (j = 0; j < k->nfiles; j++)
			json_array_append_new(files, json_integer((json_int_t)k->files[j]));
		for (j = 0; j < k->nstages; j++) {
			const sm__rank_stage *s = &k->stages[j];

			json_array_append_new(stages, json_pack(
				"{s:s, s:I, s:f, s:o, s:o, s:o, s:o}", "id", s->id,
				"instance", (json_int_t)s->instance, "wall_s", s->wall_s,
				"requested_bytes", u(s->requested_peak),
				"tracked_allocated_bytes", u(s->tracked_allocated_peak),
				"allocated_peak_bytes", u(s->allocated_peak),
				"vm_hwm_bytes", u(s->vm_hwm)));
		}
		o = row_json(k);
		json_object_set_new(o, "rank", json_integer((json_int_t)k->rank));
		json_object_set_new(o, "host", json_string(k->host));
		json_object_set_new(o, "files", files);
		json_object_set_new(o, "baseline_allocated_bytes", u(k->baseline_allocated));
		json_object_set_new(o, "allocated_above_baseline_bytes",
				    r->measured ? u(k->allocated_above) : json_null());
		json_object_set_new(o, "requested", sm__cmp_json(&k->requested));
		json_object_set_new(o, "allocated", sm__cmp_json(&k->allocated));
		json_object_set_new(o, "resident", m->has_resident ? sm__cmp_json(&k->resident)
								   : json_null());
		json_object_set_new(o, "stages", stages);
		json_array_append_new(per, o);
	}
	return json_pack("{s:o, s:s, s:{s:o, s:o, s:o}, s:o, s:o, s:o, s:o}",
			 "ranks", u(m->ranks), "assignment", m->assignment,
			 "estimated", "requested_bytes", u(m->est_requested),
			 "allocated_bytes", u(m->est_allocated), "peak_total_bytes", u(m->est_total),
			 "failed_ranks", u(m->nfail), "per_rank", per, "max", row_json(&m->max),
			 "sum", row_json(&m->sum));
}
