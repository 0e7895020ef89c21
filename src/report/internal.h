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

/* The findings (unmodelled arrays, stages, unexplained bytes) counted as the writers list them. */
int sm__stage_has_finding(const sm_report *r, const sm_report_stage *s);

/* The options of a run as a model-options struct (for the estimator). */
struct sm_model_options;
int sm__report_model_options(const sm_report *r, struct sm_model_options *o, sm_error *err);

json_t *sm__report_doc_estimate(const sm_report *r);
json_t *sm__report_doc_memory(const sm_report *r);

#endif
