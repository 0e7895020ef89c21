/*
 * snapmem: the command-line entry point. A table of subcommands dispatched in one place; each
 * subcommand lives in its own cmd_*.c with its own synopsis and option table (src/cli/opts.h),
 * from which its --help, `snapmem help CMD` and the bash completion are generated.
 *
 * Exit status of the dispatcher itself (docs/CLI.md has the whole table): 0 for --help and
 * --version, 2 for no command or an unknown global option, 127 for an unknown command (one line
 * naming it and the closest command).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <hdf5.h>

#include "cli/cli.h"

const cli_cmd *const cli_commands[] = {
	&cli_cmd_estimate, &cli_cmd_tradeoff, &cli_cmd_run,  &cli_cmd_report,
	&cli_cmd_info,     &cli_cmd_mock,     &cli_cmd_help, &cli_cmd_completion,
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

int main(int argc, char **argv)
{
	const cli_cmd *c;
	int status;

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
	status = c->fn(argc - 1, argv + 1);
	if (status == 0)
		H5close();
	return status;
}
