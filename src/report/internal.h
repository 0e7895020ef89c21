/*
 * Shared inside src/report/: checked access to parsed JSON documents (every fault becomes one
 * SM_EFORMAT line naming the file and the JSON path), small text helpers used by every writer,
 * and the embedded documented figures of the reference notebook.
 */
#ifndef SNAPMEM_REPORT_INTERNAL_H
#define SNAPMEM_REPORT_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "snapmem/report.h"

/* A document being read: its path (for messages) and where the first fault goes. */
typedef struct sm__jdoc {
	const char *path;
	sm_error *err;
} sm__jdoc;

/* Each returns 0 or SM_EFORMAT ("'path': where.key is missing / is not an integer ..."). */
int sm__j_obj(sm__jdoc *d, json_t *parent, const char *where, const char *key, json_t **out);
int sm__j_arr(sm__jdoc *d, json_t *parent, const char *where, const char *key, json_t **out);
int sm__j_str(sm__jdoc *d, json_t *parent, const char *where, const char *key, const char **out);
/* optional string: NULL when null or absent */
int sm__j_str_opt(sm__jdoc *d, json_t *parent, const char *where, const char *key,
		  const char **out);
int sm__j_u64(sm__jdoc *d, json_t *parent, const char *where, const char *key, uint64_t *out);
int sm__j_i64(sm__jdoc *d, json_t *parent, const char *where, const char *key, int64_t *out);
/* integer or null (null -> dflt) */
int sm__j_i64_opt(sm__jdoc *d, json_t *parent, const char *where, const char *key, int64_t dflt,
		  int64_t *out);
int sm__j_num(sm__jdoc *d, json_t *parent, const char *where, const char *key, double *out);
int sm__j_bool(sm__jdoc *d, json_t *parent, const char *where, const char *key, int *out);

/* Loads path, checks it is an object with "schema": schema. SM_ENOTFOUND / SM_EIO / SM_EFORMAT. */
int sm__j_load(const char *path, const char *schema, json_t **out, sm_error *err);

/* A comparison as report JSON's CMP object. */
json_t *sm__cmp_json(const sm_report_cmp *c);

/* "PASS, every stage within the tolerance" / "FAIL, 2 stages and 1 rank miss the tolerance". */
const char *sm__verdict_text(const sm_report *r, char *buf, size_t len);

/* Text helpers. */
char *sm__commas(uint64_t v, char *buf, size_t len);
char *sm__iec(uint64_t v, char *buf, size_t len);
char *sm__iec_signed(int64_t v, char *buf, size_t len);
char *sm__pct(const sm_report_cmp *c, char *buf, size_t len);
int64_t sm__sdiff(uint64_t a, uint64_t b); /* a - b saturated */
void sm__html_escape(FILE *f, const char *s);
void sm__md_escape(FILE *f, const char *s);

/* Renderers of a single run report (one per format). */
int sm__report_table(const sm_report *r, FILE *f);
int sm__report_markdown(const sm_report *r, FILE *f);
int sm__report_json(const sm_report *r, char **out, sm_error *err);
int sm__report_html(const sm_report *r, FILE *f);

/* The resident peak (resident.c): optional keys of estimate.json (peak_resident_bytes, pre_run,
 * peak_address_space_bytes) and memory.json (process), checked when present; the verdict and the
 * sentences every writer prints, decided once (called by sm_report_compare). */
int sm__report_load_resident_estimate(sm_report *r, sm__jdoc *d, json_t *est);
int sm__report_load_resident_memory(sm_report *r, sm__jdoc *d, json_t *mem);
void sm__report_resident(sm_report *r, double tolerance_pct);
/* The resident rule, one for the process and every rank: est against VmHWM at
 * max(SM_REPORT_RESIDENT_TOLERANCE, tolerance_pct), no less than SM_REPORT_RESIDENT_FLOOR. */
void sm__report_judge_resident(uint64_t est, uint64_t vm_hwm, double tolerance_pct,
			       sm_report_cmp *c);
json_t *sm__report_resident_json(const sm_report *r);
/* The capacity verdict (capacity.c): estimate.json need_bytes and "verdict" (checked: SM_EFORMAT
 * naming the key), the lines every writer prints (after the mpi section is loaded), and JSON. */
int sm__report_load_capacity(sm_report *r, sm__jdoc *d, json_t *est);
void sm__report_capacity(sm_report *r);
json_t *sm__report_capacity_json(const sm_report *r);
/* The findings into r->findings, once (resident.c; called by sm_report_compare). 0 or SM_ENOMEM. */
int sm__report_findings(sm_report *r, sm_error *err);

/* The findings (unmodelled arrays, stages, unexplained bytes) counted as the writers list them. */
int sm__stage_has_finding(const sm_report *r, const sm_report_stage *s);

/* The options of a run as a model-options struct (for the estimator). */
struct sm_model_options;
int sm__report_model_options(const sm_report *r, struct sm_model_options *o, sm_error *err);

json_t *sm__report_doc_estimate(const sm_report *r);
json_t *sm__report_doc_memory(const sm_report *r);

/* ---- a distributed run (memory.json "mpi", docs/MPI.md): every rank against the estimate ---- */

/* One stage of one rank, as memory.json mpi.per_rank[].stages[] has it. */
typedef struct sm__rank_stage {
	char id[SM_REPORT_ID_MAX];
	int64_t instance;
	double wall_s;
	uint64_t requested_peak, tracked_allocated_peak, allocated_peak, vm_hwm;
} sm__rank_stage;

/* The figures of a rank, and the max and sum rows (files, host, stages unused there). */
typedef struct sm__rank {
	int64_t rank;
	char host[128];
	int64_t *files;                  /* chunk files it read (malloc'd) */
	size_t nfiles;
	uint64_t cells;
	double wall_s;
	uint64_t baseline_allocated;     /* the rank's own jemalloc baseline */
	uint64_t requested_peak, tracked_allocated_peak, allocated_peak, vm_hwm;
	uint64_t allocated_above;        /* allocated_peak - baseline_allocated (0 when below) */
	sm__rank_stage *stages;          /* (malloc'd) */
	size_t nstages;
	sm_report_cmp requested, allocated; /* against the estimate's per-rank peak */
	uint64_t est_resident;           /* the estimate's resident peak of this rank (estimate.json
					  * mpi.per_rank_peak_resident_bytes, else peak_resident_bytes) */
	sm_report_cmp resident;          /* est_resident against vm_hwm (n/a when not judged) */
} sm__rank;

typedef struct sm__report_mpi {
	uint64_t ranks;                  /* mpi.ranks */
	char assignment[128];
	sm__rank *per_rank;              /* sorted by rank, one per rank */
	size_t nranks;
	sm__rank max, sum;               /* the document's rows (checked against per_rank) */
	uint64_t est_requested;          /* estimate.json peak_bytes: one rank's requested peak */
	uint64_t est_allocated;          /* peak_allocated_bytes */
	uint64_t est_total;              /* peak_total_bytes (allocated + baseline) */
	size_t nfail;                    /* ranks that miss the tolerance */
	int has_resident;                /* the estimate has resident figures (every rank's judged) */
} sm__report_mpi;

/* Reads memory.json's "mpi" object (absent or null: *out = NULL) and checks every key; the
 * estimate must then be a distributed one (options.mpi true). SM_EFORMAT naming the file and
 * the key, SM_ENOMEM. */
int sm__report_mpi_load(sm_report *r, json_t *est, json_t *mem, sm__report_mpi **out,
			sm_error *err);
void sm__report_mpi_free(sm__report_mpi *m);

/* The loaded mpi section of r, or NULL for a run of one process. */
sm__report_mpi *sm__report_mpi_of(const sm_report *r);

/* Judges every rank's requested and allocated peak (tracked, or above its baseline with
 * r->strict) against the estimate's per-rank peak; returns the ranks that miss. */
size_t sm__report_mpi_compare(const sm_report *r, sm__report_mpi *m);

/* The per-rank section in each format (nothing for a run of one process). */
void sm__report_mpi_table(const sm_report *r, FILE *f);
void sm__report_mpi_markdown(const sm_report *r, FILE *f);
void sm__report_mpi_html(const sm_report *r, FILE *f);
json_t *sm__report_mpi_json(const sm_report *r);   /* json null for one process */

/* --scale-to's shared argument checks (scale.c): 0 or SM_EINVAL with one line. */
int sm__scale_check_args(const char *target, size_t nruns, double tolerance_pct, sm_error *err);

#endif
