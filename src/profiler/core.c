/*
 * The profiler's core: options, stages, tracked arrays, fault injection and read access.
 *
 * Stage peaks: requested bytes are counted exactly at every tracked allocation and release (all
 * tracked arrays of the program count toward every open stage's peak). The allocated peak combines
 * jemalloc's thread.peak for the calling thread with the process figures at the stage boundaries and
 * at the timeline's ticks: thread.peak is read and reset at every stage boundary and the value is
 * folded into every open stage, so nested stages each get their own peak. See docs/PROFILER.md for
 * what this means for threads that allocate on their own.
 *
 * Every entry point accepts p == NULL and then behaves as plain malloc/free or does nothing. While
 * the profiler itself runs, the thread's sampling guard is set, so its own work (jansson, libunwind,
 * /proc reads) never records samples and never re-enters the lock.
 */
#include "profiler/prof-internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/parallel.h"
#include "snapmem/limits.h"
#include "snapmem/units.h"

double sm__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* pread from offset 0 regenerates a /proc seq file, so one descriptor serves every reading */
static ssize_t read_proc(sm__procfd *f, const char *path, char *buf, size_t len)
{
	if (!f || f->fd < 0 || f->pid != sm__pid())
		return sm__read_small(path, buf, len);
	size_t got = 0;
	while (got + 1 < len) {
		ssize_t r = pread(f->fd, buf + got, len - 1 - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	return got ? (ssize_t)got : sm__read_small(path, buf, len);
}

void sm__procfd_open(sm__procfd *f, const char *path)
{
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	f->pid = sm__pid();
}

void sm__procfd_close(sm__procfd *f)
{
	if (f->fd >= 0 && f->pid == sm__pid())
		close(f->fd);
	f->fd = -1;
}

static uint64_t status_kb(const char *text, const char *key)
{
	const char *s = strstr(text, key);
	if (!s)
		return 0;
	return strtoull(s + strlen(key), NULL, 10) * 1024;
}

int sm__proc_status(sm__procfd *f, uint64_t *vm_rss, uint64_t *vm_hwm)
{
	char buf[8192];
	*vm_rss = *vm_hwm = 0;
	if (read_proc(f, "/proc/self/status", buf, sizeof(buf)) <= 0)
		return -1;
	*vm_rss = status_kb(buf, "\nVmRSS:");
	*vm_hwm = status_kb(buf, "\nVmHWM:");
	return 0;
}

/* VmHWM as getrusage gives it: ru_maxrss is the larger of the mm's high-water mark (what
 * /proc/self/status calls VmHWM) and the signal struct's maxrss, which only exec (the image
 * before) and exiting threads (this mm's mark then) set; so once the two are seen to agree
 * (hwm_agree) they stay so, and this costs a system call (~1 us) instead of /proc/self/status
 * (~10-20 us). Asked of
 * the calling thread (RUSAGE_THREAD: the same maxrss, the process's mm and signal struct), not
 * of the process: RUSAGE_SELF also sums every thread's CPU time, locking the run queue of each
 * running one; with the worker threads busy at a stage's end that took ~4-50 us a call (1e7
 * cells, index: 1.0-1.9 ms of boundary time a run, 0.16-0.19 ms with RUSAGE_THREAD). */
static uint64_t rusage_hwm(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru) != 0 || ru.ru_maxrss < 0)
		return 0;
	return (uint64_t)ru.ru_maxrss * 1024;
}

/* The kernel's two readings of the high-water mark agree to within its per-CPU counters' slack
 * (getrusage sums them approximately, /proc/self/status exactly: one in six readings differed
 * here, by a few pages); an exec'd image's larger mark (the signal struct's) would differ by
 * far more than HWM_SLACK_BYTES. */
#define HWM_SLACK_BYTES (UINT64_C(1) << 20)

static int hwm_agree(uint64_t ru, uint64_t status)
{
	return ru + HWM_SLACK_BYTES >= status && ru <= status + HWM_SLACK_BYTES;
}

int sm__proc_peaks(uint64_t *vm_hwm, uint64_t *vm_peak, uint64_t *vm_pte)
{
	char buf[8192];
	*vm_hwm = *vm_peak = *vm_pte = 0;
	if (sm__read_small("/proc/self/status", buf, sizeof(buf)) <= 0)
		return -1;
	*vm_hwm = status_kb(buf, "\nVmHWM:");
	*vm_peak = status_kb(buf, "\nVmPeak:");
	*vm_pte = status_kb(buf, "\nVmPTE:");
	return 0;
}

/* One number from a cgroup file; 0 when read, -1 when absent or "max". */
static int cgroup_value(const char *dir, const char *file, uint64_t *v)
{
	char path[4352], buf[64], *end;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path) ||
	    sm__read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	*v = strtoull(buf, &end, 10);
	return end != buf && (*end == '\n' || *end == '\0') ? 0 : -1;
}

/* The process's own cgroup v2 directory (sm__cgroup2_dir). Read only when memory.json is written. */
void sm__proc_cgroup(uint64_t *peak, int *have_peak, uint64_t *max, int *have_max)
{
	char dir[4352];
	*have_peak = *have_max = 0;
	*peak = *max = 0;
	if (sm__cgroup2_dir(dir, sizeof(dir)) != 0)
		return;
	*have_peak = cgroup_value(dir, "memory.peak", peak) == 0;
	*have_max = cgroup_value(dir, "memory.max", max) == 0;
}

uint64_t sm__proc_statm_rss(sm__procfd *f)
{
	char buf[256];
	if (read_proc(f, "/proc/self/statm", buf, sizeof(buf)) <= 0)
		return 0;
	char *end;
	strtoull(buf, &end, 10);
	uint64_t pages = strtoull(end, NULL, 10);
	return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

void sm_prof_options_init(sm_prof_options *o)
{
	memset(o, 0, sizeof(*o));
	o->jemalloc = sm_prof_have_jemalloc();
	o->sites = 1;
	o->sample_untracked = 1;
	o->site_threshold_bytes = 1 << 20;
	o->sample_interval_bytes = 512 << 10;
	o->max_frames = 24;
	o->timeline_hz = 100;
	o->max_timeline_samples = 65536;
	o->max_sites = 4096;
}

/* growth of the profiler's own arrays, straight from jemalloc (never sampled) */
static int grow(void **v, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 16;
	while (n < need)
		n *= 2;
	void *q = sm__raw_realloc(*v, n * elem);
	if (!q)
		return -1;
	*v = q;
	*cap = n;
	return 0;
}

sm__sites *sm__prof_sites(sm_prof *p)
{
	return &p->sites;
}

static uint64_t slack(const sm_prof *p, uint64_t level)
{
	uint64_t s = p->o.sample_interval_bytes;
	return level / 32 > s ? level / 32 : s;
}

/* Under the lock: every site's live bytes at the process's highest live estimate (what
 * stacks.folded and the flame graph show), retaken when the estimate rises by more than the slack. */
static void peak_snapshot(sm_prof *p, uint64_t est)
{
	if (est <= p->peak_level)
		return;
	p->peak_level = est;
	p->peak_t = sm__now() - p->t0;
	if (!p->peak_live || (p->peak_n && est <= p->peak_snap_level + slack(p, p->peak_snap_level)))
		return;
	for (size_t i = 0; i < p->sites.n; i++)
		p->peak_live[i] = p->sites.v[i].live;
	p->peak_n = p->sites.n;
	p->peak_snap_level = est;
}

/* Under the lock: snapshot the top sites into every open stage whose estimate rose enough. */
void sm__prof_live_changed(sm_prof *p)
{
	uint64_t est = p->live_req + sm__sampled_live();
	int need = 0;
	peak_snapshot(p, est);
	for (size_t i = 0; i < p->nopen; i++) {
		sm__stage *st = &p->stages[p->open[i]];
		if (est > st->snap_level + slack(p, st->snap_level))
			need = 1;
	}
	if (!need)
		return;
	sm__top top[SM__TOP];
	int n = sm__sites_top(&p->sites, top, SM__TOP);
	for (size_t i = 0; i < p->nopen; i++) {
		sm__stage *st = &p->stages[p->open[i]];
		if (est > st->snap_level + slack(p, st->snap_level)) {
			memcpy(st->top, top, (size_t)n * sizeof(top[0]));
			st->ntop = n;
			st->snap_level = est;
		}
	}
}

int sm_prof_create(const sm_prof_options *o, sm_prof **out, sm_error *err)
{
	sm_prof_options def;
	int rc = 0;
	*out = NULL;
	if (!o) {
		sm_prof_options_init(&def);
		o = &def;
	}
	if (o->max_frames < 1 || o->max_frames > SM__MAX_FRAMES || o->max_sites < 1 ||
	    o->timeline_hz < 0 || o->timeline_hz > 100000 ||
	    (o->timeline_hz > 0 && o->max_timeline_samples < 2))
		return sm_error_set(err, SM_EINVAL,
				    "profiler options: max_frames must be 1..%d, max_sites >= 1, "
				    "timeline_hz 0..100000 with max_timeline_samples >= 2",
				    SM__MAX_FRAMES);
	int *g = sm__guard();
	int saved = *g;
	*g = 1;
	sm_prof *p = sm__raw_alloc(sizeof(*p));
	if (!p) {
		rc = sm_error_set(err, SM_ENOMEM, "profiler: cannot allocate its state");
		goto out;
	}
	memset(p, 0, sizeof(*p));
	p->o = *o;
	sm__procfd_open(&p->status, "/proc/self/status");
	sm__procfd_open(&p->statm, "/proc/self/statm");
	p->t0 = sm__now();
	p->cpu0 = cpu_now();
	p->je = o->jemalloc && sm__je_init() == 0;
	p->o.jemalloc = p->je;
	p->symbolizer = "none";
	if (sm__sites_init(&p->sites, o->max_sites, o->max_frames) != 0 ||
	    !(p->peak_live = sm__raw_alloc(p->sites.max * sizeof(uint64_t)))) {
		rc = sm_error_set(err, SM_ENOMEM, "profiler: cannot map the site table (%zu sites)",
				  o->max_sites);
		goto fail_state;
	}
#ifdef SM_NO_JEMALLOC
	p->untracked_sampling = "off: built without jemalloc (sanitizer build); tracked arrays only";
#else
	if (!o->sample_untracked) {
		p->untracked_sampling = "off: disabled by option";
	} else {
		const char *why = NULL;
		if (sm__sampling_start(p, &why) == 0) {
			p->sampling = 1;
			p->untracked_sampling =
				"interposed malloc family over jemalloc: allocations >= site_threshold_bytes "
				"always, smaller ones sampled by a per-thread byte countdown (exponential, mean "
				"sample_interval_bytes); jemalloc experimental.hooks not used (they slow every "
				"allocation)";
		} else {
			p->untracked_sampling = why;
		}
	}
#endif
	if (p->je) {
		uint64_t peak;
		sm__je_purge();
		sm__je_read(&p->base);
		sm__je_peak_read_reset(&peak);
		sm__je_thread_net(&p->win_reset_net);
	}
	sm__proc_status(&p->status, &p->base_rss, &p->base_hwm);
	p->fast_hwm = p->base_hwm > 0 && p->statm.fd >= 0 && hwm_agree(rusage_hwm(), p->base_hwm);
	p->fast_pid = sm__pid();
	if (o->timeline_hz > 0) {
		const uint64_t *oa = NULL, *od = NULL;

		/* a sample may reuse the last reading only where other threads' blocks are sampled
		 * (sm__sample_gen moves with them); the counters are this, the driving, thread's */
		if (!p->je || !p->sampling || sm__je_thread_counter_ptrs(&oa, &od) != 0)
			oa = od = NULL;
		if (sm__timeline_start(&p->tl, o->timeline_hz, o->max_timeline_samples, p->t0, oa,
				       od) == 0)
			p->tl_on = 1;
		/* else: no timeline, reported as rate 0; not fatal */
	}
	*out = p;
	goto out;
fail_state:
	sm__sites_release(&p->sites);
	sm__procfd_close(&p->status);
	sm__procfd_close(&p->statm);
	sm__raw_free(p);
out:
	*g = saved;
	return rc;
}

void sm_prof_free(sm_prof *p)
{
	if (!p)
		return;
	int *g = sm__guard();
	int saved = *g;
	*g = 1;
	if (p->tl_on)
		sm__timeline_release(&p->tl);
	if (p->sampling)
		sm__sampling_stop(p);
	sm__sites_release(&p->sites);
	sm__procfd_close(&p->status);
	sm__procfd_close(&p->statm);
	for (size_t i = 0; i < p->nmeta; i++) {
		sm__raw_free(p->meta[i].key);
		sm__raw_free(p->meta[i].json);
	}
	sm__raw_free(p->meta);
	sm__raw_free(p->incomplete_reason);
	sm__raw_free(p->stages);
	sm__raw_free(p->open);
	sm__raw_free(p->arrays);
	sm__raw_free(p->amap);
	sm__raw_free(p->marks);
	sm__raw_free(p->peak_live);
	sm__raw_free(p);
	*g = saved;
}

/* ---- the preloaded profiler (libsnapmem-preload.so) ----------------------------------------- */

const sm__preload_ops *sm__preload(void)
{
	static const sm__preload_ops *(*fn)(void);
	static int looked;
	if (!__atomic_load_n(&looked, __ATOMIC_ACQUIRE)) {
		fn = (const sm__preload_ops *(*)(void))dlsym(RTLD_DEFAULT, SM__PRELOAD_SYMBOL);
		__atomic_store_n(&looked, 1, __ATOMIC_RELEASE);
	}
	const sm__preload_ops *ops = fn ? fn() : NULL;
	return ops && ops->version == 1 ? ops : NULL;
}

/* ---- stages -------------------------------------------------------------------------------- */

/* Reads thread.peak, folds it into every open stage, resets it. */
static void fold_peak(sm_prof *p)
{
	uint64_t peak, net;
	if (!p->je || sm__je_peak_read_reset(&peak) != 0)
		return;
	uint64_t top = p->win_reset_net + peak;
	for (size_t i = 0; i < p->nopen; i++) {
		sm__stage *st = &p->stages[p->open[i]];
		int64_t rel = (int64_t)(top - st->begin_net);
		if (rel > st->max_rel)
			st->max_rel = rel;
	}
	if (sm__je_thread_net(&net) == 0)
		p->win_reset_net = net;
}

/*
 * The process figures at a stage boundary: jemalloc's stats (an epoch write merges every arena's
 * statistics, ~5-15 us) and /proc/self/status (VmRSS, VmHWM; ~7-10 us). Between one stage's end
 * and the next one's begin a pipeline usually does nothing, so a reading is reused when
 *   - it is at most REUSE_S old and was taken on this thread,
 *   - this thread's jemalloc counters (bytes allocated, bytes deallocated) have not moved since,
 *   - the sampling layer is on and recorded or forgot no sample since (sm__sample_gen): no other
 *     thread allocated or freed a sampled block, nor anything of site_threshold_bytes or more.
 * What a reused reading can miss is other threads' small unsampled allocations within those
 * microseconds (the sampler's own granularity). Without jemalloc or without sampling every
 * reading is fresh.
 */
#define REUSE_S 50e-6


static void boundary_read(sm_prof *p, sm__reading *out)
{
	uint64_t ta = 0, td = 0;
	int have = p->je && sm__je_thread_counters(&ta, &td) == 0;
	uint64_t gen = __atomic_load_n(&sm__sample_gen, __ATOMIC_RELAXED);
	sm__reading *l = &p->last;
	have = have && p->sampling;
	if (have && l->valid && ta == l->thr_alloc && td == l->thr_dealloc && gen == l->gen &&
	    pthread_equal(l->thread, pthread_self()) && sm__now() - l->t <= REUSE_S) {
		*out = *l;
		p->reused++;
		return;
	}
	memset(out, 0, sizeof(*out));
	if (p->je && !p->alloc_failed)
		sm__je_read(&out->je);
	if (p->fast_hwm && p->fast_pid == sm__pid()) {
		out->rss = sm__proc_statm_rss(&p->statm);
		out->hwm = rusage_hwm();
		if (out->hwm < out->rss)
			out->hwm = out->rss;
	} else {
		sm__proc_status(&p->status, &out->rss, &out->hwm);
	}
	out->thr_alloc = ta;
	out->thr_dealloc = td;
	out->gen = gen;
	out->thread = pthread_self();
	out->t = sm__now();
	out->valid = have;
	p->readings++;
	*l = *out;
}

static int add_mark(sm_prof *p, int stage, int begin)
{
	if (grow((void **)&p->marks, &p->cap_marks, p->nmarks + 1, sizeof(p->marks[0])) != 0)
		return -1;
	p->marks[p->nmarks].t = sm__now() - p->t0;
	p->marks[p->nmarks].stage = stage;
	p->marks[p->nmarks].begin = begin;
	p->nmarks++;
	return 0;
}

int sm_prof_stage_begin(sm_prof *p, const char *id, int64_t instance)
{
	if (!id)
		return p ? SM_EINVAL : 0;
	if (!p) {
		const sm__preload_ops *ops = sm__preload();
		return ops ? ops->stage_begin(id, instance) : 0;
	}
	int rc = 0;
	int *g = sm__guard();
	int saved = *g;
	const double t_in = sm__now();
	*g = 1;
	pthread_mutex_lock(&sm__lock);
	if (grow((void **)&p->stages, &p->cap_stages, p->nstages + 1, sizeof(sm__stage)) != 0 ||
	    grow((void **)&p->open, &p->cap_open, p->nopen + 1, sizeof(int)) != 0 ||
	    grow((void **)&p->marks, &p->cap_marks, p->nmarks + 2, sizeof(p->marks[0])) != 0) {
		rc = SM_ENOMEM;
		goto out;
	}
	fold_peak(p);
	sm__stage *st = &p->stages[p->nstages];
	memset(st, 0, sizeof(*st));
	snprintf(st->id, sizeof(st->id), "%s", id);
	st->instance = instance;
	st->depth = (int)p->nopen;
	st->parent = p->nopen ? p->open[p->nopen - 1] : -1;
	st->open = 1;
	st->req_begin = st->req_peak = p->live_req;
	st->tracked_alloc_peak = p->live_alloc;
	sm__reading rd;
	boundary_read(p, &rd);
	st->je_begin = rd.je;
	st->rss_begin = rd.rss;
	if (p->je) {
		sm__je_thread_net(&st->begin_net);
		p->win_reset_net = st->begin_net;
	}
	st->t_begin = sm__now() - p->t0;
	st->cpu_begin = cpu_now();
	st->ntop = sm__sites_top(&p->sites, st->top, SM__TOP);
	st->snap_level = p->live_req + sm__sampled_live();
	p->open[p->nopen++] = (int)p->nstages;
	p->nstages++;
	if (p->tl_on)
		sm__timeline_enter(&p->tl, st->depth);
	add_mark(p, (int)p->nstages - 1, 1);
	p->boundaries++;
	p->boundary_s += sm__now() - t_in;
out:
	pthread_mutex_unlock(&sm__lock);
	*g = saved;
	return rc;
}

/*
 * Freed pages the end of a repeated stage (one with an instance, e.g. a halo's) leaves to jemalloc
 * for the next iteration: up to 1/32 of jemalloc's resident bytes (0, a purge every time, when that
 * is unknown); every other stage end purges whatever is dirty. One halo's sphere, mask and
 * histogram arrays (4.8 MB at 1e7 cells, 2.6 % of the resident peak, and proportional to it) are
 * what the next halo takes straight back: purging them made every halo fault in and zero them
 * again, most of the profiler's cost to the stages (page faults of a run at 1e7 cells, index:
 * 36,300 purging always, 10,100 now, 6,400 unprofiled; mask: 46,900, 25,200, 20,800). The pages
 * kept never add to the resident peak: a tracked array that jemalloc maps from fresh pages while
 * they are kept purges them before it is touched (alloc_common, sm__je_reuse_check), so the
 * resident peak stays the live arrays' pages plus the baseline (docs/MODEL.md "The four peaks").
 */
static uint64_t purge_keep(uint64_t resident)
{
	return resident / 32;
}

/* Under the lock. */
static void stage_close(sm_prof *p, int forced)
{
	int idx = p->open[p->nopen - 1];
	fold_peak(p);
	sm__stage *st = &p->stages[idx];
	uint64_t net = 0, readings_before = p->readings;
	sm__reading rd;
	boundary_read(p, &rd);
	st->je_end = rd.je;
	st->rss_end = rd.rss;
	st->hwm_end = rd.hwm;
	if (p->je)
		sm__je_thread_net(&net);
	double now = sm__now();
	st->wall = now - p->t0 - st->t_begin;
	st->cpu = cpu_now() - st->cpu_begin;
	st->req_end = p->live_req;
	if (p->tl_on) {
		uint64_t m = sm__timeline_leave(&p->tl, st->depth);
		if (m > st->tl_max)
			st->tl_max = m;
	}
	if (p->je) {
		uint64_t a = st->je_begin.allocated + (uint64_t)st->max_rel;
		if (st->je_end.allocated > a)
			a = st->je_end.allocated;
		if (st->je_begin.allocated > a)
			a = st->je_begin.allocated;
		if (st->tl_max > a)
			a = st->tl_max;
		st->alloc_peak = a;
		st->others_net = (int64_t)(st->je_end.allocated - st->je_begin.allocated) -
				 (int64_t)(net - st->begin_net);
		if (st->parent >= 0 && p->stages[st->parent].tl_max < a)
			p->stages[st->parent].tl_max = a;
	}
	st->open = 0;
	st->forced_closed = forced;
	p->nopen--;
	add_mark(p, idx, 0);
	/* What the stage freed goes back to the kernel now, not at jemalloc's decay: the resident
	 * figures of the next stage are then its live memory (docs/MODEL.md "The four peaks"); a repeated
	 * stage leaves up to purge_keep() for its next iteration to reuse. */
	if (p->je)
		p->dirty_kept = sm__je_purge_above(st->instance >= 0 ? purge_keep(rd.je.resident) : 0,
						   p->readings != readings_before);
}

int sm_prof_stage_end(sm_prof *p)
{
	if (!p) {
		const sm__preload_ops *ops = sm__preload();
		return ops ? ops->stage_end() : 0;
	}
	int rc = 0;
	int *g = sm__guard();
	int saved = *g;
	const double t_in = sm__now();
	*g = 1;
	pthread_mutex_lock(&sm__lock);
	if (p->nopen == 0) {
		rc = SM_EINVAL;
	} else {
		stage_close(p, 0);
		p->boundaries++;
		p->boundary_s += sm__now() - t_in;
	}
	pthread_mutex_unlock(&sm__lock);
	*g = saved;
	return rc;
}

/* Closes every open stage (for a document written with stages open). */
void sm__prof_close_all(sm_prof *p)
{
	pthread_mutex_lock(&sm__lock);
	while (p->nopen)
		stage_close(p, 1);
	pthread_mutex_unlock(&sm__lock);
}

/* ---- tracked arrays ------------------------------------------------------------------------ */

#define AMAP_TOMB UINT32_MAX

static size_t amap_slot(const void *ptr, size_t cap)
{
	return (size_t)(((uint64_t)(uintptr_t)ptr * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

static int amap_rehash(sm_prof *p, size_t cap)
{
	uint32_t *m = sm__raw_alloc(cap * sizeof(uint32_t));
	if (!m)
		return -1;
	memset(m, 0, cap * sizeof(uint32_t));
	size_t used = 0;
	for (size_t i = 0; i < p->amap_cap; i++) {
		uint32_t e = p->amap[i];
		if (e == 0 || e == AMAP_TOMB)
			continue;
		size_t j = amap_slot(p->arrays[e - 1].ptr, cap);
		while (m[j])
			j = (j + 1) & (cap - 1);
		m[j] = e;
		used++;
	}
	sm__raw_free(p->amap);
	p->amap = m;
	p->amap_cap = cap;
	p->amap_used = used;
	return 0;
}

static int amap_insert(sm_prof *p, void *ptr, uint32_t idx)
{
	if ((p->amap_used + 1) * 2 > p->amap_cap) {
		size_t live = 0;
		for (size_t i = 0; i < p->narrays; i++)
			live += p->arrays[i].live;
		size_t cap = 64;
		while (cap < (live + 1) * 4)
			cap *= 2;
		if (amap_rehash(p, cap) != 0)
			return -1;
	}
	size_t j = amap_slot(ptr, p->amap_cap);
	while (p->amap[j] != 0 && p->amap[j] != AMAP_TOMB)
		j = (j + 1) & (p->amap_cap - 1);
	p->amap[j] = idx + 1;
	p->amap_used++;
	return 0;
}

static long amap_take(sm_prof *p, void *ptr)
{
	if (!p->amap_cap)
		return -1;
	for (size_t j = amap_slot(ptr, p->amap_cap);; j = (j + 1) & (p->amap_cap - 1)) {
		uint32_t e = p->amap[j];
		if (e == 0)
			return -1;
		if (e != AMAP_TOMB && p->arrays[e - 1].ptr == ptr) {
			p->amap[j] = AMAP_TOMB;
			return (long)(e - 1);
		}
	}
}

/*
 * After jemalloc failed an allocation (not an injected failure), e.g. for want of address space
 * (RLIMIT_AS), jemalloc 5.3's statistics
 * merge (the `epoch` write) can crash on an arena it could not finish setting up (seen once in
 * ~20 runs of test-faults' 64 MiB case, in the sampler thread): from then on neither the sampler
 * nor the stage boundaries read jemalloc's merged statistics. Stages closed after the failure keep
 * their thread-local figures; the document is incomplete anyway (the run failed).
 */
static void jemalloc_failed(sm_prof *p)
{
	p->alloc_failed = 1;
	__atomic_store_n(&p->tl.no_stats, 1, __ATOMIC_RELEASE);
}

static void *fail_alloc(sm_prof *p, const char *name, uint64_t bytes, sm_error *err)
{
	char iec[32];
	const char *stage = p && p->nopen ? p->stages[p->open[p->nopen - 1]].id : NULL;
	sm_format_iec(bytes, iec, sizeof(iec));
	if (err) {
		if (stage)
			sm_error_set(err, SM_ENOMEM,
				     "'%s': cannot allocate %llu bytes (%s) in stage '%s'", name,
				     (unsigned long long)bytes, iec, stage);
		else
			sm_error_set(err, SM_ENOMEM, "'%s': cannot allocate %llu bytes (%s)", name,
				     (unsigned long long)bytes, iec);
		err->needed_bytes = bytes;
	}
	return NULL;
}

static int injected(sm_prof *p, const char *name)
{
	if (!p->inject_left)
		return 0;
	if (p->inject_named && strcmp(p->inject_name, name) != 0)
		return 0;
	if (--p->inject_left == 0) {
		p->inject_named = 0;
		return 1;
	}
	return 0;
}

/*
 * A new tracked array, live from now (sm__lock held; its slot in p->arrays already grown and its
 * address in the map): the record, its site (frames captured by the caller, nf 0: none), the live
 * bytes and every open stage's peak. Shared by sm_prof_alloc and sm__prof_adopt.
 */
static sm__array *array_live(sm_prof *p, const char *name, uint64_t bytes, uint64_t allocated,
			     void *ptr, void *const *frames, int nf)
{
	sm__array *a = &p->arrays[p->narrays++];
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->stage = p->nopen ? p->open[p->nopen - 1] : -1;
	a->instance = p->nopen ? p->stages[a->stage].instance : -1;
	a->freed_stage = -1;
	a->requested = bytes;
	a->allocated = allocated;
	a->t_alloc = sm__now() - p->t0;
	a->t_free = -1;
	a->live = 1;
	a->ptr = ptr;
	a->site = -1;
	if (nf > 0) {
		a->site = sm__site_intern(&p->sites, frames, nf, 1);
		if (a->site >= 0) {
			sm__site *st = &p->sites.v[a->site];
			st->bytes += bytes;
			st->count++;
			st->live += bytes;
		}
	}
	p->live_req += bytes;
	p->live_alloc += allocated;
	for (size_t i = 0; i < p->nopen; i++) {
		sm__stage *st = &p->stages[p->open[i]];
		if (p->live_req > st->req_peak) {
			st->req_peak = p->live_req;
			st->tracked_alloc_peak = p->live_alloc;
		}
	}
	sm__prof_live_changed(p);
	return a;
}

void *sm__plain_alloc(size_t n, int zero)
{
	void *p = NULL;

	if (n < SM__ARRAY_ALIGN)
		return zero ? calloc(n ? n : 1, 1) : malloc(n ? n : 1);
	if (posix_memalign(&p, SM__ARRAY_ALIGN, n) != 0)
		return NULL;
	if (zero)
		memset(p, 0, n);
	return p;
}

__attribute__((noinline)) static void *alloc_common(sm_prof *p, const char *name, uint64_t bytes, int zero, sm_error *err)
{
	if (!name)
		name = "";
	if (!p) {
		void *q = NULL;
		const sm__preload_ops *ops = sm__preload();
		if (bytes <= (uint64_t)PTRDIFF_MAX)
			q = ops ? ops->alloc(name, bytes, zero) : sm__plain_alloc((size_t)bytes, zero);
		return q ? q : fail_alloc(NULL, name, bytes, err);
	}
	void *ret = NULL;
	int *g = sm__guard();
	int saved = *g;
	*g = 1;
	if (bytes > (uint64_t)PTRDIFF_MAX || injected(p, name)) {
		fail_alloc(p, name, bytes, err);
		goto out;
	}
	void *q = sm__mem_alloc((size_t)bytes, zero);
	if (!q) {
		jemalloc_failed(p);
		fail_alloc(p, name, bytes, err);
		goto out;
	}
	uint64_t allocated = sm__mem_usable(q, bytes);
	void *frames[SM__MAX_FRAMES];
	int nf = 0;
	if (p->o.sites)
		nf = sm__capture(frames, p->sites.max_frames, 2); /* alloc_common, sm_prof_alloc */
	pthread_mutex_lock(&sm__lock);
	if (grow((void **)&p->arrays, &p->cap_arrays, p->narrays + 1, sizeof(sm__array)) != 0 ||
	    amap_insert(p, q, (uint32_t)p->narrays) != 0) {
		pthread_mutex_unlock(&sm__lock);
		sm__mem_free(q);
		fail_alloc(p, name, bytes, err);
		goto out;
	}
	if (p->o.sites && nf == 0)
		p->sites.unwind_failures++;
	array_live(p, name, bytes, allocated, q, frames, nf);
	/* pages kept dirty and this array's fresh ones never resident together (stage_close) */
	if (p->je && p->dirty_kept > 0 && sm__je_reusable(q, allocated))
		sm__je_reuse_check(q, allocated, &p->dirty_kept);
	pthread_mutex_unlock(&sm__lock);
	ret = q;
out:
	*g = saved;
	return ret;
}

/* The barrier keeps these frames on the stack (no tail call): sm__capture skips a fixed count. */
#define NO_TAIL_CALL() __asm__ volatile("" ::: "memory")

void *sm_prof_alloc(sm_prof *p, const char *name, uint64_t bytes, sm_error *err)
{
	void *q = alloc_common(p, name, bytes, 0, err);
	NO_TAIL_CALL();
	return q;
}

void *sm_prof_calloc(sm_prof *p, const char *name, uint64_t count, uint64_t size, sm_error *err)
{
	uint64_t bytes;
	if (sm_mul_u64(count, size, &bytes) != 0) {
		sm_error_set(err, SM_EOVERFLOW, "'%s': %llu elements of %llu bytes overflow 64 bits",
			     name ? name : "", (unsigned long long)count, (unsigned long long)size);
		return NULL;
	}
	void *q = alloc_common(p, name, bytes, 1, err);
	NO_TAIL_CALL();
	return q;
}

uint64_t sm_prof_usable(sm_prof *p, void *ptr)
{
	uint64_t u = 0;

	if (ptr == NULL)
		return 0;
	if (p != NULL) {
		int *g = sm__guard();
		int saved = *g;

		*g = 1;
		u = sm__mem_usable(ptr, 0);
		*g = saved;
	} else if (sm__preload() == NULL) {
		u = malloc_usable_size(ptr); /* sm__plain_alloc's malloc or posix_memalign */
	}
	return u;
}

void sm_prof_release(sm_prof *p, void *ptr)
{
	if (!ptr)
		return;
	if (!p) {
		const sm__preload_ops *ops = sm__preload();
		if (!ops || !ops->release(ptr))
			free(ptr);
		return;
	}
	int *g = sm__guard();
	int saved = *g;
	*g = 1;
	double t0 = sm__now();
	pthread_mutex_lock(&sm__lock);
	long i = amap_take(p, ptr);
	if (i >= 0) {
		sm__array *a = &p->arrays[i];
		a->live = 0;
		a->ptr = NULL;
		a->t_free = sm__now() - p->t0;
		a->freed_stage = p->nopen ? p->open[p->nopen - 1] : -1;
		p->live_req -= a->requested;
		p->live_alloc -= a->allocated;
		if (a->site >= 0)
			p->sites.v[a->site].live -= a->requested;
	}
	int own = i >= 0 && !p->arrays[i].external;
	/* its pages become dirty ones a later array may take (alloc_common checks that it does) */
	if (own && p->je && sm__je_reusable(ptr, p->arrays[i].allocated))
		p->dirty_kept += p->arrays[i].allocated;
	pthread_mutex_unlock(&sm__lock);
	*g = saved;
	if (own)
		sm__mem_free(ptr);
	else if (i < 0)
		free(ptr); /* not tracked: from sm_prof_alloc(NULL, ...) or plain malloc */
	/* an adopted array's memory is the program's to free */
	sm_prof_time_add(p, SM_PROF_PART_FREE, sm__now() - t0);
}

void sm_prof_time_add(sm_prof *p, sm_prof_part part, double seconds)
{
	if (!p || (unsigned)part >= SM_PROF_NPARTS || !(seconds > 0))
		return;
	pthread_mutex_lock(&sm__lock);
	for (size_t k = 0; k < p->nopen; k++)
		p->stages[p->open[k]].part_s[part] += seconds;
	pthread_mutex_unlock(&sm__lock);
}

int sm__prof_adopt(sm_prof *p, const char *name, const void *key, uint64_t bytes)
{
	if (!p || !key || bytes > (uint64_t)PTRDIFF_MAX)
		return SM_EINVAL;
	int rc = 0;
	int *g = sm__guard();
	int saved = *g;
	*g = 1;
	void *frames[SM__MAX_FRAMES];
	int nf = p->o.sites ? sm__capture(frames, p->sites.max_frames, 1) : 0;
	if (sm__py_frames && nf > 0)
		nf = sm__py_frames(frames, nf, p->sites.max_frames, 0); /* ctypes' frames say nothing */
	/* a large block glibc serves (large.c) has its own usable size; else jemalloc's class */
	size_t usable;
	uint64_t allocated = sm__large_maybe(key) && sm__large_lookup(key, &usable)
				     ? usable
				     : sm_prof_nallocx(bytes);
	pthread_mutex_lock(&sm__lock);
	long dup = amap_take(p, (void *)key);
	if (dup >= 0) {
		amap_insert(p, (void *)key, (uint32_t)dup); /* cannot fail: the slot was just freed */
		rc = SM_EINVAL;
		goto unlock;
	}
	if (grow((void **)&p->arrays, &p->cap_arrays, p->narrays + 1, sizeof(sm__array)) != 0 ||
	    amap_insert(p, (void *)key, (uint32_t)p->narrays) != 0) {
		rc = SM_ENOMEM;
		goto unlock;
	}
	sm__sample_forget_locked((void *)key); /* a sampled block now counted as the array */
	array_live(p, name ? name : "", bytes, allocated, (void *)key, frames, nf)->external = 1;
unlock:
	pthread_mutex_unlock(&sm__lock);
	*g = saved;
	return rc;
}

int sm__prof_disown(sm_prof *p, const void *key)
{
	if (!p || !key)
		return SM_EINVAL;
	int rc = SM_EINVAL;
	int *g = sm__guard();
	int saved = *g;
	*g = 1;
	pthread_mutex_lock(&sm__lock);
	long i = amap_take(p, (void *)key);
	if (i >= 0 && !p->arrays[i].external) {
		/* the profiler's own array: put it back, sm_prof_release is its way out */
		amap_insert(p, (void *)key, (uint32_t)i);
	} else if (i >= 0) {
		sm__array *a = &p->arrays[i];
		a->live = 0;
		a->ptr = NULL;
		a->t_free = sm__now() - p->t0;
		a->freed_stage = p->nopen ? p->open[p->nopen - 1] : -1;
		p->live_req -= a->requested;
		p->live_alloc -= a->allocated;
		if (a->site >= 0)
			p->sites.v[a->site].live -= a->requested;
		rc = 0;
	}
	pthread_mutex_unlock(&sm__lock);
	*g = saved;
	return rc;
}

uint64_t sm_prof_live_requested(const sm_prof *p)
{
	return p ? p->live_req : 0;
}

void sm_prof_inject_failure(sm_prof *p, const char *name, uint64_t n)
{
	if (!p)
		return;
	p->inject_left = n;
	p->inject_named = name != NULL && n != 0;
	snprintf(p->inject_name, sizeof(p->inject_name), "%s", name ? name : "");
}

/* ---- metadata ------------------------------------------------------------------------------ */

static char *dup_raw(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = sm__raw_alloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

static const char *const reserved[] = { "schema", "complete", "incomplete_reason", "allocator",
					"options", "baseline", "stages", "arrays", "sites",
					"timeline", "profiler", "leaks" };

int sm_prof_set_meta(sm_prof *p, const char *key, const char *json_object_text)
{
	if (!p)
		return 0;
	if (!key || !json_object_text || !*key)
		return SM_EINVAL;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcmp(key, reserved[i]) == 0)
			return SM_EINVAL;
	int rc = SM_EINVAL;
	int *g = sm__guard();
	int saved = *g;
	*g = 1;
	json_error_t je;
	json_t *v = json_loads(json_object_text, JSON_REJECT_DUPLICATES, &je);
	if (!v || !json_is_object(v))
		goto out;
	char *text = dup_raw(json_object_text);
	if (!text) {
		rc = SM_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < p->nmeta; i++) {
		if (strcmp(p->meta[i].key, key) == 0) {
			sm__raw_free(p->meta[i].json);
			p->meta[i].json = text;
			rc = 0;
			goto out;
		}
	}
	sm__meta *m = sm__raw_realloc(p->meta, (p->nmeta + 1) * sizeof(*m));
	char *k = dup_raw(key);
	if (!m || !k) {
		if (m)
			p->meta = m;
		sm__raw_free(k);
		sm__raw_free(text);
		rc = SM_ENOMEM;
		goto out;
	}
	p->meta = m;
	p->meta[p->nmeta].key = k;
	p->meta[p->nmeta].json = text;
	p->nmeta++;
	rc = 0;
out:
	json_decref(v);
	*g = saved;
	return rc;
}

void sm_prof_mark_incomplete(sm_prof *p, const char *reason)
{
	if (!p)
		return;
	int *g = sm__guard();
	int saved = *g;
	*g = 1;
	p->incomplete = 1;
	sm__raw_free(p->incomplete_reason);
	p->incomplete_reason = dup_raw(reason ? reason : "unknown");
	*g = saved;
}

/* ---- read access --------------------------------------------------------------------------- */

size_t sm_prof_stage_count(const sm_prof *p)
{
	return p ? p->nstages : 0;
}

int sm_prof_stage_get(const sm_prof *p, size_t i, sm_prof_stage_info *out)
{
	if (!p || !out || i >= p->nstages)
		return SM_EINVAL;
	const sm__stage *st = &p->stages[i];
	memset(out, 0, sizeof(*out));
	out->id = st->id;
	out->instance = st->instance;
	out->depth = st->depth;
	out->parent = st->parent;
	out->open = st->open;
	out->requested_live_begin = st->req_begin;
	out->requested_live_end = st->req_end;
	out->requested_peak = st->req_peak;
	out->tracked_allocated_peak = st->tracked_alloc_peak;
	out->je_begin = st->je_begin;
	out->je_end = st->je_end;
	out->allocated_peak = st->alloc_peak;
	out->vm_rss_begin = st->rss_begin;
	out->vm_rss_end = st->rss_end;
	out->vm_hwm_end = st->hwm_end;
	out->t_begin = st->t_begin;
	out->wall_s = st->wall;
	out->cpu_s = st->cpu;
	memcpy(out->part_s, st->part_s, sizeof(out->part_s));
	return 0;
}

size_t sm_prof_array_count(const sm_prof *p)
{
	return p ? p->narrays : 0;
}

int sm_prof_array_get(const sm_prof *p, size_t i, sm_prof_array_info *out)
{
	if (!p || !out || i >= p->narrays)
		return SM_EINVAL;
	const sm__array *a = &p->arrays[i];
	out->name = a->name;
	out->stage = a->stage >= 0 ? p->stages[a->stage].id : "";
	out->instance = a->instance;
	out->requested = a->requested;
	out->allocated = a->allocated;
	out->live = a->live;
	out->site = a->site;
	return 0;
}
