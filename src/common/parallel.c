/*
 * The library's worker threads (the pipeline's kernels, the snapshot reader's fast path):
 * sm__parallel runs one function as `parts` parts at once, the calling thread doing part 0 and
 * short-lived pthreads the others.
 *
 * Contract, from docs/PROFILER.md's thread rule: the functions run here never allocate (the
 * profiler measures the calling thread's allocations exactly and other threads' only at stage
 * boundaries and timeline ticks), so everything a part needs is in its argument or on its stack.
 * Thread creation itself happens on the calling thread (glibc maps the stacks with mmap and
 * allocates a few hundred bytes of TLS bookkeeping there); a part whose thread cannot be started
 * is run by the calling thread afterwards, so the result never depends on how many threads ran.
 * The number of parts is the CPUs this process may use (sched_getaffinity), at most
 * SM__MAX_THREADS; SNAPMEM_THREADS=N overrides it (1 = no threads).
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "common/parallel.h"

#define WORKER_STACK_BYTES (1024u * 1024u)

struct part {
	sm__part_fn fn;
	void *arg;
	unsigned part, parts;
};

static void *part_main(void *a)
{
	struct part *p = a;

	p->fn(p->arg, p->part, p->parts);
	return NULL;
}

unsigned sm__threads(void)
{
	static unsigned cached;
	const char *e;
	unsigned n = 1;

	if (cached != 0)
		return cached;
	e = getenv("SNAPMEM_THREADS");
	if (e != NULL && *e != '\0') {
		char *end;
		unsigned long v = strtoul(e, &end, 10);

		n = *end == '\0' && v >= 1 ? (unsigned)(v < SM__MAX_THREADS ? v : SM__MAX_THREADS)
					   : 1;
	} else {
		cpu_set_t set;

		CPU_ZERO(&set);
		if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
			n = (unsigned)CPU_COUNT(&set);
		if (n > SM__MAX_THREADS)
			n = SM__MAX_THREADS;
	}
	cached = n;
	return n;
}

void sm__parallel(sm__part_fn fn, void *arg, unsigned parts)
{
	pthread_t th[SM__MAX_THREADS];
	struct part ps[SM__MAX_THREADS];
	int started[SM__MAX_THREADS] = {0};
	pthread_attr_t attr;
	int attr_ok;
	unsigned t;

	if (parts < 1)
		parts = 1;
	if (parts > SM__MAX_THREADS)
		parts = SM__MAX_THREADS;
	attr_ok = parts > 1 && pthread_attr_init(&attr) == 0;
	if (attr_ok)
		pthread_attr_setstacksize(&attr, WORKER_STACK_BYTES);
	for (t = 1; t < parts; t++) {
		ps[t].fn = fn;
		ps[t].arg = arg;
		ps[t].part = t;
		ps[t].parts = parts;
		started[t] = attr_ok && pthread_create(&th[t], &attr, part_main, &ps[t]) == 0;
	}
	if (attr_ok)
		pthread_attr_destroy(&attr);
	fn(arg, 0, parts);
	for (t = 1; t < parts; t++)
		if (!started[t])
			fn(arg, t, parts);
	for (t = 1; t < parts; t++)
		if (started[t])
			pthread_join(th[t], NULL);
}
