/*
 * benchmark-read: the floor under `snapmem run` — the time to read the four fields the pipeline
 * needs (InternalEnergy, ElectronAbundance, StarFormationRate as float32, Coordinates converted to
 * float32 through a 1 MiB buffer as the pipeline does, or kept float64) from a snapshot already in
 * the page cache into memory with the snapshot reader, with nothing else done: each field into its
 * own fresh buffer, as any program that then uses the four fields must hold them (the buffers are
 * allocated per repeat and freed after it). The reader takes its fast path where it can;
 * SNAPMEM_FASTREAD=0 measures HDF5's own read. `--reuse` reads the
 * three gas fields into one buffer instead (what earlier versions measured: two of the fields are
 * overwritten, so it is not a floor for a program that needs them; kept for comparison).
 * `make bench` compares the full run's time against the default.
 *
 * Usage: benchmark-read BASE SNAP [float32|float64] [REPEATS] [--reuse]
 * Prints one JSON line: {"gas_cells":N,"positions":"float32","buffers":"separate","seconds":[...],
 * "median_s":x}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "snapmem/model.h"
#include "snapmem/snapshot.h"

int main(int argc, char **argv)
{
	static const char *const fields[] = {"InternalEnergy", "ElectronAbundance", "StarFormationRate"};
	sm_snapshot s;
	sm_error err;
	sm_dtype pos = SM_DTYPE_F32;
	int repeats = 3, r, f, rc = 2, reuse = 0;
	double *secs = NULL;
	void *buf[3] = {NULL, NULL, NULL}, *coords = NULL;
	static unsigned char tconv[1 << 20];
	sm_io_buffer iob = {tconv, sizeof(tconv)};
	uint64_t n;

	memset(&s, 0, sizeof(s));
	sm_error_clear(&err);
	if (argc < 3) {
		fprintf(stderr, "usage: benchmark-read BASE SNAP [float32|float64] [REPEATS]\n");
		return 2;
	}
	if (argc > 3) /* anything but the two positions' names: float32 */
		(void)sm_model_positions_parse(argv[3], &pos);
	if (argc > 4)
		repeats = atoi(argv[4]) > 0 ? atoi(argv[4]) : 1;
	if (argc > 5 && strcmp(argv[5], "--reuse") == 0)
		reuse = 1;
	if (sm_snapshot_open_base(&s, argv[1], atoi(argv[2]), &err) != 0 ||
	    sm_snapshot_scan(&s, &err) != 0)
		goto out;
	n = s.header.npart_total[0];
	secs = calloc((size_t)repeats, sizeof(*secs));
	if (secs == NULL) {
		sm_error_set(&err, SM_ENOMEM, "cannot allocate the timing table");
		goto out;
	}
	for (r = 0; r < repeats; r++) {
		double t0 = bench_now();

		for (f = 0; f < 3; f++) {
			buf[f] = reuse && f > 0 ? NULL : malloc(n * 4 > 0 ? n * 4 : 1);
			if (buf[f] == NULL && !(reuse && f > 0)) {
				sm_error_set(&err, SM_ENOMEM, "cannot allocate the read buffers");
				goto out;
			}
		}
		coords = malloc(n * 3 * sm_dtype_size(pos) > 0 ? n * 3 * sm_dtype_size(pos) : 1);
		if (coords == NULL) {
			sm_error_set(&err, SM_ENOMEM, "cannot allocate the read buffers");
			goto out;
		}
		for (f = 0; f < 3; f++)
			if (sm_snapshot_read_field(&s, 0, fields[f], SM_DTYPE_F32, 1,
						   buf[reuse ? 0 : f], NULL, &err) != 0)
				goto out;
		if (sm_snapshot_read_field(&s, 0, "Coordinates", pos, 3, coords,
					   pos == SM_DTYPE_F32 ? &iob : NULL, &err) != 0)
			goto out;
		secs[r] = bench_now() - t0;
		for (f = 0; f < 3; f++) {
			free(buf[f]);
			buf[f] = NULL;
		}
		free(coords);
		coords = NULL;
	}
	printf("{\"gas_cells\":%llu,\"positions\":\"%s\",\"buffers\":\"%s\",\"seconds\":[",
	       (unsigned long long)n, sm_dtype_name(pos), reuse ? "reused" : "separate");
	for (r = 0; r < repeats; r++)
		printf("%s%.6f", r ? "," : "", secs[r]);
	qsort(secs, (size_t)repeats, sizeof(*secs), bench_cmp_double);
	printf("],\"median_s\":%.6f}\n", secs[repeats / 2]);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "benchmark-read: %s\n", err.msg);
	free(secs);
	for (f = 0; f < 3; f++)
		free(buf[f]);
	free(coords);
	sm_snapshot_release(&s);
	return rc;
}
