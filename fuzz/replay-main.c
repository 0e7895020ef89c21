/*
 * Replays inputs through a libFuzzer target without libFuzzer, so that `make check` runs each fuzz
 * corpus and every kept crashing input as regression tests.
 *
 * Usage: replay [FILE...]. With no file it replays every file in $SNAPMEM_FUZZ_DIR/corpus/NAME and
 * $SNAPMEM_FUZZ_DIR/regressions/NAME (NAME is compiled in as FUZZ_NAME). It ends with one line
 * counting the inputs it found, those it ran through the target (passed) and those it could not
 * read (failed; exit 1). A crashing input kills the process (the sanitizer build reports it), so
 * a non-zero exit is a failed check; no input at all is one too (exit 1).
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef FUZZ_NAME
#define FUZZ_NAME "unknown"
#endif

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long len;
	int rc = 2;

	if (f == NULL)
		goto out;
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc(len > 0 ? (size_t)len : 1);
	if (buf == NULL || (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len))
		goto out;
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "replay: cannot read '%s'\n", path);
	if (f != NULL)
		fclose(f);
	free(buf);
	return rc;
}

struct tally {
	int inputs, passed, failed;
};

static void replay_one(const char *path, struct tally *t)
{
	t->inputs++;
	if (replay_file(path) == 0)
		t->passed++;
	else
		t->failed++;
}

static void replay_dir(const char *dir, struct tally *t)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path)) {
			fprintf(stderr, "replay: '%s/%s': path too long\n", dir, e->d_name);
			t->inputs++;
			t->failed++;
			continue;
		}
		replay_one(path, t);
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	const char *root = getenv("SNAPMEM_FUZZ_DIR");
	char dir[4096];
	struct tally t = {0, 0, 0};
	int i;

	if (argc > 1) {
		for (i = 1; i < argc; i++)
			replay_one(argv[i], &t);
	} else {
		if (root == NULL)
			root = "fuzz";
		snprintf(dir, sizeof(dir), "%s/corpus/%s", root, FUZZ_NAME);
		replay_dir(dir, &t);
		snprintf(dir, sizeof(dir), "%s/regressions/%s", root, FUZZ_NAME);
		replay_dir(dir, &t);
		if (t.inputs == 0) {
			fprintf(stderr, "replay %s: no inputs under %s/corpus/%s\n", FUZZ_NAME, root,
				FUZZ_NAME);
			return 1;
		}
	}
	printf("fuzz replay %s: %d inputs, %d passed, %d failed\n", FUZZ_NAME, t.inputs, t.passed,
	       t.failed);
	return t.failed == 0 ? 0 : 1;
}
