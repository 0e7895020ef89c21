/*
 * large: a plain program (nothing of snapmem linked) for test-profile's large blocks, which
 * `snapmem profile` has glibc serve (src/profiler/large.c). Every allocation entry point with a
 * request of 128 KiB or more, each block's content checked through realloc's moves (large to
 * large, large to small, small to large, realloc to 0), calloc's zeroes, the alignments asked for,
 * malloc_usable_size, and two threads doing the same at once. Exit 0 when all held, 1 with one
 * line on stderr naming the first that did not.
 *
 * Its peak, for the test: at one moment a calloc'd 5 MiB + 1 block, a posix_memalign'd 2 MiB + 1
 * block (64 KiB alignment) and a 33 MiB + 1 temporary (transient(), freed at once) are live:
 * 40 MiB + 3 bytes requested. jemalloc's size classes would make that 6 + 2.5 + 40 = 48.5 MiB;
 * glibc's pages, 40 MiB and a few KiB. At exit a 3 MiB + 4 KiB block from leak_large() is still live.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what)
{
	fprintf(stderr, "large: %s\n", what);
	exit(1);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 4093)
		p[i] = (unsigned char)(seed + i / 4093);
	p[n - 1] = (unsigned char)seed;
}

static int same(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 4093)
		if (p[i] != (unsigned char)(seed + i / 4093))
			return 0;
	return 1;
}

static int zeroed(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 512)
		if (p[i])
			return 0;
	return p[n - 1] == 0;
}

__attribute__((noinline, noclone)) static void transient(size_t n)
{
	unsigned char *volatile t = malloc(n);
	if (!t)
		fail("malloc of the temporary");
	t[0] = 3; /* microseconds: no timeline tick sees it, only the thread's peak */
	free(t);
}

__attribute__((noinline, noclone)) static void *leak_large(void)
{
	void *p = aligned_alloc(4096, (3u << 20) + 4096);
	if (p)
		memset(p, 9, (3u << 20) + 4096);
	return p;
}

static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (int i = 0; i < 200; i++) {
		size_t n = (128u << 10) + (size_t)((i * 7919 + seed) % (900u << 10));
		unsigned char *p = (i & 1) ? malloc(n) : calloc(1, n);
		if (!p)
			fail("malloc in a thread");
		if (!(i & 1) && !zeroed(p, n))
			fail("calloc in a thread not zeroed");
		fill(p, n, seed + (unsigned)i);
		p = realloc(p, n + (256u << 10));
		if (!p || !same(p, n, seed + (unsigned)i))
			fail("realloc in a thread lost the content");
		free(p);
	}
	return NULL;
}

int main(void)
{
	const size_t mib = 1u << 20;

	/* the peak: 5 MiB + 1 (calloc), 2 MiB + 1 (posix_memalign 64 KiB), 33 MiB + 1 (temporary) */
	unsigned char *a = calloc(5 * mib + 1, 1);
	if (!a || !zeroed(a, 5 * mib + 1))
		fail("calloc of 5 MiB + 1 not zeroed");
	memset(a, 1, 5 * mib + 1);
	void *b = NULL;
	if (posix_memalign(&b, 64u << 10, 2 * mib + 1) != 0 || ((uintptr_t)b & 0xffff) != 0)
		fail("posix_memalign of 2 MiB + 1 at 64 KiB");
	memset(b, 2, 2 * mib + 1);
	transient(33 * mib + 1);
	if (malloc_usable_size(a) < 5 * mib + 1 || malloc_usable_size(b) < 2 * mib + 1)
		fail("malloc_usable_size below the request");

	/* realloc: large to larger (content kept), to small (jemalloc), small to large, to 0 */
	fill(a, 5 * mib + 1, 11);
	a = realloc(a, 9 * mib);
	if (!a || !same(a, 5 * mib + 1, 11))
		fail("realloc 5 MiB + 1 -> 9 MiB lost the content");
	a = realloc(a, 1000);
	if (!a || a[0] != 11 || a[999] != 1)
		fail("realloc 9 MiB -> 1000 B lost the content");
	memset(a + 900, 5, 100);
	a = realloc(a, 3 * mib);
	if (!a || a[0] != 11 || a[950] != 5)
		fail("realloc 1000 B -> 3 MiB lost the content");
	if (realloc(a, 0) != NULL)
		fail("realloc(p, 0) of a large block did not free it");

	/* the aligned entry points, at and above a page */
	void *c = aligned_alloc(4096, mib);
	void *d = memalign(2 * mib, 3 * mib);
	void *e = valloc(mib + 1);
	if (!c || ((uintptr_t)c & 4095) || !d || ((uintptr_t)d & (2 * mib - 1)) || !e ||
	    ((uintptr_t)e & 4095))
		fail("aligned_alloc, memalign or valloc misaligned");
	memset(c, 4, mib);
	memset(d, 4, 3 * mib);
	memset(e, 4, mib + 1);
	free(c);
	free(d);
	free(e);
	free(b);

	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)) != 0)
			fail("pthread_create");
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);

	if (!leak_large())
		fail("aligned_alloc of the leak");
	return 0;
}
