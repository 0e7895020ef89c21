/*
 * `snapmem profile [--out DIR] [--follow-fork] -- CMD [ARGS...]`: measures any program, unchanged
 * (docs/PROFILE.md). CMD runs with libsnapmem-preload.so in LD_PRELOAD (jemalloc as its
 * allocator, the profiler's malloc layer, the timeline thread), which writes DIR/memory.json at the
 * program's exit (or when a signal kills it, marked incomplete); then this command writes
 * DIR/report.md, DIR/report.html and DIR/stacks.folded from it.
 *
 * Contract:
 *   - exit status: the program's own; 128+N when signal N killed it;
 *   - CMD not found or not executable: one line, exit 127, before anything is written;
 *   - DIR that cannot be created or written: one line, exit 2, before CMD starts;
 *   - no preload library (a build without jemalloc): one line, exit 2;
 *   - a program that ends without writing its document (SIGKILL, a deadlocked crash, a failed
 *     exec): this command writes a memory.json marked incomplete saying so, never leaves an old
 *     one behind (one that ends through _exit writes its own: src/preload/preload.c);
 *   - the program's stdin/stdout/stderr are its own; this command says one line on stderr at the
 *     end ("snapmem profile: peak ...; DIR/report.html"), after the program's output.
 * While the program runs, SIGINT and SIGQUIT are ignored here (they reach the program, as with
 * system()) and SIGTERM/SIGHUP are passed on to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <jansson.h>

#include "cli/cli.h"
#include "snapmem/measured.h"
#include "snapmem/units.h"

enum { PO_OUT = CLI_ID_FIRST, PO_FOLLOW, PO_PYLINES, PO_PRELOAD };

static const cli_opt profile_opts[] = {
	{"out", 0, CLI_DIR, "DIR", "./snapmem-profile",
	 "where the results go (created when missing; an earlier profile's outputs there are "
	 "replaced)", PO_OUT, 0},
	{"follow-fork", 0, CLI_FLAG, NULL, "off",
	 "measure every process the program starts too (DIR/memory.PID.json, added up in the "
	 "report); without it only the program's own process is measured", PO_FOLLOW, 0},
	{"python-lines", 0, CLI_FLAG, NULL, "off",
	 "Python programs: the sites of large allocations (1 MiB and more) and of snapmem.track'ed "
	 "arrays also name the script's own lines, and each stage records what Python's allocators "
	 "and numpy's data handed out (tracemalloc's quantity) beside its allocated peak",
	 PO_PYLINES, 0},
	{"preload", 0, CLI_FILE, "PATH", "beside this binary, else the installed one",
	 "the preload library (also $SNAPMEM_PRELOAD)", PO_PRELOAD, 0},
	{NULL, 0, CLI_FLAG, NULL, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_profile = {
	"profile", "measure any program (C, Python, ...) unchanged: peak, sites, leaks",
	"usage: snapmem profile [--out DIR] [--follow-fork] [--python-lines] [--] CMD [ARGS...]\n",
	"Runs CMD with snapmem's profiler preloaded (jemalloc as its allocator) and writes\n"
	"DIR/memory.json (schema snapmem.memory/1), DIR/report.md, DIR/report.html (flame graph of\n"
	"the peak, timeline) and DIR/stacks.folded. The whole process is the stage 'process'; the\n"
	"program's markers (Python: import snapmem; with snapmem.stage(\"load\"): ...; C: sm_prof_*\n"
	"with a NULL profiler) nest inside it. Options end at CMD. Exit status: the program's own\n"
	"(128+N when killed by signal N); 127 when CMD cannot be run; 2 when DIR cannot be written\n"
	"(docs/PROFILE.md).\n",
	profile_opts, 0, "CMD [ARGS...]", cmd_profile,
};

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

/* 0 when cmd names an executable regular file (directly or on PATH); else errno. */
static int check_command(const char *cmd)
{
	struct stat st;
	if (strchr(cmd, '/')) {
		if (stat(cmd, &st) != 0)
			return errno;
		if (!S_ISREG(st.st_mode))
			return EACCES;
		return access(cmd, X_OK) == 0 ? 0 : errno;
	}
	const char *path = getenv("PATH");
	int why = ENOENT;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);
		char full[PATH_MAX];
		if (snprintf(full, sizeof(full), "%.*s/%s", (int)n, n ? path : ".", cmd) <
		    (int)sizeof(full)) {
			if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
				if (access(full, X_OK) == 0)
					return 0;
				why = EACCES;
			}
		}
		path += n;
		if (*path == ':')
			path++;
	}
	return why;
}

/* Creates dir when missing, checks it can hold files, removes an earlier profile's outputs. */
static int prepare_dir(const char *dir, sm_error *err)
{
	struct stat st;
	char probe[PATH_MAX];
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return sm_error_set(err, SM_EIO, "'%s': cannot create the output directory: %s", dir,
				    strerror(errno));
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return sm_error_set(err, SM_EIO, "'%s': not a directory", dir);
	if ((size_t)snprintf(probe, sizeof(probe), "%s/.snapmem-probe.%ld", dir, (long)getpid()) >=
	    sizeof(probe) - 32)
		return sm_error_set(err, SM_EINVAL, "'%.200s...': path too long", dir);
	int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return sm_error_set(err, SM_EIO, "'%s': cannot write in the output directory: %s", dir,
				    strerror(errno));
	close(fd);
	unlink(probe);
	/* an earlier profile's documents would be read as this run's */
	DIR *d = opendir(dir);
	if (d) {
		for (struct dirent *e; (e = readdir(d)) != NULL;) {
			const char *n = e->d_name;
			size_t l = strlen(n);
			if ((strncmp(n, "memory.", 7) == 0 && l > 12 && strcmp(n + l - 5, ".json") == 0) ||
			    strcmp(n, "memory.json") == 0 || strcmp(n, "stacks.folded") == 0 ||
			    strcmp(n, "report.md") == 0 || strcmp(n, "report.html") == 0) {
				char p[PATH_MAX];
				if (snprintf(p, sizeof(p), "%s/%s", dir, n) < (int)sizeof(p))
					unlink(p);
			}
		}
		closedir(d);
	}
	return 0;
}

/* The child: the environment of a measured process, then exec; errno goes back through fd. */
static void run_child(char **cmd, const char *dir, const char *preload, int follow, int pylines,
		      int fd)
{
	char pid[32], *pre = NULL;
	const char *old = getenv("LD_PRELOAD");
	int e;
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	if (old && *old) {
		size_t n = strlen(preload) + strlen(old) + 2;
		pre = malloc(n);
		if (pre)
			snprintf(pre, n, "%s:%s", preload, old);
	}
	if (setenv("LD_PRELOAD", pre ? pre : preload, 1) != 0 ||
	    setenv("SNAPMEM_PROFILE_DIR", dir, 1) != 0 || setenv("SNAPMEM_PROFILE_PID", pid, 1) != 0 ||
	    (follow ? setenv("SNAPMEM_PROFILE_FOLLOW", "1", 1) : unsetenv("SNAPMEM_PROFILE_FOLLOW")) != 0 ||
	    (pylines ? setenv("SNAPMEM_PROFILE_PYTHON_LINES", "1", 1)
		     : unsetenv("SNAPMEM_PROFILE_PYTHON_LINES")) != 0 ||
	    /* Python's small-object allocator takes its arenas with mmap, out of jemalloc's sight:
	     * through malloc every Python object is measured (a program's own choice is kept) */
	    setenv("PYTHONMALLOC", getenv("PYTHONMALLOC") ? getenv("PYTHONMALLOC") : "malloc", 1) != 0) {
		e = errno;
		goto fail;
	}
	execvp(cmd[0], cmd);
	e = errno;
fail:
	if (write(fd, &e, sizeof(e)) != (ssize_t)sizeof(e))
		_exit(127);
	_exit(127);
}

/* A document for a program that ended without writing its own. */
static int write_fallback(const char *path, char **cmd, pid_t pid, int status, sm_error *err)
{
	char why[256];
	if (WIFSIGNALED(status))
		snprintf(why, sizeof(why),
			 "killed by signal %d (SIG%s) before the profiler could write its document",
			 WTERMSIG(status), sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
	else
		snprintf(why, sizeof(why),
			 "the program ended (exit status %d) without its exit handlers and without "
			 "_exit (a raw exit_group system call, or a failed exec), so the profiler "
			 "wrote no document",
			 WEXITSTATUS(status));
	json_t *argv = json_array();
	for (char **a = cmd; *a; a++)
		json_array_append_new(argv, json_string(*a));
	json_t *doc = json_pack("{s:s,s:b,s:s,s:{s:s,s:n,s:b},s:{},s:[],s:[],s:[],s:[],s:{},s:{s:o}}",
				"schema", "snapmem.memory/1", "complete", 0, "incomplete_reason", why,
				"allocator", "name", "jemalloc", "version", "measured", 0, "baseline",
				"stages", "arrays", "sites", "leaks", "profiler", "command", "argv", argv);
	if (doc)  /* the process that wrote nothing: the one snapmem profile started */
		json_object_set_new(json_object_get(doc, "command"), "pid",
				    json_integer((json_int_t)pid));
	if (doc)
		json_object_set_new(doc, "exit",
				    json_pack("{s:i,s:i}", "status",
					      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
					      "signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0));
	char *text = doc ? json_dumps(doc, JSON_INDENT(1)) : NULL;
	json_decref(doc);
	if (!text)
		return sm_error_set(err, SM_ENOMEM, "'%s': cannot build the document", path);
	size_t n = strlen(text);
	char *nl = malloc(n + 2);
	int rc;
	if (!nl) {
		free(text);
		return sm_error_set(err, SM_ENOMEM, "'%s': cannot build the document", path);
	}
	memcpy(nl, text, n);
	memcpy(nl + n, "\n", 2);
	rc = sm_report_write_text(path, nl, err);
	free(nl);
	free(text);
	return rc;
}

/* Adds {"exit": {"status", "signal"}} to the document the program wrote (atomically). */
static int record_exit(const char *path, int status, sm_error *err)
{
	json_error_t je;
	json_t *doc = json_load_file(path, 0, &je);
	if (!doc || !json_is_object(doc)) {
		json_decref(doc);
		return sm_error_set(err, SM_EFORMAT, "'%s': the program's document cannot be read: %s",
				    path, je.text);
	}
	/* the program's own "via" (_exit, _Exit: written by the preloaded library) is kept */
	json_t *via = json_object_get(json_object_get(doc, "exit"), "via");
	json_t *ex = json_pack("{s:i,s:i}", "status",
			       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
			       "signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	if (ex && json_is_string(via))
		json_object_set(ex, "via", via);
	json_object_set_new(doc, "exit", ex);
	if (WIFSIGNALED(status) && json_is_true(json_object_get(doc, "complete"))) {
		/* written by the program's own exit path, then killed: not the whole run */
		json_object_set_new(doc, "complete", json_false());
		json_object_set_new(doc, "incomplete_reason",
				    json_string("killed by a signal after the document was written"));
	}
	char *text = json_dumps(doc, JSON_INDENT(1) | JSON_COMPACT | JSON_REAL_PRECISION(9));
	json_decref(doc);
	if (!text)
		return sm_error_set(err, SM_ENOMEM, "'%s': cannot rewrite the document", path);
	size_t n = strlen(text);
	char *nl = malloc(n + 2);
	int rc = SM_ENOMEM;
	if (nl) {
		memcpy(nl, text, n);
		memcpy(nl + n, "\n", 2);
		rc = sm_report_write_text(path, nl, err);
	} else {
		sm_error_set(err, SM_ENOMEM, "'%s': cannot rewrite the document", path);
	}
	free(nl);
	free(text);
	return rc;
}

/* Removes temporary files a killed process left in dir: the shared writer's
 * (".memory*.json.snapmem-tmp.PID.RANDOM", outfile.h) when PID is gone, and older versions'
 * ("memory.json.tmp.PID"). */
static void remove_temporaries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		long tpid = sm_out_temp_pid(e->d_name);

		if ((strncmp(e->d_name, "memory.", 7) == 0 && strstr(e->d_name, ".json.tmp.")) ||
		    (tpid > 0 && strncmp(e->d_name, ".memory", 7) == 0 &&
		     strstr(e->d_name, ".json.snapmem-tmp.") != NULL && kill((pid_t)tpid, 0) != 0 &&
		     errno == ESRCH)) {
			char p[PATH_MAX];
			if (snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) < (int)sizeof(p))
				unlink(p);
		}
	}
	closedir(d);
}

int cmd_profile(int argc, char **argv)
{
	const char *out = "snapmem-profile", *given_preload = NULL;
	char preload[PATH_MAX], dir[PATH_MAX], mem[PATH_MAX + 16];
	int follow = 0, pylines = 0, i, status = 0, fallback = 0, pipefd[2] = { -1, -1 };
	sm_error err = { 0 };
	struct sigaction ign, old_int, old_quit, fwd, old_term, old_hup;

	cli_parser p;
	const cli_opt *o;
	const char *val;
	char **cmd = NULL;
	int rc;
	cli_parser_init(&p, &cli_cmd_profile, argc, argv);
	while (!cmd && (rc = cli_next(&p, &o, &val)) != CLI_END) {
		if (rc < 0)
			return cli_parse_status(rc);
		if (rc == CLI_OPERAND) {
			/* CMD: everything from here on is the program's, options included */
			i = p.ended ? p.next_operand - 1 : optind - 1;
			cmd = argv + i;
		} else if (o->id == PO_OUT) {
			out = val;
		} else if (o->id == PO_FOLLOW) {
			follow = 1;
		} else if (o->id == PO_PYLINES) {
			pylines = 1;
		} else if (o->id == PO_PRELOAD) {
			given_preload = val;
		}
	}
	if (!cmd)
		return cli_parse_error(&p, "no command to profile");
	/* read by the preload library, which cannot say that it is wrong: checked here */
	const char *large = getenv("SNAPMEM_PROFILE_LARGE");
	uint64_t large_min;
	if (large && strcmp(large, "off") != 0 &&
	    (sm_parse_size("SNAPMEM_PROFILE_LARGE", large, &large_min, &err) != 0 || large_min == 0 ||
	     large_min > (uint64_t)PTRDIFF_MAX)) {
		sm_error_set(&err, SM_EINVAL,
			     "'SNAPMEM_PROFILE_LARGE': '%s' is neither a size from 1B up (e.g. 1M) nor "
			     "'off'",
			     large);
		return cli_fail(&err);
	}
	int why = check_command(cmd[0]);
	if (why != 0) {
		fprintf(stderr, "snapmem profile: '%s': %s\n", cmd[0],
			why == ENOENT ? "command not found" : strerror(why));
		return 127;
	}
	if (!cli_companion(given_preload, "SNAPMEM_PRELOAD", "libsnapmem-preload.so", preload,
			   sizeof(preload))) {
		fprintf(stderr, "snapmem profile: '%s': the preload library is missing (it is built "
				"with jemalloc: make; not in sanitizer or valgrind builds)\n",
			preload);
		return 2;
	}
	if (prepare_dir(out, &err) != 0)
		return cli_fail(&err);
	if (!realpath(out, dir)) {
		sm_error_set(&err, SM_EIO, "'%s': cannot resolve: %s", out, strerror(errno));
		return cli_fail(&err);
	}
	if (preload[0] != '/') {
		char abs[PATH_MAX];
		if (realpath(preload, abs))
			snprintf(preload, sizeof(preload), "%s", abs);
	}
	snprintf(mem, sizeof(mem), "%s/memory.json", dir);

	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		sm_error_set(&err, SM_EIO, "cannot create a pipe: %s", strerror(errno));
		return cli_fail(&err);
	}
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	memset(&fwd, 0, sizeof(fwd));
	fwd.sa_handler = forward;
	sigaction(SIGTERM, &fwd, &old_term);
	sigaction(SIGHUP, &fwd, &old_hup);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		sm_error_set(&err, SM_EIO, "cannot start '%s': %s", cmd[0], strerror(errno));
		status = cli_fail(&err);
		goto restore;
	}
	if (pid == 0) {
		close(pipefd[0]);
		run_child(cmd, dir, preload, follow, pylines, pipefd[1]);
	}
	child_pid = pid;
	close(pipefd[1]);
	pipefd[1] = -1;
	int exec_errno = 0;
	ssize_t got;
	do
		got = read(pipefd[0], &exec_errno, sizeof(exec_errno));
	while (got < 0 && errno == EINTR);
	close(pipefd[0]);
	int ws = 0;
	while (waitpid(pid, &ws, 0) < 0) {
		if (errno != EINTR) {
			sm_error_set(&err, SM_EIO, "'%s': cannot wait for it: %s", cmd[0], strerror(errno));
			status = cli_fail(&err);
			goto restore;
		}
	}
	child_pid = 0;
	if (got == (ssize_t)sizeof(exec_errno)) {
		fprintf(stderr, "snapmem profile: '%s': %s\n", cmd[0],
			exec_errno == ENOENT ? "command not found" : strerror(exec_errno));
		status = 127;
		goto restore;
	}
	status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);

	remove_temporaries(dir);
	fallback = access(mem, F_OK) != 0;
	rc = !fallback ? record_exit(mem, ws, &err) : write_fallback(mem, cmd, pid, ws, &err);
	if (rc == 0)
		rc = sm_measured_write_files(dir, &err);
	if (rc != 0) {
		int code = cli_fail(&err);
		if (status == 0)
			status = code;
		goto restore;
	}
	if (fallback) {  /* no figures of the main process: not "peak 0 B" */
		fprintf(stderr, "snapmem profile: INCOMPLETE: the program wrote no document (%s), no "
			"figures of it; %s/report.html\n", WIFSIGNALED(ws) ? "killed by a signal the "
			"profiler could not catch" : "a raw exit system call, or a failed exec", dir);
		goto restore;
	}
	{
		sm_measured *m = NULL;
		char *json = NULL;
		if (sm_measured_load(dir, &m, &err) == 0 &&
		    sm_measured_render(m, SM_REPORT_JSON, &json, &err) == 0) {
			json_t *j = json_loads(json, 0, NULL);
			json_t *p0 = json_array_get(json_object_get(j, "processes"), 0);
			char a[32], b[32], c[32];
			const char *stage = json_string_value(json_object_get(p0, "peak_stage"));
			fprintf(stderr, "snapmem profile: %s%speak %s allocated (%s above the baseline)%s%s%s, "
					"VmHWM %s; %s/report.html\n",
				json_is_true(json_object_get(p0, "complete")) ? "" : "INCOMPLETE: ",
				json_array_size(json_object_get(j, "processes")) > 1 ? "main process " : "",
				sm_format_iec((uint64_t)json_integer_value(json_object_get(p0, "allocated_peak")), a, sizeof(a)),
				sm_format_iec((uint64_t)json_integer_value(json_object_get(p0, "allocated_above_baseline")), b, sizeof(b)),
				stage ? " in stage '" : "", stage ? stage : "", stage ? "'" : "",
				sm_format_iec((uint64_t)json_integer_value(json_object_get(p0, "vm_hwm")), c, sizeof(c)),
				dir);
			json_decref(j);
		}
		free(json);
		sm_measured_free(m);
	}
restore:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	return status;
}
