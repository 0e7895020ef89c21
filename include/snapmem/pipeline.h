/*
 * The instrumented radial-profile pipeline (`snapmem run`): the reference notebook's steps over an
 * IllustrisTNG-layout snapshot and group catalogue, with every large array allocated through the
 * profiler under the name docs/MODEL.md gives it, so that measurement and estimate line up array by
 * array. Stage ids, array names, element types, counts and lifetimes are exactly docs/MODEL.md's.
 *
 * Result: OUT_DIR/profiles.hdf5 (layout in docs/PIPELINE.md), written under a temporary name and
 * renamed when the last halo is in. On any failure (error, injected or real allocation failure,
 * cancellation) no profiles.hdf5 is left behind and an existing one is untouched.
 *
 * The library never prints: progress goes to an optional callback, and cancellation is a flag the
 * caller sets (typically from a signal handler), checked between stages, halos and stream blocks.
 * Every function returns 0 or a negative SM_E* code with err filled with one line.
 */
#ifndef SNAPMEM_PIPELINE_H
#define SNAPMEM_PIPELINE_H

#include <signal.h>
#include <stdint.h>

#include "snapmem/error.h"
#include "snapmem/estimator.h"
#include "snapmem/profiler.h"
#include "snapmem/snapshot.h"

/* What the progress callback is told: at every stage begin, per halo, and per stream block. */
typedef struct sm_pipeline_progress {
	const char *stage;       /* stage id (static string) */
	int64_t halo;            /* per-halo stages: the instance (0-based), else -1 */
	uint64_t halos;          /* K, the selected halos (0 until load_halos is done) */
	uint64_t done, total;    /* work units of the stage done so far (cells; halos per halo) */
	double elapsed_s;        /* seconds since sm_pipeline_run began */
} sm_pipeline_progress;

typedef void (*sm_pipeline_progress_fn)(const sm_pipeline_progress *p, void *ctx);

typedef struct sm_pipeline_options {
	const char *base_path;            /* illustris layout root (sm_snapshot_open_base) */
	int snap;                         /* snapshot number */
	sm_model_options model;           /* the switches (docs/MODEL.md), shared with the estimator */
	const char *out_dir;              /* existing directory that receives profiles.hdf5 */
	uint64_t max_mem;                 /* 0: none; else tracked requested bytes live at once must
					   * stay <= this, or SM_ELIMIT before the allocation */
	sm_pipeline_progress_fn progress; /* NULL: none */
	void *progress_ctx;
	volatile sig_atomic_t *cancel;    /* NULL: none; non-zero stops the run with SM_EINTR and
					   * err->signal = its value (store the signal number) */
} sm_pipeline_options;

/* Defaults: model options of sm_model_options_init, snap 99, everything else 0/NULL. */
void sm_pipeline_options_init(sm_pipeline_options *o);

/* One processed halo, in selection order (instance = place in this table). */
typedef struct sm_pipeline_halo {
	int64_t group_index;     /* index in the catalogue */
	double m200_msun;        /* Group_M_Crit200 * 1e10 / h */
	double r200;             /* Group_R_Crit200, code length units */
	double center[3];        /* GroupPos, wrapped into [0, BoxSize) */
	uint64_t sphere_cells;   /* S_h: cells with r < 2 R200 (star-forming ones included) */
} sm_pipeline_halo;

typedef struct sm_pipeline_result {
	uint64_t gas_cells;          /* N */
	uint64_t groups_total;       /* G */
	int64_t snapshot_files;      /* chunk files of the snapshot */
	int64_t catalog_files;       /* chunk files of the group catalogue */
	double box_size, hubble_param;
	uint64_t grid_side;          /* g of build_index (0 with --select mask) */
	sm_pipeline_halo *halos;     /* [nhalos], malloc'd (the caller's result table, untracked) */
	uint64_t nhalos;             /* K */
	int empty;                   /* 1: the selection held no halo; profiles.hdf5 has K = 0 */
	double wall_s;               /* whole run */
	char profiles_path[SM_PATH_MAX]; /* the final profiles.hdf5 */
	char stage[64];              /* the stage running when the run stopped ("" when done) */
	int64_t instance;            /* its instance (-1 none) */
} sm_pipeline_result;

/*
 * Runs the pipeline. p may be NULL (profiling off: plain allocations, same arrays). On return no
 * stage the pipeline opened is left open and every tracked array it allocated is freed.
 * Errors: SM_ENOTFOUND (snapshot or catalogue missing), SM_EFORMAT (a bad file, a selected halo
 * with R200 <= 0 or NaN, non-finite or negative InternalEnergy, a non-finite coordinate: the
 * message names the file and the group or cell), SM_ENOMEM (err->needed_bytes set), SM_ELIMIT
 * (over max_mem; err->needed_bytes = the live bytes that would have been needed), SM_EINTR
 * (cancelled; err->signal), SM_EIO (writing profiles.hdf5). A selection with no halo is not an
 * error: r->empty = 1 and profiles.hdf5 holds K = 0 rows.
 * r is filled as far as the run got (r->stage says where it stopped); release it with
 * sm_pipeline_result_release in every case.
 */
int sm_pipeline_run(const sm_pipeline_options *o, sm_prof *p, sm_pipeline_result *r,
		    sm_error *err);

/* Frees r->halos. Accepts NULL. */
void sm_pipeline_result_release(sm_pipeline_result *r);

/* Grid side of the spatial index for n cells: clamp(floor(cbrt(n / 32)), 1, 512). */
uint64_t sm_pipeline_grid_side(uint64_t n);

/* The science constants (DESIGN.md), for tests and documentation. */
#define SM_PIPELINE_GAMMA (5.0 / 3.0)
#define SM_PIPELINE_XH 0.76
#define SM_PIPELINE_KB 1.380649e-16
#define SM_PIPELINE_MP 1.672621924e-24
#define SM_PIPELINE_RBINS 50
#define SM_PIPELINE_TBINS 60
#define SM_PIPELINE_HISTOGRAM_BYTES 25200u

/* ---- the distributed strategy (docs/MPI.md) ---------------------------------------------------- */

/*
 * Side of the distributed run's halo grid (build_index, docs/MPI.md):
 * clamp(floor(box / (2 (s_max + 1e-5 box))), 1, 64), s_max the largest sphere radius 2 R200
 * (code length units); 1 when s_max <= 0 (no halo) or box or s_max is not a finite positive
 * number. The runtime and the estimator both call this, so they cannot disagree.
 */
uint64_t sm_pipeline_halo_grid_side(double box, double s_max);

#endif
