/*
 * Chunk-file path patterns of the illustris layout. A pattern is a printf format with at most one
 * %lld (the chunk number); every '%' of the base path is doubled so that any directory name is
 * safe. Used by the snapshot and the catalogue readers and by the mock writer.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/snapshot-internal.h"

int sm__pattern_make(char *out, size_t len, const char *base, const char *tail)
{
	size_t o = 0;
	const char *p;

	for (p = base; *p != '\0'; p++) {
		if (o + 2 >= len)
			return SM_EOVERFLOW;
		if (*p == '%')
			out[o++] = '%';
		out[o++] = *p;
	}
	if (o > 0 && out[o - 1] != '/' && tail[0] != '\0') {
		if (o + 1 >= len)
			return SM_EOVERFLOW;
		out[o++] = '/';
	}
	if (o + strlen(tail) + 1 > len)
		return SM_EOVERFLOW;
	strcpy(out + o, tail);
	return 0;
}

int sm__pattern_path(const char *pattern, int64_t i, char *buf, size_t len)
{
	int n = snprintf(buf, len, pattern, (long long)i);

	return n < 0 || (size_t)n >= len ? SM_EOVERFLOW : 0;
}

int sm__layout_find(const char *base, int snap, const char *const *tails, size_t ntails,
		    char *base_out, size_t base_len, char *pattern, size_t pattern_len,
		    sm_error *err)
{
	char tail[128], path[SM_PATH_MAX];
	size_t i;

	if (base == NULL || *base == '\0')
		return sm_error_set(err, SM_EINVAL, "empty base path");
	if (snap < 0 || snap > 99999)
		return sm_error_set(err, SM_EINVAL, "'%s': snapshot number %d is out of range", base,
				    snap);
	if (strlen(base) >= base_len)
		return sm_error_set(err, SM_EOVERFLOW, "'%s': path too long", base);
	strcpy(base_out, base);
	for (i = 0; i < ntails; i++) {
		snprintf(tail, sizeof(tail), tails[i], snap, snap);
		if (sm__pattern_make(pattern, pattern_len, base, tail) != 0 ||
		    sm__pattern_path(pattern, 0, path, sizeof(path)) != 0)
			return sm_error_set(err, SM_EOVERFLOW, "'%s': path too long", base);
		if (access(path, F_OK) == 0)
			break;
	}
	return (int)i;
}
