/*
 * alloc: a plain program (nothing of snapmem linked) for test-profile: allocates a 24 MiB buffer in
 * make_buffer() (the line marked with the tag below, which the test looks for in memory.json's sites),
 * frees it, leaves a 3 MiB block live at exit (a leak, from leak_some()), then ends as argv[1] says:
 *   alloc N        exit status N
 *   alloc kill S   raise signal S (default action)
 *   alloc segv     a null-pointer write (SIGSEGV)
 *   alloc _exit    _exit(5), skipping exit handlers
 *   alloc fork     also fork a child that allocates 16 MiB and exits 0 (the parent waits)
 *   alloc fork_exit  also fork a child that keeps a 16 MiB buffer and ends with _exit(4); the
 *                  parent waits and exits with the child's status
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static char *make_buffer(size_t n)
{
	char *p = malloc(n); /* BUFFER-LINE */
	if (p)
		memset(p, 7, n);
	return p;
}

__attribute__((noinline)) static void *leak_some(void)
{
	void *p = malloc(3u << 20);
	if (p)
		memset(p, 1, 3u << 20);
	return p;
}

static void *volatile keep;

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "0";
	char *b = make_buffer(24u << 20);
	if (!b)
		return 3;
	free(b);
	keep = leak_some();
	if (strcmp(how, "kill") == 0 && argc > 2) {
		raise(atoi(argv[2]));
		return 99;
	}
	if (strcmp(how, "segv") == 0) {
		*(volatile int *)(uintptr_t)(argc - argc) = 1;
		return 99;
	}
	if (strcmp(how, "_exit") == 0)
		_exit(5);
	if (strcmp(how, "fork_exit") == 0) {
		pid_t pid = fork();
		if (pid == 0) {
			keep = make_buffer(16u << 20);
			_exit(4);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	if (strcmp(how, "fork") == 0) {
		pid_t pid = fork();
		if (pid == 0) {
			char *c = make_buffer(16u << 20);
			free(c);
			exit(0);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	return atoi(how);
}
