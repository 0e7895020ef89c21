/*
 * `snapmem mock OUT_DIR`: writes a TNG-layout mock snapshot and group catalogue with known content
 * (include/snapmem/mock.h) and prints a short summary of what it wrote. Exit 0 done, 2 bad options
 * or a write failure (one line on stderr), 3 out of memory.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "snapmem/mock.h"
#include "snapmem/units.h"

static const char usage[] =
	"usage: snapmem mock OUT_DIR [--gas N] [--halos K] [--small-halos K] [--files F] [--seed S]\n"
	"                    [--snap N] [--box SIZE] [--header-only --gas-total N]\n"
	"\n"
	"Writes OUT_DIR/snapdir_XXX/snap_XXX.N.hdf5 and OUT_DIR/groups_XXX/fof_subhalo_tab_XXX.N.hdf5\n"
	"as AREPO/IllustrisTNG lay them out, with known content.\n"
	"\n"
	"  --gas N          gas cells (default 1,000,000; 1e7 style accepted)\n"
	"  --halos K        halos above 1e14 Msun (default 30)\n"
	"  --small-halos K  halos below 1e14 Msun (default: as many as --halos)\n"
	"  --files F        snapshot chunk files (default 8; chunk 1 holds no gas when F >= 2);\n"
	"                   the catalogue gets max(2, F/2) files, chunk 1 empty\n"
	"  --seed S         random seed (default 1); the same options give the same files\n"
	"  --snap N         snapshot number (default 99)\n"
	"  --box SIZE       box side in ckpc/h (default 75000)\n"
	"  --header-only    headers alone, no particle datasets; needs --gas-total N\n"
	"  --gas-total N    with --header-only: gas cells, may exceed 2^32 (e.g. 14454722210)\n";

static int parse_u32(const char *opt, const char *val, uint32_t *out)
{
	sm_error err = {0};
	uint64_t v;

	if (sm_parse_u64(opt, val, &v, &err) != 0)
		return cli_usage_error("mock", usage, "%s", err.msg);
	if (v > UINT32_MAX)
		return cli_usage_error("mock", usage, "%s: '%s' is too large", opt, val);
	*out = (uint32_t)v;
	return 0;
}

static char *commas(uint64_t v, char *buf, size_t len)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v), i, j = 0;

	for (i = 0; i < n && (size_t)j + 2 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[j++] = ',';
		buf[j++] = tmp[i];
	}
	buf[j] = '\0';
	return buf;
}

int cmd_mock(int argc, char **argv)
{
	sm_mock_options o;
	sm_error err = {0};
	const char *out = NULL;
	int i, small_set = 0, gas_total_set = 0, gas_set = 0;
	uint32_t cat_files;
	char n1[32];

	sm_mock_options_init(&o);
	for (i = 1; i < argc; i++) {
		const char *opt = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t v;
		uint32_t u = 0;

		if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(opt, "--header-only") == 0) {
			o.header_only = 1;
			continue;
		}
		if (opt[0] != '-' || opt[1] == '\0') {
			if (out != NULL)
				return cli_usage_error("mock", usage, "more than one OUT_DIR ('%s')",
						       opt);
			out = opt;
			continue;
		}
		if (strcmp(opt, "--gas") != 0 && strcmp(opt, "--halos") != 0 &&
		    strcmp(opt, "--small-halos") != 0 && strcmp(opt, "--files") != 0 &&
		    strcmp(opt, "--seed") != 0 && strcmp(opt, "--snap") != 0 &&
		    strcmp(opt, "--box") != 0 && strcmp(opt, "--gas-total") != 0)
			return cli_usage_error("mock", usage, "unknown option '%s'", opt);
		if (val == NULL)
			return cli_usage_error("mock", usage, "%s: missing value", opt);
		i++;
		if (strcmp(opt, "--gas") == 0 || strcmp(opt, "--gas-total") == 0 ||
		    strcmp(opt, "--seed") == 0) {
			if (sm_parse_u64(opt, val, &v, &err) != 0)
				return cli_usage_error("mock", usage, "%s", err.msg);
			if (strcmp(opt, "--gas") == 0) {
				o.gas = v;
				gas_set = 1;
			} else if (strcmp(opt, "--gas-total") == 0) {
				o.gas_total = v;
				gas_total_set = 1;
			} else {
				o.seed = v;
			}
		} else if (strcmp(opt, "--box") == 0) {
			if (sm_parse_double(opt, val, 1.0, 1e7, &o.box_size, &err) != 0)
				return cli_usage_error("mock", usage, "%s", err.msg);
		} else {
			if (parse_u32(opt, val, &u) != 0)
				return 2;
			if (strcmp(opt, "--halos") == 0) {
				o.halos = u;
			} else if (strcmp(opt, "--small-halos") == 0) {
				o.small_halos = u;
				small_set = 1;
			} else if (strcmp(opt, "--files") == 0) {
				o.files = u;
			} else {
				if (u > 999)
					return cli_usage_error("mock", usage,
							       "--snap: '%s' is outside [0, 999]", val);
				o.snap = (int)u;
			}
		}
	}
	if (out == NULL)
		return cli_usage_error("mock", usage, "missing OUT_DIR");
	if (!small_set)
		o.small_halos = o.halos;
	if (o.header_only && !gas_total_set)
		return cli_usage_error("mock", usage, "--header-only needs --gas-total N");
	if (!o.header_only && gas_total_set)
		return cli_usage_error("mock", usage, "--gas-total goes with --header-only (use --gas)");
	if (o.header_only && gas_set)
		return cli_usage_error("mock", usage, "--gas does not go with --header-only (use "
				       "--gas-total)");
	if (sm_mock_write(out, &o, &err) != 0)
		return cli_fail(&err);
	cat_files = o.files / 2 < 2 ? 2 : o.files / 2;
	printf("wrote mock snapshot %03d under '%s'%s\n", o.snap, out,
	       o.header_only ? " (headers only, no particle datasets)" : "");
	printf("  snapshot:  %s/snapdir_%03d/snap_%03d.{0..%u}.hdf5 (%u file%s%s)\n", out, o.snap,
	       o.snap, o.files - 1, o.files, o.files == 1 ? "" : "s",
	       o.files >= 2 ? "; chunk 1 holds no gas" : "");
	printf("  gas cells: %s\n", commas(o.header_only ? o.gas_total : o.gas, n1, sizeof(n1)));
	printf("  catalogue: %s/groups_%03d/fof_subhalo_tab_%03d.{0..%u}.hdf5 (%u files; chunk 1 "
	       "empty)\n", out, o.snap, o.snap, cat_files - 1, cat_files);
	printf("  halos:     %u above 1e14 Msun, %u below; box %g ckpc/h; seed %llu\n", o.halos,
	       o.small_halos, o.box_size, (unsigned long long)o.seed);
	return 0;
}
