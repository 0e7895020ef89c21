/*
 * snapmem: the command-line entry point. A table of subcommands dispatched in one place; each
 * subcommand lives in its own cmd_*.c with its own usage text and options.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <hdf5.h>

#include "cli/cli.h"

/* Weak so that the binary links while a subcommand is being written; a missing one says so. */
#pragma weak cmd_info
#pragma weak cmd_mock
#pragma weak cmd_estimate
#pragma weak cmd_tradeoff
#pragma weak cmd_run
#pragma weak cmd_report

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"estimate", cmd_estimate, "predict the memory of every pipeline stage from headers"},
	{"tradeoff", cmd_tradeoff, "compare float32/float64 and the other switches, estimated"},
	{"run", cmd_run, "run the instrumented radial-profile pipeline and measure it"},
	{"report", cmd_report, "estimate vs measured vs documented, for a run directory"},
	{"info", cmd_info, "what a snapshot and its group catalogue hold"},
	{"mock", cmd_mock, "write a TNG-layout mock snapshot and group catalogue"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: snapmem <command> [options]   (snapmem <command> -h for its options)\n\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
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
	fprintf(stderr, " (see 'snapmem %s -h')\n", cmd);
	return 2;
}

int main(int argc, char **argv)
{
	size_t i;
	int status;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("snapmem 0.1.0\n");
		return 0;
	}
	for (i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		if (commands[i].fn == NULL) {
			fprintf(stderr, "snapmem: '%s' is not built into this binary\n", argv[1]);
			return 2;
		}
		/* HDF5 1.10 keeps a file whose close failed (a full disk: EFBIG, ENOSPC) in its id
		 * table and crashes closing it again in its atexit handler: so no atexit handler,
		 * and the library is shut down here after a success only (an error exits without). */
		H5dont_atexit();
		status = commands[i].fn(argc - 1, argv + 1);
		if (status == 0)
			H5close();
		return status;
	}
	fprintf(stderr, "snapmem: '%s' is not a snapmem command (see 'snapmem -h')\n", argv[1]);
	return 2;
}
