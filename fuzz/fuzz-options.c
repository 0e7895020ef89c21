/*
 * libFuzzer target: the model option parser shared by run, estimate and tradeoff
 * (sm_model_option_apply, estimator/options.c), then the estimator on the options it accepted.
 *
 * Input: the first byte picks the option name (one of the nine model options, or any other name
 * taken from the input up to its first NUL); the rest, up to the next NUL, is the value; further
 * NUL-separated pairs apply more options to the same sm_model_options. Contract checked: every
 * call returns 1 (consumed), 0 (not a model option) or a negative SM_E* with a one-line message;
 * accepted values keep the documented invariants; the estimator on the embedded TNG300-1 input
 * with the resulting options returns 0 or an error code, never a crash or an overflowed figure.
 * --calibrate is applied but not followed (it would read a file), and selections of more than
 * 4096 halos are not estimated (legitimately slow, not a parser question).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/estimator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = { "--positions", "--select", "--temperature", "--stream-block",
				     "--halos", "--mass-min", "--ranks", "--sphere-cells",
				     "--calibrate" };
#define NNAMES (sizeof(names) / sizeof(names[0]))

static void check_err(const sm_error *err, int rc)
{
	if (rc >= 0 || err->code >= 0 || err->msg[0] == '\0' || strchr(err->msg, '\n') != NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 2), *p, *end;
	sm_model_options o;
	sm_est_input in;
	sm_estimate e;
	sm_error err;
	int rc, calibrate = 0, napplied = 0;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	s[size + 1] = '\0';
	end = s + size;
	sm_model_options_init(&o);
	for (p = s; p < end && napplied < 8; napplied++) {
		const char *opt, *val;
		unsigned k = (unsigned char)*p++;

		if (k < NNAMES) {
			opt = names[k];
		} else {
			opt = p;
			p += strlen(p) + 1;
		}
		val = p <= end ? p : "";
		p += strlen(val) + 1;
		sm_error_clear(&err);
		rc = sm_model_option_apply(&o, opt, k == 0xff ? NULL : val, &err);
		if (rc < 0) {
			check_err(&err, rc);
			continue;
		}
		if (rc != 0 && rc != 1)
			abort();
		if (rc == 1 && strcmp(opt, "--calibrate") == 0)
			calibrate = 1;
	}
	if (o.stream_block == 0 || o.ranks == 0 || !(o.mass_min >= 0 && o.mass_min <= 1e30) ||
	    (o.positions != SM_DTYPE_F32 && o.positions != SM_DTYPE_F64))
		abort();
	/* Millions of modelled halos are legitimate (and slow): the fuzzer skips them. */
	if (!calibrate && o.halos <= 4096 && (o.halos >= 0 || o.mass_min >= 1e13)) {
		o.calibrate[0] = '\0';
		sm_error_clear(&err);
		rc = sm_est_input_embedded(&in, &o, &err);
		if (rc == 0) {
			sm_error_clear(&err);
			rc = sm_estimate_compute(&in, &o, &e, &err);
			if (rc == 0) {
				char *j = sm_estimate_json(&in, &e, NULL, NULL);

				free(j);
				sm_estimate_release(&e);
			} else {
				check_err(&err, rc);
			}
			sm_est_input_release(&in);
		} else {
			check_err(&err, rc);
		}
	}
	free(s);
	return 0;
}
