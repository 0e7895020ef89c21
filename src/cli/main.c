/*
 * snapmem: the command-line entry point. A table of subcommands dispatched in one place; each
 * subcommand lives in its own cmd_*.c with its own synopsis and option table (src/cli/opts.h),
 * from which its --help, `snapmem help CMD` and the bash completion are generated.
 *
 * Exit status of the dispatcher itself (docs/CLI.md has the whole table): 0 for --help and
 * --version, 2 for no command or an unknown global option, 127 for an unknown command (one line
 * naming it and the closest command).
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <hdf5.h>

#include "cli/cli.h"
#include "snapmem/profiler.h"

/*
 * jemalloc's options for this program (read at its start, before MALLOC_CONF, which overrides
 * them): one ordinary arena. snapmem's own allocations come from one thread (the worker threads
 * and the timeline's sampler never allocate after start), so a second arena only costs: the
 * profiler's readings merge every arena's statistics at each stage boundary (an epoch write), and
 * the sampler thread's start gave it an arena of its own, a third (with the oversize arena) to
 * merge. bench/benchmark-overhead sets the same.
 */
const char *malloc_conf = "narenas:1";

const cli_cmd *const cli_commands[] = {
	&cli_cmd_estimate, &cli_cmd_tradeoff, &cli_cmd_run,  &cli_cmd_report,
	&cli_cmd_profile,  &cli_cmd_diff,     &cli_cmd_info, &cli_cmd_mock,
	&cli_cmd_help,     &cli_cmd_completion,
};

const size_t cli_ncommands = sizeof(cli_commands) / sizeof(cli_commands[0]);

const cli_cmd *cli_find_command(const char *name)
{
	size_t i;

	for (i = 0; i < cli_ncommands; i++)
		if (strcmp(name, cli_commands[i]->name) == 0)
			return cli_commands[i];
	return NULL;
}

int cli_unknown_command(const char *name)
{
	const char *names[16], *best;
	size_t i;

	for (i = 0; i < cli_ncommands && i < 16; i++)
		names[i] = cli_commands[i]->name;
	best = cli_closest(name, names, i);
	if (best != NULL)
		fprintf(stderr, "snapmem: '%s' is not a snapmem command; did you mean '%s'? (see "
			"'snapmem help')\n", name, best);
	else {
		fprintf(stderr, "snapmem: '%s' is not a snapmem command (commands:", name);
		for (i = 0; i < cli_ncommands; i++)
			fprintf(stderr, "%s %s", i > 0 ? "," : "", cli_commands[i]->name);
		fprintf(stderr, ")\n");
	}
	return 127;
}

void cli_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: snapmem <command> [options]\n"
		"       snapmem help <command>   (or snapmem <command> --help): every option and its "
		"default\n\n");
	for (i = 0; i < cli_ncommands; i++)
		fprintf(f, "  %-10s %s\n", cli_commands[i]->name, cli_commands[i]->summary);
	fprintf(f, "\nExit status: 0 done, 1 negative verdict, 2 bad input or usage, 3 out of memory,\n"
		"127 unknown command, 128+N stopped by signal N (docs/CLI.md).\n");
}

int cli_fail(const sm_error *err)
{
	fprintf(stderr, "snapmem: %s\n",
		err->msg[0] != '\0' ? err->msg : sm_strerror(err->code));
	return sm_exit_code(err);
}

int cli_usage_error(const char *cmd, const char *usage_text, const char *fmt, ...)
{
	va_list ap;

	(void)usage_text;
	fprintf(stderr, "snapmem %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'snapmem %s --help')\n", cmd);
	return 2;
}

/*
 * A subcommand runs on the main thread, unless the stack limit (`ulimit -s`) is below
 * COMMAND_STACK: then on a thread with a COMMAND_STACK stack of its own (a thread's stack is not
 * bound by RLIMIT_STACK), since HDF5's and the libraries' call depths are not ours to bound. When
 * that thread cannot be made, exit 3 with the reason rather than a stack overflow later.
 */
#define COMMAND_STACK (UINT64_C(2) << 20)

struct command_call {
	int (*fn)(int argc, char **argv);
	int argc;
	char **argv;
	int status;
};

static void *command_thread(void *arg)
{
	struct command_call *c = arg;

	c->status = c->fn(c->argc, c->argv);
	return NULL;
}

static int run_command(int (*fn)(int, char **), int argc, char **argv)
{
	struct command_call c = {fn, argc, argv, 0};
	struct rlimit rl;
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= COMMAND_STACK)
		return fn(argc, argv);
	rc = pthread_attr_init(&attr);
	if (rc == 0) {
		rc = pthread_attr_setstacksize(&attr, (size_t)COMMAND_STACK);
		if (rc == 0)
			rc = pthread_create(&th, &attr, command_thread, &c);
		pthread_attr_destroy(&attr);
	}
	if (rc != 0) {
		fprintf(stderr, "snapmem: the stack limit (ulimit -s) is %llu KiB and a thread with a "
			"%llu KiB stack cannot be made: %s\n", (unsigned long long)rl.rlim_cur / 1024,
			(unsigned long long)COMMAND_STACK / 1024, strerror(rc));
		return 3;
	}
	pthread_join(th, NULL);
	return c.status;
}

int main(int argc, char **argv)
{
	const cli_cmd *c;
	int status;
	sm_error err;

	/* A file grown past `ulimit -f` is a write error (EFBIG, exit 2 naming the file), not death
	 * by SIGXFSZ with the temporary file left behind. */
	signal(SIGXFSZ, SIG_IGN);
	/* Under a tight `ulimit -v` the allocator may have been kept from starting (profiler.h). */
	sm_error_clear(&err);
	if (sm_prof_allocator_ready(&err) != 0)
		return cli_fail(&err);
	if (argc < 2) {
		cli_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		cli_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("snapmem 0.1.0\n");
		return 0;
	}
	if (argv[1][0] == '-') {
		fprintf(stderr, "snapmem: unknown option '%s' before the command (see 'snapmem help')\n",
			argv[1]);
		return 2;
	}
	c = cli_find_command(argv[1]);
	if (c == NULL)
		return cli_unknown_command(argv[1]);
	/* HDF5 1.10 keeps a file whose close failed (a full disk: EFBIG, ENOSPC) in its id table and
	 * crashes closing it again in its atexit handler: so no atexit handler, and the library is
	 * shut down here after a success only (an error exits without). */
	H5dont_atexit();
	status = run_command(c->fn, argc - 1, argv + 1);
	if (status == 0)
		H5close();
	return status;
}
