/*
 * libFuzzer target: the command-line number and size parsers (src/common/units.c). Any input must
 * give 0 or an error code with a one-line message, never a crash, and a parsed size must format.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/units.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	sm_error err;
	uint64_t u;
	double d;
	char buf[64];

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	sm_error_clear(&err);
	if (sm_parse_size("--node-mem", s, &u, &err) == 0)
		sm_format_iec(u, buf, sizeof(buf));
	else if (strchr(err.msg, '\n') != NULL || err.code >= 0)
		abort();
	sm_error_clear(&err);
	if (sm_parse_u64("--gas", s, &u, &err) != 0 && (err.code >= 0 || err.msg[0] == '\0'))
		abort();
	sm_error_clear(&err);
	if (sm_parse_double("--mass-min", s, 0, 1e30, &d, &err) == 0 && !(d >= 0 && d <= 1e30))
		abort();
	free(s);
	return 0;
}
