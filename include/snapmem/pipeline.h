/*
 * The instrumented radial-profile pipeline (`snapmem run`): the reference notebook's steps over an
 * IllustrisTNG-layout snapshot and group catalogue, with every large array allocated through the
 * profiler under the name docs/MODEL.md gives it, so that measurement and estimate line up array by
 * array. Stage ids, array names, element types, counts and lifetimes are exactly docs/MODEL.md's;
 * the names, the options and the arithmetic shared with the estimator are the model contract's
 * (snapmem/model.h). This header does not include the estimator's.
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
#include "snapmem/model.h"
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
	const char *run_id;               /* NULL: none; else profiles.hdf5's root attribute
					   * "run_id" (the run directory's stamp, outfile.h) */
	const char *run_started;          /* NULL: none; else root attribute "run_started" */
	int sync_later;                   /* 1: profiles.hdf5's writeback is only started when it is
					   * complete (sm_outfile.sync_later): the caller syncs it
					   * before it is moved where anyone looks (sm_rundir_commit) */
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
	uint64_t indexed_cells;      /* cells build_index sorted: those in grid cells some halo's
				      * sphere scan visits (the others stay unsorted at the end) */
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

/* The science constants (DESIGN.md), for tests and documentation. The histogram's bins and bytes
 * are the model contract's (SM_MODEL_RBINS, SM_MODEL_TBINS, SM_MODEL_HISTOGRAM_BYTES). */
#define SM_PIPELINE_GAMMA (5.0 / 3.0)
#define SM_PIPELINE_XH 0.76
#define SM_PIPELINE_KB 1.380649e-16
#define SM_PIPELINE_MP 1.672621924e-24

/* ---- the distributed strategy (docs/MPI.md) ---------------------------------------------------- */

/*
 * The collectives the distributed run needs, supplied by the caller (the snapmem CLI implements
 * them with MPI in src/cli/mpi.c; the library never links MPI). Every callback is collective: all
 * ranks call it, in the same order, with the same counts. Each returns 0 or a negative SM_E* code
 * (an MPI error is normally fatal before it could return one).
 */
typedef struct sm_pipeline_comm {
	int rank;                 /* this rank, 0 .. size-1 */
	int size;                 /* ranks in the communicator (>= 1) */
	void *ctx;                /* passed to every callback */
	/* Adds the n elements of buf over all ranks into rank 0's buf (in place, exact for int64);
	 * the other ranks' buffers are left unchanged. */
	int (*sum_i64)(void *ctx, int64_t *buf, size_t n);
	int (*sum_f64)(void *ctx, double *buf, size_t n);
	/* Agreement: every rank passes its code (0: fine); every rank receives the lowest rank whose
	 * code is not 0 in *fail_rank (-1 when none) and that code in *fail_code (0 when none). */
	int (*agree)(void *ctx, int code, int *fail_rank, int *fail_code);
	/* Copies len bytes of buf on rank root to buf on every other rank. */
	int (*bcast)(void *ctx, int root, void *buf, size_t len);
	/* Gathers every rank's len bytes of buf to rank 0: there *blobs receives a malloc'd array of
	 * size malloc'd copies (rank order) and *lens a malloc'd array of their lengths (free each blob,
	 * then both arrays); on the other ranks both are set to NULL. The library does not call it (the
	 * CLI gathers the per-rank figures with it). */
	int (*gather)(void *ctx, const void *buf, size_t len, void ***blobs, size_t **lens);
} sm_pipeline_comm;

/*
 * Worker threads when several processes share this one's CPUs (MPI ranks on a node): `sharers`
 * processes, this one included, may run on the CPUs it may use (sched_getaffinity), so its worker
 * threads are those CPUs divided by sharers, at least 1 (SNAPMEM_THREADS, when set, decides
 * instead). Call before the library's first parallel work (a later call changes nothing).
 */
void sm_threads_share(unsigned sharers);

/* The worker threads the library's parallel work runs on (1: the calling thread alone). */
unsigned sm_threads(void);

/*
 * The chunk files rank `rank` of `ranks` streams for snapshot (base_path, snap), in ascending file
 * number: *files a malloc'd array of *nfiles chunk numbers (NULL when none; free it), *cells their
 * gas cells. Reads the chunk headers only. 0 or SM_ENOTFOUND / SM_EFORMAT (the snapshot, as
 * sm_snapshot_scan) / SM_EINVAL (rank >= ranks) / SM_ENOMEM.
 */
int sm_pipeline_rank_files(const char *base_path, int snap, uint32_t rank, uint32_t ranks,
			   int64_t **files, size_t *nfiles, uint64_t *cells, sm_error *err);

/*
 * Runs the distributed pipeline (docs/MPI.md) as rank comm->rank of comm->size; comm NULL: one rank,
 * no collectives. Every rank calls it with the same options. Stages load_halos, build_index (the
 * halo index), stream_cells (this rank's chunk files in blocks of model.stream_block cells) and
 * histogram_write (the per-halo sums added to rank 0, which alone writes OUT_DIR/profiles.hdf5 and
 * fills r->profiles_path). Counts, sf_counts and hist2d equal sm_pipeline_run's bit for bit;
 * mean_temperature to rounding.
 *
 * Options: model.ranks must equal the number of ranks, model.select must be index and
 * model.temperature in-memory (their defaults; the run always streams), else SM_EINVAL on every
 * rank (no collective is entered). max_mem, cancel and progress act per rank as in sm_pipeline_run.
 *
 * Errors: as sm_pipeline_run's. A failure on one rank stops every rank at the next agreement point
 * (after load_halos, after build_index, after stream_cells, before the reduction, after the write):
 * every rank returns the lowest failing rank's code with its err (needed_bytes and signal
 * included), the message prefixed "rank I of R: " when R > 1; no profiles.hdf5 is left.
 * r: on rank 0 the halos' sphere_cells are the totals over ranks, on the others the rank's own
 * share; r->grid_side is the halo grid side. Release r with sm_pipeline_result_release.
 */
int sm_pipeline_run_distributed(const sm_pipeline_options *o, const sm_pipeline_comm *comm,
				sm_prof *p, sm_pipeline_result *r, sm_error *err);

#endif
