/*
 * The timeline: a sampler thread that records jemalloc's stats.allocated (after an epoch write)
 * and the resident set (VmRSS from /proc/self/statm, kept open and read with pread into a stack
 * buffer) at a set rate into arrays mapped before the thread starts. The thread allocates nothing
 * after start.
 * When the arrays are full, every other sample is dropped and the period doubles, so the memory is
 * bounded and the whole run stays covered. The sampler also keeps, for each open stage depth, the
 * highest allocated figure seen since that stage began: other threads' allocations enter the stage
 * peaks through it (see docs/PROFILER.md).
 */
#include "common/parallel.h"
#include "profiler/prof-internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* The sampler's stack: its frames are small, but glibc carves the static TLS of every library
 * out of a thread's stack, and the sanitizers' is large (128 KiB made LeakSanitizer's tracer
 * crash at exit under make sanitize). */
#ifdef SM_NO_JEMALLOC
#define TIMELINE_STACK_BYTES (1024u * 1024u)
#else
#define TIMELINE_STACK_BYTES (256u * 1024u)
#endif

static void add_seconds(struct timespec *ts, double s)
{
	long ns = (long)((s - (double)(long)s) * 1e9);
	ts->tv_sec += (time_t)s;
	ts->tv_nsec += ns;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void thin(sm__timeline *tl)
{
	size_t k = 0;
	for (size_t i = 0; i < tl->n; i += 2, k++) {
		tl->t[k] = tl->t[i];
		tl->allocated[k] = tl->allocated[i];
		tl->resident[k] = tl->resident[i];
	}
	tl->n = k;
	tl->period *= 2;
}

static void *run(void *arg)
{
	sm__timeline *tl = arg;
	*sm__guard() = 1; /* nothing this thread does is an allocation site of the host */
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&tl->mu);
	while (!tl->stop) {
		pthread_mutex_unlock(&tl->mu);
		uint64_t a = 0, r = 0, oa = 0, od = 0;
		uint64_t gen = __atomic_load_n(&sm__sample_gen, __ATOMIC_RELAXED);
		uint64_t ll = sm__large_live(); /* large.c's blocks, any thread's */
		int ok = 0, own = tl->own_alloc != NULL && tl->own_dealloc != NULL;
		if (own) {
			oa = __atomic_load_n(tl->own_alloc, __ATOMIC_RELAXED);
			od = __atomic_load_n(tl->own_dealloc, __ATOMIC_RELAXED);
		}
		if (__atomic_load_n(&tl->no_stats, __ATOMIC_ACQUIRE)) {
			ok = 0;
		} else if (own && tl->have_last && oa == tl->last_oa && od == tl->last_od &&
			   gen == tl->last_gen && ll == tl->last_ll && tl->stale < SM__TL_REUSE) {
			/* nothing the statistics would show moved: the driving thread neither
			 * allocated nor freed, no other thread's block was sampled, no large
			 * block came or went */
			a = tl->last_a;
			r = tl->last_r;
			tl->stale++;
			ok = 1;
		} else {
			ok = sm__je_read_allocated(&a, &r) == 0;
			tl->fresh_reads++;
			tl->have_last = ok && own;
			tl->stale = 0;
			tl->last_a = a;
			tl->last_r = r;
			tl->last_oa = oa;
			tl->last_od = od;
			tl->last_gen = gen;
			tl->last_ll = ll;
		}
		uint64_t rss = sm__proc_statm_rss(&tl->statm);
		double t = sm__now() - tl->t0;
		pthread_mutex_lock(&tl->mu);
		if (tl->n == tl->cap)
			thin(tl);
		if (tl->n < tl->cap) {
			tl->t[tl->n] = t;
			tl->allocated[tl->n] = ok ? a : 0;
			tl->resident[tl->n] = rss;
			tl->n++;
		}
		if (ok)
			for (int d = 0; d < tl->open_depth && d < SM__TL_DEPTH; d++)
				if (a > tl->depth_max[d])
					tl->depth_max[d] = a;
		struct timespec cpu;
		if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
			tl->cpu_s = (double)cpu.tv_sec + (double)cpu.tv_nsec * 1e-9;
		tl->ticks++;
		add_seconds(&next, tl->period);
		while (!tl->stop) {
			int rc = pthread_cond_timedwait(&tl->cv, &tl->mu, &next);
			if (rc == ETIMEDOUT)
				break;
		}
	}
	pthread_mutex_unlock(&tl->mu);
	return NULL;
}

int sm__timeline_start(sm__timeline *tl, double hz, size_t cap, double t0,
		       const uint64_t *own_alloc, const uint64_t *own_dealloc)
{
	memset(tl, 0, sizeof(*tl));
	tl->own_alloc = own_alloc;
	tl->own_dealloc = own_dealloc;
	if (cap < 2)
		cap = 2;
	size_t bytes = cap * (sizeof(double) + 2 * sizeof(uint64_t));
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	tl->t = m;
	tl->allocated = (uint64_t *)((char *)m + cap * sizeof(double));
	tl->resident = tl->allocated + cap;
	tl->cap = cap;
	tl->map_bytes = bytes;
	tl->period = 1.0 / hz;
	tl->t0 = t0;
	sm__procfd_open(&tl->statm, "/proc/self/statm");
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&tl->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&tl->mu, NULL);
	/* A small stack: the sampler's frames are a few hundred bytes, and under `ulimit -v` the
	 * default (RLIMIT_STACK, 8 MiB) would be address space taken from the run. Every signal is
	 * blocked in the sampler: a SIGTERM taken by this thread while the exit path wrote the
	 * document ended the process before the document was whole. */
	int crc = sm__thread_start(&tl->thread, TIMELINE_STACK_BYTES, run, tl);
	if (crc != 0) {
		sm__procfd_close(&tl->statm);
		pthread_cond_destroy(&tl->cv);
		pthread_mutex_destroy(&tl->mu);
		munmap(m, bytes);
		memset(tl, 0, sizeof(*tl));
		return -1;
	}
	tl->running = 1;
	return 0;
}

void sm__timeline_stop(sm__timeline *tl)
{
	if (!tl->running)
		return;
	pthread_mutex_lock(&tl->mu);
	tl->stop = 1;
	pthread_cond_signal(&tl->cv);
	pthread_mutex_unlock(&tl->mu);
	pthread_join(tl->thread, NULL);
	tl->running = 0;
}

void sm__timeline_release(sm__timeline *tl)
{
	sm__timeline_stop(tl);
	if (tl->t) {
		sm__procfd_close(&tl->statm);
		pthread_cond_destroy(&tl->cv);
		pthread_mutex_destroy(&tl->mu);
		munmap(tl->t, tl->map_bytes);
	}
	memset(tl, 0, sizeof(*tl));
}

void sm__timeline_enter(sm__timeline *tl, int depth)
{
	if (!tl->t)
		return;
	pthread_mutex_lock(&tl->mu);
	if (depth < SM__TL_DEPTH)
		tl->depth_max[depth] = 0;
	tl->open_depth = depth + 1;
	pthread_mutex_unlock(&tl->mu);
}

uint64_t sm__timeline_leave(sm__timeline *tl, int depth)
{
	if (!tl->t)
		return 0;
	pthread_mutex_lock(&tl->mu);
	uint64_t v = depth < SM__TL_DEPTH ? tl->depth_max[depth] : 0;
	tl->open_depth = depth;
	pthread_mutex_unlock(&tl->mu);
	return v;
}
