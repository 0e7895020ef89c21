/*
 * Parsing of the numbers and sizes people type on the command line, and IEC formatting of byte
 * counts for human-readable output.
 *
 * Every parser takes the whole string: leading or trailing garbage, an empty string, a sign where
 * none is allowed, NaN, infinities and values that do not fit are errors (SM_EINVAL or
 * SM_EOVERFLOW), reported through err with the offending text quoted and `what` (the option name)
 * in front.
 */
#ifndef SNAPMEM_UNITS_H
#define SNAPMEM_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "snapmem/error.h"

/*
 * A memory size: a number with a unit, always: B for bytes ("123456B"), or a binary unit K, M, G,
 * T, P optionally followed by "i", "B" or "iB" ("512G", "1.5TiB", "64MiB", "100KB"). All units are
 * binary (1K = 1024), as in the notebook, whose "GB" are GiB. A number without a unit ("256") is
 * refused with a hint ("'256' has no unit: 256 what? e.g. 256G"). Fractions are allowed with a
 * unit other than B and the result is rounded down to whole bytes. Returns 0 or SM_EINVAL /
 * SM_EOVERFLOW.
 */
int sm_parse_size(const char *what, const char *s, uint64_t *out, sm_error *err);

/* A non-negative whole number, decimal, fitting 64 bits ("1e6"-style is accepted when exact). */
int sm_parse_u64(const char *what, const char *s, uint64_t *out, sm_error *err);

/* A finite double; min and max bound it (inclusive). */
int sm_parse_double(const char *what, const char *s, double min, double max, double *out,
		    sm_error *err);

/*
 * Formats bytes in IEC units with three significant decimals ("53.85 GiB", "7.89 KiB",
 * "512 B") into buf. Returns buf.
 */
char *sm_format_iec(uint64_t bytes, char *buf, size_t len);

/* Same, for a signed difference ("+20.06 GiB", "-1.00 KiB"). */
char *sm_format_iec_signed(int64_t bytes, char *buf, size_t len);

/* bytes / 1024^3 as a double, the notebook's "GB". */
double sm_gib(uint64_t bytes);

/*
 * s as one word for a POSIX shell: as it is when every character is one no shell treats specially
 * (letters, digits, _ . / : = @ % + , -) and always is 0; else in single quotes, each ' written
 * '\'' (a newline stays inside the quotes: a line break of the word, not of the command).
 * Returns a string to free(), or NULL when out of memory.
 */
char *sm_shell_quote(const char *s, int always);

/* Overflow-checked arithmetic: return 0 and store the result, or SM_EOVERFLOW. */
int sm_mul_u64(uint64_t a, uint64_t b, uint64_t *out);
int sm_add_u64(uint64_t a, uint64_t b, uint64_t *out);

#endif
