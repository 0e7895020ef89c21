/*
 * libsnapmem-preload.so: the profiler inside any program, started by `snapmem profile` through
 * LD_PRELOAD (docs/PROFILE.md). Linked against libjemalloc, so that jemalloc serves the whole
 * process, with the profiler's malloc layer (src/profiler/interpose.c) in front of it: being
 * preloaded, its malloc family comes before glibc's and every library's calls reach it.
 *
 * Environment, set by `snapmem profile` (without SNAPMEM_PROFILE_DIR the library is only the
 * allocator and measures nothing):
 *   SNAPMEM_PROFILE_DIR     where the document goes
 *   SNAPMEM_PROFILE_PID     the process `snapmem profile` started: it writes DIR/memory.json
 *   SNAPMEM_PROFILE_FOLLOW  "1": every other process (forked, or exec'd with the environment
 *                           inherited) is measured too and writes DIR/memory.PID.json
 *   SNAPMEM_PROFILE_PYTHON_LINES  "1": a CPython process's large allocations and tracked arrays
 *                           also name the script's lines (pylines.c)
 *
 * Life of a measured process: a constructor creates the profiler (baseline, sampling layer,
 * timeline thread) and opens the stage "process" that spans the program; the program's markers
 * (sm_prof_* with a NULL profiler, or the Python module through ctypes; see sm_preload_ops) nest
 * inside it. At exit (an atexit handler) every open stage is ended and the document written
 * (temporary file and rename). On a fatal or terminating signal left at its default action the
 * document is written marked incomplete ("killed by signal N"), guarded by a 5 s alarm, and the
 * signal is raised again with its default action, so the exit status is the program's own. A fork
 * child that is not followed stops sampling and never writes; a followed one starts a profiler of
 * its own (the parent's books are left behind, not freed: its threads do not exist in the child).
 *
 * Two ends skip the exit handlers and are caught here by name, since being preloaded this library's
 * definitions come first: `_exit`/`_Exit` (Python's os._exit, every multiprocessing worker started
 * by fork, dash's `exit`) write the document complete, with "exit": {"status", "via": "_exit"};
 * `kill` of the process itself with a terminating signal left at its default action (CPython
 * after an uncaught KeyboardInterrupt: it finalizes, restores SIGINT's default and sends it to
 * itself) writes it marked incomplete with that signal. glibc's own exit path calls its internal
 * _exit, not this one.
 */
#include "common/parallel.h"
#include "preload/pydomains.h"
#include "profiler/prof-internal.h"
#include "snapmem/units.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static sm_prof *prof;
static pid_t owner;
static int follow;
static int written;
static int hooks_done;
static char dir[PATH_MAX];
static volatile sig_atomic_t fatal_sig;
static volatile sig_atomic_t in_fatal;
static volatile sig_atomic_t exit_status;

static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTERM,
				     SIGINT, SIGHUP, SIGQUIT, SIGXCPU, SIGXFSZ };

/* The profiler of this process, when this process is the one measured by it (a forked child is
 * not): asked at every stage marker and tracked allocation, so no system call (sm__pid). */
static sm_prof *mine(void)
{
	return prof && owner == sm__pid() ? prof : NULL;
}

/* ---- entry points for markers (sm_prof_* with NULL, the Python module) ---------------------- */

static int op_begin(const char *id, int64_t instance)
{
	sm_prof *p = mine();
	int rc = p ? sm_prof_stage_begin(p, id, instance) : 0;
	if (p && rc == 0)
		sm__pydomains_begin(id, instance);
	return rc;
}

static int op_end(void)
{
	sm_prof *p = mine();
	if (!p)
		return 0;
	if (p->nopen <= 1)
		return SM_EINVAL; /* "process" is ended at exit only */
	int rc = sm_prof_stage_end(p);
	if (rc == 0)
		sm__pydomains_end();
	return rc;
}

static void *op_alloc(const char *name, uint64_t bytes, int zero)
{
	sm_prof *p = mine();
	sm_error err = { 0 };
	if (!p)
		return zero ? calloc(bytes ? bytes : 1, 1) : malloc(bytes ? bytes : 1);
	return zero ? sm_prof_calloc(p, name, bytes, 1, &err) : sm_prof_alloc(p, name, bytes, &err);
}

static int op_release(void *ptr)
{
	sm_prof *p = mine();
	if (!p)
		return 0;
	sm_prof_release(p, ptr);
	return 1;
}

static int op_track(const char *name, const void *key, uint64_t bytes)
{
	sm_prof *p = mine();
	return p ? sm__prof_adopt(p, name, key, bytes) : 0;
}

static int op_untrack(const void *key)
{
	sm_prof *p = mine();
	return p ? sm__prof_disown(p, key) : 0;
}

static const sm__preload_ops ops = { 1, op_begin, op_end, op_alloc, op_release, op_track,
				     op_untrack };

/* Exported: the entry points while this process is measured, NULL otherwise. */
__attribute__((visibility("default"))) const sm__preload_ops *sm_preload_ops(void)
{
	return mine() ? &ops : NULL;
}

/* Exported for the Python module (--python-lines): Python's own allocators counted per stage
 * from now on (pydomains.c); 0 when this process is not measured with that option. */
__attribute__((visibility("default"))) int sm_preload_python(void *const *numpy_api)
{
	return mine() ? sm__pydomains_start(numpy_api) : 0;
}

/* ---- the document ------------------------------------------------------------------------ */

static void write_out(const char *incomplete_reason)
{
	sm_prof *p = mine();
	char path[PATH_MAX + 32];
	sm_error err = { 0 };
	if (!p || written)
		return;
	written = 1;
	int *g = sm__guard(); /* the document's own allocations are not the program's */
	int saved = *g;
	*g = 1;
	char *py = sm__pydomains_json();
	*g = saved;
	if (py)
		sm_prof_set_meta(p, "python_allocators", py);
	free(py);
	if (incomplete_reason)
		sm_prof_mark_incomplete(p, incomplete_reason);
	else
		while (p->nopen > 0 && sm_prof_stage_end(p) == 0)
			;
	if (owner == (pid_t)atol(getenv("SNAPMEM_PROFILE_PID") ? getenv("SNAPMEM_PROFILE_PID") : "0"))
		snprintf(path, sizeof(path), "%s/memory.json", dir);
	else
		snprintf(path, sizeof(path), "%s/memory.%ld.json", dir, (long)owner);
	/* nothing to report to: the program's own output is not ours to write on; `snapmem profile`
	 * notices a missing document and says so */
	(void)sm_prof_write_json(p, path, &err);
}

/* The signals another process sends to end this one: held back while the document is written (a
 * multiprocessing pool's terminate() sends SIGTERM to workers already in os._exit), delivered
 * after it when the process goes on; the synchronous ones (SIGSEGV...) cannot wait. */
static void block_ending_signals(sigset_t *old)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGHUP);
	sigaddset(&s, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &s, old);
}

static void at_exit(void)
{
	sigset_t old;
	block_ending_signals(&old);
	write_out(NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void unblock(int sig)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
}

/* The kernel's exit, not this library's _exit below. */
__attribute__((noreturn)) static void leave(int status)
{
	for (;;) {
		syscall(SYS_exit_group, status);
		syscall(SYS_exit, status);
	}
}

static void die_again(int sig)
{
	signal(sig, SIG_DFL);
	unblock(sig);
	raise(sig);
	leave(128 + sig); /* a signal whose default is to be ignored cannot end us: say it anyway */
}

/* The document took too long (a lock held by the interrupted code): give up on it. */
static void on_alarm(int sig)
{
	(void)sig;
	die_again(fatal_sig ? fatal_sig : SIGALRM);
}

static void on_fatal(int sig)
{
	if (in_fatal++)
		die_again(sig);
	fatal_sig = sig;
	signal(SIGALRM, on_alarm);
	alarm(5);
	char why[96];
	const char *abbrev = sigabbrev_np(sig);
	snprintf(why, sizeof(why), "killed by signal %d (SIG%s) before the program ended", sig,
		 abbrev ? abbrev : "?");
	if (mine() && !written) { /* a followed child's own end; the main one's is `snapmem profile`'s */
		char meta[64];
		snprintf(meta, sizeof(meta), "{\"status\":%d,\"signal\":%d}", 128 + sig, sig);
		sm_prof_set_meta(mine(), "exit", meta);
	}
	write_out(why);
	alarm(0);
	die_again(sig);
}

/* ---- ends that skip the exit handlers ---------------------------------------------------- */

/* The document took too long at _exit (a lock held by code a signal handler interrupted). */
static void on_exit_alarm(int sig)
{
	(void)sig;
	leave(exit_status);
}

/* Writes the document, bounded by a 5 s alarm like a fatal signal's, unless already written; the
 * signals that end a process wait until it is written (the caller is ending it anyway). */
static void write_bounded(const char *incomplete_reason)
{
	struct sigaction sa, old;
	sigset_t mask;
	block_ending_signals(&mask);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_exit_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old);
	unblock(SIGALRM);
	alarm(5);
	write_out(incomplete_reason);
	alarm(0);
	sigaction(SIGALRM, &old, NULL);
	pthread_sigmask(SIG_SETMASK, &mask, NULL);
}

__attribute__((noreturn)) static void end_now(int status, const char *via)
{
	sm_prof *p = mine();
	exit_status = status & 0xff;
	if (p && !written && !in_fatal) {
		char meta[96];
		snprintf(meta, sizeof(meta), "{\"status\":%d,\"signal\":0,\"via\":\"%s\"}",
			 status & 0xff, via);
		sm_prof_set_meta(p, "exit", meta);
		block_ending_signals(NULL); /* a SIGTERM after the write: the process is gone already */
		write_bounded(NULL);
	}
	leave(status);
}

/* os._exit, multiprocessing's fork workers, a vfork child (not measured: mine() is NULL there) */
__attribute__((visibility("default"), noreturn)) void _exit(int status)
{
	end_now(status, "_exit");
}

__attribute__((visibility("default"), noreturn)) void _Exit(int status)
{
	end_now(status, "_Exit");
}

static int is_fatal(int sig)
{
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
		if (fatal_signals[i] == sig)
			return 1;
	return 0;
}

/* A process that sends itself a terminating signal at its default action: the document first. */
__attribute__((visibility("default"))) int kill(pid_t pid, int sig)
{
	struct sigaction cur;
	sigset_t blocked;
	if (pid == getpid() && is_fatal(sig) && mine() && !written && !in_fatal &&
	    sigaction(sig, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL &&
	    !(cur.sa_flags & SA_SIGINFO) && pthread_sigmask(SIG_BLOCK, NULL, &blocked) == 0 &&
	    !sigismember(&blocked, sig)) {
		char why[160];
		const char *abbrev = sigabbrev_np(sig);
		snprintf(why, sizeof(why),
			 "ended by signal %d (SIG%s) that the program sent itself%s", sig,
			 abbrev ? abbrev : "?",
			 sig == SIGINT ? " (Python: an uncaught KeyboardInterrupt, Ctrl-C)" : "");
		write_bounded(why);
	}
	return (int)syscall(SYS_kill, pid, sig);
}

static void install_signals(void)
{
	/* an alternate stack, so that a stack overflow's SIGSEGV can still write (main thread) */
	static const size_t alt = 4 << 20; /* jansson, libdw (dlopen) and the write: untouched pages cost nothing */
	void *m = mmap(NULL, alt, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m != MAP_FAILED) {
		stack_t st = { .ss_sp = m, .ss_size = alt, .ss_flags = 0 };
		sigaltstack(&st, NULL);
	}
	/* CPython installs its KeyboardInterrupt handler only where SIGINT is at its default: left
	 * to it, a Ctrl-C runs the program's own except/finally, and the kill() above writes */
	int python = dlsym(RTLD_DEFAULT, "Py_IsInitialized") != NULL;
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++) {
		struct sigaction old, sa;
		if (python && fatal_signals[i] == SIGINT)
			continue;
		if (sigaction(fatal_signals[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL ||
		    (old.sa_flags & SA_SIGINFO))
			continue; /* the program's own handler (or an ignored signal) stays */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_fatal;
		sa.sa_flags = SA_ONSTACK | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		sigaction(fatal_signals[i], &sa, NULL);
	}
}

/* The command line, pid and parent, as the document's "command" object. */
static void set_command_meta(sm_prof *p, int is_main)
{
	char buf[8192];
	json_t *argv = json_array();
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(buf + i) + 1) {
			buf[n] = '\0';
			json_array_append_new(argv, json_string(buf + i));
		}
	}
	json_t *o = json_pack("{s:o,s:I,s:I,s:b,s:b}", "argv", argv, "pid", (json_int_t)getpid(),
			      "parent_pid", (json_int_t)getppid(), "main", is_main, "follow_fork",
			      follow);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (text)
		sm_prof_set_meta(p, "command", text);
	free(text);
	json_decref(o);
}

static void start(int is_main)
{
	sm_error err = { 0 };
	sm_prof *p = NULL;
	if (sm_prof_create(NULL, &p, &err) != 0)
		return; /* not measured: `snapmem profile` reports the missing document */
	prof = p;
	owner = sm__pid();
	written = 0;
	set_command_meta(p, is_main);
	sm_prof_stage_begin(p, "process", -1);
}

/* fork: the sampling tables and the profiler lock must not be copied mid-update */
static void fork_prepare(void)
{
	sm__pydomains_prefork();
	pthread_mutex_lock(&sm__lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&sm__lock);
	sm__pydomains_postfork(0);
}

static void fork_child(void)
{
	pthread_mutex_unlock(&sm__lock);
	sm__pydomains_postfork(1);
	if (!prof)
		return;
	/* the parent's profiler stays behind, unfreed: its timeline thread is not in this process */
	sm__sampling_stop(prof);
	prof = NULL;
	if (follow)
		start(0);
}

/*
 * Large requests go to glibc (src/profiler/large.c) from here on, in every process that carries
 * this library, measured or not: SNAPMEM_PROFILE_LARGE = a size (e.g. 1M; default 128 KiB) or
 * "off" (jemalloc serves everything); `snapmem profile` refuses other values before the program
 * starts, and one that gets here anyway means the default.
 */
static void large_init(void)
{
	const char *v = getenv("SNAPMEM_PROFILE_LARGE");
	uint64_t min = SM__LARGE_DEFAULT;
	sm_error err = { 0 };
	if (v && strcmp(v, "off") == 0)
		return;
	if (v && *v && (sm_parse_size("SNAPMEM_PROFILE_LARGE", v, &min, &err) != 0 || min == 0 ||
			min > (uint64_t)PTRDIFF_MAX))
		min = SM__LARGE_DEFAULT;
	sm__large_enable((size_t)min);
}

__attribute__((constructor)) static void preload_init(void)
{
	large_init();
	const char *d = getenv("SNAPMEM_PROFILE_DIR");
	const char *top = getenv("SNAPMEM_PROFILE_PID");
	const char *fol = getenv("SNAPMEM_PROFILE_FOLLOW");
	if (!d || !*d || strlen(d) >= sizeof(dir))
		return;
	snprintf(dir, sizeof(dir), "%s", d);
	follow = fol && strcmp(fol, "1") == 0;
	const char *pyl = getenv("SNAPMEM_PROFILE_PYTHON_LINES");
	if (pyl && strcmp(pyl, "1") == 0) {
		sm__pylines_enable();
		sm__pydomains_enable();
	}
	int is_main = top && (pid_t)atol(top) == getpid();
	if (!is_main && !follow)
		return;
	start(is_main);
	if (!prof || hooks_done)
		return;
	hooks_done = 1;
	atexit(at_exit);
	install_signals();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}
