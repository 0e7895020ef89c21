/*
 * `snapmem diff A B [--budget PCT] [--format table|markdown|json] [-o FILE]`: two measured runs
 * (directories with memory.json, from `snapmem profile` or `snapmem run`, or such memory.json files
 * themselves, kept wherever a CI job put them) compared stage by stage
 * and site by site: growth of requested, allocated (above the baseline) and resident (VmHWM)
 * bytes from A to B. With --budget, exit 1 when a stage's allocated peak (requested when the
 * allocator was not measured) grows by more than PCT percent and more than 64 KiB: a memory
 * regression check for CI. Exit 2 on bad input (a missing or malformed document, a bad option).
 * -o writes atomically, only a regular file that is neither run's file (output.c); -o - is
 * standard output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "snapmem/measured.h"
#include "snapmem/units.h"

enum { DO_BUDGET = CLI_ID_FIRST, DO_FORMAT, DO_OUTPUT };

static const cli_opt diff_opts[] = {
	{"budget", 0, CLI_NUMBER, "PCT", "none (never exit 1)",
	 "exit 1 when a stage's allocated peak above the baseline (requested peak when the allocator "
	 "was not measured) grows by more than PCT percent and more than 64 KiB", DO_BUDGET, 0},
	{"format", 0, CLI_CHOICE, "table|markdown|json", "table", "the output", DO_FORMAT, 0},
	{"output", 'o', CLI_FILE, "FILE", "standard output",
	 "write there (atomically) instead of standard output", DO_OUTPUT, 0},
	{NULL, 0, CLI_FLAG, NULL, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_diff = {
	"diff", "compare two measured runs stage by stage; exit 1 over a budget",
	"usage: snapmem diff A B [--budget PCT] [--format table|markdown|json] [-o FILE]\n",
	"Compares run B with run A (directories holding memory.json, from snapmem profile or\n"
	"snapmem run, or such memory.json files themselves) stage by stage (id and instance) and\n"
	"site by site (the sites live at each peak, by function and file:line): growth of\n"
	"requested, allocated (above the baseline) and resident (VmHWM) bytes.\n",
	diff_opts, 0, "A B", cmd_diff,
};

int cmd_diff(int argc, char **argv)
{
	const char *dirs[2] = { NULL, NULL }, *out = NULL;
	sm_report_format fmt = SM_REPORT_TABLE;
	double budget = -1;
	sm_measured *a = NULL, *b = NULL;
	sm_error err = { 0 };
	char *text = NULL;
	size_t ndirs = 0, nover = 0;
	struct cli_inputs inputs = {0};
	int status = 0;

	cli_parser p;
	const cli_opt *o;
	const char *val;
	int rc;
	cli_parser_init(&p, &cli_cmd_diff, argc, argv);
	while ((rc = cli_next(&p, &o, &val)) != CLI_END) {
		if (rc < 0)
			return cli_parse_status(rc);
		if (rc == CLI_OPERAND) {
			if (ndirs == 2)
				return cli_parse_error(&p, "more than two runs ('%s')", val);
			dirs[ndirs++] = val;
		} else if (o->id == DO_OUTPUT) {
			out = val;
		} else if (o->id == DO_FORMAT) {
			if (sm_report_format_from_name(val, &fmt) != 0 || fmt == SM_REPORT_HTML)
				return cli_parse_error(&p, "--format: '%s' is not table, markdown or json",
						       val);
		} else if (o->id == DO_BUDGET) {
			if (sm_parse_double(p.name, val, 0, 1e9, &budget, &err) != 0)
				return cli_parse_error(&p, "%s", err.msg);
		}
	}
	if (ndirs != 2)
		return cli_parse_error(&p, "two runs are needed (A and B: run directories or their "
				       "memory.json)");
	/* -o: only a regular file, never one of the runs' files (output.c) */
	cli_inputs_rundir(&inputs, dirs[0]);
	cli_inputs_rundir(&inputs, dirs[1]);
	if (cli_output_check(out, &inputs, &err) != 0 ||
	    sm_measured_load(dirs[0], &a, &err) != 0 || sm_measured_load(dirs[1], &b, &err) != 0 ||
	    sm_measured_diff(a, b, budget, fmt, &text, &nover, &err) != 0 ||
	    cli_emit(text, out, &inputs, &err) != 0) {
		status = cli_fail(&err);
		goto out;
	}
	status = nover ? 1 : 0;
out:
	cli_inputs_release(&inputs);
	free(text);
	sm_measured_free(a);
	sm_measured_free(b);
	return status;
}
