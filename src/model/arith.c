/*
 * The model contract's arithmetic (include/snapmem/model.h): what the estimator predicts with and
 * the pipeline runs with, computed once so that the two cannot disagree: the serial run's grid
 * side, the distributed run's halo grid side, the chunk files' assignment to ranks, the halo
 * order and mass cut of load_halos, and the pages an array asked for huge pages is resident in.
 */
#include <math.h>
#include <stdlib.h>

#include "snapmem/model.h"
#include "snapmem/units.h"

uint64_t sm_model_grid_side(uint64_t n)
{
	uint64_t g = 1;

	while (g < SM_MODEL_GRID_MAX_SIDE &&
	       (g + 1) * (g + 1) * (g + 1) * SM_MODEL_GRID_CELLS_PER_CELL <= n)
		g++;
	return g;
}

uint64_t sm_model_huge_extent(uint64_t touched, uint64_t usable)
{
	uint64_t tail = touched % SM_MODEL_HUGE_PAGE_BYTES;

	if (touched < SM_MODEL_HUGE_PAGE_BYTES || tail < SM_MODEL_HUGE_TAIL_MIN_BYTES ||
	    usable < touched || usable - touched < SM_MODEL_HUGE_PAGE_BYTES - tail)
		return touched;
	return touched + (SM_MODEL_HUGE_PAGE_BYTES - tail);
}

uint64_t sm_model_halo_grid_side(double box, double s_max)
{
	double q;

	if (!isfinite(box) || !(box > 0) || !isfinite(s_max) || !(s_max > 0))
		return 1;
	q = floor(box / (2.0 * (s_max + SM_MODEL_HALO_GRID_MARGIN * box)));
	if (!(q >= 1))
		return 1;
	if (q >= SM_MODEL_HALO_GRID_MAX_SIDE)
		return SM_MODEL_HALO_GRID_MAX_SIDE;
	return (uint64_t)q;
}

/* ---- the work split ---------------------------------------------------------------------------- */

/* Min-heap of ranks by (cells, rank): the least-loaded rank, ties to the lowest, on top. */
static int rank_before(const uint64_t *load, uint32_t a, uint32_t b)
{
	return load[a] != load[b] ? load[a] < load[b] : a < b;
}

static void sift_down(uint32_t *heap, uint32_t n, const uint64_t *load, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i, t;

		if (l < n && rank_before(load, heap[l], heap[m]))
			m = l;
		if (r < n && rank_before(load, heap[r], heap[m]))
			m = r;
		if (m == i)
			return;
		t = heap[i];
		heap[i] = heap[m];
		heap[m] = t;
		i = m;
	}
}

struct file_cells {
	uint64_t cells;
	size_t file;
};

static int by_cells_desc(const void *x, const void *y)
{
	const struct file_cells *a = x, *b = y;

	if (a->cells != b->cells)
		return a->cells > b->cells ? -1 : 1;
	return a->file < b->file ? -1 : a->file > b->file;
}

int sm_model_assign_chunks(const uint64_t *cells, size_t nfiles, uint32_t ranks,
			   uint64_t *rank_cells, int32_t *file_rank, sm_error *err)
{
	struct file_cells *fc = NULL;
	uint32_t *heap = NULL, r;
	uint64_t *load = rank_cells;
	size_t i, nf = 0;
	int rc = 0;

	if (ranks == 0)
		return sm_error_set(err, SM_EINVAL, "chunk assignment: needs at least 1 rank");
	if (nfiles > (size_t)INT32_MAX || (nfiles > 0 && cells == NULL))
		return sm_error_set(err, SM_EINVAL, "chunk assignment: %zu chunk files: cannot "
				    "assign", nfiles);
	fc = malloc((nfiles > 0 ? nfiles : 1) * sizeof(*fc));
	heap = malloc((size_t)ranks * sizeof(*heap));
	if (load == NULL)
		load = malloc((size_t)ranks * sizeof(*load));
	if (fc == NULL || heap == NULL || load == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "chunk assignment: cannot assign %zu chunk files "
				  "to %u ranks", nfiles, ranks);
		goto out;
	}
	for (i = 0; i < nfiles; i++) {
		if (file_rank != NULL)
			file_rank[i] = -1;
		if (cells[i] == 0)
			continue;
		fc[nf].cells = cells[i];
		fc[nf].file = i;
		nf++;
	}
	qsort(fc, nf, sizeof(*fc), by_cells_desc);
	for (r = 0; r < ranks; r++) {
		load[r] = 0;
		heap[r] = r;  /* all loads 0, ascending rank: already a heap */
	}
	for (i = 0; i < nf; i++) {
		uint32_t top = heap[0];

		if (sm_add_u64(load[top], fc[i].cells, &load[top]) != 0) {
			rc = sm_error_set(err, SM_EOVERFLOW, "chunk assignment: the cells of rank %u "
					  "do not fit in 64 bits", top);
			goto out;
		}
		if (file_rank != NULL)
			file_rank[fc[i].file] = (int32_t)top;
		sift_down(heap, ranks, load, 0);
	}
out:
	if (load != rank_cells)
		free(load);
	free(heap);
	free(fc);
	return rc;
}

/* ---- the halo order and the mass cut ------------------------------------------------------------ */

int sm_model_halo_cmp(double ma, int64_t ia, double mb, int64_t ib)
{
	int an = isnan(ma), bn = isnan(mb);

	if (an != bn)
		return an ? 1 : -1;
	if (!an && ma != mb)
		return ma > mb ? -1 : 1;
	return ia < ib ? -1 : ia > ib;
}

double sm_model_m200_msun(double m, double h)
{
	return m * 1e10 / h;
}

int sm_model_halo_above(double m, double h, double mass_min)
{
	return sm_model_m200_msun(m, h) > mass_min;
}
