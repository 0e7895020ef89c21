/*
 * allocloop: the allocation-heavy loop of bench/benchmark-alloc as a plain program (nothing of
 * snapmem linked), so that `snapmem profile` can be measured on a program it has never seen:
 * PAIRS (default 5,000,000) malloc/free pairs of 16..528 bytes over 256 slots. Prints one JSON
 * line: pairs, the loop's seconds and VmHWM. Used by scripts/bench-profile.sh.
 *
 *   allocloop [PAIRS]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned long long vm_hwm(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long kb = 0;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtoull(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb * 1024;
}

int main(int argc, char **argv)
{
	unsigned long long pairs = argc > 1 ? strtoull(argv[1], NULL, 10) : 5000000ull;
	void *slot[256] = { 0 };
	uint64_t x = 88172645463325252ull;
	double t0 = now();
	for (unsigned long long i = 0; i < pairs; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		unsigned s = (unsigned)(x & 255);
		free(slot[s]);
		slot[s] = malloc(16 + (size_t)((x >> 8) % 513));
		if (!slot[s])
			return 3;
		*(volatile char *)slot[s] = 1;
	}
	double t = now() - t0;
	for (int s = 0; s < 256; s++)
		free(slot[s]);
	printf("{\"pairs\": %llu, \"seconds\": %.6f, \"vm_hwm\": %llu}\n", pairs, t, vm_hwm());
	return 0;
}
