/*
 * The model contract: the one place where what the estimator models and what the pipeline
 * measures are named and sized (docs/MODEL.md, docs/MPI.md). Stage ids, array names, the model
 * options with their names and value spellings, the constants both sides size arrays with, and the
 * arithmetic both sides must do alike (the grid sides, the chunk assignment, the halo order and
 * selection). estimator/ and src/pipeline/ both include this header and neither includes the
 * other's; a change here changes both at once.
 *
 * Names are string macros, so that static tables (the command line's option table, the profiler's
 * stage list) can be built from them; the SM_MODEL_*_LIST X-macros list each vocabulary in
 * order. Element-type names ("float32", "float64") are the snapshot layer's
 * (sm_dtype_name / sm_dtype_from_name, SM_DTYPE_NAME_* in snapshot.h): the --positions values are
 * those names.
 */
#ifndef SNAPMEM_MODEL_H
#define SNAPMEM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "snapmem/error.h"
#include "snapmem/snapshot.h"

/* ---- stage ids (docs/DESIGN.md "The pipeline"; the distributed run: docs/MPI.md) ---------- */

#define SM_STAGE_LOAD_HALOS "load_halos"
#define SM_STAGE_LOAD_GAS_FIELDS "load_gas_fields"
#define SM_STAGE_COMPUTE_TEMPERATURE "compute_temperature"
#define SM_STAGE_LOAD_POSITIONS "load_positions"
#define SM_STAGE_BUILD_INDEX "build_index"
#define SM_STAGE_SELECT_SPHERE "select_sphere"
#define SM_STAGE_RADIAL_DISTANCE "radial_distance"
#define SM_STAGE_MASK_ARRAYS "mask_arrays"
#define SM_STAGE_HISTOGRAM_WRITE "histogram_write"
#define SM_STAGE_STREAM_CELLS "stream_cells"   /* the distributed run's only */

/* Every stage id, in the serial run's order, the distributed run's stream_cells last. */
#define SM_MODEL_STAGE_LIST(XX)                                                                  \
	XX(SM_STAGE_LOAD_HALOS) XX(SM_STAGE_LOAD_GAS_FIELDS) XX(SM_STAGE_COMPUTE_TEMPERATURE)    \
	XX(SM_STAGE_LOAD_POSITIONS) XX(SM_STAGE_BUILD_INDEX) XX(SM_STAGE_SELECT_SPHERE)           \
	XX(SM_STAGE_RADIAL_DISTANCE) XX(SM_STAGE_MASK_ARRAYS) XX(SM_STAGE_HISTOGRAM_WRITE)        \
	XX(SM_STAGE_STREAM_CELLS)

/* 1 when id is one of the stage ids above, else 0 (NULL: 0). */
int sm_model_stage_known(const char *id);

/* 1 for the per-halo stages (select_sphere, radial_distance, mask_arrays, histogram_write of the
 * serial run), else 0. */
int sm_model_stage_per_halo(const char *id);

/* ---- array names (docs/MODEL.md, docs/MPI.md) -------------------------------------------------- */

/* load_halos: the catalogue's columns as read, then the selected halos' tables */
#define SM_ARRAY_GROUP_M_CRIT200 "Group_M_Crit200"
#define SM_ARRAY_GROUP_R_CRIT200 "Group_R_Crit200"
#define SM_ARRAY_GROUP_POS "GroupPos"
#define SM_ARRAY_HALO_INDEX "halo_index"
#define SM_ARRAY_HALO_CENTER "halo_center"
#define SM_ARRAY_HALO_M200 "halo_m200"
#define SM_ARRAY_HALO_R200 "halo_r200"
/* the gas fields (also their HDF5 dataset names under /PartType0) and what is made of them */
#define SM_ARRAY_INTERNAL_ENERGY "InternalEnergy"
#define SM_ARRAY_ELECTRON_ABUNDANCE "ElectronAbundance"
#define SM_ARRAY_STAR_FORMATION_RATE "StarFormationRate"
#define SM_ARRAY_TEMPERATURE "temperature"
#define SM_ARRAY_COORDINATES "Coordinates"
#define SM_ARRAY_IO_BUFFER "io_buffer"
/* build_index of the serial run */
#define SM_ARRAY_INDEX_CELL_START "index_cell_start"
#define SM_ARRAY_INDEX_CELL_FILL "index_cell_fill"
/* per halo */
#define SM_ARRAY_SPHERE_CELLS "sphere_cells"
#define SM_ARRAY_SPHERE_MASK "sphere_mask"
#define SM_ARRAY_RADIUS "radius"
#define SM_ARRAY_SELECTED_TEMPERATURE "selected_temperature"
#define SM_ARRAY_SELECTED_POSITIONS "selected_positions"
#define SM_ARRAY_HISTOGRAM "histogram"
/* the distributed run */
#define SM_ARRAY_HALO_GRID_START "halo_grid_start"
#define SM_ARRAY_HALO_GRID_HALOS "halo_grid_halos"
#define SM_ARRAY_PROFILE_SUMS "profile_sums"

#define SM_MODEL_ARRAY_LIST(XX)                                                                  \
	XX(SM_ARRAY_GROUP_M_CRIT200) XX(SM_ARRAY_GROUP_R_CRIT200) XX(SM_ARRAY_GROUP_POS)          \
	XX(SM_ARRAY_HALO_INDEX) XX(SM_ARRAY_HALO_CENTER) XX(SM_ARRAY_HALO_M200)                   \
	XX(SM_ARRAY_HALO_R200) XX(SM_ARRAY_INTERNAL_ENERGY) XX(SM_ARRAY_ELECTRON_ABUNDANCE)       \
	XX(SM_ARRAY_STAR_FORMATION_RATE) XX(SM_ARRAY_TEMPERATURE) XX(SM_ARRAY_COORDINATES)        \
	XX(SM_ARRAY_IO_BUFFER) XX(SM_ARRAY_INDEX_CELL_START) XX(SM_ARRAY_INDEX_CELL_FILL)         \
	XX(SM_ARRAY_SPHERE_CELLS) XX(SM_ARRAY_SPHERE_MASK) XX(SM_ARRAY_RADIUS)                    \
	XX(SM_ARRAY_SELECTED_TEMPERATURE) XX(SM_ARRAY_SELECTED_POSITIONS) XX(SM_ARRAY_HISTOGRAM)  \
	XX(SM_ARRAY_HALO_GRID_START) XX(SM_ARRAY_HALO_GRID_HALOS) XX(SM_ARRAY_PROFILE_SUMS)

/* 1 when name is one of the array names above, else 0 (NULL: 0). */
int sm_model_array_known(const char *name);

/* ---- the shared constants -------------------------------------------------------------------- */

/* Coordinates kept as float32 are read as float64 through a buffer of this many bytes. */
#define SM_MODEL_IO_BUFFER_BYTES UINT64_C(1048576)
/* One halo's profile: counts, sf_counts (int64[RBINS] each), the temperature sums or means
 * (float64[RBINS]) and hist2d (int64[RBINS * TBINS]): 25,200 bytes. */
#define SM_MODEL_RBINS 50
#define SM_MODEL_TBINS 60
#define SM_MODEL_HISTOGRAM_BYTES                                                                 \
	(8u * (3u * (unsigned)SM_MODEL_RBINS + (unsigned)SM_MODEL_RBINS * (unsigned)SM_MODEL_TBINS))
/* The serial run's spatial index: g^3 grid cells, g = clamp(floor(cbrt(N / 32)), 1, 512). */
#define SM_MODEL_GRID_CELLS_PER_CELL 32u
#define SM_MODEL_GRID_MAX_SIDE 512u
/* The distributed run's halo index: hg^3 cells, at most 64 a side, each halo in at most 8. */
#define SM_MODEL_HALO_GRID_MAX_SIDE 64u
/* Arrays the run maps in with the huge-page hint (sm_model_huge_extent): a transparent huge page,
 * and the shortest 4 KiB tail that is mapped up to the next one instead. */
#define SM_MODEL_HUGE_PAGE_BYTES (UINT64_C(2) << 20)
#define SM_MODEL_HUGE_TAIL_MIN_BYTES (UINT64_C(1) << 20)
#define SM_MODEL_HALO_GRID_MARGIN 1e-5 /* of BoxSize: float32 rounding of coordinates, distances */
#define SM_MODEL_HALO_GRID_CELLS_PER_HALO 8u
/* Option defaults and bounds. */
#define SM_MODEL_STREAM_BLOCK_DEFAULT UINT64_C(131072)
#define SM_MODEL_MASS_MIN_DEFAULT 1e14
#define SM_MODEL_MAX_RANKS 1048576u

/* ---- the model options (docs/MODEL.md "Switches") --------------------------------------------- */

typedef enum sm_select { SM_SELECT_INDEX = 0, SM_SELECT_MASK } sm_select;
typedef enum sm_temp_mode { SM_TEMP_IN_MEMORY = 0, SM_TEMP_STREAMING } sm_temp_mode;

/* Option names, as on the command line after "--". */
#define SM_OPT_POSITIONS "positions"
#define SM_OPT_SELECT "select"
#define SM_OPT_TEMPERATURE "temperature"
#define SM_OPT_STREAM_BLOCK "stream-block"
#define SM_OPT_HALOS "halos"
#define SM_OPT_MASS_MIN "mass-min"
#define SM_OPT_MPI "mpi"
#define SM_OPT_RANKS "ranks"
#define SM_OPT_SPHERE_CELLS "sphere-cells"
#define SM_OPT_CALIBRATE "calibrate"

/* Option values. --positions takes the element-type names SM_DTYPE_NAME_F32 / _F64. */
#define SM_SELECT_NAME_INDEX "index"
#define SM_SELECT_NAME_MASK "mask"
#define SM_TEMP_NAME_IN_MEMORY "in-memory"
#define SM_TEMP_NAME_STREAMING "streaming"
/* The choices as the command line's help lists them. */
#define SM_MODEL_POSITIONS_CHOICES SM_DTYPE_NAME_F32 "|" SM_DTYPE_NAME_F64
#define SM_MODEL_SELECT_CHOICES SM_SELECT_NAME_INDEX "|" SM_SELECT_NAME_MASK
#define SM_MODEL_TEMPERATURE_CHOICES SM_TEMP_NAME_IN_MEMORY "|" SM_TEMP_NAME_STREAMING

/* Every switch the pipeline has (docs/MODEL.md "Switches"). */
struct sm_pipeline_desc;
#define SM_MODEL_SET_MAX 256

typedef struct sm_model_options {
	sm_dtype positions;        /* SM_DTYPE_F32 (default) or SM_DTYPE_F64 */
	sm_select select;          /* default SM_SELECT_INDEX */
	sm_temp_mode temperature;  /* default SM_TEMP_IN_MEMORY */
	uint64_t stream_block;     /* cells per streaming block (default 131,072) */
	int64_t halos;             /* the N most massive; -1 (default): by mass_min */
	double mass_min;           /* Msun, strict (default 1e14) */
	int mpi;                   /* 1: the distributed strategy (--mpi; docs/MPI.md): chunks shared
				    * out over ranks, cells streamed past a halo index */
	uint32_t ranks;            /* MPI ranks (default 1; > 1 implies mpi) */
	uint64_t sphere_cells;     /* override of the largest sphere's cells; 0 = model */
	char calibrate[SM_PATH_MAX]; /* a run directory whose measured sphere counts calibrate; "" none */
	unsigned given;            /* SM_MODEL_GIVEN_* bits: the switches given (sm_model_option_apply);
				    * a pipeline description's own defaults apply to the others */
	const struct sm_pipeline_desc *pipeline; /* the description the estimator replays
				    * (include/snapmem/describe.h, docs/PIPELINES.md); NULL: the embedded
				    * radial-profiles. The pipeline ignores it */
	char set[SM_MODEL_SET_MAX]; /* `--set NAME=VALUE` settings of the description's options,
				    * each NUL-terminated, an empty one ends the list */
} sm_model_options;

#define SM_MODEL_GIVEN_POSITIONS 1u
#define SM_MODEL_GIVEN_SELECT 2u
#define SM_MODEL_GIVEN_TEMPERATURE 4u
#define SM_MODEL_GIVEN_STREAM_BLOCK 8u
#define SM_MODEL_GIVEN_MPI 16u       /* --mpi, or --ranks R > 1 */
#define SM_MODEL_GIVEN_MPI_FLAG 32u  /* --mpi itself was given (messages name what was typed) */
#define SM_MODEL_GIVEN_RANKS 64u     /* --ranks R was given (any R) */

/*
 * The switch that chose the distributed strategy, as the command line gave it: "--mpi", "--ranks
 * 4", "--mpi --ranks 4"; "--mpi" when neither was typed (a library caller set the fields).
 */
const char *sm_model_strategy_switch(const sm_model_options *o, char *buf, size_t len);

void sm_model_options_init(sm_model_options *o);

/*
 * Adds (or replaces) one "NAME=VALUE" setting of o->set; checked against the description when
 * estimated (sm_desc_check_setting checks one earlier). 0 or SM_EINVAL (no '=', too long).
 */
int sm_model_option_set(sm_model_options *o, const char *setting, sm_error *err);
/* The value of setting name in o->set, or NULL. */
const char *sm_model_option_get(const sm_model_options *o, const char *name);

/*
 * Applies one command-line model option: opt is the option name ("--positions"), value its
 * argument. Returns 1 when consumed with its value, 2 when consumed alone (a flag: --mpi; value
 * untouched), 0 when opt is not a model option, or a negative SM_E* code with err filled
 * ("--positions: 'float16' is not float32 or float64"). Shared by run, estimate and tradeoff so
 * that every switch the pipeline has, the estimator has. Call sm_model_options_check after the
 * last option.
 */
int sm_model_option_apply(sm_model_options *o, const char *opt, const char *value, sm_error *err);

/*
 * Checks the options together once all are applied: --ranks R > 1 implies --mpi; with --mpi,
 * --select mask and --temperature streaming do not apply (SM_EINVAL, one line). 0 or the code.
 */
int sm_model_options_check(sm_model_options *o, sm_error *err);

/* The usage lines of the model options, for the subcommands' -h. */
const char *sm_model_options_usage(void);

/* The value spellings: name of a value (a static string; an out-of-range value gives NULL), and
 * the parse of a spelling (0, or SM_EINVAL for anything else, *out untouched). Positions are
 * float32 or float64 only. */
const char *sm_model_positions_name(sm_dtype t);
int sm_model_positions_parse(const char *s, sm_dtype *out);
const char *sm_model_select_name(sm_select s);
int sm_model_select_parse(const char *s, sm_select *out);
const char *sm_model_temperature_name(sm_temp_mode t);
int sm_model_temperature_parse(const char *s, sm_temp_mode *out);

/* ---- the shared arithmetic -------------------------------------------------------------------- */

/* Grid side of the serial run's spatial index for n cells: clamp(floor(cbrt(n / 32)), 1, 512),
 * exactly, in integers. */
uint64_t sm_model_grid_side(uint64_t n);

/*
 * The bytes from its start (on a 2 MiB boundary) that the run maps in of an array asked for huge
 * pages whose first `touched` bytes are written and whose size class is `usable` bytes
 * (docs/MODEL.md "The four peaks"; `pages: huge` in a pipeline description): `touched` rounded up to the
 * next SM_MODEL_HUGE_PAGE_BYTES when it is that much or more, its 4 KiB tail beyond the last
 * whole huge page is SM_MODEL_HUGE_TAIL_MIN_BYTES or more, and the class reaches that far (then
 * one huge page holds what would be at least 256 pages of 4 KiB, at most as many bytes again);
 * else `touched`.
 */
uint64_t sm_model_huge_extent(uint64_t touched, uint64_t usable);

/*
 * Side of the distributed run's halo grid (build_index, docs/MPI.md):
 * clamp(floor(box / (2 (s_max + 1e-5 box))), 1, 64), s_max the largest sphere radius 2 R200
 * (code length units); 1 when s_max <= 0 (no halo) or box or s_max is not a finite positive
 * number.
 */
uint64_t sm_model_halo_grid_side(double box, double s_max);

/*
 * The distributed run's work split (docs/MPI.md): the chunk files with cells > 0, by cells
 * descending (ties: lower file number first), each dealt to the rank with the fewest cells so far
 * (ties: lowest rank). cells[f] is chunk f's gas cells (NumPart_ThisFile[0]). rank_cells (NULL or
 * [ranks]) receives every rank's cells; file_rank (NULL or [nfiles]) every file's rank, -1 for a
 * file without cells. 0, SM_EINVAL (ranks 0, more than INT32_MAX files, cells NULL with files),
 * SM_EOVERFLOW (a rank's cells exceed 64 bits) or SM_ENOMEM.
 */
int sm_model_assign_chunks(const uint64_t *cells, size_t nfiles, uint32_t ranks,
			   uint64_t *rank_cells, int32_t *file_rank, sm_error *err);

/*
 * The halo order (docs/MODEL.md): group a of Group_M_Crit200 ma before group b of mb when more
 * massive, ties by the lower group index, NaN masses last (among themselves by group index).
 * Returns < 0 when a ranks first, > 0 when b does, 0 only for the same group. Masses as read
 * (float32, widened exactly).
 */
int sm_model_halo_cmp(double ma, int64_t ia, double mb, int64_t ib);

/* M200 in Msun of a Group_M_Crit200 (1e10 Msun/h) with HubbleParam h: m * 1e10 / h. */
double sm_model_m200_msun(double m, double h);

/* The mass cut: 1 when the group is selected by --mass-min (M200 in Msun strictly above
 * mass_min; a NaN mass never is). */
int sm_model_halo_above(double m, double h, double mass_min);

#endif
