/*
 * The capacity verdict of a run report: "will this run fit?", the same answer `snapmem estimate
 * --node-mem` gives (sm_est_verdict), read from the run's estimate.json and decided nowhere else.
 * `snapmem run --max-mem SIZE` writes the verdict for SIZE into estimate.json ("verdict", computed
 * once by sm_est_verdict_compute with the run's measured sphere sizes: the figures `snapmem
 * estimate --calibrate RUNDIR --node-mem SIZE` prints); it is loaded here into an sm_est_verdict,
 * checked against the document's own need (a verdict of another estimate is SM_EFORMAT), and
 * worded once into r->capacity_lines, which every writer prints as they are (the HTML page in its
 * headline). Without a verdict (no --max-mem) the lines give the need every verdict judges and say
 * how to get one. The measured VmHWM (the largest rank's for a distributed run) is put beside it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"
#include "snapmem/estimator.h"

/* The "configured" choice of the verdict object into v->configured. */
static int load_choice(sm__jdoc *d, json_t *c, sm_est_alternative *a)
{
	json_t *opt, *rpn, *nodes;
	uint64_t ranks = 1;
	int per_rank = 0, rc;

	if ((rc = sm__j_u64(d, c, "verdict.configured", "need_bytes", &a->need)) != 0 ||
	    (rc = sm__j_u64(d, c, "verdict.configured", "peak_resident_bytes",
			    &a->peak_resident)) != 0 ||
	    (rc = sm__j_u64(d, c, "verdict.configured", "peak_address_space_bytes",
			    &a->peak_address_space)) != 0 ||
	    (rc = sm__j_bool(d, c, "verdict.configured", "per_rank", &per_rank)) != 0 ||
	    (rc = sm__j_bool(d, c, "verdict.configured", "fits", &a->fits)) != 0 ||
	    (rc = sm__j_obj(d, c, "verdict.configured", "options", &opt)) != 0 ||
	    (rc = sm__j_u64(d, opt, "verdict.configured.options", "ranks", &ranks)) != 0)
		return rc;
	if (ranks == 0 || ranks > UINT32_MAX)
		return sm_error_set(d->err, SM_EFORMAT, "'%s': verdict.configured.options.ranks is "
				    "%llu, not a number of ranks", d->path, (unsigned long long)ranks);
	a->options.mpi = per_rank;
	a->options.ranks = (uint32_t)ranks;
	rpn = json_object_get(c, "ranks_per_node");
	nodes = json_object_get(c, "nodes");
	if (rpn != NULL && !json_is_null(rpn) &&
	    (rc = sm__j_u64(d, c, "verdict.configured", "ranks_per_node", &a->ranks_per_node)) != 0)
		return rc;
	if (nodes != NULL && !json_is_null(nodes) &&
	    (rc = sm__j_u64(d, c, "verdict.configured", "nodes", &a->nodes)) != 0)
		return rc;
	return 0;
}

int sm__report_load_capacity(sm_report *r, sm__jdoc *d, json_t *est)
{
	json_t *v = json_object_get(est, "verdict"), *c, *fit, *f0;
	sm_est_verdict *x;
	const char *sw;
	int fits = 0, rc;

	free(r->capacity);
	r->capacity = NULL;
	r->est_need = 0;
	r->capacity_switches[0] = '\0';
	if (json_object_get(est, "need_bytes") != NULL &&
	    (rc = sm__j_u64(d, est, "", "need_bytes", &r->est_need)) != 0)
		return rc;
	if (v == NULL || json_is_null(v))
		return 0;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return sm_error_set(d->err, SM_ENOMEM, "cannot allocate the report's verdict");
	x->best_one_process = x->best_distributed = -1;
	if ((rc = sm__j_obj(d, est, "", "verdict", &v)) != 0 ||
	    (rc = sm__j_u64(d, v, "verdict", "node_mem_bytes", &x->node_mem)) != 0 ||
	    (rc = sm__j_u64(d, v, "verdict", "headroom_bytes", &x->headroom)) != 0 ||
	    (rc = sm__j_u64(d, v, "verdict", "usable_bytes", &x->usable)) != 0 ||
	    (rc = sm__j_bool(d, v, "verdict", "fits", &fits)) != 0 ||
	    (rc = sm__j_i64(d, v, "verdict", "margin_bytes", &x->margin)) != 0 ||
	    (rc = sm__j_obj(d, v, "verdict", "configured", &c)) != 0 ||
	    (rc = load_choice(d, c, &x->configured)) != 0 ||
	    (rc = sm__j_arr(d, v, "verdict", "fitting", &fit)) != 0)
		goto fail;
	/* one answer: the verdict must be this estimate's, in its own arithmetic */
	if (x->node_mem == 0 || x->headroom >= x->node_mem ||
	    x->usable != x->node_mem - x->headroom) {
		rc = sm_error_set(d->err, SM_EFORMAT, "'%s': verdict.usable_bytes %llu is not "
				  "node_mem_bytes %llu less headroom_bytes %llu", d->path,
				  (unsigned long long)x->usable, (unsigned long long)x->node_mem,
				  (unsigned long long)x->headroom);
		goto fail;
	}
	if (x->configured.need != r->est_need) {
		rc = sm_error_set(d->err, SM_EFORMAT, "'%s': verdict.configured.need_bytes %llu is not "
				  "the estimate's need_bytes %llu", d->path,
				  (unsigned long long)x->configured.need,
				  (unsigned long long)r->est_need);
		goto fail;
	}
	if (fits != (x->configured.need <= x->usable) || fits != x->configured.fits) {
		rc = sm_error_set(d->err, SM_EFORMAT, "'%s': verdict.fits is %s but the need %llu is "
				  "%s the usable %llu bytes", d->path, fits ? "true" : "false",
				  (unsigned long long)x->configured.need,
				  x->configured.need <= x->usable ? "within" : "over",
				  (unsigned long long)x->usable);
		goto fail;
	}
	x->fits = fits;
	x->nfit = json_array_size(fit);
	f0 = json_array_get(fit, 0);
	if (f0 != NULL) {
		if ((rc = sm__j_str(d, f0, "verdict.fitting[0]", "switches", &sw)) != 0 ||
		    (rc = sm__j_u64(d, f0, "verdict.fitting[0]", "need_bytes",
				    &r->capacity_fit_need)) != 0)
			goto fail;
		snprintf(r->capacity_switches, sizeof(r->capacity_switches), "%s", sw);
	}
	r->capacity = x;
	return 0;
fail:
	free(x);
	return rc;
}

void sm__report_capacity(sm_report *r)
{
	const sm_est_verdict *v = r->capacity;
	const sm__report_mpi *m = sm__report_mpi_of(r);
	char a[32], b[32], c[32], h[32], what[48];
	uint64_t hwm = m != NULL ? m->max.vm_hwm : r->meas_vm_hwm;
	size_t n;

	memset(r->capacity_lines, 0, sizeof(r->capacity_lines));
	if (r->est_need == 0)
		return;
	snprintf(what, sizeof(what), "%s", m != NULL || (v != NULL && v->configured.options.mpi)
					    ? " per rank" : "");
	if (v == NULL) {
		snprintf(r->capacity_lines[0], sizeof(r->capacity_lines[0]),
			 "capacity: needs %s%s (the resident peak with its page tables, what every "
			 "verdict judges); no node memory given: `snapmem run --max-mem SIZE` or "
			 "`snapmem estimate --node-mem SIZE` judges it",
			 sm__iec(r->est_need, a, sizeof(a)), what);
	} else {
		n = (size_t)snprintf(r->capacity_lines[0], sizeof(r->capacity_lines[0]),
				     "capacity: node memory %s (the run's --max-mem)",
				     sm__iec(v->node_mem, a, sizeof(a)));
		if (v->headroom > 0 && n < sizeof(r->capacity_lines[0]))
			n += (size_t)snprintf(r->capacity_lines[0] + n, sizeof(r->capacity_lines[0]) - n,
					      " less %s headroom: the job may use %s",
					      sm__iec(v->headroom, b, sizeof(b)),
					      sm__iec(v->usable, c, sizeof(c)));
		if (n < sizeof(r->capacity_lines[0]))
			snprintf(r->capacity_lines[0] + n, sizeof(r->capacity_lines[0]) - n,
				 "; verdict: %s — %s: needs %s%s, %s %s",
				 v->fits ? "FITS" : "does NOT fit", r->options_text,
				 sm__iec(v->configured.need, b, sizeof(b)), what,
				 sm__iec((uint64_t)(v->margin < 0 ? -v->margin : v->margin), c,
					 sizeof(c)),
				 v->fits ? "to spare" : "short");
		if (!v->fits && r->capacity_switches[0] != '\0') {
			n = strlen(r->capacity_lines[0]);
			snprintf(r->capacity_lines[0] + n, sizeof(r->capacity_lines[0]) - n,
				 "; the cheapest of %zu combinations that fit: %s (needs %s)", v->nfit,
				 r->capacity_switches, sm__iec(r->capacity_fit_need, h, sizeof(h)));
		}
	}
	if (hwm > 0 && v != NULL)
		snprintf(r->capacity_lines[1], sizeof(r->capacity_lines[1]),
			 "measured: VmHWM %s%s, %s the %s the job may use (page tables and the page "
			 "cache of the files read come on top in a cgroup)",
			 sm__iec(hwm, a, sizeof(a)), m != NULL ? " (the largest rank's)" : "",
			 hwm <= v->usable ? "within" : "OVER", sm__iec(v->usable, b, sizeof(b)));
	else if (hwm > 0)
		snprintf(r->capacity_lines[1], sizeof(r->capacity_lines[1]),
			 "measured: VmHWM %s%s (page tables and the page cache of the files read come "
			 "on top in a cgroup)", sm__iec(hwm, a, sizeof(a)),
			 m != NULL ? " (the largest rank's)" : "");
}

json_t *sm__report_capacity_json(const sm_report *r)
{
	const sm_est_verdict *v = r->capacity;
	json_t *lines = json_array();
	size_t i;

	if (r->est_need == 0) {
		json_decref(lines);
		return json_null();
	}
	for (i = 0; i < 2; i++)
		if (r->capacity_lines[i][0] != '\0')
			json_array_append_new(lines, json_string(r->capacity_lines[i]));
	return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}", "need_bytes", (json_int_t)r->est_need,
			 "node_mem_bytes", v != NULL ? json_integer((json_int_t)v->node_mem)
						    : json_null(),
			 "usable_bytes", v != NULL ? json_integer((json_int_t)v->usable) : json_null(),
			 "fits", v != NULL ? json_boolean(v->fits == 1) : json_null(),
			 "margin_bytes", v != NULL ? json_integer((json_int_t)v->margin) : json_null(),
			 "lines", lines);
}
