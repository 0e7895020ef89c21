/*
 * The library's worker threads (the pipeline's kernels, the snapshot reader's fast path):
 * sm__parallel runs one function as `parts` parts at once, the calling thread doing part 0 and
 * worker threads the others.
 *
 * The workers are a pool: started on the first call that wants them (on the calling thread),
 * then kept, each waiting on a condition variable for the next job, so that a call costs a wake-up
 * and a wait (a few microseconds) instead of creating and joining threads (about 70 us a call
 * here, which the per-halo steps of a large run pay hundreds of times). Where a caller says its
 * jobs come back to back (sm__parallel_spin: the distributed run's stream_cells, one to three
 * parallel sections a block; the serial run's halo stages, up to five short sections a halo) and
 * every part has a CPU of its own, a worker that finished its part, and a caller waiting for its
 * workers, first spin (up to 100 us, SPIN_NS) before sleeping instead of a futex sleep and
 * wake-up each section (`snapmem run --mpi` at 1e6 cells, 11 interleaved pairs on an idle
 * machine: 0.908 of the run without spinning; at 1e7 no difference; the serial run's halo stages,
 * the same binary with and without, alternating runs, the medians of the halo stages' sum:
 * 0.0585 -> 0.0520 s (11 each) and 0.0798 -> 0.0622 s (15) at 1e7 cells, 0.0387 -> 0.0328 s
 * (15) at 3e6). A worker's spin is as long as SPIN_NS again after any wait whose next job was
 * posted within SPIN_NS of the wait's start, spun or slept: until 2026-12-02 only a spin that
 * caught its job lengthened the next, and one gap of more than the spin (a stage boundary of the
 * serial run) shortened it for good, so that every later job of the halo stages woke a sleeping
 * worker, 40-100 us here (a 50 us gap between 100 us jobs: the worker's start 43.6 us after the
 * call at the median, against 0.3-0.8 us; a serial run at 1e7 cells, 189 jobs: 161-185 of them
 * woke a sleeping worker, 119-136 now, the rest after gaps of more than SPIN_NS: stage boundaries,
 * the whole-snapshot stages). Elsewhere they do not spin: the serial run's
 * whole-snapshot stages leave gaps (reads through HDF5) in which spinning workers burn CPU (when
 * the whole serial run spun, bench/benchmark-overhead, 8 alternating pairs: the profiled run
 * 1.099x the unprofiled one's CPU, 0.986x without; with the halo stages alone spinning, and a
 * worker's spin shortened when it runs out, 15 pairs: 1.020x). One job runs at a
 * time: a call made while the pool is busy (another thread's job, or a part calling sm__parallel)
 * starts short-lived threads for its parts instead, as does a process forked from one that
 * started the pool (the pool's threads are not in the child). The pool's threads are stopped
 * and joined at exit, so that nothing of theirs is left for a leak checker to report.
 *
 * Contract, from docs/PROFILER.md's thread rule: the functions run here never allocate (the
 * profiler measures the calling thread's allocations exactly and other threads' only at stage
 * boundaries and timeline ticks), so everything a part needs is in its argument or on its stack;
 * an idle worker allocates nothing either. Thread creation itself happens on the calling thread
 * (glibc maps the stacks with mmap and allocates a few hundred bytes of TLS bookkeeping there),
 * once per worker for the life of the process. A part whose thread cannot be started is run by
 * the calling thread afterwards, so the result never depends on how many threads ran. The number
 * of parts is the CPUs this process may use (sched_getaffinity), divided among the processes
 * that share them (sm_threads_share: MPI ranks on one node), at least 1 and at most
 * SM__MAX_THREADS; SNAPMEM_THREADS=N overrides it (1 = no threads).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/parallel.h"
#include "snapmem/pipeline.h"

#define WORKER_STACK_BYTES (1024u * 1024u)
#define SPIN_NS 100000 /* the longest spin before a wait sleeps (the file's comment) */
#define SPIN_MIN_NS 2000 /* a worker's shortest */

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

/* Processes this one shares its CPUs with, itself included (sm_threads_share); 1 alone. */
static unsigned share_n = 1;
static unsigned cached;

void sm_threads_share(unsigned sharers)
{
	if (cached == 0 && sharers >= 1)
		share_n = sharers;
}

unsigned sm__threads(void)
{
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
		n = n / share_n >= 1 ? n / share_n : 1;
		if (n > SM__MAX_THREADS)
			n = SM__MAX_THREADS;
	}
	cached = n;
	return n;
}

unsigned sm_threads(void)
{
	return sm__threads();
}

int sm__thread_start(pthread_t *th, size_t stack_bytes, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int attr_ok = pthread_attr_init(&attr) == 0, masked, rc;

	if (attr_ok && stack_bytes > 0)
		pthread_attr_setstacksize(&attr, stack_bytes);
	/* the new thread inherits this mask */
	sigfillset(&all);
	masked = pthread_sigmask(SIG_SETMASK, &all, &old) == 0;
	rc = pthread_create(th, attr_ok ? &attr : NULL, fn, arg);
	if (masked)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (attr_ok)
		pthread_attr_destroy(&attr);
	return rc;
}

/* Parts run on short-lived threads (the pool busy or unusable). */
static void parallel_spawn(sm__part_fn fn, void *arg, unsigned parts)
{
	pthread_t th[SM__MAX_THREADS];
	struct part ps[SM__MAX_THREADS];
	int started[SM__MAX_THREADS] = {0};
	unsigned t;

	for (t = 1; t < parts; t++) {
		ps[t].fn = fn;
		ps[t].arg = arg;
		ps[t].part = t;
		ps[t].parts = parts;
		started[t] = sm__thread_start(&th[t], WORKER_STACK_BYTES, part_main, &ps[t]) == 0;
	}
	fn(arg, 0, parts);
	for (t = 1; t < parts; t++)
		if (!started[t])
			fn(arg, t, parts);
	for (t = 1; t < parts; t++)
		if (started[t])
			pthread_join(th[t], NULL);
}

/* ---- the pool -------------------------------------------------------------------------------- */

static struct {
	pthread_mutex_t busy;      /* held by the caller for a whole job */
	pthread_mutex_t m;         /* guards the fields below, but for the atomic ones */
	pthread_cond_t go, done;
	pthread_t th[SM__MAX_THREADS];
	unsigned nworkers;         /* workers 1..nworkers are running */
	_Atomic uint64_t gen;      /* the job's number: a worker runs each job once; set after the
				    * job's fields below, read before them */
	sm__part_fn fn;
	void *arg;
	unsigned parts, nrun;      /* the job's parts; parts [1, nrun) are the workers' */
	_Atomic uint64_t pending;  /* workers' parts not finished */
	_Atomic int quit;
	unsigned sleeping;         /* workers waiting on go */
	int caller_waiting;        /* the caller waits on done */
	_Atomic int spin;          /* the job's parts have a CPU each: waits spin first */
	_Atomic uint64_t t_post;   /* when the job was posted (now_ns) */
	unsigned ncpu;             /* the CPUs this process may use */
	int atexit_set;
	pid_t pid;                 /* the process that started the workers */
} pool = {.busy = PTHREAD_MUTEX_INITIALIZER, .m = PTHREAD_MUTEX_INITIALIZER,
	  .go = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

/* The CPU's features the kernels choose by, read once: bit 0 AVX, bit 1 AVX2 (-1: not read yet;
 * a race reads the same bits twice). The kernels ask at every call of theirs (tens of thousands a
 * run): a load instead of __builtin_cpu_init and a test each time (~6 ns). */
static _Atomic int cpu_bits = -1;

static int cpu_features(void)
{
	int b = atomic_load_explicit(&cpu_bits, memory_order_relaxed);

	if (b < 0) {
		b = 0;
#if defined(__x86_64__) && defined(__GNUC__)
		__builtin_cpu_init();
		b = (__builtin_cpu_supports("avx") != 0) | (__builtin_cpu_supports("avx2") != 0) << 1;
#endif
		atomic_store_explicit(&cpu_bits, b, memory_order_relaxed);
	}
	return b;
}

int sm__cpu_avx(void)
{
	return cpu_features() & 1;
}

int sm__cpu_avx2(void)
{
	return (cpu_features() >> 1) & 1;
}

/* Whether waits may spin at all (sm__parallel_spin): off unless a caller says its jobs come back
 * to back. */
static _Atomic int spin_wanted;

void sm__parallel_spin(int on)
{
	atomic_store(&spin_wanted, on != 0);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Spins up to limit_ns (pool.spin set) while (*v == val) == eq: a worker while the job number is
 * the one it saw, the caller while parts are pending; returns 1 when that ended (or the pool is
 * stopping), 0 when the time ran out. */
static int spin_while(_Atomic uint64_t *v, uint64_t val, int eq, uint64_t limit_ns)
{
	uint64_t t0 = 0;
	unsigned i;

	if (limit_ns == 0 || !atomic_load_explicit(&pool.spin, memory_order_relaxed))
		return 0;
	for (i = 1;; i++) {
		if ((atomic_load_explicit(v, memory_order_acquire) == val) != eq ||
		    atomic_load_explicit(&pool.quit, memory_order_relaxed))
			return 1;
		cpu_relax();
		if ((i & 63) == 0) {
			uint64_t t = now_ns();

			if (t0 == 0)
				t0 = t;
			else if (t - t0 > limit_ns)
				return 0;
		}
	}
}

static void *worker_main(void *a)
{
	unsigned me = (unsigned)(uintptr_t)a;
	uint64_t seen = 0, spin = SPIN_NS, t_wait;

	for (;;) {
		sm__part_fn fn;
		void *arg;
		unsigned parts, nrun;

		/* A worker's wait for the next job spins as long as the jobs have come in quick
		 * succession: after a wait whose job was posted within SPIN_NS of the wait's start (spun
		 * or slept), the next wait spins up to SPIN_NS; after a longer one a quarter of the
		 * last, down to SPIN_MIN_NS, so that a caller busy between its jobs (reads through HDF5)
		 * does not pay for spinning. The gap is the posting's, not the wait's: a sleeping
		 * worker's wake-up (40-100 us here) is not the caller's gap. */
		t_wait = now_ns();
		(void)spin_while(&pool.gen, seen, 1, spin);
		/* the job's fields and number read together, under the lock they are written under */
		pthread_mutex_lock(&pool.m);
		pool.sleeping++;
		while (!atomic_load(&pool.quit) && atomic_load(&pool.gen) == seen)
			pthread_cond_wait(&pool.go, &pool.m);
		pool.sleeping--;
		seen = atomic_load(&pool.gen);
		fn = pool.fn;
		arg = pool.arg;
		parts = pool.parts;
		nrun = pool.nrun;
		pthread_mutex_unlock(&pool.m);
		if (atomic_load(&pool.quit))
			break;
		if (atomic_load_explicit(&pool.t_post, memory_order_relaxed) <= t_wait + SPIN_NS)
			spin = SPIN_NS;
		else
			spin = spin / 4 > SPIN_MIN_NS ? spin / 4 : SPIN_MIN_NS;
		if (me >= nrun)
			continue;
		fn(arg, me, parts);
		if (atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel) == 1) {
			pthread_mutex_lock(&pool.m);
			if (pool.caller_waiting)
				pthread_cond_signal(&pool.done);
			pthread_mutex_unlock(&pool.m);
		}
	}
	return NULL;
}

static int pid_cached;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_read(void)
{
	__atomic_store_n(&pid_cached, (int)getpid(), __ATOMIC_RELAXED);
}

static void pid_init(void)
{
	pid_read();
	(void)pthread_atfork(NULL, NULL, pid_read); /* a child of fork() reads its own */
}

int sm__pid(void)
{
	pthread_once(&pid_once, pid_init);
	return __atomic_load_n(&pid_cached, __ATOMIC_RELAXED);
}

/* At exit: the workers stopped and joined (not while a job runs, nor in a forked child). */
static void pool_stop(void)
{
	unsigned t;

	if (pool.pid != sm__pid() || pthread_mutex_trylock(&pool.busy) != 0)
		return;
	pthread_mutex_lock(&pool.m);
	atomic_store(&pool.quit, 1);
	pthread_cond_broadcast(&pool.go);
	pthread_mutex_unlock(&pool.m);
	for (t = 1; t <= pool.nworkers; t++)
		pthread_join(pool.th[t], NULL);
	pool.nworkers = 0;
	pthread_mutex_unlock(&pool.busy);
}

/* Workers 1..want-1 running (as many as could be started); called holding busy. */
static void pool_grow(unsigned want)
{
	if (pool.nworkers + 1 >= want || pool.quit)
		return;
	if (pool.nworkers == 0) {
		cpu_set_t set;

		if (!pool.atexit_set && atexit(pool_stop) != 0)
			return;
		pool.atexit_set = 1;
		pool.pid = sm__pid();
		CPU_ZERO(&set);
		pool.ncpu = sched_getaffinity(0, sizeof(set), &set) == 0 ? (unsigned)CPU_COUNT(&set)
									  : 1;
	}
	while (pool.nworkers + 1 < want &&
	       sm__thread_start(&pool.th[pool.nworkers + 1], WORKER_STACK_BYTES, worker_main,
				(void *)(uintptr_t)(pool.nworkers + 1)) == 0)
		pool.nworkers++;
}

void sm__parallel(sm__part_fn fn, void *arg, unsigned parts)
{
	unsigned t, by_pool;

	if (parts < 1)
		parts = 1;
	if (parts > SM__MAX_THREADS)
		parts = SM__MAX_THREADS;
	if (parts == 1) {
		fn(arg, 0, 1);
		return;
	}
	if ((pool.nworkers > 0 && pool.pid != sm__pid()) ||
	    pthread_mutex_trylock(&pool.busy) != 0) {
		parallel_spawn(fn, arg, parts);
		return;
	}
	pool_grow(parts);
	by_pool = pool.nworkers + 1 < parts ? pool.nworkers + 1 : parts;
	pthread_mutex_lock(&pool.m);
	pool.fn = fn;
	pool.arg = arg;
	pool.parts = parts;
	pool.nrun = by_pool;
	atomic_store(&pool.spin, by_pool <= pool.ncpu && atomic_load(&spin_wanted));
	atomic_store_explicit(&pool.pending, by_pool - 1, memory_order_relaxed);
	atomic_store_explicit(&pool.t_post, now_ns(), memory_order_relaxed);
	atomic_fetch_add_explicit(&pool.gen, 1, memory_order_release);
	if (by_pool > 1 && pool.sleeping > 0)
		pthread_cond_broadcast(&pool.go);
	pthread_mutex_unlock(&pool.m);
	fn(arg, 0, parts);
	for (t = by_pool; t < parts; t++) /* parts no worker could be started for */
		fn(arg, t, parts);
	if (!spin_while(&pool.pending, 0, 0, SPIN_NS)) {
		pthread_mutex_lock(&pool.m);
		pool.caller_waiting = 1;
		while (atomic_load(&pool.pending) > 0)
			pthread_cond_wait(&pool.done, &pool.m);
		pool.caller_waiting = 0;
		pthread_mutex_unlock(&pool.m);
	}
	pthread_mutex_unlock(&pool.busy);
}
