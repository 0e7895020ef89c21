/*
 * libFuzzer target: the report loader (src/report/load.c) on arbitrary estimate.json and
 * memory.json text, then the comparison and every renderer on what it accepted.
 *
 * Input: estimate.json text, a NUL byte, memory.json text (no NUL: the whole input is both). Both
 * are written into a private directory under /dev/shm (else $TMPDIR) and loaded with
 * sm_report_load. Contract: 0 or a negative SM_E* with a one-line message; a loaded report compares
 * and renders in every format without crashing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapmem/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];

static int put(const char *name, const uint8_t *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL)
		return -1;
	if (n > 0)
		fwrite(p, 1, n, f);
	fclose(f);
	return 0;
}

/* Removes the private directory when the fuzzer exits normally. */
static void cleanup(void)
{
	static const char *const files[] = { "estimate.json", "memory.json" };
	char path[512];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = size > 0 ? memchr(data, '\0', size) : NULL;
	size_t n1 = sep != NULL ? (size_t)(sep - data) : size;
	const uint8_t *m = sep != NULL ? sep + 1 : data;
	size_t n2 = sep != NULL ? size - n1 - 1 : size;
	const char *t;
	sm_report r;
	sm_error err;
	int rc;

	if (dir[0] == '\0') {
		t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/snapmem-fuzz-rep-XXXXXX", t != NULL ? t : "/tmp");
		if (mkdtemp(dir) == NULL) {
			dir[0] = '\0';
			return 0;
		}
		atexit(cleanup);
	}
	if (put("estimate.json", data, n1) != 0 || put("memory.json", m, n2) != 0)
		return 0;
	sm_error_clear(&err);
	rc = sm_report_load(&r, dir, &err);
	if (rc != 0) {
		if (rc > 0 || err.code >= 0 || err.msg[0] == '\0' || strchr(err.msg, '\n') != NULL)
			abort();
		return 0;
	}
	sm_error_clear(&err);
	if (sm_report_compare(&r, 10.0, 1 << 20, &err) == 0) {
		sm_report_format f;

		for (f = SM_REPORT_TABLE; f <= SM_REPORT_HTML; f++) {
			char *out = NULL;

			sm_error_clear(&err);
			if (sm_report_render(&r, f, &out, &err) == 0)
				free(out);
		}
	}
	sm_report_release(&r);
	return 0;
}
