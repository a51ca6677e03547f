#!/usr/bin/env bash
# scripts/setup.sh - install what mixprec needs on Debian 12 (bookworm); idempotent.
#
#   scripts/setup.sh            build tools + test dependencies (make demo, make test, make fuzz)
#   scripts/setup.sh --build    build tools only (make build)
#   scripts/setup.sh --bench    build tools + benchmark-only dependencies (make bench)
#   scripts/setup.sh --check    only report what is missing; exit 1 if anything is
#
# It asks dpkg-query what is missing and touches apt only then (apt-get update,
# then apt-get install -y). As root it installs; otherwise it prints the exact
# `sudo apt-get install ...` line and exits 1. When everything is present it
# changes nothing and takes well under a second.
#
# Python packages from PyPI are for tests only, installed with pip for the
# system interpreter /usr/bin/python3 that the reference tests use, each at the
# exact version the fixtures were made with and with --no-deps (so pip never
# replaces the Debian numpy that python3-torch is built against). A pip
# failure is reported and never fatal: the tests that need the package skip.
set -euo pipefail

# ---- what each mode needs: one Debian package a line ---------------------------
BUILD_PKGS=(
    gcc             # C11 compiler; also brings OpenMP (libgomp) and the ASan/UBSan runtimes
    libc6-dev       # C headers (gcc only recommends it)
    make
    cmake
    pkg-config      # tests/pkgconfig_check.sh links a program the way a user would
    zlib1g-dev      # zlib: reads gzipped IDX files (Fashion-MNIST ships as .gz)
    libyaml-dev     # libyaml: parses Trainer-style YAML argument files
    libjansson-dev  # JSON: safetensors headers, config.json
    libopenmpi-dev  # Open MPI: data-parallel training (src/dist); mpicc headers and libmpi
    openmpi-bin     # mpirun: `mixprec launch --num-processes N` runs N > 1 processes under it
)
TEST_PKGS=(
    python3-numpy   # reference values (float16) in tests/reference
    python3-torch   # reference values (bfloat16) in tests/reference
    python3-pip     # to install the PyPI packages below
    dataset-fashion-mnist # the default training data, /usr/share/datasets/fashion-mnist
    fortunes        # the gpt model's default text, /usr/share/games/fortunes (--data fortunes)
    clang           # make fuzz: the libFuzzer targets of fuzz/ are built with clang (14 on Debian 12)
    libclang-rt-14-dev # libclang_rt.fuzzer and clang's ASan/UBSan runtimes (only recommended by clang)
    gnuplot-nox     # `mixprec plot` draws its PNG with it; test_plot_cli's PNG checks skip without it
)
TEST_PIP_PKGS=(
    # module==version. ml_dtypes: numpy dtypes for fp8. tests/reference/numerics_ref.bin was
    # made with 0.4.1 and test_numerics_fixture compares it byte for byte, so exactly that one
    # (it works with Debian's numpy 1.24); tests that need it skip without it.
    ml_dtypes==0.4.1
    # safetensors: the official reader and writer that test_safetensors_python checks our
    # files against (a Rust wheel with no dependencies; it uses python3-torch). Skips without it.
    safetensors==0.8.0
    # transformers: test_gpt_python loads a mixprec gpt checkpoint into its GPT2LMHeadModel
    # (tests/reference/check_gpt_hf.py). 4.36.2 is the newest that supports torch 1.13;
    # the lines after it are what `import transformers` needs, each pinned (tokenizers is
    # not: GPT2LMHeadModel does not need it). Skips without them.
    transformers==4.36.2
    huggingface_hub==0.19.4
    regex==2023.10.3
    tqdm==4.66.1
    packaging==23.2
    filelock==3.13.1
    fsspec==2023.10.0
)
BENCH_PKGS=(
    libdnnl-dev     # oneDNN: the bf16 matmul we measure against
    libopenblas-dev # OpenBLAS: the sgemm we measure against
    hyperfine       # times whole commands
)

PYTHON=/usr/bin/python3

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
}

mode='test'
for arg in "$@"; do
    case "$arg" in
        --build) mode=build ;;
        --bench) mode=bench ;;
        --test) mode='test' ;;
        --check) check_only=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done
check_only=${check_only:-0}

wanted=("${BUILD_PKGS[@]}")
pip_wanted=()
case "$mode" in
    test) wanted+=("${TEST_PKGS[@]}"); pip_wanted+=("${TEST_PIP_PKGS[@]}") ;;
    bench) wanted+=("${BENCH_PKGS[@]}") ;;
esac

say() { echo "setup.sh: $*"; }

# ---- Debian packages --------------------------------------------------------------
if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian system (no dpkg-query); install the equivalents of: ${wanted[*]}"
    for tool in cc make cmake pkg-config; do
        command -v "$tool" >/dev/null 2>&1 || { say "missing: $tool"; exit 1; }
    done
    exit 0
fi

missing=()
for pkg in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [[ "$status" == ii* ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    say "Debian packages ($mode): all ${#wanted[@]} present"
elif ((check_only)); then
    say "missing Debian packages: ${missing[*]}"
    exit 1
elif ((EUID != 0)); then
    say "missing Debian packages: ${missing[*]}"
    echo "Run this, then run the make command again:"
    echo
    echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    echo
    exit 1
else
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
    say "installed: ${missing[*]}"
fi

# ---- PyPI packages for tests (never fatal) ---------------------------------------
# The version of the distribution that the module importable as $1 belongs to, or nothing
# when it does not import. Read from the package metadata, not __version__ (regex's
# __version__ is an internal number, not its release).
installed_version() {
    "$PYTHON" -c "import importlib.metadata as md, $1; print(md.version('$1'))" 2>/dev/null || true
}

for spec in "${pip_wanted[@]}"; do
    mod=${spec%%==*}
    want=${spec#*==}
    have=$(installed_version "$mod")
    if [[ "$have" == "$want" ]]; then
        say "python package $mod: $want present"
        continue
    fi
    what="missing" why="tests that need it will skip"
    if [[ -n "$have" ]]; then
        what="$have installed, the tests need $want"
        why="test_numerics_fixture may fail against $have"
    fi
    if ((check_only)); then
        say "python package $mod: $what ($why)"
        continue
    fi
    if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
        say "python package $mod: $what, and no pip for $PYTHON ($why)"
        continue
    fi
    # As root into /usr/local (every user's /usr/bin/python3 sees it), else --user.
    where=(--root-user-action=ignore)
    ((EUID == 0)) || where=(--user)
    # --no-deps: the Debian numpy stays (the newest wheels of many packages pull in
    # numpy 2, which would shadow it and break python3-torch).
    # --break-system-packages: Debian 12 marks its Python externally managed (PEP 668).
    say "python package $mod: $what; pip install --no-deps ${where[*]} $spec"
    if ! timeout 600 "$PYTHON" -m pip install -q --break-system-packages --no-deps \
        "${where[@]}" "$spec"; then
        say "python package $mod: pip could not install $spec; $why"
        continue
    fi
    have=$(installed_version "$mod")
    if [[ "$have" == "$want" ]]; then
        say "python package $mod: $want installed"
    else
        # e.g. another copy earlier on sys.path (~/.local comes before /usr/local)
        say "python package $mod: installed $spec, but $PYTHON still imports" \
            "${have:-nothing}; see $PYTHON -m pip list -v"
    fi
done
exit 0
