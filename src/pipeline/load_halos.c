/*
 * Stage load_halos (step 1; docs/MODEL.md, docs/MPI.md): the group catalogue's Group_M_Crit200,
 * Group_R_Crit200 and GroupPos, the selection (strictly above --mass-min in Msun, or the --halos N
 * most massive) in the model's halo order (sm_model_halo_cmp: by mass descending, ties by lower
 * group index, NaN masses last) and the kept tables halo_index, halo_center, halo_m200, halo_r200;
 * every selected halo checked (sm__pl_check_halo) with one wording for both strategies. The serial
 * run reads the three columns whole (sm__pl_load_halos); the distributed run reads the catalogue
 * one chunk file at a time into arrays of the largest chunk's size, so that no rank ever holds the
 * whole catalogue (sm__pl_load_halos_chunked), and selects the same halos in the same order.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

int sm__pl_check_halo(struct run *R, uint64_t i, uint64_t gi, double m200, double r200,
		      double c[3])
{
	char where[SM_PATH_MAX];
	int d, rc;

	if ((rc = sm_catalog_check_halo(&R->c, gi, i, R->box, m200, r200, R->err)) != 0)
		return rc;
	if (!isfinite(c[0]) || !isfinite(c[1]) || !isfinite(c[2])) {
		sm__pl_group_location(R, gi, where, sizeof(where));
		return sm_error_set(R->err, SM_EFORMAT, "'%s': group %llu (selected halo %llu) has "
				    "a non-finite GroupPos", where, (unsigned long long)gi,
				    (unsigned long long)i);
	}
	for (d = 0; d < 3; d++) {
		double x = c[d];

		/* The same rule as for Coordinates: a centre slightly outside [0, box) is wrapped,
		 * one more than half a box out is a broken catalogue. */
		if (x < -0.5 * R->box || x >= 1.5 * R->box) {
			sm__pl_group_location(R, gi, where, sizeof(where));
			return sm_error_set(R->err, SM_EFORMAT,
					    "'%s': group %llu (selected halo %llu) has GroupPos %g, more "
					    "than half a box (BoxSize %g) outside the box", where,
					    (unsigned long long)gi, (unsigned long long)i, x, R->box);
		}
		if (x < 0 || x >= R->box)
			c[d] = x - R->box * floor(x / R->box);
	}
	return 0;
}

int sm__pl_halos_done(struct run *R, uint64_t k)
{
	uint64_t i;

	if (k > 0) {
		R->r->halos = calloc(k, sizeof(*R->r->halos));
		if (R->r->halos == NULL)
			return sm_error_set(R->err, SM_ENOMEM, "pipeline: cannot allocate the result "
					    "table of %llu halos", (unsigned long long)k);
		for (i = 0; i < k; i++) {
			sm_pipeline_halo *hh = &R->r->halos[i];

			hh->group_index = R->halo_index[i];
			hh->m200_msun = R->halo_m200[i];
			hh->r200 = R->halo_r200[i];
			memcpy(hh->center, &R->halo_center[3 * i], sizeof(hh->center));
		}
	}
	R->r->nhalos = k;
	R->r->empty = k == 0;
	sm__pl_stage_end(R);
	return 0;
}


/* Halo a ranks before halo b: the model's halo order (sm_model_halo_cmp). */
static int better(const float *m, int64_t a, int64_t b)
{
	return sm_model_halo_cmp(m[a], a, m[b], b) < 0;
}

/* Sift down in a heap whose top is the element that ranks LAST (worst first). */
static void sift_worst(const float *m, int64_t *h, uint64_t n, uint64_t i)
{
	for (;;) {
		uint64_t l = 2 * i + 1, r = l + 1, w = i;

		if (l < n && better(m, h[w], h[l]))
			w = l;
		if (r < n && better(m, h[w], h[r]))
			w = r;
		if (w == i)
			return;
		int64_t t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

/* Orders h[0..n) best first, in place: a heap sort with the worst on top moves the worst to the
 * end first. */
static void sort_best_first(const float *m, int64_t *h, uint64_t n)
{
	uint64_t i;

	for (i = n / 2; i-- > 0;)
		sift_worst(m, h, n, i);
	for (i = n; i > 1; i--) {
		int64_t t = h[0];
		h[0] = h[i - 1];
		h[i - 1] = t;
		sift_worst(m, h, i - 1, 0);
	}
}

int sm__pl_load_halos(struct run *R)
{
	const sm_model_options *mo = &R->o->model;
	uint64_t g = R->gtot, i, k = 0, b;
	double t0;
	int rc;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_LOAD_HALOS, -1, g)) != 0)
		return rc;
	if (g > UINT64_MAX / 12)
		return sm_error_set(R->err, SM_EOVERFLOW, "'%s': Ngroups_Total %llu is too large",
				    sm__pl_cat_file(R), (unsigned long long)g);
	if ((rc = sm__pl_palloc(R, &R->gm, SM_ARRAY_GROUP_M_CRIT200, 4 * g)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->gr, SM_ARRAY_GROUP_R_CRIT200, 4 * g)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->gp, SM_ARRAY_GROUP_POS, 12 * g)) != 0)
		return rc;
	t0 = sm__pl_now_s();
	if (g > 0 &&
	    ((rc = sm_catalog_read_group_field(&R->c, SM_ARRAY_GROUP_M_CRIT200, SM_DTYPE_F32, 1, R->gm,
					       R->err)) != 0 ||
	     (rc = sm_catalog_read_group_field(&R->c, SM_ARRAY_GROUP_R_CRIT200, SM_DTYPE_F32, 1, R->gr,
					       R->err)) != 0 ||
	     (rc = sm_catalog_read_group_field(&R->c, SM_ARRAY_GROUP_POS, SM_DTYPE_F32, 3, R->gp,
					       R->err)) != 0))
		return rc;
	sm__pl_part_since(R, SM_PROF_PART_READ, t0);
	if (mo->halos >= 0) {
		k = (uint64_t)mo->halos < g ? (uint64_t)mo->halos : g;
	} else {
		for (i = 0; i < g; i++)
			k += sm_model_halo_above(R->gm[i], R->h, mo->mass_min);
	}
	R->k = k;
	if ((rc = sm__pl_palloc(R, &R->halo_index, SM_ARRAY_HALO_INDEX, 8 * k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->halo_center, SM_ARRAY_HALO_CENTER, 24 * k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->halo_m200, SM_ARRAY_HALO_M200, 8 * k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->halo_r200, SM_ARRAY_HALO_R200, 8 * k)) != 0)
		return rc;
	if (mo->halos >= 0) {
		/* The k best of g: a bounded heap with the worst kept on top. */
		uint64_t n = 0;

		for (i = 0; i < g && k > 0; i++) {
			if (n < k) {
				uint64_t j = n++;

				R->halo_index[j] = (int64_t)i;
				while (j > 0 && better(R->gm, R->halo_index[(j - 1) / 2],
						       R->halo_index[j])) {
					int64_t t = R->halo_index[j];
					R->halo_index[j] = R->halo_index[(j - 1) / 2];
					R->halo_index[(j - 1) / 2] = t;
					j = (j - 1) / 2;
				}
			} else if (better(R->gm, (int64_t)i, R->halo_index[0])) {
				R->halo_index[0] = (int64_t)i;
				sift_worst(R->gm, R->halo_index, n, 0);
			}
		}
	} else {
		for (i = 0, b = 0; i < g; i++)
			if (sm_model_halo_above(R->gm[i], R->h, mo->mass_min))
				R->halo_index[b++] = (int64_t)i;
	}
	sort_best_first(R->gm, R->halo_index, k);
	for (i = 0; i < k; i++) {
		uint64_t gi = (uint64_t)R->halo_index[i];
		double *c = &R->halo_center[3 * i];
		int d;

		for (d = 0; d < 3; d++)
			c[d] = R->gp[3 * gi + d];
		if ((rc = sm__pl_check_halo(R, i, gi, R->gm[gi], R->gr[gi], c)) != 0)
			return rc;
		R->halo_m200[i] = sm_model_m200_msun(R->gm[gi], R->h);
		R->halo_r200[i] = R->gr[gi];
	}
	sm__pl_pfree(R, &R->gm);
	sm__pl_pfree(R, &R->gr);
	sm__pl_pfree(R, &R->gp);
	return sm__pl_halos_done(R, k);
}

/* ---- the distributed run: the catalogue chunk by chunk ------------------------------------------- */

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
int sm__pl_load_halos_chunked(struct run *R)
{
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
