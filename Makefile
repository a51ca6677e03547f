# Makefile - the entry points of mixprec. CMake does the building; this file
# only strings the steps together so that a fresh clone needs one command.
#
#   make            = make build
#   make build      configure and build Release in build/
#   make demo       install what is missing, build, run the main job: train the
#                   default cnn on Fashion-MNIST in bf16 (5 epochs) and print its
#                   test accuracy
#   make test       install what is missing; build and run every test in
#                   build/ (Release), then in build-asan/ (ASan+UBSan, Debug)
#   make fuzz       install what is missing; build the libFuzzer targets with clang
#                   (ASan+UBSan) in build-fuzz/ and run each parser's fuzzer for
#                   FUZZ_SECONDS (default 30) over a scratch copy of fuzz/corpus/
#                   (scripts/fuzz.sh, docs/FUZZING.md)
#   make install    build, then install under PREFIX (default /usr/local; DESTDIR honoured)
#   make bench      install the benchmark dependencies, build, run bench/run.sh
#   make clean      remove build/, build-asan/ and build-fuzz/
#   make help       this text
#
# Dependencies come from scripts/setup.sh (Debian packages; as root it installs
# them, otherwise it prints the apt-get line and stops). MIXPREC_SKIP_SETUP=1
# skips it, e.g. on a machine that is not Debian. CMAKE_FLAGS=... is passed to
# every configure step.

BUILD_DIR ?= build
ASAN_DIR ?= build-asan
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 30
SANITIZE ?= address,undefined
PREFIX ?= /usr/local
DESTDIR ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE ?= cmake
CTEST ?= ctest
CMAKE_FLAGS ?=
MIXPREC_SKIP_SETUP ?= 0

# ctest: show the output of failed tests; a run that finds no test is a failure.
CTEST_FLAGS ?= --output-on-failure --no-tests=error -j $(JOBS)
# Sanitizer runs stop at the first error and print a stack for UBSan as well.
SANITIZER_ENV = ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 \
                UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.DEFAULT_GOAL := build
# The steps share build directories; never run them side by side.
.NOTPARALLEL:
.PHONY: build demo test check check-asan build-asan fuzz install bench clean help \
        setup setup-build setup-bench

# ---- dependencies ------------------------------------------------------------
setup:
	@$(call run-setup)
setup-build:
	@$(call run-setup,--build)
setup-bench:
	@$(call run-setup,--bench)

define run-setup
if [ "$(MIXPREC_SKIP_SETUP)" = 1 ]; then echo "setup.sh: skipped (MIXPREC_SKIP_SETUP=1)"; \
else bash scripts/setup.sh $(1); fi
endef

# ---- configure + build ---------------------------------------------------------
# $(call cmake-build,DIR,CMAKE OPTIONS). A build directory configured for another
# source tree (a copied or moved clone) is removed first: CMake refuses to reuse it.
define cmake-build
@if [ -f $(1)/CMakeCache.txt ] && ! { \
        grep -qxF 'CMAKE_HOME_DIRECTORY:INTERNAL=$(CURDIR)' $(1)/CMakeCache.txt && \
        grep -qxF 'CMAKE_CACHEFILE_DIR:INTERNAL=$(abspath $(1))' $(1)/CMakeCache.txt; }; then \
    echo "$(1)/ was configured for another source tree; removing it"; rm -rf $(1); fi
$(CMAKE) -S . -B $(1) $(2) $(CMAKE_FLAGS)
$(CMAKE) --build $(1) -j $(JOBS)
endef

# ./build/mixprec, or the absolute path when BUILD_DIR is one
MIXPREC_BIN = $(if $(filter /%,$(BUILD_DIR)),$(BUILD_DIR),./$(BUILD_DIR))/mixprec

RELEASE_OPTIONS = -DCMAKE_BUILD_TYPE=Release -DMIXPREC_SANITIZE=
# -O1: sanitizer checks stay exact, and the exhaustive tests run in minutes, not tens
ASAN_OPTIONS_CMAKE = -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-g -O1" -DMIXPREC_SANITIZE=$(SANITIZE)

build: setup-build
	$(call cmake-build,$(BUILD_DIR),$(RELEASE_OPTIONS))

# ---- the main job --------------------------------------------------------------
# For now the number formats; training replaces this in a later issue.
demo: setup
	$(call cmake-build,$(BUILD_DIR),$(RELEASE_OPTIONS))
	$(MIXPREC_BIN) train

# ---- tests ---------------------------------------------------------------------
# Both builds run even when the first fails; the status says whether either failed.
test: setup
	@release=PASSED; asan=PASSED; \
	$(MAKE) --no-print-directory check MIXPREC_SKIP_SETUP=1 || release=FAILED; \
	$(MAKE) --no-print-directory check-asan MIXPREC_SKIP_SETUP=1 || asan=FAILED; \
	echo "make test: Release $$release, ASan+UBSan $$asan"; \
	[ $$release = PASSED ] && [ $$asan = PASSED ]

# Release tests only (build/).
check: build
	cd $(BUILD_DIR) && $(CTEST) $(CTEST_FLAGS)

# ASan+UBSan tests only (build-asan/).
check-asan: build-asan
	cd $(ASAN_DIR) && $(SANITIZER_ENV) $(CTEST) $(CTEST_FLAGS)

build-asan: setup-build
	$(call cmake-build,$(ASAN_DIR),$(ASAN_OPTIONS_CMAKE))

# ---- fuzzing (clang + libFuzzer; a crash, leak or timeout fails) ---------------------
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_BUILD_DIR=$(FUZZ_DIR) FUZZ_JOBS=$(JOBS) bash scripts/fuzz.sh

# ---- install -------------------------------------------------------------------
install: build
	DESTDIR=$(DESTDIR) $(CMAKE) --install $(BUILD_DIR) --prefix $(PREFIX)

# ---- benchmarks (measured, never asserted) -----------------------------------------
bench: setup-bench
	$(call cmake-build,$(BUILD_DIR),$(RELEASE_OPTIONS))
	@if [ -f bench/run.sh ]; then \
	    echo "BUILD_DIR=$(abspath $(BUILD_DIR)) bash bench/run.sh"; \
	    BUILD_DIR=$(abspath $(BUILD_DIR)) bash bench/run.sh; \
	else echo "make bench: no benchmarks yet (bench/run.sh does not exist)"; fi

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR)

help:
	@sed -n '1,/^$$/s/^# \{0,1\}//p' Makefile
