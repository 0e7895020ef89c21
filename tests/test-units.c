/*
 * src/common/units.c: sizes with binary units, whole numbers (with 1e7 style), doubles with
 * bounds, IEC formatting, and the overflow-checked arithmetic. Every rejection names the option
 * and quotes the text.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "snapmem/units.h"

static uint64_t size_ok(const char *s)
{
	sm_error err = {0};
	uint64_t v = 12345;

	if (sm_parse_size("--node-mem", s, &v, &err) != 0)
		fail_msg("'%s' rejected: %s", s, err.msg);
	return v;
}

static void size_bad(const char *s, int rc)
{
	sm_error err = {0};
	uint64_t v = 0;

	assert_int_equal(sm_parse_size("--node-mem", s, &v, &err), rc);
	assert_int_equal(err.code, rc);
	assert_non_null(strstr(err.msg, "--node-mem"));
	if (*s != '\0')
		assert_non_null(strstr(err.msg, s));
}

static void test_parse_size(void **state)
{
	(void)state;
	assert_true(size_ok("512G") == 512ull << 30);
	assert_true(size_ok("512GB") == 512ull << 30);
	assert_true(size_ok("512GiB") == 512ull << 30);
	assert_true(size_ok("1.5TiB") == 3ull << 39);
	assert_true(size_ok("64MiB") == 64ull << 20);
	assert_true(size_ok("100KB") == 102400);
	assert_true(size_ok("123456B") == 123456);
	assert_true(size_ok("123456b") == 123456);
	assert_true(size_ok("0B") == 0);
	assert_true(size_ok("0.5K") == 512);
	assert_true(size_ok("1.0009765625K") == 1025);
	assert_true(size_ok("16P") == 1ull << 54);
	assert_true(size_ok("18446744073709551615B") == UINT64_MAX);
	size_bad("", SM_EINVAL);
	size_bad("G", SM_EINVAL);
	size_bad("12Gx", SM_EINVAL);
	size_bad("12 G", SM_EINVAL);
	size_bad("-5G", SM_EINVAL);
	size_bad("+5G", SM_EINVAL);
	size_bad("5X", SM_EINVAL);
	size_bad("1.2.3G", SM_EINVAL);
	size_bad("18446744073709551616B", SM_EOVERFLOW);
	size_bad("16384P", SM_EOVERFLOW);
	size_bad("17179869184G", SM_EOVERFLOW);
	size_bad("20000.5P", SM_EOVERFLOW);
	size_bad("1.5", SM_EINVAL);
	size_bad("1.5B", SM_EINVAL);
	/* a number without a unit is refused with a hint, never read as bytes */
	size_bad("123456", SM_EINVAL);
	size_bad("0", SM_EINVAL);
	size_bad("18446744073709551616", SM_EINVAL);
	{
		sm_error err = {0};
		uint64_t v = 7;

		assert_int_equal(sm_parse_size("--node-mem", "256", &v, &err), SM_EINVAL);
		assert_string_equal(err.msg, "--node-mem: '256' has no unit: 256 what? e.g. 256G");
		assert_true(v == 7);
	}
}

static void test_parse_u64(void **state)
{
	sm_error err = {0};
	uint64_t v;

	(void)state;
	assert_int_equal(sm_parse_u64("--gas", "1e7", &v, &err), 0);
	assert_true(v == 10000000);
	assert_int_equal(sm_parse_u64("--gas", "2.5e3", &v, &err), 0);
	assert_true(v == 2500);
	assert_int_equal(sm_parse_u64("--gas", "14454722210", &v, &err), 0);
	assert_true(v == 14454722210ull);
	assert_int_equal(sm_parse_u64("--gas", "18446744073709551615", &v, &err), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(sm_parse_u64("--gas", "0", &v, &err), 0);
	assert_true(v == 0);
	assert_int_equal(sm_parse_u64("--gas", "18446744073709551616", &v, &err), SM_EOVERFLOW);
	assert_non_null(strstr(err.msg, "--gas"));
	assert_int_equal(sm_parse_u64("--gas", "1e300", &v, &err), SM_EOVERFLOW);
	assert_int_equal(sm_parse_u64("--gas", "1.5", &v, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "'1.5'"));
	assert_int_equal(sm_parse_u64("--gas", "-1", &v, &err), SM_EINVAL);
	assert_int_equal(sm_parse_u64("--gas", "-1e3", &v, &err), SM_EINVAL);
	assert_int_equal(sm_parse_u64("--gas", "", &v, &err), SM_EINVAL);
	assert_int_equal(sm_parse_u64("--gas", " 5", &v, &err), SM_EINVAL);
	assert_int_equal(sm_parse_u64("--gas", "5 ", &v, &err), SM_EINVAL);
	assert_int_equal(sm_parse_u64("--gas", "12abc", &v, &err), SM_EINVAL);
	assert_int_equal(sm_parse_u64("--gas", "nan", &v, &err), SM_EINVAL);
	assert_int_equal(sm_parse_u64("--gas", "inf", &v, &err), SM_EINVAL);
	assert_int_equal(sm_parse_u64("--gas", "0x10", &v, &err), SM_EINVAL);
	assert_int_equal(sm_parse_u64("--gas", "1e0x1", &v, &err), SM_EINVAL);
}

static void test_parse_double(void **state)
{
	sm_error err = {0};
	double d;

	(void)state;
	assert_int_equal(sm_parse_double("--mass-min", "1e14", 0, 1e30, &d, &err), 0);
	assert_true(d == 1e14);
	assert_int_equal(sm_parse_double("--mass-min", "-1", 0, 1e30, &d, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "outside"));
	assert_int_equal(sm_parse_double("--mass-min", "1e14x", 0, 1e30, &d, &err), SM_EINVAL);
	assert_int_equal(sm_parse_double("--mass-min", "nan", 0, 1e30, &d, &err), SM_EINVAL);
	assert_int_equal(sm_parse_double("--mass-min", "1e999", 0, INFINITY, &d, &err), SM_EINVAL);
	assert_int_equal(sm_parse_double("--mass-min", "", 0, 1e30, &d, &err), SM_EINVAL);
}

static void test_format_iec(void **state)
{
	char b[48];

	(void)state;
	assert_string_equal(sm_format_iec(0, b, sizeof(b)), "0 B");
	assert_string_equal(sm_format_iec(512, b, sizeof(b)), "512 B");
	assert_string_equal(sm_format_iec(1023, b, sizeof(b)), "1023 B");
	assert_string_equal(sm_format_iec(1024, b, sizeof(b)), "1.00 KiB");
	assert_string_equal(sm_format_iec(6848 + 1232, b, sizeof(b)), "7.89 KiB");
	/* one float32 field of TNG300-1 */
	assert_string_equal(sm_format_iec(4ull * 14454722210ull, b, sizeof(b)), "53.85 GiB");
	assert_string_equal(sm_format_iec(3ull << 39, b, sizeof(b)), "1.50 TiB");
	assert_non_null(strstr(sm_format_iec(UINT64_MAX, b, sizeof(b)), "EiB"));
	assert_string_equal(sm_format_iec_signed(-1024, b, sizeof(b)), "-1.00 KiB");
	assert_string_equal(sm_format_iec_signed(INT64_MIN, b, sizeof(b)), "-8.00 EiB");
	assert_string_equal(sm_format_iec_signed(0, b, sizeof(b)), "+0 B");
	assert_true(sm_gib(1ull << 30) == 1.0);
}

static void test_checked_arithmetic(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(sm_mul_u64(12, 14454722210ull, &v), 0);
	assert_true(v == 173456666520ull);
	assert_int_equal(sm_mul_u64(1ull << 32, 1ull << 32, &v), SM_EOVERFLOW);
	assert_int_equal(sm_mul_u64(0, UINT64_MAX, &v), 0);
	assert_true(v == 0);
	assert_int_equal(sm_add_u64(UINT64_MAX, 1, &v), SM_EOVERFLOW);
	assert_int_equal(sm_add_u64(UINT64_MAX - 1, 1, &v), 0);
	assert_true(v == UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_parse_double),
		cmocka_unit_test(test_format_iec),
		cmocka_unit_test(test_checked_arithmetic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
