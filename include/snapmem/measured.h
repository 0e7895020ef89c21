/*
 * Measurement-only reports: what a profiled program took, without an estimate to compare with
 * (`snapmem profile`, `snapmem report DIR` on a directory without estimate.json, `snapmem diff`).
 *
 * A run directory holds memory.json (the measured process, schema snapmem.memory/1) and, for
 * `snapmem profile --follow-fork`, memory.PID.json of every other measured process. From them:
 *   - a report (table, markdown, json, html): the peak and when it happened, stages, the sites
 *     live at the peak, leaks (live at exit), the timeline; html adds an inline-SVG flame graph of
 *     the peak and a timeline plot (no script); with several processes, each one and their sum;
 *   - stacks.folded: one line per distinct stack, frames root first joined by ';', then the bytes
 *     live at the process's peak (flamegraph.pl, inferno and speedscope read it);
 *   - a diff of two runs: per stage and per site, growth of requested, allocated and resident
 *     bytes, with a budget that makes a regression check.
 * Nothing here prints or exits; text comes back malloc'd.
 */
#ifndef SNAPMEM_MEASURED_H
#define SNAPMEM_MEASURED_H

#include <stddef.h>
#include <stdint.h>

#include "snapmem/error.h"
#include "snapmem/report.h"

typedef struct sm_measured sm_measured;

/* Loads dir/memory.json (required) and dir/memory.PID.json (any); when dir is a regular file, that
 * document alone (a run's memory.json copied anywhere). 0, SM_EIO (missing, unreadable),
 * SM_EFORMAT (not a snapmem.memory/1 document) or SM_ENOMEM; err names the file. */
int sm_measured_load(const char *dir, sm_measured **out, sm_error *err);
void sm_measured_free(sm_measured *m);

/* The report in a format (table, markdown, json, html) as a malloc'd string. 0 or SM_ENOMEM. */
int sm_measured_render(const sm_measured *m, sm_report_format f, char **out, sm_error *err);

/* stacks.folded text (malloc'd; empty when no site was live at the peak). 0 or SM_ENOMEM. */
int sm_measured_folded(const sm_measured *m, char **out, sm_error *err);

/* Writes dir/report.md, dir/report.html and dir/stacks.folded (each atomically). 0 or an error. */
int sm_measured_write_files(const char *dir, sm_error *err);

/*
 * Compares run b against run a: every stage (by id and instance, the first process's stages) and
 * every site (by its innermost named frame) with the growth of its requested peak, allocated peak
 * above the baseline and resident high-water mark. A stage is over budget when its allocated
 * growth (requested growth when not measured) exceeds budget_pct percent of a's figure and
 * SM_REPORT_ABS_BOUND bytes; budget_pct < 0: no budget. *nover: stages over budget.
 * 0 or SM_ENOMEM / SM_EINVAL (f is not table, markdown or json).
 */
int sm_measured_diff(const sm_measured *a, const sm_measured *b, double budget_pct,
		     sm_report_format f, char **out, size_t *nover, sm_error *err);

#endif
