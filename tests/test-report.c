/*
 * The report library: the verdict rule at its boundaries, loading and rejecting documents,
 * findings first, every format, the linear fit and the TNG300-1 extrapolation against the
 * notebook's figures, the float32/float64 trade-off on a small mock snapshot, and a distributed
 * run's per-rank section (passing, one rank over the tolerance, malformed mpi objects). Run
 * directories are written by hand (jansson) under tu_tmpdir().
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <hdf5.h>
#include <jansson.h>

#include "snapmem/mock.h"
#include "snapmem/report.h"
#include "util.h"

#define MIB (UINT64_C(1) << 20)
#define KIB (UINT64_C(1) << 10)
#define BASE_ALLOC (3 * MIB)

struct fx_stage {
	const char *id;
	int per_halo;
	uint64_t est_req, est_alloc, meas_req, meas_above, unexplained, live_end;
};

struct fx_array {
	const char *name, *stage;
	uint64_t est, meas;
};

struct fx_run {
	uint64_t gas;
	const char *positions;
	const struct fx_stage *stages;
	size_t nstages;
	const struct fx_array *arrays;
	size_t narrays;
	const char *base_path; /* run.options.base_path, or NULL */
	const char *select;    /* estimate.json options.select; NULL: "index" */
	int64_t stream_block;  /* run.options and estimate.json options; 0: 1048576 */
};

static void dump(json_t *j, const char *dir, const char *name)
{
	char *p = tu_path(dir, name);

	assert_int_equal(json_dump_file(j, p, JSON_INDENT(1)), 0);
	free(p);
	json_decref(j);
}

static void write_run(const char *dir, const struct fx_run *r)
{
	json_t *est_st = json_array(), *mem_st = json_array(), *mem_ar = json_array();
	size_t i, j;

	mkdir(dir, 0755);
	for (i = 0; i < r->nstages; i++) {
		const struct fx_stage *s = &r->stages[i];
		json_t *arr = json_array();

		for (j = 0; j < r->narrays; j++)
			if (strcmp(r->arrays[j].stage, s->id) == 0 && r->arrays[j].est > 0)
				json_array_append_new(arr, json_pack(
					"{s:s, s:s, s:I, s:I, s:I, s:n}", "name", r->arrays[j].name,
					"dtype", "float32", "count", (json_int_t)r->arrays[j].est / 4,
					"requested_bytes", (json_int_t)r->arrays[j].est,
					"allocated_bytes", (json_int_t)r->arrays[j].est, "freed_in"));
		json_array_append_new(est_st, json_pack(
			"{s:s, s:b, s:o, s:o, s:I, s:I, s:I, s:I}", "id", s->id, "per_halo", s->per_halo,
			"instance", s->per_halo ? json_integer(0) : json_null(), "arrays", arr,
			"peak_bytes", (json_int_t)s->est_req, "peak_allocated_bytes",
			(json_int_t)s->est_alloc, "live_after_bytes", (json_int_t)s->live_end,
			"live_after_allocated_bytes", (json_int_t)s->live_end));
		json_array_append_new(mem_st, json_pack(
			"{s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:{s:I, s:I, s:I}, s:I, s:{s:I, s:I, s:I},"
			" s:{s:I, s:I}, s:I, s:[{s:i, s:I}]}",
			"id", s->id, "instance", s->per_halo ? 0 : -1, "depth", s->per_halo ? 1 : 0,
			"parent", -1, "t_begin", (double)i, "wall_s", 1.0, "cpu_s", 1.0, "requested",
			"live_begin", (json_int_t)0, "live_end", (json_int_t)s->live_end, "peak",
			(json_int_t)s->meas_req, "tracked_allocated_peak",
			(json_int_t)(s->meas_above - s->unexplained), "allocated", "begin",
			(json_int_t)BASE_ALLOC, "end", (json_int_t)BASE_ALLOC, "peak",
			(json_int_t)(BASE_ALLOC + s->meas_above), "resident", "begin", (json_int_t)MIB,
			"end", (json_int_t)(2 * MIB), "unexplained_bytes", (json_int_t)s->unexplained,
			"top_sites", "site", 0, "bytes", (json_int_t)s->unexplained));
		if (s->per_halo) /* a second, smaller halo: the report must show instance 0 */
			json_array_append_new(mem_st, json_pack(
				"{s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:{s:I, s:I, s:I}, s:I,"
				" s:{s:I, s:I, s:I}, s:{s:I, s:I}, s:I, s:[]}",
				"id", s->id, "instance", 1, "depth", 1, "parent", -1, "t_begin",
				(double)i + 0.5, "wall_s", 0.1, "cpu_s", 0.1, "requested", "live_begin",
				(json_int_t)0, "live_end", (json_int_t)0, "peak", (json_int_t)1,
				"tracked_allocated_peak", (json_int_t)0, "allocated", "begin",
				(json_int_t)BASE_ALLOC, "end", (json_int_t)BASE_ALLOC, "peak",
				(json_int_t)BASE_ALLOC, "resident", "begin", (json_int_t)0, "end",
				(json_int_t)0, "unexplained_bytes", (json_int_t)0, "top_sites"));
	}
	for (j = 0; j < r->narrays; j++)
		if (r->arrays[j].meas > 0)
			json_array_append_new(mem_ar, json_pack(
				"{s:s, s:s, s:i, s:I, s:I, s:f, s:n, s:n, s:n}", "name", r->arrays[j].name,
				"stage", r->arrays[j].stage, "instance", -1, "requested",
				(json_int_t)r->arrays[j].meas, "allocated", (json_int_t)r->arrays[j].meas,
				"t_alloc", 0.0, "t_free", "freed_in", "site"));
	dump(json_pack("{s:s, s:{s:s, s:s, s:n, s:n}, s:{s:I, s:[I,I,I,I,I,I], s:i, s:f, s:f, s:f,"
		       " s:f, s:f, s:f}, s:{s:s, s:s, s:s, s:I, s:n, s:f, s:i, s:n},"
		       " s:{s:i, s:i, s:s, s:[], s:[]}, s:I, s:o, s:I, s:I, s:s, s:I}",
		       "schema", "snapmem.estimate/1", "source", "kind", "base_path", "name", "fixture",
		       "path", "snap", "header", "gas_cells", (json_int_t)r->gas, "npart_total",
		       (json_int_t)r->gas, (json_int_t)0, (json_int_t)0, (json_int_t)0, (json_int_t)0,
		       (json_int_t)0, "num_files", 1, "box_size", 75000.0, "hubble_param", 0.6774,
		       "omega0", 0.3089, "omega_baryon", 0.0486, "omega_lambda", 0.6911, "redshift",
		       0.0, "options", "positions", r->positions, "select",
		       r->select != NULL ? r->select : "index", "temperature",
		       "in-memory", "stream_block",
		       (json_int_t)(r->stream_block != 0 ? r->stream_block : 1048576), "halos", "mass_min", 1e14,
		       "ranks", 1, "sphere_cells", "halos", "count", 2, "groups_total", 2,
		       "sphere_cells_source", "model", "assumptions", "per_halo", "baseline_bytes",
		       (json_int_t)BASE_ALLOC, "stages", est_st, "peak_bytes", (json_int_t)0,
		       "peak_allocated_bytes", (json_int_t)0, "peak_stage", "load_halos",
		       "peak_total_bytes", (json_int_t)0),
	     dir, "estimate.json");
	dump(json_pack("{s:s, s:b, s:n, s:{s:s, s:s, s:b, s:s}, s:{}, s:{s:I, s:I, s:I, s:I, s:I, s:I},"
		       " s:o, s:o, s:[{s:i, s:I, s:i, s:b, s:[{s:s, s:i, s:s, s:n, s:n}]}],"
		       " s:{s:f, s:[f,f,f], s:[I,I,I], s:[I,I,I], s:[]},"
		       " s:{s:{s:s, s:i}, s:f}}",
		       "schema", "snapmem.memory/1", "complete", 1, "incomplete_reason", "allocator",
		       "name", "jemalloc", "version", "5.3.0", "measured", 1, "untracked_sampling",
		       "threshold", "options", "baseline", "allocated", (json_int_t)BASE_ALLOC,
		       "active", (json_int_t)BASE_ALLOC, "resident", (json_int_t)MIB, "mapped",
		       (json_int_t)MIB, "vm_rss", (json_int_t)MIB, "vm_hwm", (json_int_t)MIB, "stages",
		       mem_st, "arrays", mem_ar, "sites", "id", 0, "bytes", (json_int_t)1, "count", 1,
		       "tracked", 0, "frames", "function", "H5FL_reg_malloc", "offset", 0, "address",
		       "0x1", "file", "line", "timeline", "rate_hz", 100.0, "t", 0.0, 1.0, 2.0,
		       "allocated", (json_int_t)BASE_ALLOC, (json_int_t)(BASE_ALLOC + MIB),
		       (json_int_t)BASE_ALLOC, "resident", (json_int_t)MIB, (json_int_t)(2 * MIB),
		       (json_int_t)MIB, "marks", "run", "options", "base_path",
		       r->base_path != NULL ? r->base_path : "/nonexistent", "snap", 99, "box_size",
		       75000.0),
	     dir, "memory.json");
}

/* One big stage (100 MiB), one small stage (512 KiB), one per-halo stage. */
static void simple_run(const char *dir, uint64_t big_meas, uint64_t small_meas, uint64_t unexpl)
{
	struct fx_stage st[] = {
		{"load_halos", 0, 512 * KIB, 512 * KIB, small_meas, small_meas, 0, 512 * KIB},
		{"load_gas_fields", 0, 100 * MIB, 100 * MIB, big_meas, big_meas + unexpl, unexpl, 100 * MIB},
		{"select_sphere", 1, 2 * MIB, 2 * MIB, 2 * MIB, 2 * MIB, 0, 0},
	};
	struct fx_array ar[] = {
		{"InternalEnergy", "load_gas_fields", 100 * MIB, big_meas},
		{"mystery", "load_gas_fields", 0, 5 * MIB},
	};
	struct fx_run r = {1000, "float32", st, 3, ar, 2, NULL, NULL, 0};

	write_run(dir, &r);
}

static void test_judge_boundaries(void **state)
{
	sm_report_cmp c;

	(void)state;
	/* 1% of 100 MiB: exactly at the bound passes, one byte beyond fails, both directions */
	assert_int_equal(sm_report_judge(100 * MIB, 101 * MIB, 1.0, 64 * KIB, &c), SM_VERDICT_PASS);
	assert_int_equal(c.bound, MIB);
	assert_int_equal(c.absolute, 0);
	assert_int_equal(sm_report_judge(100 * MIB, 101 * MIB + 1, 1.0, 64 * KIB, &c), SM_VERDICT_FAIL);
	assert_int_equal(sm_report_judge(100 * MIB, 99 * MIB, 1.0, 64 * KIB, &c), SM_VERDICT_PASS);
	assert_int_equal(sm_report_judge(100 * MIB, 99 * MIB - 1, 1.0, 64 * KIB, &c), SM_VERDICT_FAIL);
	assert_int_equal(c.diff, -(int64_t)(MIB + 1));
	/* below 1 MiB the absolute bound applies, not the percentage */
	assert_int_equal(sm_report_judge(512 * KIB, 576 * KIB, 1.0, 64 * KIB, &c), SM_VERDICT_PASS);
	assert_int_equal(c.absolute, 1);
	assert_int_equal(sm_report_judge(512 * KIB, 576 * KIB + 1, 1.0, 64 * KIB, &c), SM_VERDICT_FAIL);
	assert_int_equal(sm_report_judge(0, 64 * KIB, 1.0, 64 * KIB, &c), SM_VERDICT_PASS);
	assert_true(isinf(c.pct));
	assert_int_equal(sm_report_judge(MIB, MIB, 0.0, 0, &c), SM_VERDICT_PASS);
	assert_int_equal(sm_report_judge(MIB, MIB + 1, 0.0, 0, &c), SM_VERDICT_FAIL);
}

static void test_compare_verdicts(void **state)
{
	char *dir = tu_tmpdir(), *d1 = tu_path(dir, "pass"), *d2 = tu_path(dir, "fail"),
	     *d3 = tu_path(dir, "small");
	sm_report r;
	sm_error err = {0};

	(void)state;
	simple_run(d1, 101 * MIB, 576 * KIB, 0);
	simple_run(d2, 101 * MIB + 1, 512 * KIB, 0);
	simple_run(d3, 100 * MIB, 576 * KIB + 1, 0);
	assert_int_equal(sm_report_load(&r, d1, &err), 0);
	assert_int_equal(sm_report_compare(&r, 1.0, 64 * KIB, &err), 0);
	assert_int_equal(r.nfail, 0);
	assert_int_equal(r.nstages, 3);
	assert_int_equal(r.stages[2].instance, 0); /* the halo with the highest requested peak */
	assert_int_equal(r.stages[2].nhalos, 2);
	/* a tighter tolerance turns the same run into a failure */
	assert_int_equal(sm_report_compare(&r, 0.5, 64 * KIB, &err), 0);
	assert_int_equal(r.nfail, 1);
	assert_int_equal(sm_report_compare(&r, -1.0, 64 * KIB, &err), SM_EINVAL);
	sm_report_release(&r);
	assert_int_equal(sm_report_load(&r, d2, &err), 0);
	assert_int_equal(sm_report_compare(&r, 1.0, 64 * KIB, &err), 0);
	assert_int_equal(r.nfail, 1);
	assert_int_equal(r.stages[1].requested.verdict, SM_VERDICT_FAIL);
	assert_int_equal(r.stages[0].requested.verdict, SM_VERDICT_PASS);
	sm_report_release(&r);
	assert_int_equal(sm_report_load(&r, d3, &err), 0);
	assert_int_equal(sm_report_compare(&r, 1.0, 64 * KIB, &err), 0);
	assert_int_equal(r.nfail, 1);
	assert_int_equal(r.stages[0].requested.verdict, SM_VERDICT_FAIL);
	assert_int_equal(r.stages[0].requested.absolute, 1);
	sm_report_release(&r);
	tu_rmtree(dir);
	free(d1);
	free(d2);
	free(d3);
	free(dir);
}

static void expect_load_error(const char *dir, const char *file, const char *text, int code,
			      const char *needle)
{
	char *p = tu_path(dir, file);
	sm_report r;
	sm_error err = {0};
	FILE *f;

	if (text != NULL) {
		f = fopen(p, "w");
		assert_non_null(f);
		fputs(text, f);
		fclose(f);
	} else {
		remove(p);
	}
	assert_int_equal(sm_report_load(&r, dir, &err), code);
	assert_non_null(strstr(err.msg, p));
	assert_non_null(strstr(err.msg, needle));
	assert_null(strchr(err.msg, '\n'));
	assert_null(r.stages);
	free(p);
}

static void test_load_errors(void **state)
{
	char *dir = tu_tmpdir(), *d = tu_path(dir, "run");

	(void)state;
	simple_run(d, 100 * MIB, 512 * KIB, 0);
	expect_load_error(d, "memory.json", "{\"schema\": \"snapmem.memory/1\", ", SM_EFORMAT,
			  "malformed JSON");
	expect_load_error(d, "memory.json", "[1, 2]", SM_EFORMAT, "not a JSON object");
	expect_load_error(d, "memory.json", "{\"schema\": \"other/1\"}", SM_EFORMAT, "'other/1'");
	expect_load_error(d, "memory.json", "{\"a\": 1}", SM_EFORMAT, "schema");
	expect_load_error(d, "memory.json", "{\"schema\": \"snapmem.memory/1\", \"complete\": 1}",
			  SM_EFORMAT, "complete");
	expect_load_error(d, "memory.json", NULL, SM_ENOTFOUND, "no such file");
	simple_run(d, 100 * MIB, 512 * KIB, 0);
	expect_load_error(d, "estimate.json", "{\"schema\": \"snapmem.memory/1\"}", SM_EFORMAT,
			  "expected 'snapmem.estimate/1'");
	expect_load_error(d, "estimate.json",
			  "{\"schema\": \"snapmem.estimate/1\", \"source\": {\"name\": \"x\"}, "
			  "\"header\": {\"gas_cells\": -5}}", SM_EFORMAT, "header.gas_cells is negative");
	tu_rmtree(dir);
	free(d);
	free(dir);
}

static void test_formats_findings_first(void **state)
{
	char *dir = tu_tmpdir(), *d = tu_path(dir, "run"), *text = NULL, *p;
	sm_report r;
	sm_error err = {0};
	json_t *j;
	json_error_t je;
	size_t len;

	(void)state;
	simple_run(d, 100 * MIB, 512 * KIB, 3 * MIB);
	assert_int_equal(sm_report_load(&r, d, &err), 0);
	assert_int_equal(sm_report_compare(&r, 1.0, 64 * KIB, &err), 0);
	assert_int_equal(r.nfail, 0); /* tracked arrays match: the 3 MiB is a finding only */
	r.strict = 1;
	assert_int_equal(sm_report_compare(&r, 1.0, 64 * KIB, &err), 0);
	assert_int_equal(r.nfail, 1); /* --strict: 3 MiB unexplained beyond 1 MiB allowed */

	assert_int_equal(sm_report_render(&r, SM_REPORT_TABLE, &text, &err), 0);
	assert_non_null(strstr(text, "FINDINGS"));
	assert_non_null(strstr(text, "3.00 MiB (3,145,728 B) allocated at the peak that no"));
	assert_non_null(strstr(text, "array 'mystery' in 'load_gas_fields' is not in the model"));
	assert_true(strstr(text, "FINDINGS") < strstr(text, "STAGES"));
	assert_true(strstr(text, "H5FL_reg_malloc") < strstr(text, "STAGES"));
	assert_non_null(strstr(text, "select_sphere [halo 0]"));
	free(text);

	assert_int_equal(sm_report_render(&r, SM_REPORT_MARKDOWN, &text, &err), 0);
	assert_true(strstr(text, "## Findings") < strstr(text, "## Stages"));
	assert_non_null(strstr(text, "| `load_gas_fields` |"));
	assert_non_null(strstr(text, "**verdict: FAIL**"));
	assert_non_null(strstr(text, "n/a |"));
	free(text);

	assert_int_equal(sm_report_render(&r, SM_REPORT_HTML, &text, &err), 0);
	assert_null(strstr(text, "http"));
	assert_null(strstr(text, "<script"));
	assert_null(strstr(text, "<link"));
	assert_non_null(strstr(text, "<svg"));
	assert_non_null(strstr(text, "class=\"est\""));
	assert_true(strstr(text, "Findings") < strstr(text, "<svg"));
	free(text);

	assert_int_equal(sm_report_render(&r, SM_REPORT_JSON, &text, &err), 0);
	j = json_loads(text, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "schema")), "snapmem.report/1");
	assert_string_equal(json_string_value(json_object_get(j, "verdict")), "fail");
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(j, "findings"), 0), "kind")), "unmodelled_array");
	{
		json_t *st = json_array_get(json_object_get(j, "stages"), 1);

		assert_string_equal(json_string_value(json_object_get(st, "id")), "load_gas_fields");
		assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "allocated"),
								    "difference_bytes")), 3 * MIB);
		assert_string_equal(json_string_value(json_object_get(json_object_get(st, "allocated"),
								      "verdict")), "fail");
		st = json_array_get(json_object_get(j, "stages"), 2);
		assert_int_equal(json_array_size(json_object_get(st, "halos")), 2);
	}
	json_decref(j);
	free(text);
	sm_report_release(&r);

	/* the pipeline's entry point */
	assert_int_equal(sm_report_write_files(d, 1.0, &err), 0);
	p = tu_path(d, "report.html");
	text = tu_read_file(p, &len);
	assert_non_null(text);
	assert_null(strstr(text, "http"));
	free(text);
	free(p);
	p = tu_path(d, "report.md");
	assert_true(tu_exists(p));
	free(p);
	assert_int_equal(sm_report_write_files("/nonexistent-dir", 1.0, &err), SM_ENOTFOUND);
	tu_rmtree(dir);
	free(d);
	free(dir);
}

/* ---- a distributed run (docs/MPI.md): memory.json's mpi object ------------------------------ */

#define RANK_EST (40 * MIB)      /* the estimate's per-rank requested peak */
#define RANK_EST_AL (44 * MIB)   /* and allocated peak */

struct fx_rank {
	uint64_t req, tracked, alloc_above, cells;
};

static json_t *load_json(const char *dir, const char *name)
{
	char *p = tu_path(dir, name);
	json_error_t je;
	json_t *j = json_load_file(p, 0, &je);

	assert_non_null(j);
	free(p);
	return j;
}

/* A passing one-process fixture turned into a distributed run of n ranks: the estimate says
 * options.mpi and its peaks are one rank's; memory.json gains the mpi object. */
static void mpi_run(const char *dir, const struct fx_rank *rk, size_t n)
{
	json_t *est, *mem, *per = json_array(), *mx, *sm;
	uint64_t m_cells = 0, m_req = 0, m_tr = 0, m_al = 0, s_cells = 0, s_req = 0, s_tr = 0,
		 s_al = 0, s_hwm = 0;
	size_t i;

	simple_run(dir, 100 * MIB, 512 * KIB, 0);
	est = load_json(dir, "estimate.json");
	json_object_set_new(json_object_get(est, "options"), "mpi", json_true());
	json_object_set_new(json_object_get(est, "options"), "ranks", json_integer((json_int_t)n));
	json_object_set_new(est, "peak_bytes", json_integer((json_int_t)RANK_EST));
	json_object_set_new(est, "peak_allocated_bytes", json_integer((json_int_t)RANK_EST_AL));
	json_object_set_new(est, "peak_total_bytes", json_integer((json_int_t)(RANK_EST_AL + BASE_ALLOC)));
	dump(est, dir, "estimate.json");
	mem = load_json(dir, "memory.json");
	for (i = 0; i < n; i++) {
		uint64_t al = BASE_ALLOC + rk[i].alloc_above, hwm = 100 * MIB + i;

		json_array_append_new(per, json_pack(
			"{s:I, s:s, s:[I,I], s:I, s:f, s:I, s:I, s:I, s:I, s:I,"
			" s:[{s:s, s:i, s:f, s:I, s:I, s:I, s:I}]}",
			"rank", (json_int_t)i, "host", i == 1 ? "node<b>|2" : "node1",
			"files", (json_int_t)(2 * i), (json_int_t)(2 * i + 1), "cells",
			(json_int_t)rk[i].cells, "wall_s", 1.5 + (double)i, "baseline_allocated",
			(json_int_t)BASE_ALLOC, "requested_peak", (json_int_t)rk[i].req,
			"tracked_allocated_peak", (json_int_t)rk[i].tracked, "allocated_peak",
			(json_int_t)al, "vm_hwm", (json_int_t)hwm, "stages", "id", "stream_cells",
			"instance", -1, "wall_s", 1.0, "requested_peak", (json_int_t)rk[i].req,
			"tracked_allocated_peak", (json_int_t)rk[i].tracked, "allocated_peak",
			(json_int_t)al, "vm_hwm", (json_int_t)hwm));
		m_cells = rk[i].cells > m_cells ? rk[i].cells : m_cells;
		m_req = rk[i].req > m_req ? rk[i].req : m_req;
		m_tr = rk[i].tracked > m_tr ? rk[i].tracked : m_tr;
		m_al = al > m_al ? al : m_al;
		s_cells += rk[i].cells;
		s_req += rk[i].req;
		s_tr += rk[i].tracked;
		s_al += al;
		s_hwm += hwm;
	}
	mx = json_pack("{s:I, s:f, s:I, s:I, s:I, s:I}", "cells", (json_int_t)m_cells, "wall_s",
		       0.5 + (double)n, "requested_peak", (json_int_t)m_req, "tracked_allocated_peak",
		       (json_int_t)m_tr, "allocated_peak", (json_int_t)m_al, "vm_hwm",
		       (json_int_t)(100 * MIB + n - 1));
	sm = json_pack("{s:I, s:f, s:I, s:I, s:I, s:I}", "cells", (json_int_t)s_cells, "wall_s",
		       10.0, "requested_peak", (json_int_t)s_req, "tracked_allocated_peak",
		       (json_int_t)s_tr, "allocated_peak", (json_int_t)s_al, "vm_hwm",
		       (json_int_t)s_hwm);
	json_object_set_new(mem, "mpi", json_pack("{s:I, s:s, s:o, s:o, s:o}", "ranks", (json_int_t)n,
						  "assignment", "largest chunk first to the "
						  "least-loaded rank", "per_rank", per, "max", mx,
						  "sum", sm));
	dump(mem, dir, "memory.json");
}

static const struct fx_rank ranks_ok[3] = {
	{RANK_EST, RANK_EST_AL, RANK_EST_AL + MIB, 5000},
	{RANK_EST, RANK_EST_AL, RANK_EST_AL + 2 * MIB, 3000},
	{RANK_EST, RANK_EST_AL - 100 * KIB, RANK_EST_AL, 4000},
};

static void test_mpi_ranks(void **state)
{
	char *dir = tu_tmpdir(), *d = tu_path(dir, "mpi"), *text = NULL;
	struct fx_rank rk[3];
	sm_report r;
	sm_error err = {0};
	json_t *j, *m, *r2;
	json_error_t je;
	tu_result tr;

	(void)state;
	mpi_run(d, ranks_ok, 3);
	assert_int_equal(sm_report_load(&r, d, &err), 0);
	assert_int_equal(sm_report_compare(&r, 1.0, 64 * KIB, &err), 0);
	assert_int_equal(r.nfail, 0);
	assert_int_equal(sm_report_render(&r, SM_REPORT_TABLE, &text, &err), 0);
	assert_non_null(strstr(text, "verdict: PASS, every stage and every rank within the tolerance"));
	assert_non_null(strstr(text, "distributed (--mpi, 3 ranks), positions float32"));
	assert_null(strstr(text, "select index"));  /* the serial switches do not apply */
	assert_non_null(strstr(text, "RANKS (distributed run: 3 ranks, largest chunk first to the "
				     "least-loaded rank"));
	assert_non_null(strstr(text, "requested 40.00 MiB, allocated 44.00 MiB"));
	assert_non_null(strstr(text, "2 (2,3)"));           /* rank 1's files */
	assert_non_null(strstr(text, "5,000"));             /* rank 0's cells */
	assert_non_null(strstr(text, "12,000"));            /* the sum of cells */
	assert_non_null(strstr(text, "46.00 MiB"));         /* rank 1 above its baseline */
	assert_non_null(strstr(text, "-100.00 KiB"));       /* rank 2's tracked difference */
	assert_non_null(strstr(text, "every rank within the tolerance"));
	assert_true(strstr(text, "STAGES") < strstr(text, "RANKS"));
	free(text);
	assert_int_equal(sm_report_render(&r, SM_REPORT_MARKDOWN, &text, &err), 0);
	assert_non_null(strstr(text, "## Ranks"));
	assert_non_null(strstr(text, "| 1 | node\\<b\\>\\|2 |"));  /* escaped host */
	assert_non_null(strstr(text, "| **max** |"));
	assert_non_null(strstr(text, "| **sum** |"));
	free(text);
	assert_int_equal(sm_report_render(&r, SM_REPORT_HTML, &text, &err), 0);
	assert_non_null(strstr(text, "<h2>Ranks</h2>"));
	assert_non_null(strstr(text, "node&lt;b&gt;|2"));
	assert_null(strstr(text, "node<b>"));
	free(text);
	assert_int_equal(sm_report_render(&r, SM_REPORT_JSON, &text, &err), 0);
	j = json_loads(text, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "verdict")), "pass");
	m = json_object_get(j, "mpi");
	assert_int_equal(json_integer_value(json_object_get(m, "ranks")), 3);
	assert_int_equal(json_integer_value(json_object_get(m, "failed_ranks")), 0);
	assert_int_equal(json_array_size(json_object_get(m, "per_rank")), 3);
	r2 = json_array_get(json_object_get(m, "per_rank"), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r2, "allocated"),
							    "difference_bytes")), -100 * (json_int_t)KIB);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "sum"), "cells")),
			 12000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "estimated"),
							    "requested_bytes")), (json_int_t)RANK_EST);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
		json_object_get(r2, "stages"), 0), "id")), "stream_cells");
	json_decref(j);
	free(text);
	/* --strict judges each rank's process peak above its baseline: rank 1 is 2 MiB over */
	r.strict = 1;
	assert_int_equal(sm_report_compare(&r, 1.0, 64 * KIB, &err), 0);
	assert_int_equal(r.nfail, 2);  /* ranks 0 (1 MiB > 1% of 44 MiB) and 1 */
	sm_report_release(&r);
	tr = tu_run("report", d, NULL);
	assert_int_equal(tr.status, 0);
	tu_result_free(&tr);

	/* one rank's requested peak 1% + 1 byte over: that rank fails, exit 1 */
	memcpy(rk, ranks_ok, sizeof(rk));
	rk[1].req = RANK_EST + RANK_EST / 100 + 1;
	mpi_run(d, rk, 3);
	assert_int_equal(sm_report_load(&r, d, &err), 0);
	assert_int_equal(sm_report_compare(&r, 1.0, 64 * KIB, &err), 0);
	assert_int_equal(r.nfail, 1);
	assert_int_equal(sm_report_render(&r, SM_REPORT_TABLE, &text, &err), 0);
	assert_non_null(strstr(text, "verdict: FAIL, 1 rank miss the tolerance"));
	assert_non_null(strstr(text, "1 rank miss the tolerance\n"));
	free(text);
	assert_int_equal(sm_report_render(&r, SM_REPORT_JSON, &text, &err), 0);
	j = json_loads(text, 0, &je);
	assert_string_equal(json_string_value(json_object_get(j, "verdict")), "fail");
	assert_int_equal(json_integer_value(json_object_get(j, "failed_stages")), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "mpi"),
							    "failed_ranks")), 1);
	r2 = json_array_get(json_object_get(json_object_get(j, "mpi"), "per_rank"), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r2, "requested"),
							      "verdict")), "fail");
	json_decref(j);
	free(text);
	/* 2% tolerance: within */
	assert_int_equal(sm_report_compare(&r, 2.0, 64 * KIB, &err), 0);
	assert_int_equal(r.nfail, 0);
	sm_report_release(&r);
	tr = tu_run("report", d, NULL);
	assert_int_equal(tr.status, 1);
	tu_result_free(&tr);
	tr = tu_run("report", d, "--format", "markdown", NULL);
	assert_int_equal(tr.status, 1);
	assert_non_null(strstr(tr.out, "**verdict: FAIL**, 1 rank miss the tolerance"));
	tu_result_free(&tr);

	/* one rank's tracked allocated peak under by more than 1%: fails too */
	memcpy(rk, ranks_ok, sizeof(rk));
	rk[0].tracked = RANK_EST_AL - RANK_EST_AL / 50;
	mpi_run(d, rk, 3);
	assert_int_equal(sm_report_load(&r, d, &err), 0);
	assert_int_equal(sm_report_compare(&r, 1.0, 64 * KIB, &err), 0);
	assert_int_equal(r.nfail, 1);
	sm_report_release(&r);
	tu_rmtree(dir);
	free(d);
	free(dir);
}

/* Set a JSON path's value in d/memory.json (or delete it when v is NULL). */
static void patch(const char *d, const char *file, const char *k1, int idx, const char *k2,
		  json_t *v)
{
	json_t *root = load_json(d, file), *o = json_object_get(root, k1);

	if (idx >= 0)
		o = json_array_get(json_object_get(o, "per_rank"), (size_t)idx);
	if (k2 == NULL) {
		json_object_set_new(root, k1, v);
	} else if (v == NULL) {
		json_object_del(o, k2);
	} else {
		json_object_set_new(o, k2, v);
	}
	dump(root, d, file);
}

static void expect_mpi_error(const char *d, const char *file, const char *needle)
{
	char *p = tu_path(d, file);
	sm_report r;
	sm_error err = {0};
	tu_result tr;

	assert_int_equal(sm_report_load(&r, d, &err), SM_EFORMAT);
	if (strstr(err.msg, p) == NULL || strstr(err.msg, needle) == NULL)
		fail_msg("want '%s' and '%s' in: %s", p, needle, err.msg);
	assert_null(strchr(err.msg, '\n'));
	assert_null(r.stages);
	tr = tu_run("report", d, NULL);
	assert_int_equal(tr.status, 2);
	assert_int_equal(tu_count_lines(tr.err), 1);
	assert_non_null(strstr(tr.err, needle));
	assert_string_equal(tr.out, "");
	tu_result_free(&tr);
	free(p);
}

static void test_mpi_malformed(void **state)
{
	char *dir = tu_tmpdir(), *d = tu_path(dir, "mpi");

	(void)state;
	mpi_run(d, ranks_ok, 3);
	patch(d, "memory.json", "mpi", 1, "requested_peak", NULL);
	expect_mpi_error(d, "memory.json", "mpi.per_rank[1].requested_peak is missing");
	mpi_run(d, ranks_ok, 3);
	patch(d, "memory.json", "mpi", 2, "vm_hwm", json_integer(-4));
	expect_mpi_error(d, "memory.json", "mpi.per_rank[2].vm_hwm is negative");
	mpi_run(d, ranks_ok, 3);
	patch(d, "memory.json", "mpi", 0, "files", json_pack("[i, s]", 1, "two"));
	expect_mpi_error(d, "memory.json", "mpi.per_rank[0].files[1] is not a file number");
	mpi_run(d, ranks_ok, 3);
	patch(d, "memory.json", "mpi", 0, "rank", json_integer(3));
	expect_mpi_error(d, "memory.json", "mpi.per_rank[0].rank is 3, not between 0 and 2");
	mpi_run(d, ranks_ok, 3);
	patch(d, "memory.json", "mpi", 0, "rank", json_integer(1));
	expect_mpi_error(d, "memory.json", "rank 1 appears twice");
	mpi_run(d, ranks_ok, 3);
	patch(d, "memory.json", "mpi", -1, "ranks", json_integer(4));
	expect_mpi_error(d, "memory.json", "mpi.ranks is 4 but mpi.per_rank has 3 ranks");
	mpi_run(d, ranks_ok, 3);
	patch(d, "memory.json", "mpi", -1, "max", json_string("big"));
	expect_mpi_error(d, "memory.json", "mpi.max is not an object");
	mpi_run(d, ranks_ok, 3);
	patch(d, "memory.json", "mpi", -1, "sum", json_pack("{s:i, s:f, s:i, s:i, s:i, s:i}",
							    "cells", 11999, "wall_s", 1.0,
							    "requested_peak", 0,
							    "tracked_allocated_peak", 0,
							    "allocated_peak", 0, "vm_hwm", 0));
	expect_mpi_error(d, "memory.json", "mpi.sum.cells is 11999 but the per_rank rows give 12000");
	mpi_run(d, ranks_ok, 3);
	patch(d, "memory.json", "mpi", 1, "stages", json_pack("[{s:s}]", "id", "stream_cells"));
	expect_mpi_error(d, "memory.json", "mpi.per_rank[1].stages[0].instance is missing");
	mpi_run(d, ranks_ok, 3);
	patch(d, "memory.json", "mpi", -1, NULL, json_integer(3));
	expect_mpi_error(d, "memory.json", "mpi is not an object");
	/* the estimate of a one-process run beside a distributed measurement */
	mpi_run(d, ranks_ok, 3);
	patch(d, "estimate.json", "options", -1, "mpi", json_false());
	expect_mpi_error(d, "estimate.json", "options.mpi is false");
	tu_rmtree(dir);
	free(d);
	free(dir);
}

static void test_fit(void **state)
{
	double x[] = {1e6, 3e6, 1e7, 2e7}, y[4];
	sm_fit f;
	sm_error err = {0};
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++)
		y[i] = 123456.0 + 12.0 * x[i];
	assert_int_equal(sm_fit_linear(x, y, 4, &f, &err), 0);
	assert_true(fabs(f.a - 123456.0) < 1e-6);
	assert_true(fabs(f.b - 12.0) < 1e-12);
	assert_int_equal(sm_fit_at(&f, (double)SM_TNG300_GAS_CELLS),
			 123456 + 12 * (int64_t)SM_TNG300_GAS_CELLS);
	assert_true(f.max_residual < 1e-3);
	/* not exactly linear: the residual says so */
	y[2] += 1000;
	assert_int_equal(sm_fit_linear(x, y, 4, &f, &err), 0);
	assert_true(f.max_residual > 100);
	assert_int_equal(sm_fit_linear(x, y, 1, &f, &err), SM_EINVAL);
	x[1] = x[0];
	assert_int_equal(sm_fit_linear(x, y, 2, &f, &err), SM_EINVAL);
}

/* A run of the pipeline's shape at n cells: requested bytes exactly as docs/MODEL.md. */
static void model_run(const char *dir, uint64_t n, const char *positions)
{
	uint64_t k48 = 480, p = strcmp(positions, "float64") == 0 ? 8 : 4;
	struct fx_stage st[] = {
		{"load_halos", 0, 880, 912, 880, 900, 0, k48},
		{"load_gas_fields", 0, k48 + 12 * n, k48 + 12 * n, k48 + 12 * n, k48 + 12 * n, 0,
		 k48 + 12 * n},
		{"compute_temperature", 0, k48 + 16 * n, k48 + 16 * n, k48 + 16 * n, k48 + 16 * n, 0,
		 k48 + 4 * n},
		{"load_positions", 0, k48 + 4 * n + 3 * p * n + MIB, 0, k48 + 4 * n + 3 * p * n + MIB,
		 k48 + 4 * n + 3 * p * n + MIB, 0, k48 + 4 * n + 3 * p * n},
	};
	struct fx_array ar[] = {
		{"InternalEnergy", "load_gas_fields", 4 * n, 4 * n},
		{"ElectronAbundance", "load_gas_fields", 4 * n, 4 * n},
		{"StarFormationRate", "load_gas_fields", 4 * n, 4 * n},
		{"temperature", "compute_temperature", 4 * n, 4 * n},
		{"Coordinates", "load_positions", 3 * p * n, 3 * p * n},
	};
	struct fx_run r = {n, positions, st, 4, ar, 5, NULL, NULL, 0};

	st[3].est_alloc = st[3].est_req;
	write_run(dir, &r);
}

static const sm_scale_doc *doc(const sm_scale *s, const char *step, const char *what)
{
	size_t i;

	for (i = 0; i < s->ndocs; i++)
		if (strcmp(s->docs[i].step, step) == 0 && strstr(s->docs[i].what, what) != NULL)
			return &s->docs[i];
	fail_msg("no documented row %s '%s'", step, what);
	return NULL;
}

static void test_scale_tng300(void **state)
{
	char *dir = tu_tmpdir(), *a = tu_path(dir, "a"), *b = tu_path(dir, "b"),
	     *c = tu_path(dir, "c"), *text = NULL;
	const char *runs[] = {a, b, c};
	const sm_scale_doc *d;
	const uint64_t n = SM_TNG300_GAS_CELLS;
	sm_scale s;
	sm_error err = {0};
	size_t i;
	char g[32];

	(void)state;
	model_run(a, 1000000, "float32");
	model_run(b, 3000000, "float32");
	model_run(c, 10000000, "float32");
	assert_int_equal(sm_scale_compute(runs, 3, "TNG300-1", 1.0, &s, &err), 0);
	assert_int_equal(s.target_n, n);
	for (i = 0; i < s.narrays; i++) {
		if (strcmp(s.arrays[i].id, "Coordinates") == 0) {
			assert_true(fabs(s.arrays[i].requested.a) < 1e-3);
			assert_true(fabs(s.arrays[i].requested.b - 12.0) < 1e-9);
			assert_int_equal(s.arrays[i].fitted_requested, (int64_t)(12 * n));
		}
	}
	for (i = 0; i < s.nstages; i++)
		if (strcmp(s.stages[i].id, "load_gas_fields") == 0) {
			assert_true(fabs(s.stages[i].requested.a - 480.0) < 1e-3);
			assert_true(fabs(s.stages[i].requested.b - 12.0) < 1e-9);
			assert_int_equal(s.stages[i].cmp.verdict, SM_VERDICT_PASS);
		}
	/* step 2: 3 x 4 B x N = 173,456,666,520 B = 161.54410924762487 GiB, matched */
	d = doc(&s, "2", "3 x 4 B x N");
	assert_int_equal(d->kind, SM_DOC_ARITHMETIC);
	assert_int_equal(d->has_fitted, 1);
	assert_int_equal(d->fitted, INT64_C(173456666520));
	assert_int_equal(d->verdict, SM_VERDICT_PASS);
	/* step 3: 57,818,888,840 B after clean-up, matched; numpy's peaks compared, not judged */
	d = doc(&s, "3", "clean-up");
	assert_int_equal(d->fitted, INT64_C(57818888840));
	assert_int_equal(d->verdict, SM_VERDICT_PASS);
	d = doc(&s, "3", "peak in total");
	assert_int_equal(d->kind, SM_DOC_MEASURED);
	assert_int_equal(d->verdict, SM_VERDICT_NA);
	/* step 4: positions matched (float64 by the estimator: the runs are float32) */
	d = doc(&s, "4", "positions, float32");
	assert_int_equal(d->fitted, (int64_t)(12 * n));
	assert_int_equal(d->verdict, SM_VERDICT_PASS);
	d = doc(&s, "4", "positions, float64");
	assert_int_equal(d->has_fitted, 0);
	assert_int_equal(d->estimated, 24 * n);
	assert_int_equal(d->verdict, SM_VERDICT_PASS);
	/* step 4 totals: flagged, with the gaps the notebook leaves unexplained */
	d = doc(&s, "4", "total after step 4, float32");
	assert_int_equal(d->kind, SM_DOC_UNEXPLAINED);
	assert_int_equal(d->verdict, SM_VERDICT_FAIL);
	snprintf(g, sizeof(g), "%.2f", (double)d->gap / 1073741824.0);
	assert_string_equal(g, "20.06");
	d = doc(&s, "4", "total after step 4, float64");
	snprintf(g, sizeof(g), "%.2f", (double)d->gap / 1073741824.0);
	assert_string_equal(g, "40.11");
	assert_int_equal(s.nfail, 0);
	assert_int_equal(s.nflagged, 2);

	assert_int_equal(sm_scale_render(&s, SM_REPORT_MARKDOWN, &text, &err), 0);
	assert_non_null(strstr(text, "FLAGGED: 20.06 GiB"));
	assert_non_null(strstr(text, "FLAGGED: 40.11 GiB"));
	assert_non_null(strstr(text, "| matched |"));
	free(text);
	assert_int_equal(sm_scale_render(&s, SM_REPORT_JSON, &text, &err), 0);
	assert_non_null(strstr(text, "\"flagged\": 2"));
	free(text);
	assert_int_equal(sm_scale_render(&s, SM_REPORT_HTML, &text, &err), SM_EINVAL);
	sm_scale_release(&s);

	/* errors: one size, other options, unknown target */
	assert_int_equal(sm_scale_compute(runs, 1, "TNG300-1", 1.0, &s, &err), SM_EINVAL);
	assert_int_equal(sm_scale_compute(runs, 2, "TNG100-1", 1.0, &s, &err), SM_EINVAL);
	model_run(b, 1000000, "float32");
	assert_int_equal(sm_scale_compute(runs, 2, "TNG300-1", 1.0, &s, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "two different sizes"));
	model_run(b, 3000000, "float64");
	assert_int_equal(sm_scale_compute(runs, 2, "TNG300-1", 1.0, &s, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "same options"));
	tu_rmtree(dir);
	free(a);
	free(b);
	free(c);
	free(dir);
}

/* profiles.hdf5 by hand: halo_index, center, r200, mean_temperature, counts. */
static void write_profiles(const char *dir, const int64_t *gidx, const double *center,
			   const double *r200, const double *mt, const int64_t *counts, int k)
{
	char *p = tu_path(dir, "profiles.hdf5");
	hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), s, d;
	hsize_t d1[1] = {(hsize_t)k}, d2[2] = {(hsize_t)k, 3}, d3[2] = {(hsize_t)k, 50};

	assert_true(f >= 0);
	s = H5Screate_simple(1, d1, NULL);
	d = H5Dcreate2(f, "halo_index", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, gidx);
	H5Dclose(d);
	d = H5Dcreate2(f, "r200", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, r200);
	H5Dclose(d);
	H5Sclose(s);
	s = H5Screate_simple(2, d2, NULL);
	d = H5Dcreate2(f, "center", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, center);
	H5Dclose(d);
	H5Sclose(s);
	s = H5Screate_simple(2, d3, NULL);
	d = H5Dcreate2(f, "mean_temperature", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, mt);
	H5Dclose(d);
	d = H5Dcreate2(f, "counts", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, counts);
	H5Dclose(d);
	H5Sclose(s);
	H5Fclose(f);
	free(p);
}

static void test_tradeoff(void **state)
{
	char *dir = tu_tmpdir(), *mock = tu_path(dir, "mock"), *r32 = tu_path(dir, "f32"),
	     *r64 = tu_path(dir, "f64"), *text = NULL;
	struct fx_stage st32[] = {{"load_positions", 0, 16 * MIB, 16 * MIB, 16 * MIB, 16 * MIB, 0, 0}};
	struct fx_stage st64[] = {{"load_positions", 0, 28 * MIB, 28 * MIB, 28 * MIB, 28 * MIB, 0, 0}};
	struct fx_run a = {20000, "float32", st32, 1, NULL, 0, mock, NULL, 0};
	struct fx_run b = {20000, "float64", st64, 1, NULL, 0, mock, NULL, 0};
	/* halos listed in a different order in the two runs: rows pair by group index */
	int64_t g32[2] = {7, 3}, g64[2] = {3, 7}, c[100];
	double cen[6] = {30000, 30000, 30000, 74990, 10, 37500}, cen2[6], r2[2] = {9000, 4000},
	       r2b[2], mt32[100], mt64[100];
	sm_mock_options mo;
	sm_tradeoff t;
	sm_error err = {0};
	int i;

	(void)state;
	sm_mock_options_init(&mo);
	mo.gas = 20000;
	mo.halos = 2;
	mo.files = 2;
	assert_int_equal(sm_mock_write(mock, &mo, &err), 0);
	write_run(r32, &a);
	write_run(r64, &b);
	for (i = 0; i < 100; i++) {
		mt64[i] = 1e6 + i;
		mt32[(i + 50) % 100] = mt64[i]; /* the same profile, rows swapped */
		c[i] = 10;
	}
	mt64[99] = NAN;
	mt32[49] = NAN;
	for (i = 0; i < 3; i++) {
		cen2[i] = cen[3 + i];
		cen2[3 + i] = cen[i];
	}
	r2b[0] = r2[1];
	r2b[1] = r2[0];
	write_profiles(r64, g64, cen, r2, mt64, c, 2);
	write_profiles(r32, g32, cen2, r2b, mt32, c, 2);
	assert_int_equal(sm_tradeoff_compute(r32, r64, 1.0, &t, &err), 0);
	assert_int_equal(t.radii_measured, 1);
	assert_int_equal(t.halos, 2);
	assert_true(t.cells > 0);
	assert_true(t.max_dr >= 0 && t.max_dr < 0.1);
	assert_true(t.max_rel_temperature == 0.0);
	assert_int_equal(t.profiles_changed, 0);
	assert_int_equal(t.peak64 - t.peak32, 12 * MIB);
	assert_non_null(strstr(t.recommendation, "use float32"));
	assert_int_equal(sm_tradeoff_render(&t, SM_REPORT_TABLE, &text, &err), 0);
	assert_true(strncmp(text, "recommendation: use float32", 27) == 0);
	free(text);
	assert_int_equal(sm_tradeoff_render(&t, SM_REPORT_JSON, &text, &err), 0);
	assert_non_null(strstr(text, "\"profiles_changed\": false"));
	free(text);
	sm_tradeoff_release(&t);

	/* a mean temperature 2% off: beyond 1%, keep float64; within 5%, float32 */
	mt32[(10 + 50) % 100] *= 1.02;
	write_profiles(r32, g32, cen2, r2b, mt32, c, 2);
	assert_int_equal(sm_tradeoff_compute(r32, r64, 1.0, &t, &err), 0);
	assert_int_equal(t.profiles_changed, 1);
	assert_true(fabs(t.max_rel_temperature - 0.02) < 1e-9);
	assert_non_null(strstr(t.recommendation, "keep float64"));
	sm_tradeoff_release(&t);
	assert_int_equal(sm_tradeoff_compute(r32, r64, 5.0, &t, &err), 0);
	assert_int_equal(t.profiles_changed, 0);
	sm_tradeoff_release(&t);

	/* swapped order and a snapshot that cannot be re-read */
	assert_int_equal(sm_tradeoff_compute(r64, r32, 1.0, &t, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "float32 run first"));

	/* a pair that differs in more than --positions is refused, naming each difference */
	b.select = "mask";
	write_run(r64, &b);
	assert_int_equal(sm_tradeoff_compute(r32, r64, 1.0, &t, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "differ in more than --positions: --select index vs mask ("));
	assert_null(strchr(err.msg, '\n'));
	b.stream_block = 65536;
	b.base_path = "/nonexistent";
	write_run(r64, &b);
	assert_int_equal(sm_tradeoff_compute(r32, r64, 1.0, &t, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "--base-path "));
	assert_non_null(strstr(err.msg, " vs /nonexistent"));
	assert_non_null(strstr(err.msg, "--stream-block 1048576 vs 65536"));
	assert_non_null(strstr(err.msg, "--select index vs mask"));
	b.select = NULL;
	b.stream_block = 0;
	b.base_path = mock;
	write_run(r64, &b);
	assert_int_equal(sm_tradeoff_compute(r32, r64, 1.0, &t, &err), 0);
	sm_tradeoff_release(&t);
	a.base_path = "/nonexistent";
	write_run(r32, &a);
	b.base_path = "/nonexistent";
	write_run(r64, &b);
	assert_int_equal(sm_tradeoff_compute(r32, r64, 1.0, &t, &err), 0);
	assert_int_equal(t.radii_measured, 0);
	assert_non_null(strstr(t.note, "radii not measured"));
	sm_tradeoff_release(&t);
	tu_rmtree(dir);
	free(mock);
	free(r32);
	free(r64);
	free(dir);
}

#ifndef TEST_REPORT_FIXTURES_ONLY /* test-cli-report.c includes this file for its fixtures */
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_judge_boundaries),
		cmocka_unit_test(test_compare_verdicts),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_formats_findings_first),
		cmocka_unit_test(test_mpi_ranks),
		cmocka_unit_test(test_mpi_malformed),
		cmocka_unit_test(test_fit),
		cmocka_unit_test(test_scale_tng300),
		cmocka_unit_test(test_tradeoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
