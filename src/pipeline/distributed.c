/*
 * The distributed radial-profile pipeline (docs/MPI.md; include/snapmem/pipeline.h): R ranks, each
 * streaming its share of the snapshot's chunk files, block by block, past a halo index, adding
 * every cell within 2 R200 of a halo into that halo's sums; the sums are added over ranks to rank
 * 0, which alone writes profiles.hdf5. Collectives go through the caller's sm_pipeline_comm (the
 * library never links MPI); with no comm the run is one rank.
 *
 * Memory: exactly docs/MPI.md's arrays, names, sizes, order and lifetimes (the estimator replays
 * them; any change here changes docs/MPI.md and estimator/model.c with it). Every rank allocates
 * the same arrays whatever its share. load_halos reads the group catalogue one chunk file at a
 * time into arrays of the largest chunk's size, so that no rank ever holds the whole catalogue
 * (the serial run's sm__pl_load_halos does); its selection is the serial run's, halo for halo.
 * The only untracked allocations are the caller's result table and the chunk assignment (4 + 8
 * bytes per chunk file, made before the first stage).
 *
 * Science: the serial run's kernels from run.h, applied identically (sm__pl_temperature_block,
 * sm__pl_dist_f32/f64 with the same float centre, box and radius, sm__pl_hist_add), so counts,
 * sf_counts and hist2d equal sm_pipeline_run's bit for bit; a halo's temperature sums are added in
 * this rank's file and cell order, then over ranks, so means agree to rounding.
 *
 * Failures: every step runs only while this rank is fine; at each agreement point (after
 * load_halos, after build_index, after stream_cells, before the reduction, after the write) all
 * ranks learn the lowest failing rank and take its error (broadcast from it), so no rank is left
 * waiting in a collective and all return the same code. Before the first collective only checks
 * that come out the same on every rank (the options) may return early.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/pipeline.h"
#include "snapmem/units.h"

#include "internal.h"
#include "run.h"

#define HIST_I64 (SM_MODEL_HISTOGRAM_BYTES / 8u) /* 8-byte words of one halo's sums */

/* ---- the work split ---------------------------------------------------------------------------- */

int sm_pipeline_rank_files(const char *base_path, int snap, uint32_t rank, uint32_t ranks,
			   int64_t **files, size_t *nfiles, uint64_t *cells, sm_error *err)
{
	sm_snapshot s;
	uint64_t *cnt = NULL;
	int32_t *owner = NULL;
	int64_t f;
	size_t n = 0;
	int rc;

	*files = NULL;
	*nfiles = 0;
	*cells = 0;
	memset(&s, 0, sizeof(s));
	if (rank >= ranks)
		return sm_error_set(err, SM_EINVAL, "rank %u of %u: no such rank", (unsigned)rank,
				    (unsigned)ranks);
	sm_hdf5_quiet();
	if ((rc = sm_snapshot_open_base(&s, base_path, snap, err)) != 0)
		return rc;
	if ((rc = sm_snapshot_scan(&s, err)) != 0)
		goto out;
	cnt = malloc((size_t)(s.nfiles > 0 ? s.nfiles : 1) * sizeof(*cnt));
	owner = malloc((size_t)(s.nfiles > 0 ? s.nfiles : 1) * sizeof(*owner));
	*files = malloc((size_t)(s.nfiles > 0 ? s.nfiles : 1) * sizeof(**files));
	if (cnt == NULL || owner == NULL || *files == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "'%s': cannot allocate the chunk assignment",
				  base_path);
		goto out;
	}
	for (f = 0; f < s.nfiles; f++)
		cnt[f] = s.chunk_counts[f * SM_NTYPES + 0];
	if ((rc = sm_model_assign_chunks(cnt, (size_t)s.nfiles, ranks, NULL, owner, err)) != 0)
		goto out;
	for (f = 0; f < s.nfiles; f++) {
		if (owner[f] != (int32_t)rank)
			continue;
		(*files)[n++] = f;
		*cells += cnt[f];
	}
	*nfiles = n;
out:
	if (rc != 0 || n == 0) {
		free(*files);
		*files = NULL;
	}
	free(cnt);
	free(owner);
	sm_snapshot_release(&s);
	return rc;
}

/* ---- the run ------------------------------------------------------------------------------------ */

struct dist {
	struct run *R;
	const sm_pipeline_comm *comm;
	int rank, size;
	sm_error e;               /* this run's error (R->err points here) */

	int32_t *owner;           /* [nfiles] chunk owners (untracked, before the stages) */
	uint64_t *first;          /* [nfiles] global index of each chunk's first gas cell */
	uint64_t my_cells;

	uint64_t hg, hg3;         /* halo grid side, cells */
	double inv_w;             /* hg / box */
	uint32_t *hg_start;       /* tracked: halo_grid_start [hg^3 + 1] */
	uint32_t *hg_halos;       /* tracked: halo_grid_halos [K min(8, hg^3)] */
	unsigned char *sums;      /* tracked: profile_sums [25,200 K] */
	uint64_t b;               /* block cells */
};

/* An agreement point: every rank's rc in, the lowest failing rank's code (and, on every rank,
 * its error) out. With one rank it is rc. */
static int agree(struct dist *D, int rc)
{
	int frank = -1, fcode = 0, crc;

	if (D->comm == NULL || D->size == 1)
		return rc;
	if (rc != 0 && D->e.code == 0)
		sm_error_set(&D->e, rc, "%s", sm_strerror(rc));
	if (rc != 0) {
		char msg[SM_ERROR_MSG_MAX];

		snprintf(msg, sizeof(msg), "rank %d of %d: %.700s", D->rank, D->size, D->e.msg);
		memcpy(D->e.msg, msg, sizeof(msg));
	}
	crc = D->comm->agree(D->comm->ctx, rc, &frank, &fcode);
	if (crc != 0)
		return sm_error_set(&D->e, crc, "rank %d of %d: agreement failed: %s", D->rank,
				    D->size, sm_strerror(crc));
	if (frank < 0 || fcode == 0)
		return 0;
	crc = D->comm->bcast(D->comm->ctx, frank, &D->e, sizeof(D->e));
	if (crc != 0)
		return sm_error_set(&D->e, crc, "rank %d of %d: cannot receive rank %d's error: %s",
				    D->rank, D->size, frank, sm_strerror(crc));
	D->e.code = fcode;
	return fcode;
}

/* Before the first stage (untracked, 12 bytes per chunk): who streams which chunk. */
static int assign(struct dist *D)
{
	struct run *R = D->R;
	int64_t f, nf = R->s.nfiles;
	uint64_t *cnt, acc = 0;
	int rc;

	D->owner = malloc((size_t)(nf > 0 ? nf : 1) * sizeof(*D->owner));
	D->first = malloc((size_t)(nf > 0 ? nf : 1) * sizeof(*D->first));
	cnt = malloc((size_t)(nf > 0 ? nf : 1) * sizeof(*cnt));
	if (D->owner == NULL || D->first == NULL || cnt == NULL) {
		free(cnt);
		return sm_error_set(R->err, SM_ENOMEM, "'%s': cannot allocate the chunk assignment",
				    sm__pl_snap_file(R));
	}
	for (f = 0; f < nf; f++) {
		cnt[f] = R->s.chunk_counts[f * SM_NTYPES + 0];
		D->first[f] = acc;
		acc += cnt[f];
	}
	rc = sm_model_assign_chunks(cnt, (size_t)nf, (uint32_t)D->size, NULL, D->owner,
				    R->err);
	for (f = 0; rc == 0 && f < nf; f++)
		if (D->owner[f] == D->rank)
			D->my_cells += cnt[f];
	free(cnt);
	return rc;
}

/* Halo grid cells along one axis overlapping [c - s, c + s] (s with the margin), periodic,
 * distinct: 1 or 2 of them (the cell width is at least 2 s). */
static int axis_cells(const struct dist *D, double c, double s, uint64_t out[2])
{
	int64_t g = (int64_t)D->hg;
	double flo = floor((c - s) * D->inv_w), fhi = floor((c + s) * D->inv_w);
	int64_t lo, hi, a, b;

	/* The selected halos are checked (centre in [0, box), 2 R200 + margin at most 2 box + 1e-5
	 * box): the cells lie within a few boxes of the grid, far inside int64; anything else is a
	 * programming error, answered with the whole axis' first cell rather than an overflow. */
	if (!(flo >= -4.0 * (double)g && fhi <= 5.0 * (double)g)) {
		out[0] = 0;
		return 1;
	}
	lo = (int64_t)flo;
	hi = (int64_t)fhi;

	/* Three cells only by rounding, the interval being at most one cell wide: both ends then
	 * lie within rounding of a boundary, and the margin keeps every sphere cell away from them. */
	if (hi - lo >= 2)
		lo = hi = lo + 1;
	a = ((lo % g) + g) % g;
	b = ((hi % g) + g) % g;

	out[0] = (uint64_t)a;
	if (b == a)
		return 1;
	out[1] = (uint64_t)b;
	return 2;
}

/* Calls the body for every halo grid cell `cell` that halo h's sphere overlaps. */
#define FOR_HALO_CELLS(D, h, cell, body)                                                          \
	do {                                                                                      \
		const double *cd_ = &(D)->R->halo_center[3 * (h)];                                \
		double s_ = 2.0 * (D)->R->halo_r200[h] + SM_MODEL_HALO_GRID_MARGIN * (D)->R->box;         \
		uint64_t ax_[2], ay_[2], az_[2];                                                  \
		int nx_ = axis_cells((D), cd_[0], s_, ax_), ny_ = axis_cells((D), cd_[1], s_, ay_); \
		int nz_ = axis_cells((D), cd_[2], s_, az_), i_, j_, l_;                           \
		for (i_ = 0; i_ < nx_; i_++)                                                      \
			for (j_ = 0; j_ < ny_; j_++)                                              \
				for (l_ = 0; l_ < nz_; l_++) {                                    \
					(cell) = (ax_[i_] * (D)->hg + ay_[j_]) * (D)->hg + az_[l_]; \
					body;                                                     \
				}                                                                 \
	} while (0)

/* ---- load_halos: the catalogue chunk by chunk ---------------------------------------------------- */

/* The name the catalogue reader gives the whole catalogue in its messages. */
static const char *cat_name(const struct run *R)
{
	return R->c.base[0] != '\0' ? R->c.base : R->c.pattern;
}

/* Catalogue chunk i opened alone (sm_catalog_open_file: its /Header), its path into path. The
 * reader then delivers that chunk's Ngroups_ThisFile groups, whatever its NumFiles says. */
static int cat_open(struct run *R, int64_t i, sm_catalog *cc, char *path, size_t len)
{
	int rc;

	memset(cc, 0, sizeof(*cc));
	if ((size_t)snprintf(path, len, R->c.pattern, (long long)i) >= len)
		return sm_error_set(R->err, SM_EOVERFLOW, "'%s': path of catalogue chunk %lld too "
				    "long", cat_name(R), (long long)i);
	if ((rc = sm_catalog_open_file(cc, path, R->err)) != 0)
		return rc;
	/* the serial reader's check of every chunk after the first, with its words */
	if (i > 0 && (rc = sm_catalog_match_chunk(&R->c, cc, path, R->err)) != 0) {
		sm_catalog_release(cc);
		return rc;
	}
	cc->ngroups_read = cc->ngroups_file0;
	return 0;
}

/*
 * Gc, the most groups any chunk delivers: the chunk headers' Ngroups_ThisFile up to the first
 * chunk whose count would take the sum past Ngroups_Total (the serial reader fails there at the
 * latest, so the passes never read it or a later chunk). Counts are not judged here: the passes
 * do it chunk by chunk as the serial reader does, so a bad catalogue gets the serial run's error.
 */
static int cat_sizes(struct run *R, uint64_t *gc)
{
	char path[SM_PATH_MAX];
	uint64_t sum = 0, ng;
	sm_catalog cc;
	int64_t i;
	int rc;

	*gc = 0;
	for (i = 0; i < R->c.nfiles; i++) {
		if ((rc = sm__pl_cancelled(R)) != 0 ||
		    (rc = cat_open(R, i, &cc, path, sizeof(path))) != 0)
			return rc;
		ng = cc.ngroups_file0;
		sm_catalog_release(&cc);
		if (ng > R->gtot - sum)
			break;
		sum += ng;
		if (ng > *gc)
			*gc = ng;
	}
	return 0;
}

/* What a pass over the catalogue does with each chunk's columns (groups [first, first + ng)). */
typedef int (*cat_fn)(struct run *R, void *ctx, uint64_t first, uint64_t ng);

/*
 * One pass over the chunk files in order, reading the columns in `mask` (1 Group_M_Crit200,
 * 2 Group_R_Crit200, 4 GroupPos) of each into the chunk arrays (gc groups each) and handing them
 * to fn: the serial reader's checks, in its order, with its messages.
 */
static int cat_pass(struct run *R, unsigned mask, uint64_t gc, cat_fn fn, void *ctx)
{
	const sm_catalog_field all[3] = {{SM_ARRAY_GROUP_M_CRIT200, SM_DTYPE_F32, 1, R->gm},
					 {SM_ARRAY_GROUP_R_CRIT200, SM_DTYPE_F32, 1, R->gr},
					 {SM_ARRAY_GROUP_POS, SM_DTYPE_F32, 3, R->gp}};
	sm_catalog_field fd[3];
	char path[SM_PATH_MAX];
	uint64_t done = 0, ng;
	size_t nf = 0, j;
	sm_catalog cc;
	int64_t i;
	int rc;

	for (j = 0; j < 3; j++)
		if (mask & (1u << j))
			fd[nf++] = all[j];
	for (i = 0; i < R->c.nfiles; i++) {
		if ((rc = sm__pl_cancelled(R)) != 0 ||
		    (rc = cat_open(R, i, &cc, path, sizeof(path))) != 0)
			return rc;
		ng = cc.ngroups_file0;
		if (ng > R->gtot - done)
			rc = sm_error_set(R->err, SM_EFORMAT,
					  "'%s': Ngroups_ThisFile of the chunks up to this one add up "
					  "to more than the %llu groups of Ngroups_Total", path,
					  (unsigned long long)R->gtot);
		else if (ng > gc)
			rc = sm_error_set(R->err, SM_EFORMAT, "'%s': Ngroups_ThisFile is %llu, more "
					  "than the %llu its header said when load_halos began", path,
					  (unsigned long long)ng, (unsigned long long)gc);
		else if (ng > 0) {
			double t0 = sm__pl_now_s();

			rc = sm_catalog_read_group_fields(&cc, fd, nf, R->err);
			sm__pl_part_since(R, SM_PROF_PART_READ, t0);
		}
		sm_catalog_release(&cc);
		if (rc == 0 && ng > 0)
			rc = fn(R, ctx, done, ng);
		if (rc != 0)
			return rc;
		done += ng;
	}
	if (done != R->gtot)
		return sm_error_set(R->err, SM_EFORMAT,
				    "'%s': Ngroups_ThisFile of the %lld chunk files add up to %llu, "
				    "but Ngroups_Total is %llu", cat_name(R), (long long)R->c.nfiles,
				    (unsigned long long)done, (unsigned long long)R->gtot);
	return 0;
}

/*
 * The selection lives in the kept tables themselves: halo_index holds the group and halo_m200
 * its Group_M_Crit200 as read (a float, widened exactly) until the selection is complete;
 * halo_r200 and halo_center receive the as-read R200 and GroupPos.
 */
struct sel {
	int64_t *idx;
	double *m, *r, *c;
	uint64_t k, n;            /* selected, and filled (or in the heap) so far */
	int by_index;             /* order: group index ascending; else the selection's order */
	int all;                  /* swaps move r and c too */
};

/* Entry a ranks before entry b: by mass, or by group index ascending. */
static int sel_before(const struct sel *S, uint64_t a, uint64_t b)
{
	if (S->by_index)
		return S->idx[a] < S->idx[b];
	return sm_model_halo_cmp(S->m[a], S->idx[a], S->m[b], S->idx[b]) < 0;
}

static void sel_swap(const struct sel *S, uint64_t a, uint64_t b)
{
	int64_t t = S->idx[a];
	double v;
	int d;

	S->idx[a] = S->idx[b];
	S->idx[b] = t;
	v = S->m[a], S->m[a] = S->m[b], S->m[b] = v;
	if (!S->all)
		return;
	v = S->r[a], S->r[a] = S->r[b], S->r[b] = v;
	for (d = 0; d < 3; d++)
		v = S->c[3 * a + d], S->c[3 * a + d] = S->c[3 * b + d], S->c[3 * b + d] = v;
}

/* Sift down in a heap of n entries whose top ranks LAST. */
static void sel_sift(const struct sel *S, uint64_t n, uint64_t i)
{
	for (;;) {
		uint64_t l = 2 * i + 1, r = l + 1, w = i;

		if (l < n && sel_before(S, w, l))
			w = l;
		if (r < n && sel_before(S, w, r))
			w = r;
		if (w == i)
			return;
		sel_swap(S, i, w);
		i = w;
	}
}

/* Orders entries [0, n) first to last, in place (heap sort: no memory). */
static void sel_sort(const struct sel *S, uint64_t n)
{
	uint64_t i;

	for (i = n / 2; i-- > 0;)
		sel_sift(S, n, i);
	for (i = n; i > 1; i--) {
		sel_swap(S, 0, i - 1);
		sel_sift(S, i - 1, 0);
	}
}

/* Pass 1 with --halos N: every group into a heap of the K best so far, the worst on top. */
static int sel_heap(struct run *R, void *ctx, uint64_t first, uint64_t ng)
{
	struct sel *S = ctx;
	uint64_t i, j;

	for (i = 0; i < ng && S->k > 0; i++) {
		int64_t gi = (int64_t)(first + i);
		double m = R->gm[i];

		if (S->n < S->k) {
			j = S->n++;
			S->idx[j] = gi;
			S->m[j] = m;
			while (j > 0 && sel_before(S, (j - 1) / 2, j)) {
				sel_swap(S, j, (j - 1) / 2);
				j = (j - 1) / 2;
			}
		} else if (sm_model_halo_cmp(m, gi, S->m[0], S->idx[0]) < 0) {
			S->idx[0] = gi;
			S->m[0] = m;
			sel_sift(S, S->k, 0);
		}
	}
	return 0;
}

static int above(const struct run *R, float m)
{
	return sm_model_halo_above(m, R->h, R->o->model.mass_min);
}

/* Pass 1 with --mass-min: K. */
static int sel_count(struct run *R, void *ctx, uint64_t first, uint64_t ng)
{
	struct sel *S = ctx;
	uint64_t i;

	(void)first;
	for (i = 0; i < ng; i++)
		S->k += above(R, R->gm[i]);
	return 0;
}

/* Pass 2: R200 of the selected groups, ascending (--mass-min: selected here, as they come). */
static int sel_r200(struct run *R, void *ctx, uint64_t first, uint64_t ng)
{
	struct sel *S = ctx;
	uint64_t i;

	for (i = 0; i < ng; i++) {
		if (R->o->model.halos >= 0) {
			if (S->n == S->k || (uint64_t)S->idx[S->n] != first + i)
				continue;
		} else {
			if (!above(R, R->gm[i]))
				continue;
			if (S->n == S->k)
				return sm_error_set(R->err, SM_EFORMAT, "'%s': more groups above "
						    "--mass-min than when load_halos counted them",
						    cat_name(R));
			S->idx[S->n] = (int64_t)(first + i);
			S->m[S->n] = R->gm[i];
		}
		S->r[S->n++] = R->gr[i];
	}
	return 0;
}

/* Pass 3: GroupPos of the selected groups, ascending. */
static int sel_pos(struct run *R, void *ctx, uint64_t first, uint64_t ng)
{
	struct sel *S = ctx;
	int d;

	for (; S->n < S->k && (uint64_t)S->idx[S->n] < first + ng; S->n++)
		for (d = 0; d < 3; d++)
			S->c[3 * S->n + d] = R->gp[3 * ((uint64_t)S->idx[S->n] - first) + d];
	return 0;
}

/*
 * Stage load_halos of the distributed run (docs/MPI.md): the serial selection (sm__pl_load_halos)
 * with the catalogue read one chunk file at a time into three arrays of Gc groups, Gc the largest
 * chunk's Ngroups_ThisFile. The chunk headers (Gc); the chunk arrays; pass 1 over the masses
 * (--halos N: K = min(N, G) known, the kept tables first and a heap of the K best in them;
 * --mass-min: K counted, then the kept tables); the selected groups in ascending order; pass 2
 * over R200 (--mass-min: the masses too, selecting); pass 3 over GroupPos; the selection ordered
 * by mass; every halo checked in that order with the serial run's messages; the chunk arrays
 * freed. The passes read every chunk's three columns in the serial reader's order (all masses,
 * all radii, all positions), so a bad catalogue fails with the serial run's error.
 * Peak 20 Gc + 48 K, live after 48 K.
 */
static int load_halos(struct dist *D)
{
	struct run *R = D->R;
	const sm_model_options *mo = &R->o->model;
	uint64_t g = R->gtot, gc = 0, k = 0, i;
	struct sel S;
	int rc;

	memset(&S, 0, sizeof(S));
	if ((rc = sm__pl_stage_begin(R, SM_STAGE_LOAD_HALOS, -1, g)) != 0)
		return rc;
	if (g > UINT64_MAX / 48)
		return sm_error_set(R->err, SM_EOVERFLOW, "'%s': Ngroups_Total %llu is too large",
				    sm__pl_cat_file(R), (unsigned long long)g);
	if (g > 0 && (rc = cat_sizes(R, &gc)) != 0)
		return rc;
	if ((rc = sm__pl_palloc(R, &R->gm, SM_ARRAY_GROUP_M_CRIT200, 4 * gc)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->gr, SM_ARRAY_GROUP_R_CRIT200, 4 * gc)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->gp, SM_ARRAY_GROUP_POS, 12 * gc)) != 0)
		return rc;
	if (mo->halos >= 0)
		k = (uint64_t)mo->halos < g ? (uint64_t)mo->halos : g;
	else if (g > 0 && (rc = cat_pass(R, 1, gc, sel_count, &S)) != 0)
		return rc;
	else
		k = S.k;
	R->k = k;
	if ((rc = sm__pl_palloc(R, &R->halo_index, SM_ARRAY_HALO_INDEX, 8 * k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->halo_center, SM_ARRAY_HALO_CENTER, 24 * k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->halo_m200, SM_ARRAY_HALO_M200, 8 * k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->halo_r200, SM_ARRAY_HALO_R200, 8 * k)) != 0)
		return rc;
	S.idx = R->halo_index;
	S.m = R->halo_m200;
	S.r = R->halo_r200;
	S.c = R->halo_center;
	S.k = k;
	S.n = 0;
	if (mo->halos >= 0 && g > 0) {
		if ((rc = cat_pass(R, 1, gc, sel_heap, &S)) != 0)
			return rc;
		S.by_index = 1;
		sel_sort(&S, k);
		S.by_index = 0;
	}
	S.n = 0;
	if (g > 0 && (rc = cat_pass(R, mo->halos >= 0 ? 2 : 3, gc, sel_r200, &S)) != 0)
		return rc;
	if (S.n != k)
		return sm_error_set(R->err, SM_EFORMAT, "'%s': %llu of the %llu selected groups "
				    "found in the chunk files", cat_name(R), (unsigned long long)S.n,
				    (unsigned long long)k);
	S.n = 0;
	if (g > 0 && (rc = cat_pass(R, 4, gc, sel_pos, &S)) != 0)
		return rc;
	S.all = 1;
	sel_sort(&S, k);
	/* The serial run's checks, in selection order, with its messages. */
	for (i = 0; i < k; i++) {
		if ((rc = sm__pl_check_halo(R, i, (uint64_t)R->halo_index[i], R->halo_m200[i],
					    R->halo_r200[i], &R->halo_center[3 * i])) != 0)
			return rc;
		R->halo_m200[i] = sm_model_m200_msun(R->halo_m200[i], R->h);
	}
	sm__pl_pfree(R, &R->gm);
	sm__pl_pfree(R, &R->gr);
	sm__pl_pfree(R, &R->gp);
	return sm__pl_halos_done(R, k);
}

/* Stage build_index: the halo index (CSR over the hg^3 halo grid). */
static int build_halo_index(struct dist *D)
{
	struct run *R = D->R;
	uint64_t k = R->k, h, c, cap, nent;
	double smax = 0;
	int rc;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_BUILD_INDEX, -1, k)) != 0)
		return rc;
	for (h = 0; h < k; h++)
		if (2.0 * R->halo_r200[h] > smax)
			smax = 2.0 * R->halo_r200[h];
	D->hg = k > 0 ? sm_model_halo_grid_side(R->box, smax) : 1;
	D->hg3 = D->hg * D->hg * D->hg;
	D->inv_w = (double)D->hg / R->box;
	R->r->grid_side = D->hg;
	cap = D->hg3 < SM_MODEL_HALO_GRID_CELLS_PER_HALO ? D->hg3
							 : SM_MODEL_HALO_GRID_CELLS_PER_HALO;
	if (k > UINT32_MAX / SM_MODEL_HALO_GRID_CELLS_PER_HALO)
		return sm_error_set(R->err, SM_EOVERFLOW, "'%s': %llu halos: too many for the "
				    "halo index", sm__pl_cat_file(R), (unsigned long long)k);
	if ((rc = sm__pl_palloc(R, &D->hg_start, SM_ARRAY_HALO_GRID_START, 4 * (D->hg3 + 1))) != 0 ||
	    (rc = sm__pl_palloc(R, &D->hg_halos, SM_ARRAY_HALO_GRID_HALOS, 4 * k * cap)) != 0)
		return rc;
	/* Counts into start[c + 1], offsets, fill with start[c] as the cursor (halos ascending),
	 * then shift back: start[c] is where cell c's list begins. */
	memset(D->hg_start, 0, 4 * (D->hg3 + 1));
	for (h = 0; h < k; h++)
		FOR_HALO_CELLS(D, h, c, D->hg_start[c + 1]++);
	for (c = 0; c < D->hg3; c++)
		D->hg_start[c + 1] += D->hg_start[c];
	nent = D->hg_start[D->hg3];
	if (nent > k * cap)
		return sm_error_set(R->err, SM_EINVAL, "pipeline: halo index holds %llu entries, "
				    "over its bound %llu", (unsigned long long)nent,
				    (unsigned long long)(k * cap));
	for (h = 0; h < k; h++)
		FOR_HALO_CELLS(D, h, c, D->hg_halos[D->hg_start[c]++] = (uint32_t)h);
	for (c = D->hg3; c > 0; c--)
		D->hg_start[c] = D->hg_start[c - 1];
	D->hg_start[0] = 0;
	sm__pl_progress(R, SM_STAGE_BUILD_INDEX, -1, k, k);
	sm__pl_stage_end(R);
	return 0;
}

/* The halo grid cell of a coordinate in [-box/2, 3 box/2), wrapped into [0, box). */
static inline uint64_t halo_axis(const struct dist *D, double x, double box)
{
	int64_t i;

	if (x < 0)
		x += box;
	else if (x >= box)
		x -= box;
	i = (int64_t)(x * D->inv_w);
	return i < 0 ? 0 : (uint64_t)i >= D->hg ? D->hg - 1 : (uint64_t)i;
}

/* Cells [0, n) of a block (global first cell `first`) into the halos' sums; SM_EFORMAT naming
 * the first bad coordinate (non-finite, or more than half a box outside, as the serial run). */
#define DEFINE_ADD_BLOCK(SUF, T)                                                                  \
	static uint64_t add_block_##SUF(struct dist *D, const T *x, const float *t, uint64_t n)   \
	{                                                                                         \
		const struct run *R = D->R;                                                       \
		const double box = R->box;                                                        \
		uint64_t i, j;                                                                    \
		for (i = 0; i < n; i++) {                                                         \
			const T *xi = x + 3 * i;                                                  \
			uint64_t c;                                                               \
			if (!(xi[0] >= -0.5 * box && xi[0] < 1.5 * box) ||                        \
			    !(xi[1] >= -0.5 * box && xi[1] < 1.5 * box) ||                        \
			    !(xi[2] >= -0.5 * box && xi[2] < 1.5 * box))                          \
				return i;                                                         \
			c = (halo_axis(D, xi[0], box) * D->hg + halo_axis(D, xi[1], box)) * D->hg + \
			    halo_axis(D, xi[2], box);                                             \
			for (j = D->hg_start[c]; j < D->hg_start[c + 1]; j++)                     \
				ADD_ONE_##SUF(D, R, D->hg_halos[j], xi, t[i]);                    \
		}                                                                                 \
		return n;                                                                         \
	}

/* float32: the serial run's float centre, box, half box and radius (sphere_scan). */
#define ADD_ONE_f32(D, R, h, xi, tf)                                                              \
	do {                                                                                      \
		const double *cd = &(R)->halo_center[3 * (h)];                                    \
		const float c3[3] = {(float)cd[0], (float)cd[1], (float)cd[2]};                   \
		const float bx = (float)(R)->box, r2 = (float)(2.0 * (R)->halo_r200[h]);          \
		float d = sm__pl_dist_f32((xi), c3, bx, bx / 2);                                  \
		if (d < r2)                                                                       \
			sm__pl_hist_add((D)->sums + (uint64_t)(h) * SM_MODEL_HISTOGRAM_BYTES,   \
					&(R)->tbins, (double)d, (R)->halo_r200[h], (tf));         \
	} while (0)

#define ADD_ONE_f64(D, R, h, xi, tf)                                                              \
	do {                                                                                      \
		const double *cd = &(R)->halo_center[3 * (h)];                                    \
		double d = sm__pl_dist_f64((xi), cd, (R)->box, (R)->box / 2);                     \
		if (d < 2.0 * (R)->halo_r200[h])                                                  \
			sm__pl_hist_add((D)->sums + (uint64_t)(h) * SM_MODEL_HISTOGRAM_BYTES,   \
					&(R)->tbins, d, (R)->halo_r200[h], (tf));                 \
	} while (0)

DEFINE_ADD_BLOCK(f32, float)
DEFINE_ADD_BLOCK(f64, double)

/* One block of chunk f: cells [local, local + n) of the file. */
static int stream_block(struct dist *D, int64_t f, uint64_t local, uint64_t n)
{
	static const char *const names[3] = {SM_ARRAY_INTERNAL_ENERGY, SM_ARRAY_ELECTRON_ABUNDANCE,
					     SM_ARRAY_STAR_FORMATION_RATE};
	struct run *R = D->R;
	float *fld[3] = {R->u, R->xe, R->sfr};
	uint64_t g = D->first[f] + local, bad;
	int rc, j;

	for (j = 0; j < 3; j++)
		if ((rc = sm__pl_read_gas(R, names[j], g, n, fld[j])) != 0)
			return rc;
	if ((rc = sm__pl_temperature_block(R, g, n, R->u, R->xe, R->sfr, R->temp)) != 0)
		return rc;
	if ((rc = sm__pl_read_positions(R, g, n, R->coords, &bad)) != 0)
		return rc;
	if (bad < n)
		return sm__pl_bad_coordinate(R, g + bad);
	bad = R->pt == SM_DTYPE_F32 ? add_block_f32(D, R->coords, R->temp, n)
				    : add_block_f64(D, R->coords, R->temp, n);
	return bad < n ? sm__pl_bad_coordinate(R, g + bad) : 0;
}

/* Stage stream_cells: this rank's chunk files, in ascending file number, block by block. */
static int stream_cells(struct dist *D)
{
	static const char *const names[3] = {SM_ARRAY_INTERNAL_ENERGY, SM_ARRAY_ELECTRON_ABUNDANCE,
					     SM_ARRAY_STAR_FORMATION_RATE};
	struct run *R = D->R;
	float **fld[3] = {&R->u, &R->xe, &R->sfr};
	uint64_t k = R->k, bytes, done = 0;
	int64_t f;
	int rc, j;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_STREAM_CELLS, -1, D->my_cells)) != 0)
		return rc;
	if (sm_mul_u64(k, SM_MODEL_HISTOGRAM_BYTES, &bytes) != 0)
		return sm_error_set(R->err, SM_EOVERFLOW, "'%s': %llu halos: profile sums do not fit "
				    "in 64 bits", sm__pl_cat_file(R), (unsigned long long)k);
	if ((rc = sm__pl_palloc(R, &D->sums, SM_ARRAY_PROFILE_SUMS, bytes)) != 0)
		return rc;
	memset(D->sums, 0, bytes);
	D->b = R->o->model.stream_block < R->n ? R->o->model.stream_block : R->n;
	if (D->b > 0) {
		for (j = 0; j < 3; j++)
			if ((rc = sm__pl_palloc(R, fld[j], names[j], 4 * D->b)) != 0)
				return rc;
		if ((rc = sm__pl_palloc(R, &R->temp, SM_ARRAY_TEMPERATURE, 4 * D->b)) != 0 ||
		    (rc = sm__pl_palloc(R, &R->coords, SM_ARRAY_COORDINATES, 3 * R->psz * D->b)) != 0)
			return rc;
		if (R->pt == SM_DTYPE_F32 &&
		    (rc = sm__pl_palloc(R, &R->iobuf, SM_ARRAY_IO_BUFFER, SM_MODEL_IO_BUFFER_BYTES)) != 0)
			return rc;
	}
	for (f = 0; f < R->s.nfiles; f++) {
		uint64_t cnt = R->s.chunk_counts[f * SM_NTYPES + 0], local;

		if (D->owner[f] != D->rank)
			continue;
		for (local = 0; local < cnt; local += D->b) {
			uint64_t n = cnt - local < D->b ? cnt - local : D->b;

			if ((rc = sm__pl_cancelled(R)) != 0 ||
			    (rc = stream_block(D, f, local, n)) != 0)
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

/* The sums over ranks into rank 0's: int64 runs exactly, temperature sums in float64. Per halo
 * the layout is counts, sf_counts (int64[100]), sums (float64[50]), hist2d (int64[3000]); a
 * halo's hist2d and the next halo's counts form one int64 run. */
static int reduce_sums(struct dist *D)
{
	const sm_pipeline_comm *C = D->comm;
	uint64_t k = D->R->k, h;
	int64_t *w = (int64_t *)(void *)D->sums;
	const size_t ci = 2 * SM_MODEL_RBINS, cs = SM_MODEL_RBINS;
	int rc;

	if (C == NULL || D->size == 1 || k == 0)
		return 0;
	for (h = 0; h < k; h++) {
		int64_t *base = w + h * HIST_I64;
		/* int64 from the previous halo's hist2d (or this halo's counts) to its sums */
		int64_t *run = h == 0 ? base : base - (HIST_I64 - ci - cs);
		size_t len = h == 0 ? ci : (HIST_I64 - ci - cs) + ci;

		if ((rc = C->sum_i64(C->ctx, run, len)) != 0 ||
		    (rc = C->sum_f64(C->ctx, (double *)(void *)(base + ci), cs)) != 0)
			return sm_error_set(D->R->err, rc, "rank %d of %d: adding the profile sums "
					    "failed: %s", D->rank, D->size, sm_strerror(rc));
	}
	rc = C->sum_i64(C->ctx, w + (k - 1) * HIST_I64 + ci + cs, HIST_I64 - ci - cs);
	if (rc != 0)
		return sm_error_set(D->R->err, rc, "rank %d of %d: adding the profile sums failed: "
				    "%s", D->rank, D->size, sm_strerror(rc));
	return 0;
}

/* The root attributes of the distributed run's profiles.hdf5. */
static int create_output(struct dist *D)
{
	struct run *R = D->R;
	const sm_model_options *mo = &R->o->model;
	sm__pl_attr a[24];
	size_t n = 0;

#define S(nm, v) (a[n].name = (nm), a[n].s = (v), n++)
#define I(nm, v) (a[n].name = (nm), a[n].s = NULL, a[n].is_int = 1, a[n].i = (int64_t)(v), n++)
#define D_(nm, v) (a[n].name = (nm), a[n].s = NULL, a[n].is_int = 0, a[n].d = (v), n++)
	memset(a, 0, sizeof(a));
	S("creator", "snapmem run 0.1.0");
	if (R->o->run_id != NULL)
		S("run_id", R->o->run_id);
	if (R->o->run_started != NULL)
		S("run_started", R->o->run_started);
	S("base_path", R->o->base_path);
	I("snap", R->o->snap);
	S(SM_OPT_POSITIONS, sm_model_positions_name(mo->positions));
	S("strategy", "distributed: chunk files over ranks, cells streamed past a halo index");
	I("mpi", 1);
	I("ranks", D->size);
	I("stream_block", mo->stream_block);
	I("halos_option", mo->halos);
	D_("mass_min_msun", mo->mass_min);
	I("halos_selected", R->k);
	I("gas_cells", R->n);
	I("groups_total", R->gtot);
	D_("box_size", R->box);
	D_("hubble_param", R->h);
	I("halo_grid_side", D->hg);
	S("selection", mo->halos >= 0 ? "the N most massive by Group_M_Crit200"
				      : "Group_M_Crit200 * 1e10 / h strictly above mass_min_msun");
	S("result", R->k == 0 ? "empty: no halo matched the selection (K = 0)"
			      : "one row per selected halo, by mass descending");
#undef S
#undef I
#undef D_
	return sm__pl_out_create(&R->out, R->o->out_dir, a, n, R->err);
}

/* Stage histogram_write: rank 0's output, the agreement before the reduction, the reduction,
 * rank 0's rows; then the sums and the index are freed. */
static int histogram_write(struct dist *D)
{
	struct run *R = D->R;
	uint64_t h;
	int rc = 0;

	rc = sm__pl_stage_begin(R, SM_STAGE_HISTOGRAM_WRITE, -1, R->k);
	if (rc == 0 && D->rank == 0)
		rc = create_output(D);
	if ((rc = agree(D, rc)) != 0)
		return rc;
	if ((rc = reduce_sums(D)) != 0)
		return rc;
	for (h = 0; h < R->k; h++) {
		unsigned char *hist = D->sums + h * SM_MODEL_HISTOGRAM_BYTES;
		const int64_t *cnt = (const int64_t *)(void *)hist;
		uint64_t s = 0;
		int b;

		for (b = 0; b < 2 * SM_MODEL_RBINS; b++)
			s += (uint64_t)cnt[b];
		R->r->halos[h].sphere_cells = s;
		if (D->rank != 0)
			continue;
		sm__pl_hist_finish(hist);
		if ((rc = sm__pl_out_append(R->out, R->halo_index[h], &R->halo_center[3 * h],
					    R->halo_r200[h], R->halo_m200[h], hist, R->err)) != 0)
			return rc;
		sm__pl_progress(R, SM_STAGE_HISTOGRAM_WRITE, -1, h + 1, R->k);
	}
	sm__pl_pfree(R, &D->sums);
	sm__pl_pfree(R, &D->hg_halos);
	sm__pl_pfree(R, &D->hg_start);
	sm__pl_stage_end(R);
	return 0;
}

static int run_stages(struct dist *D)
{
	struct run *R = D->R;
	int rc;

	rc = sm__pl_cancelled(R);
	if (rc == 0)
		rc = sm__pl_open_inputs(R);
	if (rc == 0)
		rc = assign(D);
	if (rc == 0)
		rc = load_halos(D);
	if ((rc = agree(D, rc)) != 0)
		return rc;
	rc = build_halo_index(D);
	if ((rc = agree(D, rc)) != 0)
		return rc;
	rc = stream_cells(D);
	if (rc == 0)
		rc = sm__pl_cancelled(R);
	if ((rc = agree(D, rc)) != 0)
		return rc;
	/* agree() before the reduction is inside histogram_write; a failure after it (rank 0's
	 * rows) is taken to the agreement after the write. */
	rc = histogram_write(D);
	if (rc == 0 && D->rank == 0) {
		rc = sm__pl_out_commit(R->out, R->r->profiles_path, sizeof(R->r->profiles_path),
				       R->err);
		R->out = NULL;
	}
	rc = agree(D, rc);
	if (rc != 0 && R->r->profiles_path[0] != '\0') {
		/* Rank 0 wrote the file but the run failed after all: nothing is left. */
		remove(R->r->profiles_path);
		R->r->profiles_path[0] = '\0';
	}
	return rc;
}

int sm_pipeline_run_distributed(const sm_pipeline_options *o, const sm_pipeline_comm *comm,
				sm_prof *p, sm_pipeline_result *r, sm_error *err)
{
	struct run run, *R = &run;
	struct dist dist, *D = &dist;
	int rc;

	memset(r, 0, sizeof(*r));
	r->instance = -1;
	memset(R, 0, sizeof(*R));
	memset(D, 0, sizeof(*D));
	D->R = R;
	D->comm = comm;
	D->rank = comm != NULL ? comm->rank : 0;
	D->size = comm != NULL ? comm->size : 1;
	R->o = o;
	R->p = p;
	R->r = r;
	R->err = &D->e;
	R->t0 = sm__pl_now_s();
	sm_hdf5_quiet();
	/* Checks that come out the same on every rank: no collective yet. */
	if (comm != NULL && (comm->size < 1 || comm->rank < 0 || comm->rank >= comm->size ||
			     comm->sum_i64 == NULL || comm->sum_f64 == NULL ||
			     comm->agree == NULL || comm->bcast == NULL)) {
		rc = sm_error_set(&D->e, SM_EINVAL, "pipeline: the communicator is incomplete "
				  "(rank %d of %d)", comm->rank, comm->size);
		goto out;
	}
	if (o == NULL || o->base_path == NULL || o->out_dir == NULL) {
		rc = sm_error_set(&D->e, SM_EINVAL, "pipeline: base path and output directory needed");
		goto out;
	}
	if (o->model.positions != SM_DTYPE_F32 && o->model.positions != SM_DTYPE_F64) {
		rc = sm_error_set(&D->e, SM_EINVAL, "pipeline: positions must be float32 or float64");
		goto out;
	}
	if (o->model.ranks != (uint32_t)D->size) {
		rc = sm_error_set(&D->e, SM_EINVAL, "--ranks %u: the run has %d rank%s",
				  (unsigned)o->model.ranks, D->size, D->size == 1 ? "" : "s");
		goto out;
	}
	if (o->model.select != SM_SELECT_INDEX) {
		rc = sm_error_set(&D->e, SM_EINVAL, "--select mask: does not apply with --mpi (the "
				  "distributed run finds each cell's halos through a halo index)");
		goto out;
	}
	if (o->model.temperature != SM_TEMP_IN_MEMORY) {
		rc = sm_error_set(&D->e, SM_EINVAL, "--temperature streaming: does not apply with "
				  "--mpi (the distributed run always streams its cells in blocks)");
		goto out;
	}
	if (o->model.stream_block == 0) {
		rc = sm_error_set(&D->e, SM_EINVAL, "--stream-block: must be at least 1 cell");
		goto out;
	}
	R->pt = o->model.positions;
	R->psz = sm_dtype_size(R->pt);
	sm__pl_tbin_table_init(&R->tbins);

	rc = run_stages(D);
	if (rc == 0)
		r->stage[0] = '\0';
out:
	while (R->nlive > 0) {
		void *q = R->live[R->nlive - 1].ptr;

		sm__pl_pfree(R, &q);
	}
	sm__pl_stage_end(R);
	sm__pl_out_abort(R->out);
	if (R->c_open)
		sm_catalog_release(&R->c);
	if (R->s_open)
		sm_snapshot_release(&R->s);
	free(D->owner);
	free(D->first);
	r->wall_s = sm__pl_now_s() - R->t0;
	if (rc != 0 && D->e.code == 0)
		sm_error_set(&D->e, rc, "pipeline: %s", sm_strerror(rc));
	if (err != NULL) {
		if (rc != 0)
			*err = D->e;
		else
			sm_error_clear(err);
	}
	return rc;
}
