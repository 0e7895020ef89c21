/*
 * MPI for `snapmem run --mpi` (docs/MPI.md), through the MPI module libsnapmem-mpi.so
 * (src/mpi/module.c, interface in mpi-module.h), opened with dlopen by the first cli_mpi_init:
 * the binary does not link MPI, so that every other command (estimate, info, report, a serial
 * run) starts without Open MPI's seven libraries. The module is looked for in $SNAPMEM_MPI_MODULE,
 * else beside this binary (the build tree), else where `make install` puts it
 * (SM_MPI_MODULE_PATH). Built with -DSM_HAVE_MPI when pkg-config knows ompi-c, the module with
 * it; otherwise cli_mpi_init answers SM_EUNSUPPORTED ("built without MPI").
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/mpi-module.h"
#include "snapmem/pipeline.h"

#ifndef SM_MPI_MODULE_PATH
#define SM_MPI_MODULE_PATH "/usr/local/lib/snapmem/" SM_MPI_MODULE_FILE
#endif

static const struct sm_mpi_module *mod; /* once loaded: for the rest of the process */

/* This rank's host name without MPI. */
static void own_host(char *buf, size_t len)
{
	if (len == 0)
		return;
	if (gethostname(buf, len) != 0)
		buf[0] = '\0';
	buf[len - 1] = '\0';
}

#ifdef SM_HAVE_MPI
/* The module's path into out: $SNAPMEM_MPI_MODULE, else beside this binary when there, else
 * the installed one (whether there or not: the caller's error names it). */
static void module_path(char *out, size_t len)
{
	const char *env = getenv("SNAPMEM_MPI_MODULE");
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env != NULL && env[0] != '\0') {
		snprintf(out, len, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			if ((size_t)snprintf(out, len, "%s/%s", exe, SM_MPI_MODULE_FILE) < len &&
			    access(out, F_OK) == 0)
				return;
		}
	}
	snprintf(out, len, "%s", SM_MPI_MODULE_PATH);
}

/* The module, loaded once; NULL with err filled. RTLD_GLOBAL: Open MPI's own components, which it
 * opens with dlopen, find libmpi's symbols in the global scope. */
static const struct sm_mpi_module *load(sm_error *err)
{
	char path[PATH_MAX];
	const struct sm_mpi_module *(*get)(void);
	const struct sm_mpi_module *m;
	void *h;

	if (mod != NULL)
		return mod;
	module_path(path, sizeof(path));
	if (access(path, F_OK) != 0) {
		sm_error_set(err, SM_EUNSUPPORTED, "run --mpi: '%s': the MPI module is missing (it is "
			     "built beside snapmem and installed with it; SNAPMEM_MPI_MODULE names "
			     "another)", path);
		return NULL;
	}
	h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (h == NULL) {
		sm_error_set(err, SM_EUNSUPPORTED, "run --mpi: '%s': cannot load the MPI module: %s",
			     path, dlerror());
		return NULL;
	}
	*(void **)&get = dlsym(h, "sm_mpi_module");
	m = get != NULL ? get() : NULL;
	if (m == NULL) {
		sm_error_set(err, SM_EUNSUPPORTED, "run --mpi: '%s': not snapmem's MPI module (no "
			     "sm_mpi_module in it)", path);
	} else if (m->version != SM_MPI_MODULE_VERSION || m->init == NULL ||
		   m->finalize == NULL || m->host == NULL) {
		sm_error_set(err, SM_EUNSUPPORTED, "run --mpi: '%s': an MPI module of interface %d, "
			     "this snapmem speaks %d (install them together)", path, m->version,
			     SM_MPI_MODULE_VERSION);
		m = NULL;
	}
	if (m == NULL) {
		dlclose(h);
		return NULL;
	}
	mod = m;
	return mod;
}

int cli_mpi_available(void)
{
	return 1;
}

int cli_mpi_init(sm_pipeline_comm *comm, unsigned *idle_cpus, sm_error *err)
{
	unsigned sharers = 1;

	memset(comm, 0, sizeof(*comm));
	comm->size = 1;
	*idle_cpus = 0;
	if (load(err) == NULL)
		return err->code;
	if (mod->init(comm, &sharers, idle_cpus) != 0)
		return sm_error_set(err, SM_EIO, "run --mpi: MPI_Init failed");
	sm_threads_share(sharers);
	return 0;
}

void cli_mpi_finalize(void)
{
	if (mod != NULL)
		mod->finalize();
}

void cli_mpi_host(char *buf, size_t len)
{
	if (mod == NULL || mod->host(buf, len) != 0)
		own_host(buf, len);
}

#else /* no MPI */

int cli_mpi_available(void)
{
	return 0;
}

int cli_mpi_init(sm_pipeline_comm *comm, unsigned *idle_cpus, sm_error *err)
{
	memset(comm, 0, sizeof(*comm));
	comm->size = 1;
	*idle_cpus = 0;
	return sm_error_set(err, SM_EUNSUPPORTED, "run --mpi: snapmem was built without MPI (no "
			    "'ompi-c' from pkg-config at build time: install libopenmpi-dev and "
			    "rebuild)");
}

void cli_mpi_finalize(void)
{
}

void cli_mpi_host(char *buf, size_t len)
{
	(void)mod;
	own_host(buf, len);
}

#endif
