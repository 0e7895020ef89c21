/*
 * Stage stream_cells of the distributed run (docs/MPI.md): this rank's chunk files, in ascending
 * file number, block by block: the three gas fields, the temperature (sm__pl_temperature_block, the
 * serial run's kernel) and Coordinates of a block, then every cell looked up in the halo index and
 * added into the sums of each halo whose sphere holds it, with the serial run's distance in the
 * positions' own type (float32: the same float centre, box, half box and radius as select_sphere)
 * and its histogram rule (sm__pl_hist_add_rb). The block arrays are the serial run's names at block
 * size; profile_sums, 25,200 bytes a halo, live until histogram_write. The cell loop runs on the
 * worker threads (pairs and add below; pairs inside the one-pass read when the fast path reads the
 * block), its sums bit for bit those of one thread.
 */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "snapmem/units.h"

#include "distributed.h"
#include "snapshot/direct.h"
#include "run.h"

/* A block's cells go through the halo index in two steps on the worker threads (docs/MPI.md).
 * pairs, the cells split into ranges, one a part: each part finds its cells' halo-grid cells and,
 * for every listed halo, the distance and r/R200 bin, and keeps the pairs within 2 R200 as
 * records (the halo; the r/R200 bin, the temperature bin and the star-forming flag; the
 * temperature), in cell order, in the block's InternalEnergy, ElectronAbundance and
 * StarFormationRate arrays (dead once the temperatures are made) from the start of its range: a
 * record a cell of the range. add, the halos split into parts (halo h to part h mod parts): every
 * part walks the records of the ranges in order and adds those of the halos it owns. A halo's
 * sums are thus added by one thread in cell order whatever the number of parts: the sums,
 * temperature sums included, are bit for bit those of one thread. A range whose records would
 * outgrow its cells stops at the cell that would not fit; the ranges after it are dropped and
 * the block goes on from there in another round (a cell with more pairs than its range has
 * cells is added on its own by the calling thread). */
#define CELLS_PART_MIN 16384u          /* cells a range, at least, for several ranges */
#define RANGES_PER_THREAD 4u           /* ranges a thread, at most: taken as threads come free */
#define MAX_RANGES 1024u               /* ranges a block, at most (one-pass reads: a run each) */
#define CELLS_PIECE (UINT64_C(1) << 30) /* cells a pass, so that offsets fit in 32 bits */
#define GRID_RUN 256u                  /* cells whose grid cells are found in one loop */

/* add works on batches of up to ADD_BATCH pairs (a cell and a listed halo): the pairs are gathered
 * in cell order, then their distances and r/R200 bins computed in a loop of their own
 * (vectorised for float32), so that no pair waits for its own square root and division. */
#define ADD_BATCH 256u

/* A record's key: its r/R200 bin, its temperature bin << 8, REC_SF when star-forming. */
#define REC_TB_SHIFT 8u
#define REC_SF 0x10000u

struct cells_job {
	struct dist *D;
	unsigned owners;  /* add's parts: 2 or fewer keep the second's records at the range's end */
	const void *x;  /* the cells' Coordinates, 3n of the positions' type */
	const float *t; /* their temperatures */
	uint32_t *rh;   /* records: halo */
	uint32_t *rk;   /* records: key */
	float *rt;      /* records: temperature */
	uint64_t n;
	unsigned nranges;                  /* the cell ranges */
	atomic_uint next_range;           /* the next range a thread takes */
	uint64_t stop[MAX_RANGES];  /* the first cell a range did not do (its end) */
	uint64_t recs[MAX_RANGES];  /* records kept by each range (owners 2: the first's) */
	uint64_t recs1[MAX_RANGES]; /* owners 2: the second's, down from the range's end */
	atomic_uchar made[MAX_RANGES];      /* 1: the range's records are made; 2: its read failed */
	atomic_int failed;                  /* a range's one-pass read failed: the block's reads stop */
	/* Adding as the ranges are made (the one-pass read, one part an owner): */
	unsigned from[SM__PL_MAX_THREADS];  /* the first range each owner has not added */
	int added;                          /* every owner added every range it should */
};

static inline uint64_t range_start(const struct cells_job *J, unsigned p)
{
	return J->n * p / J->nranges;
}

struct add_batch {
	uint32_t i[ADD_BATCH];   /* the cell, in the block's piece (fewer than 2^30 cells) */
	uint32_t h[ADD_BATCH];   /* the halo */
	int32_t rb[ADD_BATCH];   /* its r/R200 bin, or -1 outside 2 R200 */
	/* float32 positions: the pairs' coordinate differences, their halos' 2 R200 and R200 */
	float dx[ADD_BATCH], dy[ADD_BATCH], dz[ADD_BATCH], r2[ADD_BATCH];
	double r200[ADD_BATCH];
};

/* The bins of float32 pairs [0, n) from their differences (vectorised, the Makefile giving this
 * file -fno-math-errno so that sqrtf may be; the one distance, sm__pl_dist_xyz_f32, the
 * comparison with the float 2 R200, sm__pl_rbin). */
__attribute__((target_clones("avx2", "default")))
SM__PL_VECTORISE static void bins_f32(struct add_batch *restrict B, unsigned n, float box, float half)
{
	unsigned q;

	for (q = 0; q < n; q++) {
		/* the differences against a zero centre: x - 0 is x, to the bit */
		const float d = sm__pl_dist_xyz_f32(B->dx[q], B->dy[q], B->dz[q], 0.0f, 0.0f, 0.0f,
						    box, half);
		const int32_t rb = sm__pl_rbin(d, B->r200[q]);

		B->rb[q] = d < B->r2[q] ? rb : -1;
	}
}

/* Distances and bins of pairs [0, n) of a batch, the serial run's arithmetic (sm__pl_dist_f32 with
 * the same float centre, box, half box and radius as select_sphere; sm__pl_dist_f64). */
static inline void batch_bins(const struct dist *D, const void *x, int f32,
			      struct add_batch *B, unsigned n)
{
	const struct run *R = D->R;
	unsigned q;

	if (f32) {
		const float bx = (float)R->box;

		for (q = 0; q < n; q++) {
			const uint32_t h = B->h[q];
			const double *cd = &R->halo_center[3 * h];
			const float *xi = (const float *)x + 3 * B->i[q];

			B->dx[q] = xi[0] - (float)cd[0];
			B->dy[q] = xi[1] - (float)cd[1];
			B->dz[q] = xi[2] - (float)cd[2];
			B->r200[q] = R->halo_r200[h];
			B->r2[q] = (float)(2.0 * R->halo_r200[h]);
		}
		bins_f32(B, n, bx, bx / 2);
		return;
	}
	for (q = 0; q < n; q++) {
		const uint32_t h = B->h[q];
		const double r200 = R->halo_r200[h];
		const double d = sm__pl_dist_f64((const double *)x + 3 * B->i[q],
						 &R->halo_center[3 * h], R->box, R->box / 2);

		B->rb[q] = d < 2.0 * r200 ? sm__pl_rbin(d, r200) : -1;
	}
}

/* Pairs [0, n) of a batch within 2 R200 to records (the pairs' halos, keys and temperatures):
 * from *front up, or, with two owners, the odd halos' from *back - 1 down. */
static inline void batch_records(const struct cells_job *J, const struct add_batch *B,
				 unsigned n, uint64_t *front, uint64_t *back)
{
	const struct tbin_table *tt = &J->D->R->tbins;
	const int split = J->owners == 2;
	uint64_t f = *front, b = *back;
	unsigned q;

	for (q = 0; q < n; q++) {
		const float tf = J->t[B->i[q]];
		const uint32_t rb = (uint32_t)B->rb[q], h = B->h[q];
		/* without a branch: the odd halos' down from the back when split */
		const uint64_t odd = (uint64_t)(split & (int)(h & 1u));
		uint64_t at;

		if (B->rb[q] < 0)
			continue;
		b -= odd;
		at = odd ? b : f;
		f += 1 - odd;
		J->rh[at] = h;
		J->rk[at] = signbit(tf) ? rb | REC_SF
					: rb | (uint32_t)sm__pl_tbin_fast(tt, tf) << REC_TB_SHIFT;
		J->rt[at] = tf;
	}
	*front = f;
	*back = b;
}

/* A batch's distances, bins and records, out of line: the loops that gather the pairs then keep
 * their variables in registers (pairs_cells 8 % faster, one thread, in cache). */
static __attribute__((noinline)) void flush_batch(const struct cells_job *J, int f32,
						  struct add_batch *B, unsigned n, uint64_t *rec,
						  uint64_t *back)
{
	batch_bins(J->D, J->x, f32, B, n);
	batch_records(J, B, n, rec, back);
}

/* The pairs of cell ci with halos[j..j1) (j < j1: a listed cell) onto batch B after its n pairs,
 * the batch flushed each time it is full; returns how many pairs it then holds. */
static inline unsigned push_cell(const struct cells_job *J, int f32, struct add_batch *B,
				 unsigned n, uint32_t ci, const uint32_t *halos, uint32_t j,
				 uint32_t j1, uint64_t *rec, uint64_t *back)
{
	do {
		B->i[n] = ci;
		B->h[n] = halos[j];
		if (++n == ADD_BATCH) {
			flush_batch(J, f32, B, n, rec, back);
			n = 0;
		}
	} while (++j < j1);
	return n;
}

/* Cells of range part, in order: their pairs within 2 R200 to records, from the range's start. */
static inline void pairs_cells(struct cells_job *J, unsigned part, int f32)
{
	const struct dist *D = J->D;
	const uint32_t *start = D->hg_start, *halos = D->hg_halos;
	const uint64_t i0 = range_start(J, part), i1 = range_start(J, part + 1), cap = i1 - i0;
	struct add_batch B;
	uint32_t gc[GRID_RUN], kj0[GRID_RUN], kj1[GRID_RUN], ki[GRID_RUN];
	uint64_t a, rec = i0, back = i1, stop = i1;
	unsigned n = 0, k, q;

	/* The coordinates were checked as read (sm__pl_read_positions: finite, within half a box of
	 * the box, as read and as narrowed), so each lies in the halo grid's reach. */
	for (a = i0; a < i1 && stop == i1; a += GRID_RUN) {
		const uint64_t b = i1 - a < GRID_RUN ? i1 : a + GRID_RUN;
		uint64_t i;

		sm__pl_grid_cells((const char *)J->x + 3 * a * (f32 ? sizeof(float) : sizeof(double)),
				  !f32, gc, b - a, D->R->box, D->inv_w, (uint32_t)D->hg);
		/* the cells whose grid cell lists a halo, with their lists, without a branch
		 * (written always, counted when kept) */
		for (i = a, k = 0; i < b; i++) {
			const uint32_t c = gc[i - a], j0 = start[c], j1 = start[c + 1];

			kj0[k] = j0;
			kj1[k] = j1;
			ki[k] = (uint32_t)(i - a);
			k += j0 != j1;
		}
		/* room for every pair of the run, as many as the longest list a cell: no check a
		 * cell */
		if ((rec - i0) + (i1 - back) + n + (uint64_t)D->hg_lmax * k <= cap) {
			for (q = 0; q < k; q++)
				n = push_cell(J, f32, &B, n, (uint32_t)a + ki[q], halos, kj0[q], kj1[q],
					      &rec, &back);
			continue;
		}
		/* the cells one at a time, each checked for room */
		for (q = 0; q < k; q++) {
			const uint32_t j1 = kj1[q];
			uint32_t j = kj0[q];

			i = a + ki[q];
			/* every listed halo might be a record: stop where they might not fit */
			if ((rec - i0) + (i1 - back) + n + (j1 - j) > cap) {
				flush_batch(J, f32, &B, n, &rec, &back);
				n = 0;
				if ((rec - i0) + (i1 - back) + (j1 - j) > cap) {
					stop = i;
					break;
				}
			}
			n = push_cell(J, f32, &B, n, (uint32_t)i, halos, j, j1, &rec, &back);
		}
	}
	flush_batch(J, f32, &B, n, &rec, &back);
	J->recs[part] = rec - i0;
	J->recs1[part] = i1 - back;
	J->stop[part] = stop;
}

/* The ranges, taken one at a time as threads come free (a range's cells may hold many pairs or
 * none: the ranges' order, not their threads, fixes the records' order). */
/* Range r's records (pairs_cells in the positions' type), then marked made. */
static void range_records(struct cells_job *J, unsigned r)
{
	if (J->D->R->pt == SM_DTYPE_F32)
		pairs_cells(J, r, 1);
	else
		pairs_cells(J, r, 0);
	atomic_store_explicit(&J->made[r], 1, memory_order_release);
}

static void pairs_part(void *arg, unsigned part, unsigned parts)
{
	struct cells_job *J = arg;
	unsigned r;

	(void)part;
	(void)parts;
	while ((r = atomic_fetch_add(&J->next_range, 1)) < J->nranges)
		range_records(J, r);
}

/* Records [k0, k1) of a range (in steps of dk: 1, or -1 down from k0 for the second owner's)
 * into the sums; those of halos other parts own (h mod parts != part) skipped when filter. A run
 * of records into the same temperature sum is added in a register: the same additions in the
 * same order, without waiting for the sum's store and load each time. */
static inline void add_records(const struct cells_job *J, int64_t k, int64_t k1, int64_t dk,
			       int filter, unsigned part, unsigned parts, double **cur, double *acc)
{
	const unsigned mask = (parts & (parts - 1)) == 0 ? parts - 1 : 0;
	unsigned char *sums = J->D->sums;
	double *c = *cur, a = *acc; /* in registers: the stores below cannot reach them */

	for (; k != k1; k += dk) {
		const uint32_t h = J->rh[k], key = J->rk[k], rb = key & 0xffu;
		int64_t *counts, *sf, *h2;
		double *sum;

		if (filter && (mask != 0 ? (h & mask) : h % parts) != part)
			continue;
		counts = (int64_t *)(void *)(sums + (uint64_t)h * SM_MODEL_HISTOGRAM_BYTES);
		sf = counts + SM_MODEL_RBINS;
		if (key & REC_SF) {
			sf[rb]++;
			continue;
		}
		sum = (double *)(void *)(sf + SM_MODEL_RBINS) + rb;
		h2 = (int64_t *)(void *)(sum - rb + SM_MODEL_RBINS);
		counts[rb]++;
		h2[rb * SM_MODEL_TBINS + (key >> REC_TB_SHIFT)]++;
		if (sum != c) {
			if (c != NULL)
				*c = a;
			c = sum;
			a = *sum;
		}
		a += (double)J->rt[k];
	}
	*cur = c;
	*acc = a;
}

/* Range p's records into the sums of the halos of this part (h mod parts == part); 1 when the
 * range stopped short (the ranges after it are not added: the block goes on from its stop). */
static int add_range(const struct cells_job *J, unsigned p, unsigned part, unsigned parts,
		     double **cur, double *acc)
{
	const int64_t i0 = (int64_t)range_start(J, p), i1 = (int64_t)range_start(J, p + 1);

	if (J->owners == 2 && part == 1)
		add_records(J, i1 - 1, i1 - 1 - (int64_t)J->recs1[p], -1, 0, part, parts, cur, acc);
	else
		add_records(J, i0, i0 + (int64_t)J->recs[p], 1, J->owners > 2, part, parts, cur, acc);
	return J->stop[p] < (uint64_t)i1;
}

/* Owner `part` adds the ranges from J->from[part] on whose records are made, in order; with wait,
 * waits for those another part is making, until every range is added (or one stopped short),
 * unless a read failed. J->from[part] is left at the first range not added (nranges when none
 * is left to add). */
static void add_made(struct cells_job *J, unsigned part, int wait, double **cur, double *acc)
{
	unsigned p = J->from[part], spins = 0;

	while (p < J->nranges) {
		const int m = atomic_load_explicit(&J->made[p], memory_order_acquire);

		if (m == 2 || (m == 0 && (!wait || atomic_load(&J->failed))))
			break;
		if (m == 0) { /* another part is making it: a few microseconds */
			if (++spins % 64 == 0)
				sched_yield();
			continue;
		}
		if (add_range(J, p, part, J->owners, cur, acc)) {
			p = J->nranges;
			break;
		}
		p++;
	}
	J->from[part] = p;
}

/* The records of the ranges, every one made (pairs_part), in order from J->from[part] (0 unless
 * some were added as read) into the sums of the halos of this part, up to the first range that
 * stopped short (its records included). */
static void add_part(void *arg, unsigned part, unsigned parts)
{
	struct cells_job *J = arg;
	double *cur = NULL, acc = 0;

	(void)parts; /* J->owners */
	add_made(J, part, 0, &cur, &acc);
	if (cur != NULL)
		*cur = acc;
}

/* Cell i of the block, whose pairs outgrew its range, into the sums directly (calling thread). */
static void add_one_cell(struct cells_job *J, uint64_t i)
{
	const struct dist *D = J->D;
	const int f32 = D->R->pt == SM_DTYPE_F32;
	struct add_batch B;
	uint32_t c, j;
	unsigned n = 0;

	sm__pl_grid_cells((const char *)J->x + 3 * i * (f32 ? sizeof(float) : sizeof(double)), !f32,
			  &c, 1, D->R->box, D->inv_w, (uint32_t)D->hg);
	for (j = D->hg_start[c]; j < D->hg_start[c + 1]; j++) {
		B.i[n] = (uint32_t)i;
		B.h[n] = D->hg_halos[j];
		if (++n == ADD_BATCH || j + 1 == D->hg_start[c + 1]) {
			unsigned q;

			batch_bins(D, J->x, f32, &B, n);
			for (q = 0; q < n; q++)
				if (B.rb[q] >= 0)
					sm__pl_hist_add_rb(J->D->sums + (uint64_t)B.h[q] *
								       SM_MODEL_HISTOGRAM_BYTES,
							   &D->R->tbins, B.rb[q], J->t[i]);
			n = 0;
		}
	}
}

/* J for cells [done, done + m) of a block (m at most CELLS_PIECE) in `ranges` ranges. */
static void cells_job_init(struct cells_job *J, struct dist *D, uint64_t done, uint64_t m,
			   unsigned ranges)
{
	const unsigned threads = sm__pl_threads();

	memset(J, 0, sizeof(*J));
	atomic_init(&J->next_range, 0);
	J->D = D;
	J->x = (const char *)D->R->coords + done * 3 * D->R->psz;
	J->t = D->R->temp + done;
	J->rh = (uint32_t *)(void *)D->R->u + done;
	J->rk = (uint32_t *)(void *)D->R->xe + done;
	J->rt = D->R->sfr + done;
	J->n = m;
	J->nranges = ranges;
	J->owners = threads;
	if (D->R->k < J->owners)
		J->owners = D->R->k > 1 ? (unsigned)D->R->k : 1;
	if (m < CELLS_PART_MIN)
		J->owners = 1;
}

/* Cells [0, n) of a block, their coordinates checked as read and their temperatures made (the
 * gas fields dead), into the halos' sums; first, when not NULL, the block's first piece with its
 * records already made (the one-pass read's). */
static void add_block(struct dist *D, uint64_t n, struct cells_job *first)
{
	const unsigned threads = sm__pl_threads();
	uint64_t done;

	for (done = 0; done < n;) {
		struct cells_job own, *J = &own;
		uint64_t m = n - done < CELLS_PIECE ? n - done : CELLS_PIECE, next;
		unsigned ranges = RANGES_PER_THREAD * threads, p;

		if (done == 0 && first != NULL) {
			J = first;
			if (!J->added)
				sm__pl_parallel(add_part, J, J->owners);
		} else {
			if (m / CELLS_PART_MIN < ranges)
				ranges = m / CELLS_PART_MIN > 1 ? (unsigned)(m / CELLS_PART_MIN) : 1;
			cells_job_init(J, D, done, m, ranges);
			sm__pl_parallel(pairs_part, J, ranges < threads ? ranges : threads);
			sm__pl_parallel(add_part, J, J->owners);
		}
		/* on from the first range that stopped short, if any */
		next = m;
		for (p = 0; p < J->nranges; p++)
			if (J->stop[p] < range_start(J, p + 1)) {
				next = J->stop[p];
				if (next == range_start(J, p))
					add_one_cell(J, next++);
				break;
			}
		done += next;
	}
}

/* A block whose four fields the fast path reads directly (sm__snapshot_direct) is read in one
 * pass on the worker threads: each takes runs of READ_RUN cells (the ranges of pairs: at most
 * MAX_RANGES a block, so longer in blocks above MAX_RANGES READ_RUN cells) as it comes free and
 * reads their three gas fields, makes their temperatures while the fields are in its cache, reads
 * (and checks, and narrows) their Coordinates, and makes the run's records (pairs_cells) while
 * its coordinates and temperatures are in its cache: one parallel section a block instead of
 * six, and no cell's fields travel to memory and back before its records. With as many parts as
 * add has owners, part p is owner p and adds its halos' records of each range as soon as that
 * range and every one before it are made (add_made), waiting at the end for the ranges others
 * are making: the same additions in the same order as add_part's. Any failure (a read, a bad
 * value) leaves the block to the field-by-field reads, which word the error as before; the ranges
 * an owner had added are not added again (their records are made again from the block as read,
 * and each owner adds from where it stopped). */
#define READ_RUN 8192u        /* cells a thread reads and converts at once */

struct read_job {
	struct run *R;
	const sm__direct *d;     /* [4]: the three gas fields, Coordinates */
	uint64_t n;
	atomic_uint_fast64_t next; /* the next run of READ_RUN cells a thread takes */
	sm__bounds bounds;       /* Coordinates' check */
	struct cells_job *cj;    /* the block's ranges, one a run: their records made as read */
	int add;                 /* and added as made: part p is owner p (parts == cj->owners) */
	double read_s;           /* part 0's seconds in reads */
};

unsigned sm__pl_fail_read_range;

/* Runs of READ_RUN cells, taken one at a time as threads come free. */
static void read_part(void *arg, unsigned part, unsigned parts)
{
	struct read_job *J = arg;
	struct run *R = J->R;
	float *fld[3] = {R->u, R->xe, R->sfr};
	const size_t slice = R->iobuf != NULL ? SM_MODEL_IO_BUFFER_BYTES / parts / 64 * 64 : 0;
	unsigned char *scratch = R->iobuf != NULL ? (unsigned char *)R->iobuf + part * slice : NULL;
	uint64_t bad;
	double t0 = 0, *cur = NULL, acc = 0;
	unsigned p;
	int errnum, j;

	while ((p = (unsigned)atomic_fetch_add(&J->next, 1)) < J->cj->nranges &&
	       !atomic_load(&J->cj->failed)) {
		const uint64_t a = range_start(J->cj, p), m = range_start(J->cj, p + 1) - a;

		if (part == 0)
			t0 = sm__pl_now_s();
		for (j = 0; j < 3; j++)
			if (sm__fast_read_here(&J->d[j].x, SM_DTYPE_F32, J->d[j].e0 + a, m, fld[j] + a,
					       NULL, 0, NULL, &bad, &errnum) != 0)
				goto fail;
		if (part == 0)
			J->read_s += sm__pl_now_s() - t0;
		if (sm__pl_temperature_cells(R->u + a, R->xe + a, R->sfr + a, R->temp + a, m, R->uv2))
			goto fail;
		if (part == 0)
			t0 = sm__pl_now_s();
		if (sm__fast_read_here(&J->d[3].x, R->pt, J->d[3].e0 + 3 * a, 3 * m,
				       (char *)R->coords + 3 * a * R->psz, scratch, slice, &J->bounds,
				       &bad, &errnum) != 0 ||
		    bad < 3 * m)
			goto fail;
		if (part == 0)
			J->read_s += sm__pl_now_s() - t0;
		if (sm__pl_fail_read_range == p + 1)
			goto fail;
		range_records(J->cj, p);
		if (J->add)
			add_made(J->cj, part, 0, &cur, &acc);
	}
	if (J->add)
		add_made(J->cj, part, 1, &cur, &acc);
	if (cur != NULL)
		*cur = acc;
	return;
fail:
	atomic_store(&J->cj->failed, 1);
	atomic_store(&J->cj->made[p], 2);
	if (cur != NULL)
		*cur = acc;
}

/* The four fields of cells [g, g + n) of the run, in one chunk file, as the fast path reads them
 * directly (the three gas fields, Coordinates): 1 when all four are direct, else 0. */
static int direct_fields(struct dist *D, uint64_t g, uint64_t n, sm__direct d[4])
{
	struct run *R = D->R;
	int j;

	for (j = 0; j < 3; j++) {
		sm__snapshot_direct(&R->s, 0, sm__pl_gas_names[j], SM_DTYPE_F32, 1, g, n, 0, &d[j]);
		if (!d[j].ok)
			return 0;
	}
	sm__snapshot_direct(&R->s, 0, SM_ARRAY_COORDINATES, R->pt, 3, g, n, 1, &d[3]);
	return d[3].ok;
}

/* Cells [local, local + n) of the chunk file whose four fields `chunk` describes whole (its cells
 * from 0; NULL when they are not all direct), read in one pass, their records made in cj (ranges
 * of READ_RUN cells): 0 done, 1 not (n at most CELLS_PIECE). The block's rows are the chunk's,
 * offset: the same as sm__snapshot_direct would find for the block, without opening each
 * dataset again for every block (about 25 us a block). */
static int read_block_direct(struct dist *D, const sm__direct *chunk, uint64_t local, uint64_t n,
			     struct cells_job *cj)
{
	struct run *R = D->R;
	struct read_job J;
	sm__direct d[4];
	unsigned parts = sm__pl_threads();
	int j;

	if (chunk == NULL)
		return 1;
	for (j = 0; j < 4; j++) {
		const uint64_t ncomp = j < 3 ? 1 : 3;

		d[j] = chunk[j];
		d[j].e0 = local * ncomp;
		d[j].ne = n * ncomp;
	}
	if (n / CELLS_PART_MIN < parts)
		parts = n / CELLS_PART_MIN > 1 ? (unsigned)(n / CELLS_PART_MIN) : 1;
	cells_job_init(cj, D, 0, n, n / READ_RUN >= MAX_RANGES ? MAX_RANGES
				   : (unsigned)((n + READ_RUN - 1) / READ_RUN));
	memset(&J, 0, sizeof(J));
	atomic_init(&J.next, 0);
	J.cj = cj;
	J.R = R;
	J.d = d;
	J.n = n;
	J.bounds.lo = -0.5 * R->box;
	J.bounds.hi = 1.5 * R->box;
	J.add = parts == cj->owners;
	sm__pl_parallel(read_part, &J, parts);
	sm_prof_time_add(R->p, SM_PROF_PART_READ, J.read_s);
	if (atomic_load(&cj->failed))
		return 1;
	cj->added = J.add;
	return 0;
}

/* One block of chunk f: cells [local, local + n) of the file (chunk: its fields when direct,
 * else NULL; set to NULL when the block was read otherwise, the chunk's descriptors then being
 * found again for the next block). */
static int stream_block(struct dist *D, int64_t f, uint64_t local, uint64_t n,
			const sm__direct **chunk)
{
	struct run *R = D->R;
	float *fld[3] = {R->u, R->xe, R->sfr};
	uint64_t g = D->first[f] + local, bad;
	struct cells_job C;
	unsigned p, added = 0;
	int rc, j;

	memset(&C, 0, sizeof(C));
	if (n <= CELLS_PIECE && read_block_direct(D, *chunk, local, n, &C) == 0) {
		add_block(D, n, &C);
		return 0;
	}
	*chunk = NULL;
	for (j = 0; j < 3; j++)
		if ((rc = sm__pl_read_gas(R, sm__pl_gas_names[j], g, n, fld[j])) != 0)
			return rc;
	if ((rc = sm__pl_temperature_block(R, g, n, R->u, R->xe, R->sfr, R->temp)) != 0)
		return rc;
	if ((rc = sm__pl_read_positions(R, g, n, R->coords, &bad)) != 0)
		return rc;
	if (bad < n)
		return sm__pl_bad_coordinate(R, g + bad);
	/* Ranges the one-pass read had added before it failed: their records made again from the
	 * block as read now (the same ranges, the same records), each owner adding from the first
	 * range it had not added, so that no record is added twice. */
	for (p = 0; p < SM__PL_MAX_THREADS; p++)
		added |= C.from[p];
	if (added == 0) {
		add_block(D, n, NULL);
		return 0;
	}
	atomic_store(&C.next_range, 0);
	C.added = 0;
	sm__pl_parallel(pairs_part, &C, C.nranges < sm__pl_threads() ? C.nranges : sm__pl_threads());
	add_block(D, n, &C);
	return 0;
}

/* Stage stream_cells: this rank's chunk files, in ascending file number, block by block. */
int sm__pl_stream_cells(struct dist *D)
{
	struct run *R = D->R;
	float **fld[3] = {&R->u, &R->xe, &R->sfr};
	uint64_t k = R->k, bytes, done = 0, fill;
	sm__direct cd[4];
	const sm__direct *chunk;
	int64_t f;
	int rc, j, not_direct;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_STREAM_CELLS, -1, D->my_cells)) != 0)
		return rc;
	if (sm_mul_u64(k, SM_MODEL_HISTOGRAM_BYTES, &bytes) != 0)
		return sm_error_set(R->err, SM_EOVERFLOW, "'%s': %llu halos: profile sums do not fit "
				    "in 64 bits", sm__pl_cat_file(R), (unsigned long long)k);
	if ((rc = sm__pl_palloc_filled(R, &D->sums, SM_ARRAY_PROFILE_SUMS, bytes)) != 0)
		return rc;
	memset(D->sums, 0, bytes);
	D->b = R->o->model.stream_block < R->n ? R->o->model.stream_block : R->n;
	/* a block is written from its start: the block arrays' cells the rank's largest file fills
	 * are touched, and only those are resident (docs/MODEL.md) */
	fill = D->my_largest < D->b ? D->my_largest : D->b;
	if (D->b > 0) {
		for (j = 0; j < 3; j++)
			if ((rc = sm__pl_palloc_touched(R, fld[j], sm__pl_gas_names[j], 4 * D->b,
							4 * fill)) != 0)
				return rc;
		if ((rc = sm__pl_palloc_touched(R, &R->temp, SM_ARRAY_TEMPERATURE, 4 * D->b,
						4 * fill)) != 0 ||
		    (rc = sm__pl_palloc_touched(R, &R->coords, SM_ARRAY_COORDINATES,
						3 * R->psz * D->b, 3 * R->psz * fill)) != 0)
			return rc;
		if (R->pt == SM_DTYPE_F32 &&
		    (rc = sm__pl_palloc(R, &R->iobuf, SM_ARRAY_IO_BUFFER, SM_MODEL_IO_BUFFER_BYTES)) != 0)
			return rc;
	}
	for (f = 0; f < R->s.nfiles; f++) {
		uint64_t cnt = R->s.chunk_counts[f * SM_NTYPES + 0], local;

		if (D->owner[f] != D->rank)
			continue;
		chunk = NULL;
		not_direct = 0;
		for (local = 0; local < cnt; local += D->b) {
			uint64_t n = cnt - local < D->b ? cnt - local : D->b;

			/* a block's parallel sections come back to back: their waits may spin */
			sm__parallel_spin(1);
			rc = sm__pl_cancelled(R);
			/* the chunk's direct fields found once, again after a block read otherwise;
			 * a chunk whose fields are not direct (compressed, chunked) is not asked again */
			if (rc == 0 && chunk == NULL && !not_direct) {
				if (direct_fields(D, D->first[f], cnt, cd))
					chunk = cd;
				else
					not_direct = 1;
			}
			if (rc == 0)
				rc = stream_block(D, f, local, n, &chunk);
			sm__parallel_spin(0);
			if (rc != 0)
				return rc;
			done += n;
			sm__pl_progress(R, SM_STAGE_STREAM_CELLS, -1, done, D->my_cells);
		}
	}
	sm__pl_pfree(R, &R->iobuf);
	sm__pl_pfree(R, &R->coords);
	sm__pl_pfree(R, &R->temp);
	for (j = 0; j < 3; j++)
		sm__pl_pfree(R, fld[j]);
	sm__pl_stage_end(R);
	return 0;
}

