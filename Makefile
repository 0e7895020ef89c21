# snapmem — build, test, demo, install.
#
#   make            build/snapmem, build/libsnapmem.a, build/libsnapmem.so, examples,
#                   build/snapmem.bash-completion
#   make check      install missing Debian packages, build, run every cmocka test, the fuzz
#                   replays, README.md's commands (scripts/readme-check.sh) and an install into a
#                   temporary prefix (scripts/install-check.sh)
#   make demo       install missing packages, build, run the main job on built-in defaults
#   make sanitize   the tests under AddressSanitizer + UBSan (jemalloc reads compiled out)
#   make hostile    the adversarial sweep (scripts/hostile.py): SAMPLE=N SEED=S for a sample
#   make memcheck   valgrind memcheck on the demo's run (VALGRIND=1 build: no jemalloc, no ASan)
#   make bench      benchmarks (figures to build/bench/bench.md, bench.json); QUICK=1 for a short run
#   make reports    the reference reports in reports/ (bench.md from the last make bench; BENCH=1
#                   reruns it first)
#   make install    PREFIX (/usr/local) and DESTDIR honoured; make uninstall removes the same files
#
# Quiet unless V=1. CFLAGS/LDFLAGS given by the user are kept (+=).

CC ?= cc
PREFIX ?= /usr/local
BUILD ?= build
# An absolute BUILD inside the tree (scripts/install-check.sh passes one) names the same objects as
# the relative one, so it is made relative: the dependency files (-MMD) then name each object one
# way, and a changed header still rebuilds what includes it (with two spellings it did not).
override BUILD := $(patsubst $(CURDIR)/%,%,$(BUILD))
REAL_DATA ?= $(abspath tests/data)
VERSION := 0.1.0

ifeq ($(V),1)
Q :=
else
Q := @
endif

PKGS := hdf5 libunwind jansson yaml-0.1
ifneq ($(SANITIZE),1)
ifneq ($(VALGRIND),1)
PKGS += jemalloc
endif
endif
TEST_PKGS := cmocka

# Recursive (=) so that pkg-config runs when a recipe needs it, after scripts/setup-deps.sh.
# libdw: headers only; src/profiler/symbolize.c opens libdw.so.1 with dlopen when it names frames.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) libdw $(TEST_PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# The snapmem binary takes HDF5 from Debian's static archive (libhdf5-dev's libhdf5.a, found where
# pkg-config says): the shared libhdf5 pulls libcurl (its S3 driver) and some 30 libraries behind
# it (TLS, Kerberos, LDAP) into every process, 13-18 ms of each start here (an empty program 3.1
# ms, linked to libhdf5.so 17.7 ms; `snapmem --version` 27.2 ms). The archive's objects the
# binary uses need none of them. libsnapmem.so keeps the shared libhdf5: a program that links both
# must see one HDF5. So do the sanitizer and valgrind builds (their leak checks know the shared
# library's state at exit, where HDF5 keeps a file that failed to close).
CLI_PKG_LIBS = $(shell pkg-config --libs $(filter-out hdf5,$(PKGS)) 2>/dev/null) \
	$(shell pkg-config --libs-only-L hdf5 2>/dev/null) -Wl,-Bstatic -lhdf5 -Wl,-Bdynamic -lsz -lz
ifneq ($(SANITIZE)$(VALGRIND),)
CLI_PKG_LIBS = $(PKG_LIBS)
endif
TEST_LIBS = $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter \
	  -fPIC -fno-omit-frame-pointer -Iinclude -Isrc -MMD -MP
# No function frame above 256 KiB (docs/PIPELINE.md "Memory limits": subcommands run on at least
# 2 MiB of stack, the pipeline's workers on 1 MiB; the largest frames today are the estimator's
# tradeoff tables, 165 KiB). Not under the sanitizers, whose instrumented frames are larger.
ifneq ($(SANITIZE),1)
CFLAGS += -Wstack-usage=262144
endif
LDLIBS += -lm -lpthread -ldl
ifeq ($(FUZZ),1)
SANITIZE := 1
CFLAGS += -fsanitize=fuzzer-no-link
endif
ifeq ($(VALGRIND),1)
CFLAGS += -DSM_NO_JEMALLOC
endif
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined -DSM_NO_JEMALLOC
LDFLAGS += -fsanitize=address,undefined
endif

# MPI (docs/MPI.md): only the MPI module sees it (src/mpi/module.c, $(BUILD)/libsnapmem-mpi.so,
# opened by the binary for `run --mpi` alone: src/cli/mpi.c); neither the library nor the binary
# links MPI. Detected with pkg-config (ompi-c); without it `run --mpi` says "built without MPI". The
# sanitizer, valgrind and fuzz builds leave MPI out (OpenMPI's own allocations would be reported as
# leaks); MPI=0 / MPI=1 overrides the detection.
ifeq ($(origin MPI),undefined)
ifeq ($(SANITIZE)$(VALGRIND)$(FUZZ),)
MPI := $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1)
endif
endif
ifeq ($(MPI),1)
MPI_CFLAGS = $(shell pkg-config --cflags ompi-c 2>/dev/null) -DSM_HAVE_MPI
MPI_LIBS = $(shell pkg-config --libs ompi-c 2>/dev/null)
MPI_MODULE := $(BUILD)/libsnapmem-mpi.so
endif

LIB_SRCS := $(wildcard src/common/*.c src/snapshot/*.c src/model/*.c src/profiler/*.c src/pipeline/*.c \
	      src/report/*.c estimator/*.c)
CLI_SRCS := $(wildcard src/cli/*.c)
TEST_SRCS := $(wildcard tests/test-*.c)
TEST_UTIL_SRCS := $(wildcard tests/util-*.c)
EXAMPLE_SRCS := $(wildcard examples/*.c)
BENCH_SRCS := $(wildcard bench/benchmark-*.c)
FUZZ_SRCS := $(wildcard fuzz/fuzz-*.c)

# The embedded pipeline description (estimator/pipelines/radial-profiles.yaml, docs/PIPELINES.md)
# is compiled in as a C string generated at build time: no file is looked up at run time.
DESC_GEN := $(BUILD)/gen/desc-radial-profiles.c
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/desc-radial-profiles.o
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_UTIL_OBJS := $(TEST_UTIL_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
FUZZ_NAMES := $(FUZZ_SRCS:fuzz/fuzz-%.c=%)
REPLAY_BINS := $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz-replay-%)
FUZZ_SECONDS ?= 600

# snapmem profile pieces (rules below, "snapmem profile")
PRELOAD_SRCS := $(wildcard src/preload/*.c)
PRELOAD_OBJS := $(PRELOAD_SRCS:%.c=$(BUILD)/obj/%.o) \
		$(filter $(BUILD)/obj/src/profiler/% $(BUILD)/obj/src/common/%,$(LIB_OBJS))
PY_SRCS := $(wildcard python/snapmem/*.py)
PY_OUT := $(PY_SRCS:python/%=$(BUILD)/python/%)
TEST_LIB_SRCS := $(wildcard tests/progs/lib-*.c)
TEST_PLAIN_SRCS := $(filter-out $(TEST_LIB_SRCS),$(wildcard tests/progs/*.c))
TEST_PROGS := $(TEST_PLAIN_SRCS:tests/progs/%.c=$(BUILD)/tests/progs/%) \
	      $(TEST_LIB_SRCS:tests/progs/%.c=$(BUILD)/tests/progs/%) \
	      $(TEST_LIB_SRCS:tests/progs/%.c=$(BUILD)/tests/progs/%-shared)
PROFILE_ALL := $(BUILD)/libsnapmem.so.0 $(PY_OUT)
ifeq ($(SANITIZE)$(VALGRIND),)
PROFILE_ALL += $(BUILD)/libsnapmem-preload.so
endif

.PHONY: uninstall-pycache all deps check check-run demo demo-run sanitize bench install uninstall clean reports hostile \
	fuzz render-check memcheck install-manifest FORCE
.DEFAULT_GOAL := all
# Objects of tests and examples are not intermediate: keep them between builds.
.SECONDARY:

all: $(BUILD)/snapmem $(BUILD)/libsnapmem.a $(BUILD)/libsnapmem.so $(EXAMPLE_BINS) \
     $(BUILD)/snapmem.pc $(BUILD)/snapmem.bash-completion $(PROFILE_ALL)

deps:
	$(Q)scripts/setup-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

# Each line a string literal; backslash, quote and '?' (no trigraphs under -std=c11) escaped.
$(DESC_GEN): estimator/pipelines/radial-profiles.yaml
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GEN     $@")
	$(Q){ echo '/* generated from $< by the Makefile: do not edit */'; \
	  echo 'extern const char sm__desc_radial_profiles[];'; \
	  echo 'const char sm__desc_radial_profiles[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	  echo ';'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/desc-radial-profiles.o: $(DESC_GEN)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -c $< -o $@

# MPI's objects are rebuilt when the build switches MPI on or off (a stamp per state).
MPI_STAMP := $(BUILD)/.mpi-$(if $(filter 1,$(MPI)),on,off)
# The distance kernels (stream_cells, select_sphere, radial_distance) vectorise only where sqrtf
# need not set errno (never read).
$(BUILD)/obj/src/pipeline/stream_cells.o $(BUILD)/obj/src/pipeline/select_sphere.o \
$(BUILD)/obj/src/pipeline/radial_distance.o: CFLAGS += -fno-math-errno
$(BUILD)/obj/src/cli/mpi.o $(BUILD)/obj/src/mpi/module.o $(BUILD)/obj/tests/test-mpi.o: \
	CFLAGS += $(MPI_CFLAGS)
$(BUILD)/obj/src/cli/mpi.o $(BUILD)/obj/src/mpi/module.o $(BUILD)/obj/tests/test-mpi.o: \
	$(MPI_STAMP)
$(MPI_STAMP):
	@mkdir -p $(BUILD)
	$(Q)rm -f $(BUILD)/.mpi-on $(BUILD)/.mpi-off && touch $@

$(BUILD)/libsnapmem.a: $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/libsnapmem.so: $(LIB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,libsnapmem.so.0 $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# The MPI module comes with the binary (order-only: a new module does not relink the binary).
$(BUILD)/snapmem: $(CLI_OBJS) $(BUILD)/libsnapmem.a | $(MPI_MODULE)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -rdynamic -o $@ $(CLI_OBJS) $(BUILD)/libsnapmem.a $(CLI_PKG_LIBS) \
		$(LDLIBS)

$(BUILD)/libsnapmem-mpi.so: $(BUILD)/obj/src/mpi/module.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared $(LDFLAGS) -o $@ $^ $(MPI_LIBS) $(LDLIBS)

# The bash completion, generated by the binary from its option tables (src/cli/opts.c).
$(BUILD)/snapmem.bash-completion: $(BUILD)/snapmem
	@$(if $(Q),echo "  GEN     $@")
	$(Q)$(BUILD)/snapmem completion bash > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_UTIL_OBJS) $(BUILD)/libsnapmem.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -rdynamic -o $@ $< $(TEST_UTIL_OBJS) $(BUILD)/libsnapmem.a $(PKG_LIBS) \
		$(TEST_LIBS) $(LDLIBS)

$(BUILD)/tests/fuzz-replay-%: fuzz/fuzz-%.c fuzz/replay-main.c $(BUILD)/libsnapmem.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(PKG_CFLAGS) -DFUZZ_NAME='"$*"' $(LDFLAGS) -o $@ \
		fuzz/fuzz-$*.c fuzz/replay-main.c $(BUILD)/libsnapmem.a $(PKG_LIBS) $(LDLIBS)

$(BUILD)/fuzz/%: fuzz/%.c $(BUILD)/libsnapmem.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(PKG_CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ \
		$< $(BUILD)/libsnapmem.a $(PKG_LIBS) $(LDLIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(BUILD)/libsnapmem.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -rdynamic -o $@ $< $(BUILD)/libsnapmem.a $(PKG_LIBS) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libsnapmem.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -rdynamic -o $@ $< $(BUILD)/libsnapmem.a $(PKG_LIBS) $(LDLIBS)

# --- snapmem profile (docs/PROFILE.md) -------------------------------------------------------
# libsnapmem-preload.so: jemalloc as the process's allocator, the profiler's malloc layer and its
# timeline, started by a constructor and written out at exit (src/preload/). Only the profiler and
# the common code go in (no HDF5 in every profiled process); -Bsymbolic keeps its own calls inside
# it when the program also carries a copy of the profiler. Not built without jemalloc (sanitizer
# and valgrind builds: `snapmem profile` then says so). The Python module is copied to
# $(BUILD)/python/snapmem. Test programs (tests/progs/*.c, -g) are plain programs, linked with
# nothing of snapmem's, except lib-*.c, linked twice: against libsnapmem.a (lib-NAME) and
# libsnapmem.so (lib-NAME-shared).
PRELOAD_LIBS = $(shell pkg-config --libs libunwind jansson jemalloc 2>/dev/null)
# where the installed preload library and MPI module are, when they are not beside the binary
# (src/cli/companion.c); the object is rebuilt when PREFIX changes (.pc-vars below)
$(BUILD)/obj/src/cli/companion.o: CFLAGS += -DSM_COMPANION_DIR='"$(PREFIX)/lib/snapmem"'
$(BUILD)/obj/src/cli/companion.o: $(BUILD)/.pc-vars
# the Python module goes where python3 looks: PREFIX/lib/pythonX.Y/dist-packages (Debian's
# /usr/local layout), PREFIX/lib/python3/dist-packages for PREFIX=/usr; PYTHON_SITE overrides
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
ifeq ($(origin PYTHON_SITE),undefined)
PYTHON_SITE := $(shell $(PYTHON) -c 'import sys; p = "$(PREFIX)"; print(p + ("/lib/python3/dist-packages" if p == "/usr" else "/lib/python%d.%d/dist-packages" % sys.version_info[:2]))' 2>/dev/null)
endif

$(BUILD)/libsnapmem-preload.so: $(PRELOAD_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-Bsymbolic $(LDFLAGS) -o $@ $^ $(PRELOAD_LIBS) $(LDLIBS)

$(BUILD)/libsnapmem.so.0: $(BUILD)/libsnapmem.so
	$(Q)ln -sf libsnapmem.so $@

$(BUILD)/python/%.py: python/%.py
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

$(BUILD)/tests/progs/lib-%-shared: $(BUILD)/obj/tests/progs/lib-%.o $(BUILD)/libsnapmem.so.0
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< -L$(BUILD) -lsnapmem -Wl,-rpath,$(abspath $(BUILD)) $(LDLIBS)

$(BUILD)/tests/progs/lib-%: $(BUILD)/obj/tests/progs/lib-%.o $(BUILD)/libsnapmem.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libsnapmem.a $(PKG_LIBS) $(LDLIBS)

$(BUILD)/tests/progs/%: $(BUILD)/obj/tests/progs/%.o
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LDLIBS)

# snapmem.pc names PREFIX: rebuilt when PREFIX (or the version) changes, through a stamp holding
# them that is rewritten only when its content differs. The rpath in Libs lets a program linked
# with `pkg-config --libs snapmem` find libsnapmem.so without LD_LIBRARY_PATH.
$(BUILD)/.pc-vars: FORCE
	@mkdir -p $(dir $@)
	$(Q)printf '%s\n' 'PREFIX=$(PREFIX)' 'VERSION=$(VERSION)' > $@.tmp && \
		if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

$(BUILD)/snapmem.pc: $(BUILD)/.pc-vars Makefile
	@mkdir -p $(dir $@)
	$(Q)printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
		'Name: snapmem' 'Description: memory estimator and stage profiler for simulation snapshot pipelines' \
		'Version: $(VERSION)' 'Requires.private: hdf5 jemalloc libunwind jansson yaml-0.1' \
		'Libs: -L$${libdir} -Wl,-rpath,$${libdir} -lsnapmem' 'Libs.private: -lm -lpthread -ldl' \
		'Cflags: -I$${includedir}' > $@

# --- the two commands ------------------------------------------------------------------------
check: deps
	$(Q)$(MAKE) --no-print-directory check-run

# After the cmocka tests and the fuzz replays, scripts run as tests (tests/run.sh gives each its own
# TMPDIR; SNAPMEM_BIN names the build): the README's commands and install/uninstall. Not under
# SANITIZE, whose binaries are not the ones a user builds, runs or installs.
SCRIPT_CHECKS := $(if $(filter 1,$(SANITIZE)),,scripts/readme-check.sh scripts/install-check.sh)

check-run: all $(TEST_BINS) $(REPLAY_BINS) $(TEST_PROGS)
	$(Q)SNAPMEM_TEST_PROGS=$(abspath $(BUILD)/tests/progs) SNAPMEM_FUZZ_DIR=$(abspath fuzz) SNAPMEM_BIN=$(abspath $(BUILD)/snapmem) SNAPMEM_EXAMPLES=$(abspath $(BUILD)/examples) \
		SNAPMEM_REAL_DATA=$(REAL_DATA) SNAPMEM_SANITIZE=$(SANITIZE) \
		tests/run.sh $(TEST_BINS) $(REPLAY_BINS) scripts/contract-check.py $(SCRIPT_CHECKS)

demo: deps
	$(Q)$(MAKE) --no-print-directory demo-run

demo-run: $(BUILD)/snapmem
	$(Q)scripts/demo.sh $(abspath $(BUILD)/snapmem)

sanitize: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan SANITIZE=1 check-run

memcheck: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build-vg VALGRIND=1 build-vg/snapmem
	$(Q)scripts/memcheck.sh $(abspath build-vg/snapmem)

bench:
	$(Q)scripts/setup-deps.sh jq bc heaptrack valgrind
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/snapmem $(BENCH_BINS) $(BUILD)/tests/progs/allocloop
	$(Q)scripts/bench.sh $(abspath $(BUILD)) $(if $(QUICK),quick,full)

# libFuzzer targets (clang): each runs FUZZ_SECONDS; new crashing inputs land in
# fuzz/regressions/<name>/ and are replayed by `make check` from then on.
fuzz:
	$(Q)scripts/setup-deps.sh clang libclang-rt-14-dev
	$(Q)$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang FUZZ=1 \
		$(FUZZ_NAMES:%=build-fuzz/fuzz/fuzz-%)
	$(Q)scripts/fuzz.sh $(abspath build-fuzz) $(FUZZ_SECONDS) $(FUZZ_NAMES)

# BENCH=1: a full make bench first; otherwise reports/bench.md is copied from the last one.
# The adversarial sweep (scripts/hostile.py, issue #18): hostile variants of a mock through every
# subcommand, the command-line contract checked on each. SAMPLE=N runs N cases drawn with SEED
# (CI), known failures left out.
hostile: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/snapmem
	$(Q)/usr/bin/python3 scripts/hostile.py --bin $(BUILD)/snapmem \
		$(if $(SAMPLE),--sample $(SAMPLE) --seed $(or $(SEED),1))

reports: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/snapmem
	$(Q)$(if $(filter 1,$(BENCH)),$(MAKE) --no-print-directory bench QUICK=,true)
	$(Q)scripts/reports.sh $(abspath $(BUILD)/snapmem)

# --- install ---------------------------------------------------------------------------------
# Every installed file is one line of INSTALL_FILES (mode|file in the build or tree|destination
# under DESTDIR), every symbolic link one line of INSTALL_LINKS (target|link); uninstall removes
# exactly these, then the directories of INSTALL_OWN_DIRS when empty. The snapmem binary is linked
# statically against libsnapmem.a: it needs no libsnapmem.so.
bindir := $(PREFIX)/bin
libdir := $(PREFIX)/lib
includedir := $(PREFIX)/include
datadir := $(PREFIX)/share
# The libraries shipped beside the binary, installed in $(libdir)/snapmem (src/cli/companion.c).
COMPANIONS := $(if $(SANITIZE)$(VALGRIND),,$(BUILD)/libsnapmem-preload.so) $(MPI_MODULE)
INSTALL_FILES := \
	755|$(BUILD)/snapmem|$(bindir)/snapmem \
	644|$(BUILD)/libsnapmem.a|$(libdir)/libsnapmem.a \
	755|$(BUILD)/libsnapmem.so|$(libdir)/libsnapmem.so.$(VERSION) \
	644|$(BUILD)/snapmem.pc|$(libdir)/pkgconfig/snapmem.pc \
	644|$(BUILD)/snapmem.bash-completion|$(datadir)/bash-completion/completions/snapmem \
	$(foreach h,$(wildcard include/snapmem/*.h),644|$(h)|$(includedir)/snapmem/$(notdir $(h))) \
	$(foreach f,$(PY_OUT),644|$(f)|$(PYTHON_SITE)/snapmem/$(notdir $(f))) \
	$(foreach f,$(COMPANIONS),755|$(f)|$(libdir)/snapmem/$(notdir $(f)))
INSTALL_LINKS := \
	libsnapmem.so.$(VERSION)|$(libdir)/libsnapmem.so.0 \
	libsnapmem.so.0|$(libdir)/libsnapmem.so
INSTALL_OWN_DIRS := $(includedir)/snapmem $(PYTHON_SITE)/snapmem \
	$(if $(strip $(COMPANIONS)),$(libdir)/snapmem)

field = $(word $(1),$(subst |, ,$(2)))
install: all
	$(Q)set -e; $(foreach f,$(INSTALL_FILES), \
		$(if $(Q),echo "  INSTALL $(DESTDIR)$(call field,3,$(f))";) \
		install -D -m $(call field,1,$(f)) $(call field,2,$(f)) $(DESTDIR)$(call field,3,$(f));) \
		$(foreach l,$(INSTALL_LINKS), \
		$(if $(Q),echo "  LN      $(DESTDIR)$(call field,2,$(l))";) \
		ln -sfn $(call field,1,$(l)) $(DESTDIR)$(call field,2,$(l));)

# What install puts, one path a line (scripts/install-check.sh compares it with the files found).
install-manifest:
	@printf '%s\n' $(foreach f,$(INSTALL_FILES),$(DESTDIR)$(call field,3,$(f))) \
		$(foreach l,$(INSTALL_LINKS),$(DESTDIR)$(call field,2,$(l)))

# Python leaves its byte-code cache beside an imported module: gone before the directory is
uninstall: uninstall-pycache
uninstall-pycache:
	$(Q)rm -rf $(DESTDIR)$(PYTHON_SITE)/snapmem/__pycache__

uninstall:
	$(Q)set -e; $(foreach f,$(INSTALL_FILES), \
		$(if $(Q),echo "  RM      $(DESTDIR)$(call field,3,$(f))";) \
		rm -f $(DESTDIR)$(call field,3,$(f));) \
		$(foreach l,$(INSTALL_LINKS), \
		$(if $(Q),echo "  RM      $(DESTDIR)$(call field,2,$(l))";) \
		rm -f $(DESTDIR)$(call field,2,$(l));) \
		$(foreach d,$(INSTALL_OWN_DIRS),if [ -d $(DESTDIR)$(d) ]; then rmdir $(DESTDIR)$(d); fi;)

clean:
	rm -rf build build-asan build-fuzz build-vg

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
