/*
 * libFuzzer target: the `estimate --calibrate RUNDIR` reader (estimator/input.c, reading
 * RUNDIR/memory.json run.halos[].sphere_cells) on arbitrary text. The input is written to
 * memory.json in a private directory under /dev/shm (else $TMPDIR) and the embedded TNG300-1 input
 * is built with o.calibrate pointing there, then estimated. Contract: 0 or a negative SM_E* code
 * with a one-line message naming the file; never a crash, leak or unchecked value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapmem/estimator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];

/* Removes the private directory when the fuzzer exits normally. */
static void cleanup(void)
{
	static const char *const files[] = { "memory.json" };
	char path[512];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

static int setup(void)
{
	const char *t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");

	if (dir[0] != '\0')
		return 0;
	snprintf(dir, sizeof(dir), "%s/snapmem-fuzz-cal-XXXXXX", t != NULL ? t : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[512];
	sm_model_options o;
	sm_est_input in;
	sm_estimate e;
	sm_error err;
	FILE *f;
	int rc;

	if (setup() != 0)
		return 0;
	snprintf(path, sizeof(path), "%s/memory.json", dir);
	f = fopen(path, "wb");
	if (f == NULL)
		return 0;
	if (size > 0)
		fwrite(data, 1, size, f);
	fclose(f);
	sm_model_options_init(&o);
	snprintf(o.calibrate, sizeof(o.calibrate), "%s", dir);
	sm_error_clear(&err);
	rc = sm_est_input_embedded(&in, &o, &err);
	if (rc != 0) {
		if (rc > 0 || err.code >= 0 || err.msg[0] == '\0' || strchr(err.msg, '\n') != NULL)
			abort();
		return 0;
	}
	sm_error_clear(&err);
	if (sm_estimate_compute(&in, &o, &e, &err) == 0)
		sm_estimate_release(&e);
	else if (err.msg[0] == '\0' || strchr(err.msg, '\n') != NULL)
		abort();
	sm_est_input_release(&in);
	return 0;
}
