/*
 * The run report as JSON for programs ("schema": "snapmem.report/1", docs/REPORT.md), built with
 * jansson from the same struct the other writers read. Every byte figure is an integer in bytes;
 * figures that do not apply are null. Per-halo stages carry every halo's figures; a distributed
 * run adds "mpi" with every rank's figures and verdicts (null for one process).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"

static json_t *u(uint64_t v)
{
	return json_integer(v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v);
}

static const char *verdict_json(sm_verdict v)
{
	return v == SM_VERDICT_PASS ? "pass" : v == SM_VERDICT_FAIL ? "fail" : "n/a";
}

json_t *sm__cmp_json(const sm_report_cmp *c)
{
	return json_pack("{s:o, s:o, s:I, s:o, s:o, s:b, s:s}", "estimated_bytes", u(c->estimated),
			 "measured_bytes", u(c->measured), "difference_bytes", (json_int_t)c->diff,
			 "percent", isfinite(c->pct) ? json_real(c->pct) : json_null(),
			 "bound_bytes", u(c->bound), "absolute_bound", c->absolute,
			 "verdict", verdict_json(c->verdict));
}

static json_t *stage_json(const sm_report *r, const sm_report_stage *s)
{
	json_t *o = json_object(), *sites = json_array(), *halos = json_array();
	size_t j;

	json_object_set_new(o, "id", json_string(s->id));
	json_object_set_new(o, "per_halo", json_boolean(s->per_halo));
	json_object_set_new(o, "instance", s->instance >= 0 ? json_integer(s->instance) : json_null());
	json_object_set_new(o, "estimated",
			    s->has_est ? json_pack("{s:o, s:o, s:o}", "requested_bytes", u(s->est_peak),
						   "allocated_bytes", u(s->est_peak_allocated),
						   "instance", s->est_instance >= 0
								       ? json_integer(s->est_instance)
								       : json_null())
				       : json_null());
	if (s->has_meas) {
		json_t *m = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:f, s:f}",
				      "requested_bytes", u(s->meas_peak),
				      "allocated_above_baseline_bytes", r->measured ? u(s->meas_allocated) : json_null(),
				      "allocated_peak_bytes", r->measured ? u(s->meas_allocated_peak) : json_null(),
				      "resident_bytes", r->measured ? u(s->meas_resident) : json_null(),
				      "tracked_allocated_bytes", u(s->tracked_allocated_peak),
				      "unexplained_bytes", r->measured ? u(s->unexplained) : json_null(),
				      "live_begin_bytes", u(s->live_begin), "live_end_bytes", u(s->live_end),
				      "t_begin", s->t_begin, "wall_s", s->wall_s);
		json_object_set_new(o, "measured", m);
	} else {
		json_object_set_new(o, "measured", json_null());
	}
	json_object_set_new(o, "requested", sm__cmp_json(&s->requested));
	json_object_set_new(o, "allocated", sm__cmp_json(&s->allocated));
	json_object_set_new(o, "documented", json_null());
	json_object_set_new(o, "finding", json_boolean(sm__stage_has_finding(r, s)));
	for (j = 0; j < s->nsites; j++)
		json_array_append_new(sites, json_pack("{s:I, s:o, s:b, s:s}", "site",
						       (json_int_t)s->sites[j].id, "bytes",
						       u(s->sites[j].bytes), "tracked",
						       s->sites[j].tracked, "where", s->sites[j].where));
	json_object_set_new(o, "top_sites", sites);
	for (j = 0; j < s->nhalos; j++) {
		const sm_report_halo *h = &s->halos[j];

		json_array_append_new(halos, json_pack("{s:I, s:o, s:o, s:o, s:o, s:f}", "instance",
						       (json_int_t)h->instance, "requested_bytes",
						       u(h->requested_peak), "allocated_above_baseline_bytes",
						       u(h->allocated_above), "unexplained_bytes",
						       u(h->unexplained), "resident_bytes", u(h->resident),
						       "wall_s", h->wall_s));
	}
	json_object_set_new(o, "halos", s->per_halo ? halos : (json_decref(halos), json_null()));
	return o;
}

int sm__report_json(const sm_report *r, char **out, sm_error *err)
{
	json_t *root = NULL, *stages, *arrays, *findings;
	size_t i;
	int rc = 0;

	*out = NULL;
	root = json_object();
	stages = json_array();
	arrays = json_array();
	findings = json_array();
	if (root == NULL || stages == NULL || arrays == NULL || findings == NULL) {
		json_decref(stages);
		json_decref(arrays);
		json_decref(findings);
		rc = sm_error_set(err, SM_ENOMEM, "cannot build the report JSON");
		goto out;
	}
	json_object_set_new(root, "schema", json_string("snapmem.report/1"));
	json_object_set_new(root, "rundir", json_string(r->rundir));
	json_object_set_new(root, "estimate", json_string(r->estimate_path));
	json_object_set_new(root, "memory", json_string(r->memory_path));
	json_object_set_new(root, "run_id", r->run_id[0] ? json_string(r->run_id) : json_null());
	json_object_set_new(root, "run_started",
			    r->run_started[0] ? json_string(r->run_started) : json_null());
	json_object_set_new(root, "source", json_string(r->source));
	json_object_set_new(root, "pipeline", json_string(r->pipeline));
	json_object_set_new(root, "profiled", json_boolean(r->profiled));
	json_object_set_new(root, "gas_cells", u(r->gas_cells));
	json_object_set_new(root, "halos", u(r->nhalos_selected));
	json_object_set_new(root, "options",
			    json_pack("{s:s, s:s, s:s, s:o}", "positions", r->positions, "select",
				      r->select, "temperature", r->temperature, "stream_block",
				      u(r->stream_block)));
	json_object_set_new(root, "allocator",
			    json_pack("{s:s, s:b}", "name", r->allocator, "measured", r->measured));
	json_object_set_new(root, "complete", json_boolean(r->complete));
	json_object_set_new(root, "incomplete_reason",
			    r->complete ? json_null() : json_string(r->incomplete_reason));
	json_object_set_new(root, "tolerance",
			    json_pack("{s:f, s:o, s:o}", "percent", r->tolerance_pct,
				      "small_stage_bytes", u(SM_REPORT_SMALL_STAGE), "absolute_bytes",
				      u(r->abs_bound)));
	json_object_set_new(root, "verdict", json_string(r->nfail == 0 ? "pass" : "fail"));
	{
		const sm__report_mpi *m = sm__report_mpi_of(r);
		size_t fr = m != NULL ? m->nfail : 0;

		json_object_set_new(root, "failed_stages", u(r->nfail - fr - (size_t)r->resident_failed));
		json_object_set_new(root, "failed_ranks", u(fr));
	}
	json_object_set_new(root, "resident", sm__report_resident_json(r));
	json_object_set_new(root, "capacity", sm__report_capacity_json(r));
	json_object_set_new(root, "baseline", sm__cmp_json(&r->baseline));
	json_object_set_new(json_object_get(root, "baseline"), "resident_bytes",
			    r->measured ? u(r->meas_baseline_resident) : json_null());

	for (i = 0; i < r->nfindings; i++) {
		const sm_report_finding *fd = &r->findings[i];

		if (fd->kind == SM_FINDING_UNMODELLED_ARRAY)
			json_array_append_new(findings, json_pack("{s:s, s:s, s:s, s:o}", "kind",
								  "unmodelled_array", "stage",
								  r->arrays[fd->index].stage, "array",
								  r->arrays[fd->index].name, "bytes",
								  u(fd->bytes)));
		else
			json_array_append_new(findings, json_pack("{s:s, s:s, s:n, s:o}", "kind",
								  fd->kind == SM_FINDING_UNEXPLAINED
								  ? "unexplained" : "unmodelled_stage",
								  "stage", r->stages[fd->index].id,
								  "array", "bytes", u(fd->bytes)));
	}
	json_object_set_new(root, "findings", findings);

	for (i = 0; i < r->nstages; i++)
		json_array_append_new(stages, stage_json(r, &r->stages[i]));
	json_object_set_new(root, "stages", stages);
	for (i = 0; i < r->narrays; i++) {
		const sm_report_array *a = &r->arrays[i];

		json_array_append_new(arrays, json_pack(
			"{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "name", a->name, "stage", a->stage,
			"instance", a->instance >= 0 ? json_integer(a->instance) : json_null(),
			"estimated_requested_bytes", a->has_est ? u(a->est_requested) : json_null(),
			"estimated_allocated_bytes", a->has_est ? u(a->est_allocated) : json_null(),
			"measured_requested_bytes", a->has_meas ? u(a->meas_requested) : json_null(),
			"measured_allocated_bytes", a->has_meas && r->measured ? u(a->meas_allocated)
									       : json_null(),
			"difference_bytes", a->has_est && a->has_meas
						    ? json_integer(sm__sdiff(a->meas_requested, a->est_requested))
						    : json_null()));
	}
	json_object_set_new(root, "arrays", arrays);
	json_object_set_new(root, "mpi", sm__report_mpi_json(r));
	*out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (*out == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "cannot build the report JSON");
		goto out;
	}
	{
		size_t l = strlen(*out);
		char *t = realloc(*out, l + 2);

		if (t == NULL) {
			free(*out);
			*out = NULL;
			rc = sm_error_set(err, SM_ENOMEM, "cannot build the report JSON");
			goto out;
		}
		t[l] = '\n';
		t[l + 1] = '\0';
		*out = t;
	}
out:
	json_decref(root);
	return rc;
}
