/*
 * estimate.json ("schema": "snapmem.estimate/1", docs/MODEL.md) built with jansson from one
 * sm_estimate; every estimator output is written through the shared writer (sm_out_write,
 * include/snapmem/outfile.h): a temporary file in the target's directory, fsync, rename, only over
 * a regular file. On any failure the temporary is removed and an existing target is left as it was.
 * A run's estimate.json carries the run's id ("run": {"id", "started"}).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "snapmem/describe.h"
#include "snapmem/estimator.h"
#include "snapmem/outfile.h"

#include "describe.h"
#include "internal.h"

/* per_halo lists the most massive halos only beyond this many (a selection of millions of groups
 * would cost gigabytes of JSON); per_halo_truncated says so. The stages are computed from all. */
#define JSON_MAX_HALOS 100000u

static json_t *options_json(const sm_model_options *o);

json_t *sm__est_options_json(const sm_model_options *o)
{
	json_t *j;

	if (o->pipeline != NULL && !sm_desc_is_default(o->pipeline)) {
		j = options_json(o);
		if (j != NULL)
			json_object_set_new(j, "pipeline", sm__est_pipeline_json(o));
		return j;
	}
	return options_json(o);
}

static json_t *options_json(const sm_model_options *o)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:o, s:f, s:I, s:b, s:o}",
			 "positions", sm_model_positions_name(o->positions),
			 "select", sm_model_select_name(o->select),
			 "temperature", sm_model_temperature_name(o->temperature),
			 "stream_block", (json_int_t)o->stream_block,
			 "halos", o->halos >= 0 ? json_integer((json_int_t)o->halos) : json_null(),
			 "mass_min", o->mass_min,
			 "ranks", (json_int_t)o->ranks, "mpi", o->mpi || o->ranks > 1,
			 "sphere_cells", o->sphere_cells > 0 ? json_integer((json_int_t)o->sphere_cells)
							     : json_null());
}

json_t *sm__est_pipeline_json(const sm_model_options *o)
{
	const sm_pipeline_desc *d = o->pipeline;
	const char *words[SM__DESC_MAX_OPTIONS] = {0};
	uint64_t nums[SM__DESC_MAX_OPTIONS] = {0};
	json_t *opts = json_object();
	sm_error err = {0};
	size_t i;

	/* the estimate was computed from o: its options are valid */
	if (sm__desc_option_values(d, o, words, nums, &err) == 0)
		for (i = 0; i < sm_desc_noptions(d); i++)
			json_object_set_new(opts, d->options[i].name,
					    words[i] != NULL ? json_string(words[i])
							     : json_integer((json_int_t)nums[i]));
	return json_pack("{s:s, s:s, s:s, s:o}", "id", sm_desc_id(d), "title", sm_desc_title(d),
			 "file", sm_desc_file(d), "options", opts);
}

/* JSON integers are signed 64-bit: byte counts above INT64_MAX cannot be represented. */
static json_t *bytes(uint64_t v)
{
	return json_integer(v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v);
}

static json_t *source_json(const sm_est_input *in)
{
	return json_pack("{s:s, s:s, s:o, s:o}", "kind", in->source_kind, "name", in->source_name,
			 "path", in->path[0] != '\0' ? json_string(in->path) : json_null(),
			 "snap", in->snap >= 0 ? json_integer(in->snap) : json_null());
}

json_t *sm__est_source_json(const sm_est_input *in)
{
	return source_json(in);
}

static json_t *header_json(const sm_header *h)
{
	json_t *np = json_array();
	int i;

	for (i = 0; i < SM_NTYPES; i++)
		json_array_append_new(np, bytes(h->npart_total[i]));
	return json_pack("{s:o, s:o, s:I, s:f, s:f, s:f, s:f, s:f, s:f}",
			 "gas_cells", bytes(h->npart_total[0]), "npart_total", np,
			 "num_files", (json_int_t)h->num_files, "box_size", h->box_size,
			 "hubble_param", h->hubble_param, "omega0", h->omega0,
			 "omega_baryon", h->omega_baryon, "omega_lambda", h->omega_lambda,
			 "redshift", h->redshift);
}

static json_t *stage_json(const sm_est_stage *st)
{
	json_t *arrays = json_array();
	size_t j;

	for (j = 0; j < st->narrays; j++) {
		const sm_est_array *a = &st->arrays[j];

		json_array_append_new(arrays, json_pack(
			"{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "name", a->name,
			"dtype", a->dtype_name != NULL ? a->dtype_name : sm__est_dtype_name(a->dtype), "count", bytes(a->count),
			"requested_bytes", bytes(a->requested), "allocated_bytes", bytes(a->allocated),
			"resident_bytes", bytes(a->resident), "freed_in", a->freed_in != NULL ? json_string(a->freed_in) : json_null()));
	}
	return json_pack("{s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", st->id,
			 "per_halo", st->per_halo,
			 "instance", st->instance >= 0 ? json_integer(st->instance) : json_null(),
			 "arrays", arrays, "peak_bytes", bytes(st->peak),
			 "peak_allocated_bytes", bytes(st->peak_allocated),
			 "peak_resident_bytes", bytes(st->peak_resident),
			 "live_after_bytes", bytes(st->live_after),
			 "live_after_allocated_bytes", bytes(st->live_after_allocated));
}

static json_t *halos_json(const sm_est_input *in, const sm_estimate *e)
{
	const char *as[32];
	size_t na = sm_est_assumptions(in, e, as, 32), i;
	json_t *assumptions = json_array(), *per = json_array();

	for (i = 0; i < na; i++)
		json_array_append_new(assumptions, json_string(as[i]));
	for (i = 0; i < in->nhalos && i < JSON_MAX_HALOS; i++) {
		const sm_est_halo *h = &in->halos[i];

		json_array_append_new(per, json_pack(
			"{s:I, s:o, s:o, s:o, s:o, s:o}", "instance", (json_int_t)i,
			"group_index", h->group_index >= 0 ? json_integer(h->group_index) : json_null(),
			"m200_msun", h->m200_msun > 0 ? json_real(h->m200_msun) : json_null(),
			"r200", h->r200 > 0 ? json_real(h->r200) : json_null(),
			"sphere_cells", bytes(i < e->nhalos ? e->halo_sphere_cells[i] : 0),
			"peak_bytes", bytes(i < e->nhalos ? e->halo_peak[i] : 0)));
	}
	return json_pack("{s:o, s:o, s:s, s:o, s:o, s:b}", "count", bytes(in->nhalos),
			 "groups_total", bytes(in->groups_total),
			 "sphere_cells_source", e->sphere_cells_source != NULL ? e->sphere_cells_source
									       : "model",
			 "assumptions", assumptions, "per_halo", per,
			 "per_halo_truncated", in->nhalos > JSON_MAX_HALOS);
}

static json_t *documented_json(const sm_est_input *in, const sm_estimate *e)
{
	sm_est_documented rows[2 * SM_EST_MAX_DOCUMENTED];
	json_t *arr = json_array();
	int n = sm_est_documented_rows(in, e, rows, SM_EST_MAX_DOCUMENTED, NULL), i;
	size_t k;

	/* then the description's own (documented:) */
	for (k = 0; n >= 0 && k < e->ndesc_documented; k++)
		rows[n++] = e->desc_documented[k];
	for (i = 0; i < n; i++) {
		json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:b, s:s}",
				      "step", rows[i].step, "stage", rows[i].stage,
				      "what", rows[i].what, "documented_text", rows[i].documented_text,
				      "documented_bytes", bytes(rows[i].documented),
				      "estimated_bytes", bytes(rows[i].estimated),
				      "difference_bytes", (json_int_t)rows[i].difference,
				      "unexplained", rows[i].unexplained, "note", rows[i].note);

		if (rows[i].notebook > 0)
			json_object_set_new(r, "notebook_arithmetic_bytes", bytes(rows[i].notebook));
		if (rows[i].source != NULL) {
			json_object_set_new(r, "source", json_string(rows[i].source));
			json_object_set_new(r, "model", json_string(rows[i].model));
		}
		json_array_append_new(arr, r);
	}
	return arr;
}

/* The "mpi" object of docs/MPI.md: the work split and the node arithmetic of one rank's need
 * (from the verdict when a node was given). */
static json_t *mpi_json(const sm_estimate *e, const sm_est_verdict *v)
{
	int node = v != NULL && v->node_mem > 0;
	uint64_t rpn = node ? v->configured.ranks_per_node : 0;
	uint64_t nodes = node ? v->configured.nodes : 0;
	json_t *per = json_null(), *o;
	uint32_t r;

	if (e->rank_peak_resident != NULL) {
		per = json_array();
		for (r = 0; r < e->options.ranks; r++)
			json_array_append_new(per, bytes(e->rank_peak_resident[r]));
	}
	o = json_pack("{s:I, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:f, s:o}",
			 "ranks", (json_int_t)e->options.ranks,
			 "assignment", "largest chunk first to the least-loaded rank",
			 "files", (json_int_t)e->files,
			 "files_with_gas", e->files_with_gas >= 0 ? json_integer(e->files_with_gas)
								  : json_null(),
			 "cells_per_rank_max", e->have_cells_per_rank ? bytes(e->cells_per_rank_max)
								      : json_null(),
			 "cells_per_rank_min", e->have_cells_per_rank ? bytes(e->cells_per_rank_min)
								      : json_null(),
			 "cells_per_file_max", e->have_cells_per_rank ? bytes(e->cells_per_file_max)
								      : json_null(),
			 "per_rank_peak_total_bytes", bytes(e->peak_total),
			 "per_rank_need_bytes", bytes(e->need),
			 "node_mem_bytes", node ? bytes(v->node_mem) : json_null(),
			 "ranks_per_node", node ? bytes(rpn) : json_null(),
			 "nodes_needed", node && rpn > 0 ? bytes(nodes) : json_null(),
			 "halo_grid_side", (json_int_t)e->halo_grid_side,
			 "sphere_radius_max", e->sphere_radius_max,
			 "per_rank_peak_resident_bytes", per);
	return o;
}

static json_t *choice_json(const sm_est_alternative *a, int node)
{
	char sw[640];

	return json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o}",
			 "options", sm__est_options_json(&a->options),
			 "switches", sm_est_options_switches(&a->options, sw, sizeof(sw)),
			 "peak_bytes", bytes(a->peak),
			 "peak_allocated_bytes", bytes(a->peak_allocated),
			 "peak_total_bytes", bytes(a->peak_total),
			 "peak_resident_bytes", bytes(a->peak_resident),
			 "need_bytes", bytes(a->need),
			 "peak_address_space_bytes", bytes(a->peak_address_space),
			 "per_rank", json_boolean(a->options.mpi),
			 "peak_stage", a->peak_stage,
			 "fits", node ? json_boolean(a->fits) : json_null(),
			 "ranks_per_node", node && a->fits ? bytes(a->ranks_per_node) : json_null(),
			 "nodes", node && a->fits ? bytes(a->nodes) : json_null());
}

/* The verdict object: the one answer every writer prints (sm_est_verdict). */
json_t *sm__est_verdict_json(const sm_est_verdict *v)
{
	json_t *fit = json_array(), *o;
	size_t i;

	for (i = 0; i < v->nchoices; i++)
		if (v->choices[i].fits)
			json_array_append_new(fit, choice_json(&v->choices[i], 1));
	o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:o}",
		      "judged", "need_bytes: the resident peak (what VmHWM reads) plus its page tables",
		      "node_mem_bytes", bytes(v->node_mem), "headroom_bytes", bytes(v->headroom),
		      "usable_bytes", bytes(v->usable),
		      "configured", choice_json(&v->configured, 1),
		      "fits", json_boolean(v->fits == 1),
		      "margin_bytes", json_integer((json_int_t)v->margin),
		      "address_space_bytes", bytes(v->configured.peak_address_space),
		      "address_space_note", "binds only under ulimit -v (RLIMIT_AS) or strict "
		      "overcommit (vm.overcommit_memory = 2); a cgroup's memory.peak and Slurm's MaxRSS "
		      "also count the page cache of the files read",
		      "fitting", fit);
	return o;
}

char *sm_estimate_json(const sm_est_input *in, const sm_estimate *e, const sm_est_verdict *v,
		       const sm_estimate *pre)
{
	json_t *root, *stages = json_array(), *alts = json_array();
	int node = v != NULL && v->node_mem > 0;
	size_t i;
	char *text;

	for (i = 0; i < e->nstages; i++)
		json_array_append_new(stages, stage_json(&e->stages[i]));
	for (i = 0; node && i < v->nchoices; i++)
		json_array_append_new(alts, choice_json(&v->choices[i], 1));
	root = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:o}",
			 "schema", "snapmem.estimate/1", "source", source_json(in),
			 "header", header_json(&in->header),
			 "options", sm__est_options_json(&e->options),
			 "halos", halos_json(in, e), "baseline_bytes", bytes(e->baseline),
			 "stages", stages, "peak_bytes", bytes(e->peak),
			 "peak_allocated_bytes", bytes(e->peak_allocated),
			 "peak_stage", e->nstages > 0 ? e->stages[e->peak_stage].id : "",
			 "peak_total_bytes", bytes(e->peak_total));
	if (root == NULL)
		return NULL;
	json_object_set_new(root, "baseline_resident_bytes", bytes(e->baseline_resident));
	json_object_set_new(root, "peak_resident_bytes", bytes(e->peak_resident));
	json_object_set_new(root, "peak_resident_stage",
			    json_string(e->nstages > 0 ? e->stages[e->peak_resident_stage].id : ""));
	json_object_set_new(root, "page_tables_bytes", bytes(e->page_tables));
	json_object_set_new(root, "need_bytes", bytes(e->need));
	json_object_set_new(root, "baseline_address_space_bytes",
			    bytes(e->baseline_address_space));
	json_object_set_new(root, "peak_address_space_bytes", bytes(e->peak_address_space));
	json_object_set_new(root, "least_address_space_bytes", bytes(e->least_address_space));
	json_object_set_new(root, "node_mem_bytes", node ? bytes(v->node_mem) : json_null());
	json_object_set_new(root, "headroom_bytes", node ? bytes(v->headroom) : json_null());
	json_object_set_new(root, "fits", node ? json_boolean(v->fits == 1) : json_null());
	json_object_set_new(root, "alternatives", alts);
	json_object_set_new(root, "documented", documented_json(in, e));
	if (node)
		json_object_set_new(root, "verdict", sm__est_verdict_json(v));
	if (pre != NULL)
		json_object_set_new(root, "pre_run", json_pack(
			"{s:s, s:o, s:o, s:o, s:o, s:o, s:s}",
			"note", "the estimate made before the run, from the modelled sphere sizes; the "
			"figures above use the run's measured ones",
			"peak_bytes", bytes(pre->peak),
			"peak_allocated_bytes", bytes(pre->peak_allocated),
			"peak_resident_bytes", bytes(pre->peak_resident),
			"need_bytes", bytes(pre->need),
			"peak_address_space_bytes", bytes(pre->peak_address_space),
			"peak_stage", pre->nstages > 0 ? pre->stages[pre->peak_stage].id : ""));
	if (e->mpi)
		json_object_set_new(root, "mpi", mpi_json(e, v));
	if (e->options.pipeline != NULL && !sm_desc_is_default(e->options.pipeline))
		json_object_set_new(root, "pipeline", sm__est_pipeline_json(&e->options));
	if (node)
		json_object_set_new(root, "ranks_needed", v->best_distributed >= 0 ? json_integer(1)
										   : json_null());
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	return text;
}

int sm__est_write_atomic(const char *path, const char *text, size_t len, sm_error *err)
{
	return sm_out_write(path, text, len, NULL, 0, err);
}

int sm_est_write_text(const char *path, const char *text, sm_error *err)
{
	return sm__est_write_atomic(path, text, strlen(text), err);
}

int sm_estimate_write_json(const sm_est_input *in, const sm_estimate *e, const sm_est_verdict *v,
			   const sm_estimate *pre, const char *path, sm_error *err)
{
	char *text = sm_estimate_json(in, e, v, pre);
	int rc;

	if (text == NULL)
		return sm_error_set(err, SM_ENOMEM, "'%s': cannot build the estimate JSON", path);
	rc = sm__est_write_atomic(path, text, strlen(text), err);
	free(text);
	return rc;
}

int sm_estimate_write_json_run(const sm_est_input *in, const sm_estimate *e,
			       const sm_est_verdict *v, const sm_estimate *pre, const char *run_id,
			       const char *run_started, const char *path, sm_error *err)
{
	char *text = sm_estimate_json(in, e, v, pre), *stamped = NULL;
	json_t *root = text != NULL ? json_loads(text, 0, NULL) : NULL;
	int rc;

	if (root == NULL || json_object_set_new(root, "run", json_pack("{s:s, s:s}", "id", run_id,
								       "started", run_started)) != 0 ||
	    (stamped = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "'%s': cannot build the estimate JSON", path);
		goto out;
	}
	rc = sm__est_write_atomic(path, stamped, strlen(stamped), err);
out:
	json_decref(root);
	free(stamped);
	free(text);
	return rc;
}
