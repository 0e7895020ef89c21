/*
 * Mock TNG-layout snapshots and group catalogues with known content, for tests, demos and
 * benchmarks. Files are laid out and typed exactly as AREPO writes them (see
 * tests/data/README.md), readable unchanged by illustris_python's loadSubset/loadHalos:
 *   OUT/snapdir_XXX/snap_XXX.N.hdf5 and OUT/groups_XXX/fof_subhalo_tab_XXX.N.hdf5.
 *
 * Content: `halos` halos above 1e14 Msun (M200c * 1e10 / h) with gas concentrated inside 2 R200,
 * a temperature falling with radius, star-forming cells in their cores, some halos straddling the
 * periodic boundary; smaller halos below the cut; a uniform background; dark matter (PartType1
 * Coordinates and ParticleIDs, uniform in the box, MassTable[1] set) in every chunk; some snapshot
 * chunks without gas; one empty group chunk; an unsorted catalogue. The same options give the same
 * bytes.
 */
#ifndef SNAPMEM_MOCK_H
#define SNAPMEM_MOCK_H

#include <stdint.h>

#include "snapmem/error.h"

typedef struct sm_mock_options {
	uint64_t gas;          /* gas cells (default 1,000,000) */
	uint32_t halos;        /* halos above 1e14 Msun (default 30) */
	uint32_t small_halos;  /* halos below the cut (default halos) */
	uint32_t files;        /* snapshot chunk files (default 8); the catalogue gets max(2, files/2) */
	uint64_t seed;         /* default 1 */
	int snap;              /* default 99 */
	double box_size;       /* ckpc/h (default 75000) */
	int header_only;       /* write headers alone (no particle datasets), with gas_total cells */
	uint64_t gas_total;    /* with header_only: the total, may exceed 2^32 (HighWord set) */
	uint64_t dm;           /* dark-matter particles (PartType1), spread evenly over the chunks;
	                        * 0 (the default): gas / 16 + files, which keeps earlier mocks' bytes */
} sm_mock_options;

void sm_mock_options_init(sm_mock_options *o);

/*
 * Writes the snapshot and catalogue under outdir (created when missing; existing mock files of the
 * same snapshot number are replaced, other files left alone). Each file is written under a
 * temporary name and renamed. Returns 0 or SM_EINVAL / SM_EIO / SM_ENOMEM.
 */
int sm_mock_write(const char *outdir, const sm_mock_options *o, sm_error *err);

#endif
