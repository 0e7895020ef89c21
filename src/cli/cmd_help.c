/*
 * `snapmem help [COMMAND]` and `snapmem completion bash`: the help of a command (the same text
 * as `snapmem COMMAND --help`, both printed by cli_print_help from the command's option table)
 * and the bash completion script generated from the same tables (installed by `make install`).
 * Exit 0 done, 2 bad usage, 127 an unknown COMMAND.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

enum { CO_SHELL = CLI_ID_FIRST };

static const cli_opt help_opts[] = {
	{NULL, 0, CLI_FLAG, NULL, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_help = {
	"help", "every option of a command, with its default (= snapmem COMMAND --help)",
	"usage: snapmem help [COMMAND]\n",
	"Prints the help of COMMAND, the same text as 'snapmem COMMAND --help'; without COMMAND,\n"
	"the list of commands.\n",
	help_opts, 0, "COMMAND", cmd_help,
};

const cli_cmd cli_cmd_completion = {
	"completion", "print the bash completion script (make install installs it)",
	"usage: snapmem completion bash\n",
	"Prints a bash completion script for every command and option, generated from the same\n"
	"option tables as the help. Load it with  source <(snapmem completion bash)  or install it\n"
	"as $PREFIX/share/bash-completion/completions/snapmem (make install does).\n",
	help_opts, 0, "SHELL", cmd_completion,
};

/* The operands of a command taking at most one; *one is NULL when none was given. */
static int one_operand(cli_parser *p, const char **one)
{
	const cli_opt *o;
	const char *v;
	int rc;

	*one = NULL;
	while ((rc = cli_next(p, &o, &v)) != CLI_END) {
		if (rc < 0)
			return cli_parse_status(rc) == 0 ? -1 : 2;
		if (*one != NULL)
			return cli_parse_error(p, "one %s, got '%s' and '%s'", p->cmd->operands, *one,
					       v);
		*one = v;
	}
	return 0;
}

int cmd_help(int argc, char **argv)
{
	cli_parser p;
	const cli_cmd *c;
	const char *name;
	int rc;

	cli_parser_init(&p, &cli_cmd_help, argc, argv);
	rc = one_operand(&p, &name);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	if (name == NULL) {
		cli_usage(stdout);
		return 0;
	}
	c = cli_find_command(name);
	if (c == NULL)
		return cli_unknown_command(name);
	cli_print_help(stdout, c);
	return fflush(stdout) == 0 ? 0 : 2;
}

int cmd_completion(int argc, char **argv)
{
	cli_parser p;
	const char *shell;
	int rc;

	cli_parser_init(&p, &cli_cmd_completion, argc, argv);
	rc = one_operand(&p, &shell);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	if (shell == NULL)
		return cli_parse_error(&p, "missing SHELL (bash)");
	if (strcmp(shell, "bash") != 0)
		return cli_parse_error(&p, "'%s' is not a supported shell (bash)", shell);
	cli_print_bash_completion(stdout, cli_commands, cli_ncommands);
	return fflush(stdout) == 0 ? 0 : 2;
}
