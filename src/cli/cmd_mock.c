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

enum { MO_GAS = CLI_ID_FIRST, MO_HALOS, MO_SMALL_HALOS, MO_FILES, MO_SEED, MO_SNAP, MO_BOX,
       MO_HEADER_ONLY, MO_GAS_TOTAL, MO_DM };

static const cli_opt mock_opts[] = {
	{"gas", 0, CLI_NUMBER, "N", "1000000", "gas cells (1e7 style accepted)", MO_GAS, 0},
	{"dm", 0, CLI_NUMBER, "N", "gas/16 + F",
	 "dark-matter particles (PartType1 Coordinates and ParticleIDs, uniform in the box, "
	 "MassTable[1] set), spread evenly over the chunk files", MO_DM, 0},
	{"halos", 0, CLI_NUMBER, "K", "30", "halos above 1e14 Msun", MO_HALOS, 0},
	{"small-halos", 0, CLI_NUMBER, "K", "as many as --halos", "halos below 1e14 Msun",
	 MO_SMALL_HALOS, 0},
	{"files", 0, CLI_NUMBER, "F", "8",
	 "snapshot chunk files (chunk 1 holds no gas when F >= 2); the catalogue gets max(2, F/2) "
	 "files, chunk 1 empty", MO_FILES, 0},
	{"seed", 0, CLI_NUMBER, "S", "1", "random seed; the same options give the same files",
	 MO_SEED, 0},
	{"snap", 0, CLI_NUMBER, "N", "99", "snapshot number, 0 to 999", MO_SNAP, 0},
	{"box", 0, CLI_NUMBER, "L", "75000", "box side in ckpc/h", MO_BOX, 0},
	{"header-only", 0, CLI_FLAG, NULL, "off",
	 "headers alone, no particle datasets; needs --gas-total N", MO_HEADER_ONLY, 0},
	{"gas-total", 0, CLI_NUMBER, "N", "none",
	 "with --header-only: gas cells, may exceed 2^32 (e.g. 14454722210)", MO_GAS_TOTAL, 0},
	{NULL, 0, CLI_FLAG, NULL, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_mock = {
	"mock", "write a TNG-layout mock snapshot and group catalogue",
	"usage: snapmem mock OUT_DIR [--gas N] [--dm N] [--halos K] [--small-halos K] [--files F]\n"
	"                    [--seed S] [--snap N] [--box L] [--header-only --gas-total N]\n",
	"Writes OUT_DIR/snapdir_XXX/snap_XXX.N.hdf5 and OUT_DIR/groups_XXX/fof_subhalo_tab_XXX.N.hdf5\n"
	"as AREPO/IllustrisTNG lay them out, with known content.\n",
	mock_opts, 0, "OUT_DIR", cmd_mock,
};

static int parse_u32(const cli_parser *p, const char *val, uint32_t *out)
{
	sm_error err = {0};
	uint64_t v;

	if (sm_parse_u64(p->name, val, &v, &err) != 0)
		return cli_parse_error(p, "%s", err.msg);
	if (v > UINT32_MAX)
		return cli_parse_error(p, "%s: '%s' is too large", p->name, val);
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
	const char *out = NULL, *val;
	const cli_opt *opt;
	cli_parser p;
	int rc, small_set = 0, gas_total_set = 0, gas_set = 0;
	uint32_t cat_files;
	char n1[32];

	sm_mock_options_init(&o);
	cli_parser_init(&p, &cli_cmd_mock, argc, argv);
	while ((rc = cli_next(&p, &opt, &val)) != CLI_END) {
		uint64_t v;
		uint32_t u = 0;

		if (rc < 0)
			return cli_parse_status(rc);
		if (rc == CLI_OPERAND) {
			if (out != NULL)
				return cli_parse_error(&p, "more than one OUT_DIR ('%s' and '%s')", out,
						       val);
			out = val;
			continue;
		}
		switch (opt->id) {
		case MO_HEADER_ONLY:
			o.header_only = 1;
			break;
		case MO_GAS:
		case MO_GAS_TOTAL:
		case MO_DM:
		case MO_SEED:
			if (sm_parse_u64(p.name, val, &v, &err) != 0)
				return cli_parse_error(&p, "%s", err.msg);
			if (opt->id == MO_GAS) {
				o.gas = v;
				gas_set = 1;
			} else if (opt->id == MO_GAS_TOTAL) {
				o.gas_total = v;
				gas_total_set = 1;
			} else if (opt->id == MO_DM) {
				if (v == 0)
					return cli_parse_error(&p, "--dm: must be at least 1");
				o.dm = v;
			} else {
				o.seed = v;
			}
			break;
		case MO_BOX:
			if (sm_parse_double(p.name, val, 1.0, 1e7, &o.box_size, &err) != 0)
				return cli_parse_error(&p, "%s", err.msg);
			break;
		default:
			if (parse_u32(&p, val, &u) != 0)
				return 2;
			if (opt->id == MO_HALOS) {
				o.halos = u;
			} else if (opt->id == MO_SMALL_HALOS) {
				o.small_halos = u;
				small_set = 1;
			} else if (opt->id == MO_FILES) {
				o.files = u;
			} else {
				if (u > 999)
					return cli_parse_error(&p, "--snap: '%s' is outside [0, 999]",
							       val);
				o.snap = (int)u;
			}
		}
	}
	if (out == NULL)
		return cli_parse_error(&p, "missing OUT_DIR");
	if (!small_set)
		o.small_halos = o.halos;
	if (o.header_only && !gas_total_set)
		return cli_parse_error(&p, "--header-only needs --gas-total N");
	if (!o.header_only && gas_total_set)
		return cli_parse_error(&p, "--gas-total goes with --header-only (use --gas)");
	if (o.header_only && gas_set)
		return cli_parse_error(&p, "--gas does not go with --header-only (use "
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
	if (o.dm != 0)
		printf("  dark matter: %s particles\n", commas(o.dm, n1, sizeof(n1)));
	printf("  catalogue: %s/groups_%03d/fof_subhalo_tab_%03d.{0..%u}.hdf5 (%u files; chunk 1 "
	       "empty)\n", out, o.snap, o.snap, cat_files - 1, cat_files);
	printf("  halos:     %u above 1e14 Msun, %u below; box %g ckpc/h; seed %llu\n", o.halos,
	       o.small_halos, o.box_size, (unsigned long long)o.seed);
	return 0;
}
