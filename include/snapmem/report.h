/*
 * Reports: what the model said (estimate.json), what the run took (memory.json) and what the
 * reference notebook documented, joined in one comparison and written as a table, Markdown, JSON
 * ("schema": "snapmem.report/1", docs/REPORT.md) or one self-contained HTML page with SVG plots.
 *
 * The flow is collect, then emit: sm_report_load reads and validates both documents of a run
 * directory (malformed or foreign JSON is SM_EFORMAT naming the file and the fault),
 * sm_report_compare fills the verdicts, and one writer per format renders the same struct.
 * Two further comparisons take several run directories: sm_scale (runs of the same options at two
 * or more sizes, fitted bytes = a + b*N and extrapolated to TNG300-1 beside the estimator and the
 * documented figures) and sm_tradeoff (a float32 and a float64 run: memory per stage and the
 * precision float32 costs, measured by re-reading the snapshot).
 *
 * Every function returns 0 or a negative SM_E* code with err filled; nothing here prints.
 */
#ifndef SNAPMEM_REPORT_H
#define SNAPMEM_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "snapmem/error.h"
#include "snapmem/snapshot.h"

#define SM_REPORT_ID_MAX 64
#define SM_REPORT_MAX_SITES 8
#define SM_REPORT_DEFAULT_TOLERANCE 1.0              /* percent */
#define SM_REPORT_SMALL_STAGE (UINT64_C(1) << 20)    /* below: the absolute bound applies */
#define SM_REPORT_ABS_BOUND (UINT64_C(64) << 10)     /* 64 KiB */
#define SM_REPORT_RESIDENT_TOLERANCE 2.0             /* percent: predicted resident vs VmHWM */
/* 3 MiB: the least resident bound. The resident baseline is measured on 1e7-cell runs; a run that
 * stops after load_halos (no halo selected) of a 20,000-cell mock holds 1.4-2.0 MB less (six runs
 * each of two builds, 2026-12-01), on the safe side, which the 2 MiB of before judged a miss now
 * and then. */
#define SM_REPORT_RESIDENT_FLOOR (UINT64_C(3) << 20)

typedef enum sm_report_format {
	SM_REPORT_TABLE = 0,
	SM_REPORT_MARKDOWN,
	SM_REPORT_JSON,
	SM_REPORT_HTML
} sm_report_format;

/* "table", "markdown", "json", "html" -> format. 0 or SM_EINVAL. */
int sm_report_format_from_name(const char *name, sm_report_format *out);

typedef enum sm_verdict { SM_VERDICT_NA = 0, SM_VERDICT_PASS, SM_VERDICT_FAIL } sm_verdict;
const char *sm_verdict_name(sm_verdict v); /* "n/a", "pass", "FAIL" */

/* One comparison of an estimated and a measured figure. */
typedef struct sm_report_cmp {
	uint64_t estimated, measured;
	int64_t diff;          /* measured - estimated (saturated) */
	double pct;            /* diff / estimated * 100 (0 when both are 0; +-inf when only est is 0) */
	uint64_t bound;        /* the allowed |diff| */
	int absolute;          /* 1: the absolute bound applied (a stage below 1 MiB) */
	sm_verdict verdict;
} sm_report_cmp;

/*
 * The verdict rule: |measured - estimated| <= bound passes, where bound = estimated * pct / 100
 * when estimated >= SM_REPORT_SMALL_STAGE, else abs_bound. Fills c; returns its verdict.
 */
sm_verdict sm_report_judge(uint64_t estimated, uint64_t measured, double pct, uint64_t abs_bound,
			   sm_report_cmp *c);

/* An allocation site live at a stage's peak, resolved to its innermost named frame. */
typedef struct sm_report_site {
	int64_t id;
	uint64_t bytes;
	int tracked;                 /* 1: a tracked array's site */
	char where[160];             /* "function (file:line)", or the address when unknown */
} sm_report_site;

/* One instance of a per-halo stage. */
typedef struct sm_report_halo {
	int64_t instance;
	uint64_t requested_peak, allocated_above, unexplained, resident;
	double wall_s;
} sm_report_halo;

typedef struct sm_report_stage {
	char id[SM_REPORT_ID_MAX];
	int per_halo;
	int has_est, has_meas;
	int64_t instance;            /* the measured instance shown (highest requested peak); -1 */
	int64_t est_instance;        /* the estimate's instance; -1 */
	uint64_t est_peak, est_peak_allocated;
	uint64_t meas_peak;          /* requested.peak */
	uint64_t meas_allocated_peak;/* allocated.peak, absolute */
	uint64_t meas_allocated;     /* allocated.peak - baseline.allocated (0 when below) */
	uint64_t meas_resident;      /* highest resident bytes seen during the stage */
	uint64_t tracked_allocated_peak, unexplained;
	uint64_t live_begin, live_end; /* requested bytes live at begin/end */
	double t_begin, wall_s;
	sm_report_cmp requested, allocated; /* verdicts (allocated: n/a when not measured) */
	sm_report_site sites[SM_REPORT_MAX_SITES];
	size_t nsites;
	sm_report_halo *halos;       /* per-halo stages: every measured instance (malloc'd) */
	size_t nhalos;
} sm_report_stage;

typedef struct sm_report_array {
	char name[SM_REPORT_ID_MAX], stage[SM_REPORT_ID_MAX];
	int64_t instance;
	int has_est, has_meas;
	uint64_t est_requested, est_allocated, meas_requested, meas_allocated;
} sm_report_array;

/* What the report lists first: memory the model does not explain (collected once by
 * sm_report_compare, in the order every writer lists them). */
typedef enum sm_finding_kind {
	SM_FINDING_UNMODELLED_STAGE = 0, /* a stage that ran but the model does not have */
	SM_FINDING_UNMODELLED_ARRAY,     /* a tracked array the model does not have */
	SM_FINDING_UNEXPLAINED           /* allocated bytes at a stage's peak no tracked array explains */
} sm_finding_kind;

typedef struct sm_report_finding {
	sm_finding_kind kind;
	size_t index;                /* into stages (stage kinds) or arrays (array kind) */
	uint64_t bytes;              /* requested peak, requested bytes, or unexplained bytes */
} sm_report_finding;

/* One time window of a stage on the timeline (top-level stages and halo instances). */
typedef struct sm_report_band {
	char id[SM_REPORT_ID_MAX];
	int64_t instance;
	double t0, t1;
	uint64_t est_allocated;      /* estimated allocated peak + baseline (0 when not modelled) */
} sm_report_band;

typedef struct sm_report {
	char rundir[SM_PATH_MAX];
	char estimate_path[SM_PATH_MAX], memory_path[SM_PATH_MAX];
	char source[256];            /* estimate.json source.name */
	char options_text[256];      /* "positions float32, select index, ..." */
	char positions[16], select[16], temperature[16];
	uint64_t stream_block;
	uint64_t gas_cells;
	uint64_t nhalos_selected;
	int complete;
	char incomplete_reason[256];
	char allocator[32];
	char run_id[48];             /* the run's id (estimate.json and memory.json "run"."id", which
				      * must agree); "" for a run written before run ids */
	char run_started[32];        /* memory.json "run"."started"; "" when absent */
	int measured;                /* allocator figures measured (jemalloc) */
	double tolerance_pct;
	uint64_t abs_bound;
	uint64_t est_baseline, meas_baseline, meas_baseline_resident;
	sm_report_cmp baseline;      /* informational: never a failure */
	uint64_t est_peak_total;
	sm_report_stage *stages;
	size_t nstages;
	sm_report_array *arrays;
	size_t narrays;
	/* the timeline (memory.json), bands for plotting */
	double *tl_t;
	uint64_t *tl_allocated, *tl_resident;
	size_t ntl;
	sm_report_band *bands;
	size_t nbands;
	size_t nfail;                /* stages, and ranks of a distributed run, that miss the
				      * tolerance (after sm_report_compare) */
	int strict;                  /* judge the process's allocated peak above the baseline (untracked
				      * memory included) instead of the tracked arrays' allocated bytes */
	char pipeline[64];           /* estimate.json "pipeline": "radial-profiles" (also when absent),
				      * or the id of the description it was estimated from */
	int profiled;                /* memory.json written by `snapmem profile` (it has "command"):
				      * meas_baseline is then the allocated bytes when the program's
				      * first modelled stage began (the interpreter and its libraries
				      * loaded), every stage is judged by its allocated peak above it
				      * (numpy's temporaries are not tracked arrays) and requested is
				      * shown, not judged (it counts the tracked arrays alone) */
	/* The whole process's resident peak (docs/MODEL.md "The four peaks"), judged once by
	 * sm_report_compare at max(SM_REPORT_RESIDENT_TOLERANCE, tolerance_pct): the estimate's
	 * peak_resident_bytes (calibrated with the run's measured sphere sizes) against memory.json
	 * process.vm_hwm; the pre-run estimate (estimate.json pre_run: modelled sphere sizes) beside
	 * it with its error, and the address space (VmPeak), shown, not judged. has_resident 0: a
	 * document without these keys (or the allocator not measured: the resident verdict n/a). */
	sm_report_finding *findings; /* after sm_report_compare (malloc'd) */
	size_t nfindings;
	int has_resident;
	uint64_t est_resident, est_resident_pre, est_peak_pre, meas_vm_hwm;
	uint64_t est_address_space, meas_vm_peak;     /* 0 when absent */
	int has_cgroup_peak;
	uint64_t meas_cgroup_peak;
	double resident_tolerance_pct;
	sm_report_cmp resident;      /* calibrated resident vs VmHWM: the verdict */
	sm_report_cmp resident_pre;  /* pre-run resident vs VmHWM: shown */
	sm_report_cmp requested_pre; /* pre-run requested peak vs the measured requested peak: shown */
	sm_report_cmp address_space; /* estimated vs VmPeak: shown */
	int resident_failed;         /* the resident verdict failed (counted in nfail) */
	/* The resident section as every writer prints it (collected once, sm__report_resident):
	 * up to 4 sentences, "" when unused. */
	char resident_lines[4][320];
	/* The capacity verdict (src/report/capacity.c): estimate.json "verdict" (written by `snapmem
	 * run --max-mem`: the same sm_est_verdict `snapmem estimate --node-mem` prints), NULL when the
	 * run had no --max-mem; the need it judges; and the lines every writer prints (the HTML page
	 * in its headline), "" when unused. */
	struct sm_est_verdict *capacity;
	uint64_t est_need;           /* estimate.json need_bytes (0: an older document) */
	char capacity_switches[200]; /* the cheapest fitting combination's switches, "" none */
	uint64_t capacity_fit_need;
	char capacity_lines[2][400];
	void *priv;                  /* the parsed documents */
} sm_report;

/*
 * Reads rundir/estimate.json and rundir/memory.json, checks their schema and every key the report
 * uses, and joins them per stage id and per array (name + stage). SM_ENOTFOUND for a missing file,
 * SM_EFORMAT for malformed or foreign JSON, each naming the file and the fault. On failure r holds
 * nothing to release. Does not judge: call sm_report_compare.
 */
int sm_report_load(sm_report *r, const char *rundir, sm_error *err);

/* Same, from two explicit paths (rundir is then the memory file's directory). */
int sm_report_load_files(sm_report *r, const char *estimate_path, const char *memory_path,
			 sm_error *err);

/* Judges every stage at tolerance_pct (>= 0) and abs_bound (bytes); sets r->nfail. 0 or SM_EINVAL. */
int sm_report_compare(sm_report *r, double tolerance_pct, uint64_t abs_bound, sm_error *err);

void sm_report_release(sm_report *r);

/* Renders r in a format into a malloc'd string. 0 or SM_ENOMEM. */
int sm_report_render(const sm_report *r, sm_report_format f, char **out, sm_error *err);

/*
 * For the pipeline: loads rundir/estimate.json and rundir/memory.json, compares at tolerance_pct
 * and writes rundir/report.md and rundir/report.html (temporary name + rename each). A missed
 * tolerance is not an error (the report says so). 0 or SM_E*.
 */
int sm_report_write_files(const char *rundir, double tolerance_pct, sm_error *err);

/* The same, naming the run directory shown (NULL: rundir) in the reports: `snapmem run` writes
 * them in its staging directory for the run directory they will be moved to. */
int sm_report_write_files_as(const char *rundir, const char *shown, double tolerance_pct,
			     sm_error *err);

/* Writes text to path through the shared writer (sm_out_write: temporary file in the same
 * directory, fsync, rename; only over a regular file). 0 or SM_E*. */
int sm_report_write_text(const char *path, const char *text, sm_error *err);

/* ---- scaling to TNG300-1 --------------------------------------------------------------------- */

#define SM_TNG300_GAS_CELLS UINT64_C(14454722210)

/* Least squares y = a + b x. */
typedef struct sm_fit {
	double a, b;
	size_t n;                    /* points */
	double max_residual;         /* largest |y - (a + b x)| over the points */
} sm_fit;

/* 0, or SM_EINVAL when n < 2 or all x are equal. */
int sm_fit_linear(const double *x, const double *y, size_t n, sm_fit *out, sm_error *err);

/* a + b * x, rounded to the nearest integer (saturated to int64). */
int64_t sm_fit_at(const sm_fit *f, double x);

typedef struct sm_scale_item {
	char id[SM_REPORT_ID_MAX];   /* stage id, or array name */
	char stage[SM_REPORT_ID_MAX];/* for arrays: the stage */
	int per_halo;
	sm_fit requested, allocated; /* allocated: above the baseline (n = 0 when not measured) */
	sm_fit live_end;             /* stages: requested bytes live at the end */
	int64_t fitted_requested, fitted_allocated, fitted_live_end; /* at the target N */
	int has_est;
	uint64_t est_requested, est_allocated;      /* the estimator at the target, same options */
	sm_report_cmp cmp;           /* fitted requested vs estimator requested */
	const char *note;
} sm_scale_item;

typedef enum sm_doc_kind {
	SM_DOC_ARITHMETIC = 0,       /* the notebook's arithmetic: must come out matched */
	SM_DOC_MEASURED,             /* a figure of another process or other arrays: compared, not judged */
	SM_DOC_UNEXPLAINED           /* a gap the notebook does not explain: flagged, with the gap */
} sm_doc_kind;

typedef struct sm_scale_doc {
	const char *step, *stage, *what, *documented_text, *note;
	sm_doc_kind kind;
	uint64_t documented;         /* bytes (the notebook's GB are GiB) */
	int has_fitted;
	int64_t fitted;              /* snapmem's fit at the target */
	uint64_t estimated;          /* the estimator at the target */
	const char *basis;           /* "fit" or "estimator": what the verdict compares */
	int64_t gap;                 /* documented - basis figure */
	sm_verdict verdict;          /* arithmetic: pass/FAIL; unexplained: FAIL = flagged; else n/a */
} sm_scale_doc;

#define SM_SCALE_MAX_DOCS 16

typedef struct sm_scale {
	char target[32];
	uint64_t target_n;
	size_t nruns;
	char **rundirs;
	uint64_t *run_n;             /* gas cells of each run */
	char options_text[256];
	char positions[16];
	double tolerance_pct;
	sm_scale_item *stages;
	size_t nstages;
	sm_scale_item *arrays;
	size_t narrays;
	sm_scale_doc docs[SM_SCALE_MAX_DOCS];
	size_t ndocs;
	size_t nfail;                /* arithmetic rows or stage fits that miss */
	size_t nflagged;             /* unexplained documented figures */
	int measured;
	/* The whole process at the target (docs/REPORT.md "--scale-to"), beside `estimate`'s
	 * resident peak and need for the same options: composed (the estimator's arrays at the
	 * target + the runs' mean memory beyond their arrays, VmHWM - requested peak) and compared
	 * at tolerance_pct; and the runs' VmHWM fitted a + b*N and extrapolated, a difference beyond
	 * the tolerance explained by its parts (the arrays' requested peak, the memory beyond them).
	 * has_resident 0: a run without memory.json "process" or estimate.json
	 * "peak_resident_bytes". Every writer prints resident_lines. */
	int has_resident;
	sm_fit resident;
	sm_fit beyond;               /* VmHWM - requested peak over the runs */
	int64_t fitted_resident, fitted_requested_peak;
	int64_t beyond_mean, composed_resident;
	uint64_t est_resident, est_need, est_peak, est_baseline_resident;
	sm_report_cmp composed_cmp;  /* composed vs the estimate's resident peak */
	sm_report_cmp resident_cmp;  /* fitted VmHWM vs the estimate's resident peak: shown */
	char resident_lines[4][720];
	/* With a node (sm_scale_compute_node): the capacity verdict at the target, sm_est_verdict
	 * of the estimator with the runs' options, worded as `snapmem estimate --node-mem` words it
	 * (shown; the exit status is the fits'). "" without a node. */
	uint64_t node_mem, headroom;
	int fits;                    /* -1 no node, else 0 / 1 */
	int64_t margin;
	char verdict_lines[2][480];
} sm_scale;

/*
 * Loads every run, checks that their options agree and that there are at least two distinct
 * sizes (SM_EINVAL otherwise, naming the run), fits every stage and array and extrapolates to the
 * target ("TNG300-1", the only one known: SM_EINVAL otherwise).
 */
int sm_scale_compute_node(const char *const *rundirs, size_t nruns, const char *target,
			  double tolerance_pct, uint64_t node_mem, uint64_t headroom, sm_scale *s,
			  sm_error *err);
/* The same without a node (no capacity verdict). */
int sm_scale_compute(const char *const *rundirs, size_t nruns, const char *target,
		     double tolerance_pct, sm_scale *out, sm_error *err);
void sm_scale_release(sm_scale *s);
int sm_scale_render(const sm_scale *s, sm_report_format f, char **out, sm_error *err);

/* ---- scaling any description: report --scale-to TARGET --pipeline FILE ----------------------- */

typedef struct sm_scalep_stage {
	char id[SM_REPORT_ID_MAX];
	int per_halo;
	size_t n;                    /* runs that estimated and measured it */
	sm_fit fit;                  /* measured allocated (above the start) = a + b * estimated */
	int constant;                /* every run's estimate the same: b = 1, a = the mean difference */
	int has_target;              /* the description has the stage at the target */
	uint64_t target_est;         /* the description's allocated peak at the target */
	int64_t fitted;              /* the fit at target_est */
	sm_report_cmp cmp;           /* fitted vs target_est at the tolerance */
} sm_scalep_stage;

typedef struct sm_scalep {
	char target[32];
	char pipeline[64];           /* the description's id */
	char file[SM_PATH_MAX];
	char options_text[256];
	double tolerance_pct;
	size_t nruns;
	uint64_t *run_peak;          /* each run's estimated allocated peak */
	sm_scalep_stage *stages;
	size_t nstages;
	size_t nfail;
	uint64_t target_peak, target_need; /* the description at the target */
} sm_scalep;

/*
 * Runs of any described program (each directory: memory.json and the description's estimate.json)
 * fitted stage by stage, measured allocated = a + b * estimated allocated, and evaluated at the
 * description (pipeline: its file) estimated for the target ("TNG300-1": the embedded header, the
 * runs' options). SM_EINVAL naming the run for another pipeline, other options, fewer than two
 * runs; the description's own errors as sm_desc_load gives them.
 */
int sm_scalep_compute(const char *const *rundirs, size_t nruns, const char *target,
		      const char *pipeline, double tolerance_pct, sm_scalep *out, sm_error *err);
void sm_scalep_release(sm_scalep *s);
/* table, markdown or json (schema snapmem.scale-pipeline/1). 0 or SM_ENOMEM. */
int sm_scalep_render(const sm_scalep *s, sm_report_format f, char **out, sm_error *err);

/* ---- float32 vs float64 ---------------------------------------------------------------------- */

typedef struct sm_tradeoff_stage {
	char id[SM_REPORT_ID_MAX];
	uint64_t requested32, requested64, allocated32, allocated64;
} sm_tradeoff_stage;

typedef struct sm_tradeoff {
	char run32[SM_PATH_MAX], run64[SM_PATH_MAX];
	double tolerance_pct;        /* for the profile comparison */
	sm_tradeoff_stage *stages;
	size_t nstages;
	uint64_t peak32, peak64;     /* requested peaks over all stages */
	uint64_t halos;              /* halos compared */
	uint64_t cells;              /* cells inside 2 R200 compared (float64 membership) */
	double max_dr;               /* largest |r32 - r64| in code length units */
	double max_dr_rel;           /* largest |r32 - r64| / R200 */
	uint64_t bin_moves;          /* cells in another radial bin (or in/out of 2 R200) */
	uint64_t membership_changes; /* cells inside 2 R200 in one precision only */
	double max_rel_temperature;  /* largest relative change of a mean temperature */
	uint64_t count_changes;      /* bins whose count differs */
	double max_rel_count;        /* largest relative change of a bin's count */
	uint64_t bins_compared;      /* (halo, bin) pairs with a mean temperature in both runs */
	int radii_measured;          /* 0: the snapshot could not be re-read (note says why) */
	char note[512];
	int profiles_changed;        /* any profile beyond the tolerance */
	char recommendation[256];
} sm_tradeoff;

/*
 * Compares the float32 run run32 with the float64 run run64 (same snapshot, other options equal):
 * memory per stage from their memory.json; radii and bins by re-reading Coordinates from the
 * snapshot named in memory.json "run" as float64 and as float32 in blocks; mean temperatures from
 * both profiles.hdf5. tolerance_pct bounds the relative change of a mean temperature.
 */
int sm_tradeoff_compute(const char *run32, const char *run64, double tolerance_pct,
			sm_tradeoff *out, sm_error *err);
void sm_tradeoff_release(sm_tradeoff *t);
int sm_tradeoff_render(const sm_tradeoff *t, sm_report_format f, char **out, sm_error *err);

#endif
