/*
 * Planning on top of the model: every variant the pipeline description declares (for the
 * radial-profile pipeline positions x select x temperature, with several streaming block sizes, in
 * one process; and the distributed strategy per rank: estimator/pipelines/radial-profiles.yaml) and
 * its peak against a node's memory, whether the distributed strategy fits at all (sm_est_ranks_needed),
 * and the trade-off document (snapmem.tradeoff/1). All of it is the pure model run again with
 * other options: no I/O.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "snapmem/estimator.h"
#include "snapmem/units.h"

#include "describe.h"
#include "internal.h"

struct alt_sort {
	sm_est_alternative a;
	size_t order;
};

static int by_need(const void *x, const void *y)
{
	const struct alt_sort *a = x, *b = y;

	if (a->a.need != b->a.need)
		return a->a.need < b->a.need ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

int sm_est_variants(const sm_model_options *o, int with_sweep, sm_model_options **out, size_t *n,
		    sm_error *err)
{
	const sm_pipeline_desc *d = o->pipeline;
	int rc;

	if (d == NULL && (rc = sm_desc_default(&d, err)) != 0)
		return rc;
	return sm__desc_variants(d, o, with_sweep, out, n, err);
}

const char *sm_est_variant_label(const sm_model_options *o, char *buf, size_t len)
{
	const sm_pipeline_desc *d = o->pipeline;
	const char *words[SM__DESC_MAX_OPTIONS] = {0};
	uint64_t nums[SM__DESC_MAX_OPTIONS] = {0};
	sm_error err = {0};
	size_t i, k = 0;

	buf[0] = '\0';
	if (d == NULL && sm_desc_default(&d, &err) != 0)
		return buf;
	if (sm__desc_option_values(d, o, words, nums, &err) != 0)
		return buf;
	for (i = 0; i < d->noptions && k + 1 < len; i++) {
		const sm__desc_option *op = &d->options[i];
		int n;

		if (op->numeric && op->nsweep == 0)
			continue;
		if (!op->numeric && op->nvalues < 2)
			continue;
		n = op->numeric ? snprintf(buf + k, len - k, "%s%llu", k > 0 ? "/" : "",
					   (unsigned long long)nums[i])
				: snprintf(buf + k, len - k, "%s%s", k > 0 ? "/" : "", words[i]);
		if (n < 0 || (size_t)n >= len - k)
			break;
		k += (size_t)n;
	}
	return buf;
}

/* One estimate's figures against node_mem (0: not given). */
static void fill(sm_est_alternative *a, const sm_estimate *e, uint64_t node_mem)
{
	uint32_t ranks = e->mpi ? e->options.ranks : 1;

	memset(a, 0, sizeof(*a));
	a->options = e->options;
	a->peak = e->peak;
	a->peak_allocated = e->peak_allocated;
	a->peak_total = e->peak_total;
	a->peak_resident = e->peak_resident;
	a->page_tables = e->page_tables;
	a->need = e->need;
	a->peak_address_space = e->peak_address_space;
	a->peak_stage = e->nstages > 0 ? e->stages[e->peak_resident_stage].id : "";
	a->fits = node_mem == 0 || e->need <= node_mem;
	if (node_mem > 0 && a->fits) {
		if (e->mpi) {
			sm_est_node_fit(e->need, node_mem, ranks, &a->ranks_per_node, &a->nodes);
		} else {
			a->ranks_per_node = 1;
			a->nodes = 1;
		}
	}
}

int sm_est_alternatives(const sm_est_input *in, const sm_model_options *o, uint64_t node_mem,
			sm_est_alternative **alts, size_t *n, sm_error *err)
{
	sm_model_options *opts = NULL;
	struct alt_sort *tmp = NULL;
	size_t nc = 0, i;
	int rc = 0;

	*alts = NULL;
	*n = 0;
	if ((rc = sm_est_variants(o, 1, &opts, &nc, err)) != 0)
		return rc;
	tmp = calloc(nc > 0 ? nc : 1, sizeof(*tmp));
	if (tmp == NULL) {
		free(opts);
		return sm_error_set(err, SM_ENOMEM, "estimator: cannot allocate alternatives");
	}
	for (i = 0; i < nc; i++) {
		sm_estimate e;

		if ((rc = sm_estimate_compute(in, &opts[i], &e, err)) != 0)
			goto out;
		tmp[i].order = i;
		fill(&tmp[i].a, &e, node_mem);
		sm_estimate_release(&e);
	}
	qsort(tmp, nc, sizeof(*tmp), by_need);
	*alts = calloc(nc, sizeof(**alts));
	if (*alts == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "estimator: cannot allocate alternatives");
		goto out;
	}
	for (i = 0; i < nc; i++)
		(*alts)[i] = tmp[i].a;
	*n = nc;
out:
	free(tmp);
	free(opts);
	return rc;
}

int sm_est_ranks_needed(const sm_est_input *in, const sm_model_options *o, uint64_t node_mem,
			uint32_t *out, sm_error *err)
{
	sm_model_options x = *o;
	sm_estimate e;
	int rc;

	*out = 0;
	x.mpi = 1;
	x.select = SM_SELECT_INDEX;
	x.temperature = SM_TEMP_IN_MEMORY;
	/* A rank's arrays do not depend on the number of ranks: one rank stands for any. */
	if ((rc = sm_estimate_compute(in, &x, &e, err)) != 0)
		return rc;
	if (e.need <= node_mem)
		*out = 1;
	sm_estimate_release(&e);
	return 0;
}

int sm_est_verdict_compute(const sm_est_input *in, const sm_estimate *e, uint64_t node_mem,
			   uint64_t headroom, sm_est_verdict *v, sm_error *err)
{
	size_t i;
	int rc;

	memset(v, 0, sizeof(*v));
	v->best_one_process = v->best_distributed = -1;
	v->fits = -1;
	fill(&v->configured, e, 0);
	if (node_mem == 0)
		return 0;
	if (headroom >= node_mem)
		return sm_error_set(err, SM_EINVAL, "--headroom: %llu bytes leave nothing of the "
				    "node's %llu bytes", (unsigned long long)headroom,
				    (unsigned long long)node_mem);
	v->node_mem = node_mem;
	v->headroom = headroom;
	v->usable = node_mem - headroom;
	fill(&v->configured, e, v->usable);
	v->fits = v->configured.fits;
	v->margin = (int64_t)(v->usable - v->configured.need);
	if (e->mpi && v->configured.fits && v->configured.nodes > 0) {
		/* the busiest node holds ceil(ranks / nodes) ranks */
		uint64_t on = (e->options.ranks + v->configured.nodes - 1) / v->configured.nodes;

		v->margin = (int64_t)(v->usable - on * v->configured.need);
	}
	if ((rc = sm_est_alternatives(in, &e->options, v->usable, &v->choices, &v->nchoices,
				      err)) != 0)
		return rc;
	for (i = 0; i < v->nchoices; i++) {
		const sm_est_alternative *a = &v->choices[i];

		if (!a->fits)
			continue;
		v->nfit++;
		if (a->options.mpi && v->best_distributed < 0)
			v->best_distributed = (long)i;
		if (!a->options.mpi && v->best_one_process < 0)
			v->best_one_process = (long)i;
	}
	return 0;
}

void sm_est_verdict_release(sm_est_verdict *v)
{
	if (v == NULL)
		return;
	free(v->choices);
	v->choices = NULL;
	v->nchoices = v->nfit = 0;
}

/* "--pipeline FILE --positions float64 --set method=chunked" (sep " ", switches 1) or
 * "pipeline 'dm-projection': method chunked, positions float64" (switches 0). */
static const char *desc_text(const sm_model_options *o, int switches, char *buf, size_t len)
{
	const sm_pipeline_desc *d = o->pipeline;
	const char *words[SM__DESC_MAX_OPTIONS] = {0};
	uint64_t nums[SM__DESC_MAX_OPTIONS] = {0};
	sm_error err = {0};
	size_t i, k;
	int n;

	if (switches) {
		/* a path with a space or a quote is one shell word all the same */
		char *q = sm_shell_quote(d->file, 0);

		n = snprintf(buf, len, "--pipeline %s", q != NULL ? q : "FILE");
		if (n < 0 || (size_t)n >= len)  /* never half a quoted word: the placeholder */
			n = snprintf(buf, len, "--pipeline FILE");
		free(q);
	} else {
		n = snprintf(buf, len, d->noptions > 0 ? "pipeline '%s':" : "pipeline '%s'", d->id);
	}
	if (n < 0 || (size_t)n >= len)
		return buf;
	k = (size_t)n;
	if (sm__desc_option_values(d, o, words, nums, &err) != 0)
		return buf;
	for (i = 0; i < d->noptions && k + 1 < len; i++) {
		const char *name = d->options[i].name;
		char val[40];

		if (words[i] != NULL)
			snprintf(val, sizeof(val), "%s", words[i]);
		else
			snprintf(val, sizeof(val), "%llu", (unsigned long long)nums[i]);
		if (!switches)
			n = snprintf(buf + k, len - k, "%s %s %s", i > 0 ? "," : "", name, val);
		else if (strcmp(name, "strategy") == 0)
			n = snprintf(buf + k, len - k, "%s", strcmp(val, "distributed") == 0 ? " --mpi"
											       : "");
		else if (strcmp(name, "positions") == 0 || strcmp(name, "select") == 0 ||
			 strcmp(name, "temperature") == 0)
			n = snprintf(buf + k, len - k, " --%s %s", name, val);
		else if (strcmp(name, "stream_block") == 0)
			n = snprintf(buf + k, len - k, " --stream-block %s", val);
		else
			n = snprintf(buf + k, len - k, " --set %s=%s", name, val);
		if (n < 0 || (size_t)n >= len - k)
			break;
		k += (size_t)n;
	}
	return buf;
}

const char *sm_est_options_text(const sm_model_options *o, char *buf, size_t len)
{
	if (o->pipeline == NULL || sm_desc_is_default(o->pipeline))
		return NULL;
	return desc_text(o, 0, buf, len);
}

const char *sm_est_options_switches(const sm_model_options *o, char *buf, size_t len)
{
	if (o->pipeline != NULL && !sm_desc_is_default(o->pipeline))
		return desc_text(o, 1, buf, len);
	const char *pos = sm_model_positions_name(o->positions);
	const char *sel = sm_model_select_name(o->select);
	const char *tmp = sm_model_temperature_name(o->temperature);

	if (o->mpi || o->ranks > 1)
		snprintf(buf, len, "--mpi --positions %s --stream-block %llu", pos,
			 (unsigned long long)o->stream_block);
	else if (o->temperature == SM_TEMP_STREAMING)
		snprintf(buf, len, "--positions %s --select %s --temperature %s --stream-block %llu",
			 pos, sel, tmp, (unsigned long long)o->stream_block);
	else
		snprintf(buf, len, "--positions %s --select %s --temperature %s", pos, sel, tmp);
	return buf;
}

static json_t *bytes(uint64_t v)
{
	return json_integer(v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v);
}

char *sm_tradeoff_json(const sm_est_input *in, const sm_model_options *o,
		       const sm_est_verdict *v, sm_error *err)
{
	sm_model_options *opts = NULL;
	size_t nc = 0, i, j;
	sm_estimate base, e;
	json_t *root = NULL, *vars = json_array();
	char *text = NULL;
	double box = in->header.box_size > 0 ? in->header.box_size : 1;

	if (sm_est_variants(o, 0, &opts, &nc, err) != 0) {
		json_decref(vars);
		return NULL;
	}
	if (sm_estimate_compute(in, o, &base, err) != 0) {
		json_decref(vars);
		free(opts);
		return NULL;
	}
	for (i = 0; i < nc; i++) {
		json_t *stages = json_array();

		if (sm_estimate_compute(in, &opts[i], &e, err) != 0) {
			json_decref(stages);
			goto out;
		}
		for (j = 0; j < e.nstages; j++)
			json_array_append_new(stages, json_pack(
				"{s:s, s:o, s:o, s:o, s:o, s:o}", "id", e.stages[j].id,
				"peak_bytes", bytes(e.stages[j].peak),
				"peak_allocated_bytes", bytes(e.stages[j].peak_allocated),
				"peak_resident_bytes", bytes(e.stages[j].peak_resident),
				"live_after_bytes", bytes(e.stages[j].live_after),
				"live_after_allocated_bytes", bytes(e.stages[j].live_after_allocated)));
		json_array_append_new(vars, json_pack(
			"{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:I, s:o}",
			"options", sm__est_options_json(&opts[i]), "peak_bytes", bytes(e.peak),
			"peak_allocated_bytes", bytes(e.peak_allocated),
			"peak_total_bytes", bytes(e.peak_total),
			"peak_resident_bytes", bytes(e.peak_resident),
			"need_bytes", bytes(e.need),
			"peak_address_space_bytes", bytes(e.peak_address_space),
			"peak_stage", e.stages[e.peak_resident_stage].id,
			"saved_bytes", (json_int_t)(base.need - e.need), "stages", stages));
		sm_estimate_release(&e);
	}
	root = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "schema", "snapmem.tradeoff/1",
			 "source", sm__est_source_json(in), "options", sm__est_options_json(o),
			 "peak_total_bytes", bytes(base.peak_total), "need_bytes", bytes(base.need),
			 "precision", json_pack("{s:f, s:f, s:s}",
						"float32_spacing_at_box", (double)(nextafterf((float)box, INFINITY) - (float)box),
						"float64_spacing_at_box", nextafter(box, INFINITY) - box,
						"note", "spacing of representable positions at BoxSize (code length units): the worst-case rounding of a float32 coordinate is half of it"),
			 "variants", vars);
	vars = NULL;
	if (root != NULL && v != NULL && v->node_mem > 0)
		json_object_set_new(root, "verdict", sm__est_verdict_json(v));
	if (root != NULL)
		text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text == NULL)
		sm_error_set(err, SM_ENOMEM, "estimator: cannot build the trade-off JSON");
out:
	json_decref(vars);
	json_decref(root);
	sm_estimate_release(&base);
	free(opts);
	return text;
}
