/*
 * The estimator: a pure model from snapshot header facts, the selected halos and the model options
 * to the memory of every stage of the radial-profile pipeline, array by array (docs/MODEL.md).
 * No I/O beyond the first chunk's header and the group catalogue (sm_est_input_from_base), and none
 * at all in sm_estimate_compute. Same stage ids, array names, options and shared arithmetic as the
 * pipeline: the model contract (snapmem/model.h), included here.
 *
 * Requested bytes are exact; allocated bytes are jemalloc's nallocx of each request
 * (sm_prof_nallocx). The process baseline is predicted as its own line.
 */
#ifndef SNAPMEM_ESTIMATOR_H
#define SNAPMEM_ESTIMATOR_H

#include <stddef.h>
#include <stdint.h>

#include "snapmem/error.h"
#include "snapmem/model.h"
#include "snapmem/snapshot.h"

/* One selected halo. */
typedef struct sm_est_halo {
	int64_t group_index;       /* index in the catalogue, -1 when unknown (embedded default) */
	double m200_msun;          /* M200c in Msun (0 when unknown) */
	double r200;               /* R200c in code length units (0 when unknown) */
	uint64_t sphere_cells;     /* measured/overridden cells within 2 R200; 0 = model it */
} sm_est_halo;

/* What the model needs to know, gathered once. */
typedef struct sm_est_input {
	char source_kind[16];      /* "embedded", "base_path", "snapshot" */
	char source_name[256];     /* "TNG300-1 snapshot 99", or the path */
	char path[SM_PATH_MAX];
	int snap;                  /* -1 when not applicable */
	sm_header header;
	uint64_t groups_total;     /* G (0 when no catalogue) */
	uint64_t subhalos_total;   /* the catalogue's Nsubgroups_Total (or Nsubhalos_Total); 0 when
				    * no catalogue */
	int subhalos_unknown;      /* 1: a catalogue (or the embedded header) without that count */
	int halos_unknown;         /* 1: no halos could be selected (no catalogue for --mass-min):
				    * halos_err says why, raised only if a description reads them */
	sm_error halos_err;
	sm_est_halo *halos;        /* selected halos, by mass descending (malloc'd) */
	uint64_t nhalos;           /* K */
	uint64_t *chunk_gas;       /* [nchunks] NumPart_ThisFile[0] of every chunk file, read only for
				    * --mpi from a base path (the work split); NULL when unknown */
	int64_t nchunks;
	uint64_t dm_chunk_max;     /* the largest chunk's NumPart_ThisFile[1], read with chunk_gas;
				    * 0 when not read */
	uint64_t groups_chunk_max; /* Gc: the largest catalogue chunk's Ngroups_ThisFile (the chunk
				    * headers; the distributed run's load_halos reads the catalogue
				    * chunk by chunk into arrays of Gc groups). 0 when not read: the
				    * model then takes ceil(G / 600) for the embedded TNG300-1 header
				    * (groups_099 has 600 chunk files) and G otherwise */
} sm_est_input;

/* The embedded TNG300-1 snapshot 99 header with its 280 halos above 1e14 Msun. */
int sm_est_input_embedded(sm_est_input *in, const sm_model_options *o, sm_error *err);

/* Header of the first chunk and the selected halos from the catalogue (when one exists). With
 * o->mpi also every chunk's NumPart_ThisFile (sm_snapshot_scan: each chunk header opened once) into
 * in->chunk_gas, for the work split; a missing chunk is SM_ENOTFOUND naming it. */
int sm_est_input_from_base(sm_est_input *in, const char *base, int snap, const sm_model_options *o,
			   sm_error *err);
int sm_est_input_from_file(sm_est_input *in, const char *path, const sm_model_options *o,
			   sm_error *err);
void sm_est_input_release(sm_est_input *in);

#define SM_EST_MAX_ARRAYS 16
#define SM_EST_MAX_STAGES 16
#define SM_EST_MAX_DESC_ASSUMPTIONS 16

typedef struct sm_est_array {
	const char *name;          /* the array name of docs/MODEL.md (the description's string) */
	sm_dtype dtype;            /* SM_DTYPE_NONE for a dtype the snapshots do not have (bool) */
	const char *dtype_name;    /* the description's dtype: "float32", "bool" */
	uint64_t count;            /* elements (components included) */
	uint64_t requested, allocated;
	uint64_t resident;         /* pages it occupies once written (sm_est_array_resident;
				    * pages: huge, sm_model_huge_extent) */
	const char *freed_in;      /* stage id where it is freed, NULL when it stays live */
} sm_est_array;

typedef struct sm_est_stage {
	const char *id;            /* static stage id */
	int per_halo;
	int64_t instance;          /* per-halo stages: the halo the figures are for (largest); else -1 */
	sm_est_array arrays[SM_EST_MAX_ARRAYS];
	size_t narrays;
	uint64_t peak, peak_allocated;           /* tracked arrays of the program live at the peak */
	uint64_t peak_resident;                  /* their resident pages at the resident peak */
	uint64_t live_after, live_after_allocated;
} sm_est_stage;

/* One documented figure beside the model: the reference notebook's (embedded TNG300-1 with the
 * default pipeline, sm_est_documented_rows), or one a description declares (documented:,
 * docs/PIPELINES.md; sm_estimate.desc_documented). */
typedef struct sm_est_documented {
	const char *step;            /* "1" .. "4" */
	const char *stage;           /* stage id */
	const char *what;
	const char *documented_text; /* as the notebook printed it: "161.54410924762487 GB" (GiB) */
	uint64_t documented;         /* that figure in bytes (GB = GiB, kB = KiB), rounded */
	uint64_t notebook;           /* the notebook's arithmetic redone exactly; 0 when none */
	uint64_t estimated;          /* the model, with the notebook's choices (in-memory fields) */
	int64_t difference;          /* documented - estimated */
	int unexplained;             /* 1: a gap the notebook does not explain */
	const char *note;
	const char *source;          /* a description's: where the figure comes from; else NULL */
	const char *model;           /* a description's: what of the model it is compared with ("the
				      * stage's requested peak", "mu + temperature"); else NULL */
} sm_est_documented;

#define SM_EST_MAX_DOCUMENTED 16

typedef struct sm_estimate {
	sm_model_options options;
	sm_est_stage stages[SM_EST_MAX_STAGES];
	size_t nstages;
	uint64_t peak, peak_allocated;
	size_t peak_stage;          /* index into stages */
	uint64_t baseline;          /* predicted process baseline (allocated bytes) */
	uint64_t peak_total;        /* peak_allocated + baseline (allocated: not what a node holds) */

	/* The four peaks' other two (docs/MODEL.md "The four peaks"); per rank with mpi. */
	uint64_t peak_resident_tracked; /* tracked arrays' resident pages at their peak */
	size_t peak_resident_stage;     /* index into stages */
	uint64_t baseline_resident; /* the process's resident pages beyond its tracked arrays */
	uint64_t baseline_resident_other; /* distributed: the same for ranks 1.. (which neither
					   * estimate nor write the documents); 0: baseline_resident */
	uint64_t peak_resident;     /* peak_resident_tracked + baseline_resident: what VmHWM reads */
	uint64_t page_tables;       /* page tables of peak_resident with 4 KiB pages (not in VmHWM) */
	uint64_t need;              /* peak_resident + page_tables: what a node (a cgroup, Slurm's
				     * --mem) must give the process; the figure every verdict judges */
	uint64_t baseline_address_space; /* mappings beyond the arrays' size classes */
	uint64_t peak_address_space;     /* baseline_address_space + the arrays' mappings: VmPeak;
					  * binds under ulimit -v (RLIMIT_AS) and strict overcommit */
	uint64_t least_address_space;    /* the least RLIMIT_AS under which the run can complete
					  * (jemalloc maps less under a limit): what `run`'s limit
					  * check compares with the limit (docs/MODEL.md) */
	uint64_t *halo_sphere_cells; /* [nhalos] cells used for each halo (malloc'd) */
	uint64_t *halo_peak;        /* [nhalos] requested peak while that halo is processed */
	uint64_t nhalos;
	const char *sphere_cells_source; /* "model", "override", "calibrated" */

	/* The distributed strategy (options.mpi, docs/MPI.md): the stages are one rank's, the same on
	 * every rank whatever its share of the cells. */
	int mpi;
	uint64_t halo_grid_side;    /* hg of build_index (sm_model_halo_grid_side) */
	double sphere_radius_max;   /* s_max = max over halos of 2 R200 (code length; 0 when K = 0) */
	int64_t files;              /* chunk files of the snapshot (NumFilesPerSnapshot, or scanned) */
	int64_t files_with_gas;     /* chunk files holding gas cells; -1 when the chunks are unknown */
	int have_cells_per_rank;    /* 1: chunk sizes known, cells_per_rank_* set */
	uint64_t cells_per_rank_max, cells_per_rank_min; /* the largest-first assignment's loads */
	uint64_t cells_per_file_max; /* the largest chunk file's cells: the most of a block a rank
				      * writes (each block of a file from the block's start) */
	uint64_t *rank_peak_resident; /* [options.ranks] every rank's resident peak, baseline
				       * included: the description replayed with the rank's largest
				       * chunk file as gas_chunk_max (a rank touches as much of its
				       * block as that file fills; malloc'd; NULL unless the chunk
				       * sizes are known) */

	/* The pipeline description's own assumption sentences in force (strings of the
	 * description), after the sphere model's; and the quantities its replay read (bit i:
	 * quantity i of docs/PIPELINES.md's table, for the assumptions about them). */
	const char *desc_assumptions[SM_EST_MAX_DESC_ASSUMPTIONS];
	size_t ndesc_assumptions;
	uint64_t quantities_used;
	/* The description's documented figures in force (its documented: entries whose when: holds
	 * and whose stage ran), each beside the model's figure; strings of the description. */
	sm_est_documented desc_documented[SM_EST_MAX_DOCUMENTED];
	size_t ndesc_documented;
} sm_estimate;

/* Computes the estimate. 0, or SM_EOVERFLOW when a byte count does not fit 64 bits, SM_EINVAL for
 * inconsistent input. Pure: no I/O. */
int sm_estimate_compute(const sm_est_input *in, const sm_model_options *o, sm_estimate *out,
			sm_error *err);
void sm_estimate_release(sm_estimate *e);

struct sm_est_verdict;

/* estimate.json (docs/MODEL.md) as a malloc'd string; v NULL or v->node_mem 0: no node given.
 * pre (may be NULL): the estimate made before the run, from modelled sphere sizes, when e is the
 * one calibrated with a run's measured ones (its figures go under "pre_run"). NULL on ENOMEM. */
char *sm_estimate_json(const sm_est_input *in, const sm_estimate *e,
		       const struct sm_est_verdict *v, const sm_estimate *pre);

/* Writes it through a temporary file and rename. */
int sm_estimate_write_json(const sm_est_input *in, const sm_estimate *e,
			   const struct sm_est_verdict *v, const sm_estimate *pre, const char *path,
			   sm_error *err);

/* The same with the run's stamp: "run": {"id": run_id, "started": run_started} (docs/MODEL.md),
 * for the estimate.json of a run directory. */
int sm_estimate_write_json_run(const sm_est_input *in, const sm_estimate *e,
			       const struct sm_est_verdict *v, const sm_estimate *pre,
			       const char *run_id, const char *run_started, const char *path,
			       sm_error *err);

/* ---- added by the estimator: documented figures, node fit, trade-off, text output ------------ */

/* Predicted process baseline (allocated bytes) of one process: what sm_estimate.baseline holds
 * without --mpi (a rank of the distributed run has its own, larger, measured one). */
uint64_t sm_est_baseline_bytes(void);

/* Resident bytes of one tracked array once written: from jemalloc's smallest large class (16 KiB)
 * up, the request rounded up to 4 KiB pages (size-class slack is never touched); below it, its
 * size class (slabs). */
uint64_t sm_est_array_resident(uint64_t requested, uint64_t allocated);


/* Fills up to max rows; returns their count (0 for a source other than the embedded default), or a
 * negative SM_E* code. */
int sm_est_documented_rows(const sm_est_input *in, const sm_estimate *e, sm_est_documented *rows,
			   size_t max, sm_error *err);

/* One option combination and its figures (per rank for a distributed one). */
typedef struct sm_est_alternative {
	sm_model_options options;    /* a distributed one: the configured ranks (1 when the
				      * configured run is one process) */
	uint64_t peak, peak_allocated, peak_total;
	uint64_t peak_resident, page_tables, need, peak_address_space;
	const char *peak_stage;      /* the stage of the resident peak */
	int fits;                    /* need <= node_mem (1 when node_mem is 0) */
	uint64_t ranks_per_node;     /* floor(node_mem / need) when it fits (1 for one process), else 0 */
	uint64_t nodes;              /* ceil(ranks / ranks_per_node) when it fits, else 0 */
} sm_est_alternative;

/*
 * Every combination positions x select x temperature (streaming with blocks of 65,536, 1,048,576,
 * 16,777,216 and o->stream_block cells) of one process (mpi 0, ranks 1), then the distributed
 * strategy (mpi 1, o's ranks) for both positions with the same blocks; o's halos and sphere
 * settings. Figures of a distributed combination are per rank. *alts is malloc'd (caller frees),
 * ordered by need ascending (the resident peak with page tables; ties: the fixed order above).
 * node_mem is the memory the job may use (a node's memory less any headroom). 0 or SM_E*.
 */
int sm_est_alternatives(const sm_est_input *in, const sm_model_options *o, uint64_t node_mem,
			sm_est_alternative **alts, size_t *n, sm_error *err);

/*
 * THE answer to "will my run fit?", computed once (sm_est_verdict_compute) and printed by every
 * writer: estimate (table, Markdown, JSON, Slurm), tradeoff, run --max-mem, report --scale-to.
 * It judges the resident peak with its page tables (sm_estimate.need) against the node's memory
 * less the headroom; the address-space peak is shown beside it, judged by nobody (it binds only
 * under ulimit -v or strict overcommit).
 */
typedef struct sm_est_verdict {
	uint64_t node_mem;           /* 0: no node given (fits -1, no choices) */
	uint64_t headroom;           /* bytes kept for the OS and other tenants */
	uint64_t usable;             /* node_mem - headroom: what the job may use */
	sm_est_alternative configured; /* the run as configured */
	int fits;                    /* -1 no node given, else configured.fits */
	int64_t margin;              /* usable - configured.need: to spare (>= 0) or short (< 0); a
				      * distributed run that fits: usable - the busiest node's ranks x
				      * need (what that node has to spare) */
	sm_est_alternative *choices; /* every combination, need ascending (malloc'd) */
	size_t nchoices, nfit;       /* nfit: how many of them fit */
	long best_one_process;       /* index into choices of the cheapest one-process run that
				      * fits; -1 none */
	long best_distributed;       /* the cheapest distributed one that fits; -1 none */
} sm_est_verdict;

/*
 * Fills v for e (computed from in) against node_mem less headroom. node_mem 0: only configured is
 * filled. SM_EINVAL when headroom >= node_mem. 0 or SM_E*; release with sm_est_verdict_release.
 */
int sm_est_verdict_compute(const sm_est_input *in, const sm_estimate *e, uint64_t node_mem,
			   uint64_t headroom, sm_est_verdict *v, sm_error *err);
void sm_est_verdict_release(sm_est_verdict *v);

/* The speed of an earlier profiled run (memory.json run.gas_cells / run.wall_s), for a predicted
 * wall time: `estimate --format slurm --calibrate RUNDIR`. */
typedef struct sm_est_speed {
	uint64_t cells;              /* gas cells the run processed */
	double wall_s;               /* its pipeline's wall time */
	double cells_per_s;
	uint32_t ranks;              /* the run's ranks (1: one process) */
} sm_est_speed;

/*
 * Reads RUNDIR/memory.json: it must be a complete run (SM_EINVAL otherwise), of the same options
 * as o (positions; select and temperature for one process; --mpi) and, when in is from a base
 * path, of the same base path and snapshot (SM_EINVAL: "a run of other data"); a missing file is
 * SM_ENOTFOUND, a malformed or tampered one SM_EFORMAT, each one line naming the file.
 */
int sm_est_calibration_speed(const char *rundir, const sm_est_input *in,
			     const sm_model_options *o, sm_est_speed *out, sm_error *err);

/*
 * The variants of o's pipeline description (o->pipeline, or the embedded radial-profiles;
 * docs/PIPELINES.md "Variants"), each as model options: every combination of the options the
 * description declares, the first varying slowest, with_sweep: numeric options over their sweep:
 * values too. *out malloc'd (caller frees). 0 or SM_E* (more than 64 variants is SM_EINVAL).
 */
int sm_est_variants(const sm_model_options *o, int with_sweep, sm_model_options **out, size_t *n,
		    sm_error *err);
/* "whole/float64/4096": the values of o's description's options that vary, joined by '/'. */
const char *sm_est_variant_label(const sm_model_options *o, char *buf, size_t len);

/* For a description other than the embedded radial-profiles: "pipeline 'dm-projection': method
 * chunked, positions float64, pixels 4096" into buf (returned); NULL for the default. */
const char *sm_est_options_text(const sm_model_options *o, char *buf, size_t len);

/* The command-line switches that select a's options ("--positions float32 --select index
 * --temperature streaming --stream-block 65536" or "--mpi --positions float32 --stream-block
 * 65536"), into buf; returns buf. */
const char *sm_est_options_switches(const sm_model_options *o, char *buf, size_t len);

/*
 * Smallest MPI rank count with which o's positions and stream block fit node_mem per rank in the
 * distributed strategy (--mpi, docs/MPI.md): 1 when they fit at all, because every rank holds the
 * same arrays whatever the number of ranks (the group and halo tables, the halo index, every halo's
 * profile sums, one block of cells); *out = 0 when they do not. 0 or SM_E*.
 */
int sm_est_ranks_needed(const sm_est_input *in, const sm_model_options *o, uint64_t node_mem,
			uint32_t *out, sm_error *err);

/*
 * Node arithmetic of a distributed run: *ranks_per_node = floor(node_mem / per_rank_total),
 * *nodes_needed = ceil(ranks / ranks_per_node) (0 when not even one rank fits a node).
 * per_rank_total 0 is taken as 1 byte.
 */
void sm_est_node_fit(uint64_t per_rank_total, uint64_t node_mem, uint32_t ranks,
		     uint64_t *ranks_per_node, uint64_t *nodes_needed);

/* The assumptions behind e's sphere cells, as sentences (static strings); returns their count. */
/*
 * What the estimated pipeline read of its input (the description's replay, this variant): the
 * selected halos (a halo quantity or a per-halo loop), their sphere cells, the catalogue's group or
 * subhalo counts, the gas cells, the dark-matter particles. Writers print only what applies.
 */
#define SM_EST_READS_HALOS 1u
#define SM_EST_READS_SPHERES 2u
#define SM_EST_READS_GROUPS 4u
#define SM_EST_READS_SUBHALOS 8u
#define SM_EST_READS_GAS 16u
#define SM_EST_READS_DM 32u
unsigned sm_est_reads(const sm_estimate *e);

size_t sm_est_assumptions(const sm_est_input *in, const sm_estimate *e, const char **out,
			  size_t max);

/* tradeoff JSON ("schema": "snapmem.tradeoff/1"): every combination of sm_est_alternatives (at the
 * default stream block) with its stage figures and the bytes saved against o (need), and v's
 * "verdict" object when v is given with a node. NULL with err set. */
char *sm_tradeoff_json(const sm_est_input *in, const sm_model_options *o,
		       const struct sm_est_verdict *v, sm_error *err);

/* Writes text to path through a temporary file in the same directory and rename; on failure no
 * file is left behind and an existing file is untouched. 0 or SM_EIO. */
int sm_est_write_text(const char *path, const char *text, sm_error *err);

#endif
