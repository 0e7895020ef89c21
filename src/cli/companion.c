/*
 * The libraries snapmem ships beside its binary and opens or hands on at run time: the preload
 * library of `snapmem profile` and the MPI module of `run --mpi`. Each is looked for the same way:
 * where the user says (an option, then an environment variable), else beside this binary (the
 * build tree), else in SM_COMPANION_DIR, where `make install` puts them (PREFIX/lib/snapmem).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#ifndef SM_COMPANION_DIR
#define SM_COMPANION_DIR "/usr/local/lib/snapmem"
#endif

static int readable(const char *path)
{
	return access(path, R_OK) == 0;
}

int cli_companion(const char *given, const char *env, const char *file, char *out, size_t len)
{
	const char *e = env != NULL ? getenv(env) : NULL;
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	if (given != NULL || (e != NULL && e[0] != '\0')) {
		snprintf(out, len, "%s", given != NULL ? given : e);
		return readable(out);
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			if ((size_t)snprintf(out, len, "%s/%s", exe, file) < len && readable(out))
				return 1;
		}
	}
	snprintf(out, len, "%s/%s", SM_COMPANION_DIR, file);
	return readable(out);
}
