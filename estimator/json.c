/*
 * estimate.json ("schema": "snapmem.estimate/1", docs/MODEL.md) built with jansson from one
 * sm_estimate, and the atomic writer every estimator output goes through: a temporary file in the
 * target's directory, fsync, rename. On any failure the temporary is removed and an existing target
 * is left as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "snapmem/estimator.h"

#include "internal.h"

/* per_halo lists the most massive halos only beyond this many (a selection of millions of groups
 * would cost gigabytes of JSON); per_halo_truncated says so. The stages are computed from all. */
#define JSON_MAX_HALOS 100000u

static const char *positions_name(sm_dtype t)
{
	return t == SM_DTYPE_F64 ? "float64" : "float32";
}

json_t *sm__est_options_json(const sm_model_options *o)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:o, s:f, s:I, s:b, s:o}",
			 "positions", positions_name(o->positions),
			 "select", o->select == SM_SELECT_MASK ? "mask" : "index",
			 "temperature", o->temperature == SM_TEMP_STREAMING ? "streaming" : "in-memory",
			 "stream_block", (json_int_t)o->stream_block,
			 "halos", o->halos >= 0 ? json_integer((json_int_t)o->halos) : json_null(),
			 "mass_min", o->mass_min,
			 "ranks", (json_int_t)o->ranks, "mpi", o->mpi || o->ranks > 1,
			 "sphere_cells", o->sphere_cells > 0 ? json_integer((json_int_t)o->sphere_cells)
							     : json_null());
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
			"{s:s, s:s, s:o, s:o, s:o, s:o}", "name", a->name,
			"dtype", sm__est_dtype_name(a->dtype), "count", bytes(a->count),
			"requested_bytes", bytes(a->requested), "allocated_bytes", bytes(a->allocated),
			"freed_in", a->freed_in != NULL ? json_string(a->freed_in) : json_null()));
	}
	return json_pack("{s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:o}", "id", st->id,
			 "per_halo", st->per_halo,
			 "instance", st->instance >= 0 ? json_integer(st->instance) : json_null(),
			 "arrays", arrays, "peak_bytes", bytes(st->peak),
			 "peak_allocated_bytes", bytes(st->peak_allocated),
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
	sm_est_documented rows[SM_EST_MAX_DOCUMENTED];
	json_t *arr = json_array();
	int n = sm_est_documented_rows(in, e, rows, SM_EST_MAX_DOCUMENTED, NULL), i;

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
		json_array_append_new(arr, r);
	}
	return arr;
}

/* The "mpi" object of docs/MPI.md: the work split and the node arithmetic of one rank's total. */
static json_t *mpi_json(const sm_estimate *e, uint64_t node_mem)
{
	uint64_t rpn = 0, nodes = 0;

	if (node_mem > 0)
		sm_est_node_fit(e->peak_total, node_mem, e->options.ranks, &rpn, &nodes);
	return json_pack("{s:I, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:f}",
			 "ranks", (json_int_t)e->options.ranks,
			 "assignment", "largest chunk first to the least-loaded rank",
			 "files", (json_int_t)e->files,
			 "files_with_gas", e->files_with_gas >= 0 ? json_integer(e->files_with_gas)
								  : json_null(),
			 "cells_per_rank_max", e->have_cells_per_rank ? bytes(e->cells_per_rank_max)
								      : json_null(),
			 "cells_per_rank_min", e->have_cells_per_rank ? bytes(e->cells_per_rank_min)
								      : json_null(),
			 "per_rank_peak_total_bytes", bytes(e->peak_total),
			 "node_mem_bytes", node_mem > 0 ? bytes(node_mem) : json_null(),
			 "ranks_per_node", node_mem > 0 ? bytes(rpn) : json_null(),
			 "nodes_needed", node_mem > 0 && rpn > 0 ? bytes(nodes) : json_null(),
			 "halo_grid_side", (json_int_t)e->halo_grid_side,
			 "sphere_radius_max", e->sphere_radius_max);
}

char *sm_estimate_json(const sm_est_input *in, const sm_estimate *e, uint64_t node_mem)
{
	json_t *root, *stages = json_array(), *alts = json_array();
	sm_est_alternative *al = NULL;
	size_t nal = 0, i;
	char *text;

	for (i = 0; i < e->nstages; i++)
		json_array_append_new(stages, stage_json(&e->stages[i]));
	if (node_mem > 0 && sm_est_alternatives(in, &e->options, node_mem, &al, &nal, NULL) == 0) {
		for (i = 0; i < nal; i++)
			json_array_append_new(alts, json_pack(
				"{s:o, s:o, s:o, s:o, s:s, s:b}",
				"options", sm__est_options_json(&al[i].options),
				"peak_bytes", bytes(al[i].peak),
				"peak_allocated_bytes", bytes(al[i].peak_allocated),
				"peak_total_bytes", bytes(al[i].peak_total),
				"peak_stage", al[i].peak_stage, "fits", al[i].fits));
	}
	free(al);
	root = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o}",
			 "schema", "snapmem.estimate/1", "source", source_json(in),
			 "header", header_json(&in->header),
			 "options", sm__est_options_json(&e->options),
			 "halos", halos_json(in, e), "baseline_bytes", bytes(e->baseline),
			 "stages", stages, "peak_bytes", bytes(e->peak),
			 "peak_allocated_bytes", bytes(e->peak_allocated),
			 "peak_stage", e->nstages > 0 ? e->stages[e->peak_stage].id : "",
			 "peak_total_bytes", bytes(e->peak_total),
			 "node_mem_bytes", node_mem > 0 ? bytes(node_mem) : json_null(),
			 "fits", node_mem > 0 ? json_boolean(e->peak_total <= node_mem) : json_null(),
			 "alternatives", alts, "documented", documented_json(in, e));
	if (root == NULL)
		return NULL;
	if (e->mpi)
		json_object_set_new(root, "mpi", mpi_json(e, node_mem));
	if (node_mem > 0) {
		uint32_t r = 0;

		if (sm_est_ranks_needed(in, &e->options, node_mem, &r, NULL) == 0)
			json_object_set_new(root, "ranks_needed", r > 0 ? json_integer(r) : json_null());
	}
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	return text;
}

int sm__est_write_atomic(const char *path, const char *text, size_t len, sm_error *err)
{
	char tmp[SM_PATH_MAX + 32];
	int fd = -1, rc = 0;
	size_t off = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp))
		return sm_error_set(err, SM_EIO, "'%s': path is too long", path);
	fd = mkstemp(tmp);
	if (fd < 0)
		return sm_error_set(err, SM_EIO, "'%s': cannot create a temporary file: %s", path,
				    strerror(errno));
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = sm_error_set(err, SM_EIO, "'%s': write failed: %s", tmp,
					  w < 0 ? strerror(errno) : "no progress");
			goto fail;
		}
		off += (size_t)w;
	}
	if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
		rc = sm_error_set(err, SM_EIO, "'%s': cannot sync: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = sm_error_set(err, SM_EIO, "'%s': close failed: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = sm_error_set(err, SM_EIO, "'%s': cannot rename into place: %s", path,
				  strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

int sm_est_write_text(const char *path, const char *text, sm_error *err)
{
	return sm__est_write_atomic(path, text, strlen(text), err);
}

int sm_estimate_write_json(const sm_est_input *in, const sm_estimate *e, uint64_t node_mem,
			   const char *path, sm_error *err)
{
	char *text = sm_estimate_json(in, e, node_mem);
	int rc;

	if (text == NULL)
		return sm_error_set(err, SM_ENOMEM, "'%s': cannot build the estimate JSON", path);
	rc = sm__est_write_atomic(path, text, strlen(text), err);
	free(text);
	return rc;
}
