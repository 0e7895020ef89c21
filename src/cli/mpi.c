/*
 * MPI for `snapmem run --mpi` (docs/MPI.md), through the MPI module libsnapmem-mpi.so
 * (src/mpi/module.c, interface in mpi-module.h), opened with dlopen by the first cli_mpi_init:
 * the binary does not link MPI, so that every other command (estimate, info, report, a serial
 * run) starts without Open MPI's seven libraries. The module is looked for as every library
 * shipped with snapmem is (cli_companion: $SNAPMEM_MPI_MODULE, beside this binary, where `make
 * install` puts it). Built with -DSM_HAVE_MPI when pkg-config knows ompi-c, the module with
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
static const struct sm_mpi_module *mod; /* once loaded: for the rest of the process */

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
	if (!cli_companion(NULL, "SNAPMEM_MPI_MODULE", SM_MPI_MODULE_FILE, path, sizeof(path))) {
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
	own_host(buf, len);
}

#endif
