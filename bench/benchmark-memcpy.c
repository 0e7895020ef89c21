/*
 * benchmark-memcpy: the memory-bandwidth yardstick for the temperature kernel. Copies BYTES bytes
 * (the kernel's traffic: three float32 fields in, one float32 out = 16 bytes per cell) between two
 * buffers that were touched beforehand, REPEATS times, and prints one JSON line with the median.
 *
 *   benchmark-memcpy BYTES [REPEATS]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

int main(int argc, char **argv)
{
	size_t bytes, half;
	int repeats = 5, r, rc = 2;
	char *src = NULL, *dst = NULL;
	double *secs = NULL;

	if (argc < 2 || (bytes = strtoull(argv[1], NULL, 10)) < 2) {
		fprintf(stderr, "usage: benchmark-memcpy BYTES [REPEATS]\n");
		return 2;
	}
	if (argc > 2 && atoi(argv[2]) > 0)
		repeats = atoi(argv[2]);
	/* read half the bytes and write half: a kernel reading 12 B and writing 4 B per cell moves
	 * 16 B; a copy of B/2 bytes moves B (read + write). */
	half = bytes / 2;
	src = malloc(half);
	dst = malloc(half);
	secs = calloc((size_t)repeats, sizeof(*secs));
	if (src == NULL || dst == NULL || secs == NULL) {
		fprintf(stderr, "benchmark-memcpy: cannot allocate %zu bytes\n", bytes);
		goto out;
	}
	memset(src, 1, half);
	memset(dst, 2, half);
	for (r = 0; r < repeats; r++) {
		double t0 = bench_now();

		memcpy(dst, src, half);
		secs[r] = bench_now() - t0;
	}
	qsort(secs, (size_t)repeats, sizeof(*secs), bench_cmp_double);
	printf("{\"bytes_moved\":%zu,\"median_s\":%.6f,\"gib_per_s\":%.3f,\"check\":%d}\n", 2 * half,
	       secs[repeats / 2], (double)(2 * half) / secs[repeats / 2] / 1073741824.0, dst[half - 1]);
	rc = 0;
out:
	free(src);
	free(dst);
	free(secs);
	return rc;
}
