/*
 * The pipeline's run state and the pieces its strategies share (src/pipeline/ only; not public
 * API): the run structure, tracked-array and stage helpers (run.c), one function per stage, each
 * in the file named after its stage id, and the science kernels every strategy must apply
 * identically (minimum-image distance in the positions' own type, the temperature, the r/R200 and
 * log10 T bins), so that the serial and the distributed runs decide every cell the same way.
 */
#ifndef SNAPMEM_PIPELINE_RUN_H
#define SNAPMEM_PIPELINE_RUN_H

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "snapmem/pipeline.h"

#include "internal.h"

#define MAX_LIVE 32

struct live {
	void *ptr;
	uint64_t bytes;
	uint64_t hinted; /* bytes from ptr asked for huge pages (sm__pl_prefault): the hint goes
			  * when it is freed */
};

struct grid {
	uint64_t g;        /* side */
	double gd;         /* the same, as a double */
	double box, inv_w; /* g / box */
	const unsigned char *cover; /* build_index: bit per grid cell (g^3): a sphere scan visits it */
};

/* histogram's log10 T bins by table (tbin_table_init). */
#define TBIN_SHIFT 19
#define TBIN_KEYS 4096u          /* (inf's bits >> TBIN_SHIFT) < TBIN_KEYS */
#define TBIN_INF_BITS UINT32_C(0x7f800000)
#define TBIN_GUARD 64u           /* float patterns around a threshold binned with log10 */
#define TBIN_KEY_SLOW (UINT64_C(1) << 40) /* key[]: a threshold within TBIN_GUARD of the range's ends */
struct tbin_table {
	uint32_t th[SM_MODEL_TBINS + 1];
	unsigned char tab[TBIN_KEYS];
	/* per key, one load: th[tab[key] + 1] (bits 0-31), tab[key] (bits 32-39), TBIN_KEY_SLOW */
	uint64_t key[TBIN_KEYS];
};

struct run {
	const sm_pipeline_options *o;
	sm_prof *p;
	sm_pipeline_result *r;
	sm_error *err;
	double t0;

	sm_snapshot s;
	sm_catalog c;
	int s_open, c_open;
	int huge_slow; /* a huge page was slow to map in: 4 KiB pages from then on (sm__pl_prefault) */

	uint64_t n, k, gtot;
	double box, h, uv2;
	sm_dtype pt;          /* positions' type */
	size_t psz;           /* its size */
	int idx64;            /* sphere_cells are uint64 */

	struct live live[MAX_LIVE];
	size_t nlive;
	uint64_t live_bytes;

	int stage_open;

	/* tracked arrays */
	float *gm, *gr, *gp;
	int64_t *halo_index;
	double *halo_center, *halo_m200, *halo_r200;
	float *u, *xe, *sfr, *temp;
	void *coords, *iobuf;
	uint64_t *cstart, *cfill;
	void *sphere, *radius, *sel_pos;
	float *sel_t;
	unsigned char *mask, *hist;
	/* --select mask: the worker threads' shares of the N cells (fixed by N) and each share's
	 * selected cells, counted by select_sphere for radial_distance and mask_arrays */
	unsigned mask_parts;
	uint64_t mask_count[SM__PL_MAX_THREADS];

	struct grid grid;
	struct tbin_table tbins;
	sm__pl_out *out;
};

/* ---- the run (run.c) ---- */

/* A halo's step runs on the worker threads from this many cells (or column cells) a part: a part
 * of 65,536 cells is some 0.3 ms of work against ~11 us to hand it to a pooled thread. */
#define SM__PL_HALO_PART_MIN_CELLS 65536u

double sm__pl_now_s(void);
/* SM_EINTR (err naming the signal and stage) when the caller's cancel flag is set, else 0. */
int sm__pl_cancelled(struct run *R);
void sm__pl_progress(struct run *R, const char *stage, int64_t halo, uint64_t done, uint64_t total);
/* Opens profiler stage id (instance -1: none), recording it in the result; checks cancellation. */
int sm__pl_stage_begin(struct run *R, const char *id, int64_t instance, uint64_t total);
void sm__pl_stage_end(struct run *R);
/* A tracked array of `bytes` named `name` into *slot, after the --max-mem check. */
int sm__pl_palloc(struct run *R, void *slot, const char *name, uint64_t bytes);
/* The same for an array whose first `touched` bytes are written next: mapped in first
 * (sm__pl_prefault); sm__pl_palloc_filled when every byte is. */
int sm__pl_palloc_touched(struct run *R, void *slot, const char *name, uint64_t bytes,
			  uint64_t touched);
int sm__pl_palloc_filled(struct run *R, void *slot, const char *name, uint64_t bytes);
/* Frees the tracked array in *slot (NULL fine) and clears the slot. */
void sm__pl_pfree(struct run *R, void *slot);
/* Maps in the whole pages of a fresh array's first `bytes` (contents undefined), from 2 MiB asking
 * for huge pages, then up to the next 2 MiB boundary when sm_model_huge_extent says so of the
 * `usable` bytes the allocation owns from ptr (0 or `bytes`: none beyond); returns the bytes from
 * ptr the hint covers (0: none). */
uint64_t sm__pl_prefault(struct run *R, void *ptr, uint64_t bytes, uint64_t usable);
extern double sm__pl_huge_slow_s; /* seconds a 2 MiB step may take (tests) */
extern atomic_uint_fast64_t sm__pl_fault_4k_ns; /* a 4 KiB fault here, 0 until measured (tests) */
/* Parts worth running for a halo step over `work` cells or columns (at least 1). */
unsigned sm__pl_halo_parts(uint64_t work, uint64_t min_per_part);
/* The chunk file and local index of global gas cell i, for messages. */
void sm__pl_cell_location(struct run *R, uint64_t i, char *path, size_t len, uint64_t *local);
/* Opens the snapshot and the catalogue and checks the header facts the run needs (R->n, box...). */
int sm__pl_open_inputs(struct run *R);
/* The catalogue chunk file holding group gi, for messages (opens chunk headers; error path). */
void sm__pl_group_location(struct run *R, uint64_t gi, char *path, size_t len);
/* Chunk 0's file of the snapshot / the catalogue (a thread-local buffer), for messages that concern
 * the whole snapshot or catalogue: they name a real file, never a chunk pattern. */
const char *sm__pl_snap_file(struct run *R);
const char *sm__pl_cat_file(struct run *R);
/* Seconds since t0 (sm__pl_now_s) added to part of the open stages' time (memory.json "time"). */
void sm__pl_part_since(struct run *R, sm_prof_part part, double t0);
/* Creates profiles.hdf5's temporary file with the run's options as root attributes. */
int sm__pl_create_output(struct run *R);

/* The root attributes of profiles.hdf5 that both strategies write, in this order: first (who wrote
 * the file, the run, its input and positions dtype) and last (the remaining model options, with
 * the ranks when with_ranks, the selection's facts, the grid under grid_name, what a row is). */
void sm__pl_attrs_head(const struct run *R, sm__pl_attr *a, size_t *n);
void sm__pl_attrs_tail(const struct run *R, sm__pl_attr *a, size_t *n, int with_ranks,
		       const char *grid_name, uint64_t grid_side);

/* ---- load_halos (load_halos.c) ---- */

/* The serial run's stage: reads the catalogue's three columns whole, selects, keeps
 * halo_index/center/m200/r200. */
int sm__pl_load_halos(struct run *R);
/* The distributed run's stage: the same selection, the catalogue read one chunk file at a time
 * into arrays of the largest chunk's size (docs/MPI.md). */
int sm__pl_load_halos_chunked(struct run *R);
/* Selected halo i (group gi): M200 as read (NaN allowed, not inf or negative), R200 (positive,
 * finite, at most BoxSize) and centre checked, SM_EFORMAT naming the chunk file as every strategy
 * words it; the centre c is wrapped into [0, BoxSize) in place. */
int sm__pl_check_halo(struct run *R, uint64_t i, uint64_t gi, double m200, double r200,
		      double c[3]);
/* The end of load_halos for K kept halos: the caller's result table, the stage closed. */
int sm__pl_halos_done(struct run *R, uint64_t k);

/* ---- load_gas_fields, compute_temperature (load_gas_fields.c, compute_temperature.c) ---- */

/* Stage load_gas_fields: the three fields whole (in-memory), or the stage recorded empty
 * (streaming: compute_temperature reads them block by block). */
int sm__pl_load_gas_fields(struct run *R);
/* Stage compute_temperature: temperature from the three fields, which it frees (in-memory), or
 * from blocks of stream_block cells read into three block-sized fields (streaming). */
int sm__pl_compute_temperature(struct run *R);
/* Cells [first, first + n) of gas field name (float32) into out, timed as reading. */
int sm__pl_read_gas(struct run *R, const char *name, uint64_t first, uint64_t n, float *out);
/* The three gas fields' array names (InternalEnergy, ElectronAbundance, StarFormationRate), in
 * the order every stage reads and allocates them. */
extern const char *const sm__pl_gas_names[3];
/* The temperatures of cells [0, n) on the calling thread (any thread: no allocation, no error
 * state); nonzero when a value is bad (sm__pl_temperature_block then names it). */
int sm__pl_temperature_cells(const float *u, const float *xe, const float *sfr, float *t,
			     uint64_t n, double uv2);
/* Temperatures of cells [first, first + n) (global numbering, for messages) on the worker threads,
 * star-forming cells as -T; SM_EFORMAT naming the file and cell of the first bad value. */
int sm__pl_temperature_block(struct run *R, uint64_t first, uint64_t n, const float *u,
			     const float *xe, const float *sfr, float *t);

/* ---- load_positions (load_positions.c) ---- */

/* Stage load_positions: Coordinates of every cell in the positions' type (through io_buffer for
 * float32), range-checked. */
int sm__pl_load_positions(struct run *R);
/* Cells [first, first + n) of Coordinates into out (3n of the positions' type) through R->iobuf
 * when allocated, range-checked in the same pass (sm_snapshot_read_range_checked); *bad = the
 * first bad cell's offset from first (non-finite or more than half a box outside), or n. */
int sm__pl_read_positions(struct run *R, uint64_t first, uint64_t n, void *out, uint64_t *bad);
/* SM_EFORMAT for a bad coordinate of global gas cell `cell`, naming its file and local row. */
int sm__pl_bad_coordinate(struct run *R, uint64_t cell);

/* ---- build_index (build_index.c; the grid and its sort: grid.h) ---- */

/* Stage build_index of the serial run: the grid over the box, the cells near the selected halos
 * sorted into grid-cell order in place (Coordinates and temperature permuted together). */
int sm__pl_build_index(struct run *R);

/* ---- the per-halo stages, steps 5 to 8 (select_sphere.c ... histogram_write.c) ---- */

/* select_sphere: the cells of halo h within 2 R200 (sphere_cells or sphere_mask); *s their count. */
int sm__pl_select_sphere(struct run *R, uint64_t h, uint64_t *s);
/* radial_distance: radius[s], each selected cell's distance to the centre. */
int sm__pl_radial_distance(struct run *R, uint64_t h, uint64_t s);
/* mask_arrays: selected_temperature[s] and selected_positions[s] gathered. */
int sm__pl_mask_arrays(struct run *R, uint64_t h, uint64_t s);
/* histogram_write: the halo's histogram appended to profiles.hdf5; the halo's arrays freed. */
int sm__pl_histogram_write(struct run *R, uint64_t h, uint64_t s);
void sm__pl_tbin_table_init(struct tbin_table *tt);
/* tab and key from th (th ascending, th[0] = 0, th[TBINS] = UINT32_MAX, at most one threshold in
 * a key's range): the second half of tbin_table_init. */
void sm__pl_tbin_table_keys(struct tbin_table *tt);

/* The j-th selected cell of the index strategy (sphere_cells, uint32 or uint64). */
static inline uint64_t sm__pl_sphere_cell(const struct run *R, uint64_t j)
{
	return R->idx64 ? ((const uint64_t *)R->sphere)[j] : ((const uint32_t *)R->sphere)[j];
}

/* The cells [*a, *b) of sphere_mask's share p (of R->mask_parts): the one division select_sphere
 * fills the mask by and the walks over it follow. */
static inline void sm__pl_mask_range(const struct run *R, unsigned p, uint64_t *a, uint64_t *b)
{
	*a = R->n * p / R->mask_parts;
	*b = R->n * (p + 1) / R->mask_parts;
}

/* The same, and the index in selection order of the share's first selected cell. */
static inline uint64_t sm__pl_mask_share(const struct run *R, unsigned p, uint64_t *a, uint64_t *b)
{
	uint64_t j = 0;
	unsigned q;

	sm__pl_mask_range(R, p, a, b);
	for (q = 0; q < p; q++)
		j += R->mask_count[q];
	return j;
}

/* The set bytes of mask m[i, min(i + 16, b)) as bits (bit k: m[i + k] != 0), sixteen compared at
 * once: a sphere is ~1 % of the cells, so the walks over the mask (radial_distance, mask_arrays)
 * go sixteen cells at a time over the zeros and straight to each set one (its bit's position). */
static inline unsigned sm__pl_mask_bits(const unsigned char *m, uint64_t i, uint64_t b)
{
	unsigned bits = 0, k;

#if defined(__SSE2__)
	if (i + 16 <= b) {
		const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(m + i));

		return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) ^ 0xffffu;
	}
#endif
	for (k = 0; k < 16 && i + k < b; k++)
		bits |= (unsigned)(m[i + k] != 0) << k;
	return bits;
}

/* The set cells of mask m[i, e) (e - i <= SM__PL_MASK_CHUNK) into idx, as offsets from i; their
 * count. The walks over the mask gather a chunk's cells first, then read their positions and
 * temperatures in a loop of independent loads (scattered cells: one cache miss each, which
 * overlap there rather than one at a time behind each test of the mask). */
#define SM__PL_MASK_CHUNK 1024u

static inline unsigned sm__pl_mask_chunk(const unsigned char *m, uint64_t i, uint64_t e,
					 uint32_t *idx)
{
	unsigned n = 0, bits;
	uint64_t k;

	for (k = i; k < e; k += 16)
		for (bits = sm__pl_mask_bits(m, k, e); bits != 0; bits &= bits - 1)
			idx[n++] = (uint32_t)(k - i) + (uint32_t)__builtin_ctz(bits);
	return n;
}

/* ---- science kernels ---- */

/* gcc's -O2 vectorises only loops its "very cheap" cost model accepts; a flat kernel asks for the
 * ordinary model with this. */
#if defined(__GNUC__) && !defined(__clang__)
#define SM__PL_VECTORISE __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#else
#define SM__PL_VECTORISE
#endif

/* One coordinate difference to its minimum image: the box added always (0, box or -box: x + 0
 * is x, x + (-box) is x - box), the same value as subtracting or adding it on a branch, written
 * so that loops over many cells vectorise. */
static inline float sm__pl_wrap_f32(float d, float box, float half)
{
	return d + (d > half ? -box : d < -half ? box : 0.0f);
}

static inline double sm__pl_wrap_f64(double d, double box, double half)
{
	return d + (d > half ? -box : d < -half ? box : 0.0);
}

/* Minimum-image distance of the cell at (x0, x1, x2) from the centre (c0, c1, c2), in the
 * positions' own type (float32 arithmetic for float32): the one distance every strategy and kernel
 * applies. Loops over many cells pass x[3 i], x[3 i + 1], x[3 i + 2] and the centre in locals
 * and vectorise (where their file has -fno-math-errno; with a pointer to the cell instead, gcc
 * 12 did not vectorise a loop storing bytes); sm__pl_dist_f32/f64 take the two as arrays. */
static inline float sm__pl_dist_xyz_f32(float x0, float x1, float x2, float c0, float c1, float c2,
					float box, float half)
{
	const float dx = sm__pl_wrap_f32(x0 - c0, box, half);
	const float dy = sm__pl_wrap_f32(x1 - c1, box, half);
	const float dz = sm__pl_wrap_f32(x2 - c2, box, half);

	return sqrtf(dx * dx + dy * dy + dz * dz);
}

static inline double sm__pl_dist_xyz_f64(double x0, double x1, double x2, double c0, double c1,
					 double c2, double box, double half)
{
	const double dx = sm__pl_wrap_f64(x0 - c0, box, half);
	const double dy = sm__pl_wrap_f64(x1 - c1, box, half);
	const double dz = sm__pl_wrap_f64(x2 - c2, box, half);

	return sqrt(dx * dx + dy * dy + dz * dz);
}

static inline float sm__pl_dist_f32(const float *x, const float *c, float box, float half)
{
	return sm__pl_dist_xyz_f32(x[0], x[1], x[2], c[0], c[1], c[2], box, half);
}

static inline double sm__pl_dist_f64(const double *x, const double *c, double box, double half)
{
	return sm__pl_dist_xyz_f64(x[0], x[1], x[2], c[0], c[1], c[2], box, half);
}

static inline uint32_t sm__pl_float_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return u;
}

static inline float sm__pl_bits_float(uint32_t u)
{
	float f;

	memcpy(&f, &u, 4);
	return f;
}

/* The log10 T bin of a non-negative temperature, by the definition: floor((log10 T - 3) * 10)
 * clamped to [0, TBINS). */
static inline int sm__pl_tbin_exact(float tf)
{
	double lt = (log10((double)tf) - 3.0) * (SM_MODEL_TBINS / 6.0);

	return lt > 0 ? (lt < SM_MODEL_TBINS ? (int)lt : SM_MODEL_TBINS - 1) : 0;
}

/* The same bin by the thresholds: tab[u >> TBIN_SHIFT] and the one threshold above it, log10
 * within TBIN_GUARD patterns of either threshold around u. */
static inline int sm__pl_tbin_table(const struct tbin_table *tt, float tf)
{
	uint32_t u = sm__pl_float_bits(tf);
	uint32_t b;

	if (u > TBIN_INF_BITS)
		return sm__pl_tbin_exact(tf);
	b = tt->tab[u >> TBIN_SHIFT];
	b += u >= tt->th[b + 1];
	if (u - tt->th[b] < TBIN_GUARD || tt->th[b + 1] - u <= TBIN_GUARD)
		return sm__pl_tbin_exact(tf);
	return (int)b;
}

/* The same bin with one load a cell (tbin_table_init): the key's bin and the threshold above
 * it; sm__pl_tbin_table within TBIN_GUARD of that threshold and in the keys whose ends lie that
 * close to another. Equal to sm__pl_tbin_exact for every float. */
static inline int sm__pl_tbin_fast(const struct tbin_table *tt, float tf)
{
	const uint32_t u = sm__pl_float_bits(tf);
	uint64_t e;
	int64_t d;

	if (u > TBIN_INF_BITS)
		return sm__pl_tbin_exact(tf);
	e = tt->key[u >> TBIN_SHIFT];
	d = (int64_t)u - (int64_t)(uint32_t)e;
	if ((e & TBIN_KEY_SLOW) != 0 || (d >= -(int64_t)TBIN_GUARD && d < (int64_t)TBIN_GUARD))
		return sm__pl_tbin_table(tt, tf);
	return (int)((e >> 32) & 0xffu) + (d >= 0);
}

/* The r/R200 bin of a cell at distance rr: floor(rr / r200 * 25) clamped to [0, RBINS), clamped
 * before the conversion (NaN to 0) so that loops over many cells vectorise. */
static inline int sm__pl_rbin(double rr, double r200)
{
	double x = rr / r200 * (SM_MODEL_RBINS / 2.0);

	x = x > 0 ? x : 0;
	x = x < SM_MODEL_RBINS ? x : SM_MODEL_RBINS - 1;
	return (int)x;
}

/*
 * One cell into a halo's 25,200-byte histogram (counts int64[50], sf_counts int64[50], then the
 * temperature SUM float64[50] until sm__pl_hist_finish turns it into the mean, hist2d
 * int64[50*60]): rb its r/R200 bin (sm__pl_rbin), tf its stored temperature (negative:
 * star-forming).
 */
static inline void sm__pl_hist_add_rb(unsigned char *hist, const struct tbin_table *tt, int rb,
				      float tf)
{
	int64_t *counts = (int64_t *)(void *)hist, *sf = counts + SM_MODEL_RBINS;
	double *sum = (double *)(void *)(sf + SM_MODEL_RBINS);
	int64_t *h2 = (int64_t *)(void *)(sum + SM_MODEL_RBINS);

	if (signbit(tf)) {
		sf[rb]++;
		return;
	}
	counts[rb]++;
	sum[rb] += (double)tf;
	h2[rb * SM_MODEL_TBINS + sm__pl_tbin_fast(tt, tf)]++;
}

/* The same for a cell at distance rr (converted from the positions' type) of a halo of r200. */
static inline void sm__pl_hist_add(unsigned char *hist, const struct tbin_table *tt, double rr,
				   double r200, float tf)
{
	sm__pl_hist_add_rb(hist, tt, sm__pl_rbin(rr, r200), tf);
}

/* Temperature sums to means (NaN where a bin holds no non-star-forming cell). */
static inline void sm__pl_hist_finish(unsigned char *hist)
{
	const int64_t *counts = (const int64_t *)(void *)hist;
	double *sum = (double *)(void *)(hist + 2 * SM_MODEL_RBINS * sizeof(int64_t));
	int b;

	for (b = 0; b < SM_MODEL_RBINS; b++)
		sum[b] = counts[b] > 0 ? sum[b] / (double)counts[b] : NAN;
}

#endif
