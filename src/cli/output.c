/*
 * `-o FILE` of every subcommand: standard output for none or "-", else the shared writer
 * (sm_out_write, include/snapmem/outfile.h), which replaces only a regular file and never one of
 * the command's inputs. The inputs are named here, per kind of source: a single snapshot file; a
 * base path, whose chunk directories (snapdir_NNN/, groups_NNN/) and the base directory itself
 * count with every ".hdf5" file in them; a run directory, with its estimate.json, memory.json and
 * profiles.hdf5.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

/* Adds one input (the path copied); out of memory leaves the list as it was and sets l->nomem. */
static void add(struct cli_inputs *l, const char *suffix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add(struct cli_inputs *l, const char *suffix, const char *fmt, ...)
{
	sm_out_input *in;
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	in = n >= 0 ? realloc(l->in, (l->n + 1) * sizeof(*l->in)) : NULL;
	if (in == NULL) {
		if (n >= 0)
			free(p);
		l->nomem = 1;
		return;
	}
	l->in = in;
	l->in[l->n].path = p;
	l->in[l->n].suffix = suffix;
	l->n++;
}

void cli_inputs_release(struct cli_inputs *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free((char *)l->in[i].path);
	free(l->in);
	memset(l, 0, sizeof(*l));
}

void cli_inputs_source(struct cli_inputs *l, const char *base, int snap, const char *snapshot,
		       const char *calibrate)
{
	if (snapshot != NULL)
		add(l, NULL, "%s", snapshot);
	if (base != NULL) {
		add(l, ".hdf5", "%s", base);
		add(l, ".hdf5", "%s/snapdir_%03d", base, snap);
		add(l, ".hdf5", "%s/groups_%03d", base, snap);
	}
	if (calibrate != NULL && calibrate[0] != '\0')
		add(l, NULL, "%s/memory.json", calibrate);
}

void cli_inputs_rundir(struct cli_inputs *l, const char *rundir)
{
	struct stat st;

	if (stat(rundir, &st) == 0 && S_ISREG(st.st_mode)) { /* a run's memory.json itself */
		add(l, NULL, "%s", rundir);
		return;
	}
	add(l, NULL, "%s/estimate.json", rundir);
	add(l, NULL, "%s/memory.json", rundir);
	add(l, NULL, "%s/profiles.hdf5", rundir);
}

int cli_output_check(const char *out, const struct cli_inputs *l, sm_error *err)
{
	if (out == NULL || strcmp(out, "-") == 0)
		return 0;
	if (l != NULL && l->nomem)
		return sm_error_set(err, SM_ENOMEM, "'%s': out of memory", out);
	return sm_out_check(out, l != NULL ? l->in : NULL, l != NULL ? l->n : 0, err);
}

int cli_emit(const char *text, const char *out, const struct cli_inputs *l, sm_error *err)
{
	if (out == NULL || strcmp(out, "-") == 0) {
		fputs(text, stdout);
		if (fflush(stdout) != 0 || ferror(stdout))
			return sm_error_set(err, SM_EIO, "cannot write to standard output");
		return 0;
	}
	return sm_out_write(out, text, strlen(text), l != NULL ? l->in : NULL,
			    l != NULL ? l->n : 0, err);
}
