#!/bin/sh
# tests/pkgconfig_check.sh BUILD_DIR SOURCE_DIR - link a program outside the tree
# against the installed libmixprec using nothing but pkg-config, as a user would.
#
# Installs BUILD_DIR twice into a temporary directory: a full prefix (shared and
# static library) and a static-only prefix (the shared library removed, so that
# -lmixprec can only mean libmixprec.a). Compiles one C program with
# `pkg-config --cflags --libs mixprec` against the first and with
# `pkg-config --static --cflags --libs mixprec` against the second, runs both,
# and checks known bit patterns of the public conversions.
#
# In a sanitizer build (MIXPREC_SANITIZE in BUILD_DIR/CMakeCache.txt) the library
# needs the sanitizer runtime, so the same -fsanitize flags are added to the
# program's compile and link: the only flags not taken from pkg-config.
# Exit status: 0 pass, 1 fail, 77 skip (no pkg-config or no C compiler).
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
build_dir=$1
source_dir=$2 # unused: the point is that nothing from the tree is needed
: "$source_dir"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

cache="$build_dir/CMakeCache.txt"
[ -f "$cache" ] || fail "$cache not found: configure and build first"
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$cache" | head -n 1; }

command -v pkg-config >/dev/null 2>&1 || { echo "SKIP: pkg-config not found"; exit 77; }
command -v cmake >/dev/null 2>&1 || { echo "SKIP: cmake not found"; exit 77; }
# The compiler that built the library (its sanitizer runtime must match), else $CC, else cc.
cc=$(cache_value CMAKE_C_COMPILER)
[ -n "$cc" ] && command -v "$cc" >/dev/null 2>&1 || cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($cc)"; exit 77; }

sanitize=$(cache_value MIXPREC_SANITIZE)
extra=""
if [ -n "$sanitize" ]; then
    extra="-fsanitize=$sanitize -fno-omit-frame-pointer"
    echo "sanitizer build: adding '$extra' to the test program"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mixprec-pkgconfig.XXXXXX") || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT INT TERM

# ---- install ----------------------------------------------------------------
for p in shared static; do
    cmake --install "$build_dir" --prefix "$tmp/$p" >"$tmp/install-$p.log" 2>&1 ||
        { cat "$tmp/install-$p.log" >&2; fail "cmake --install $build_dir --prefix $tmp/$p"; }
done
rm -f "$tmp"/static/lib*/libmixprec.so* "$tmp"/static/lib*/*/libmixprec.so*

pcdir() { dirname "$(find "$1" -name mixprec.pc | head -n 1)"; }
for p in shared static; do
    [ -f "$(pcdir "$tmp/$p")/mixprec.pc" ] || fail "no mixprec.pc installed under $tmp/$p"
    [ -f "$tmp/$p/include/mixprec.h" ] || fail "no include/mixprec.h installed under $tmp/$p"
done
grep -q "^prefix=$tmp/shared\$" "$(pcdir "$tmp/shared")/mixprec.pc" ||
    fail "mixprec.pc does not name the install prefix: $(grep '^prefix=' "$(pcdir "$tmp/shared")/mixprec.pc")"

# ---- the program: a user's, outside the tree ------------------------------------
mkdir "$tmp/user" && cat >"$tmp/user/prog.c" <<'EOF'
#include <mixprec.h>
#include <stdio.h>
#include <string.h>

static int failures = 0;

static void expect_bits(const char *what, unsigned got, unsigned want) {
    if (got != want) {
        printf("  %s: got 0x%04x, want 0x%04x\n", what, got, want);
        failures++;
    }
}

static void expect_float(const char *what, float got, float want) {
    if (memcmp(&got, &want, sizeof got) != 0) {
        printf("  %s: got %.9g, want %.9g\n", what, got, want);
        failures++;
    }
}

int main(void) {
    /* the scalar conversions: round to nearest even, fp16 overflow and underflow */
    expect_bits("fp32_to_fp16(0.1)", mxp_fp32_to_fp16(0.1f), 0x2e66);
    expect_bits("fp32_to_bf16(0.1)", mxp_fp32_to_bf16(0.1f), 0x3dcd);
    expect_bits("fp32_to_fp16(65520)", mxp_fp32_to_fp16(65520.0f), 0x7c00); /* tie -> even -> inf */
    expect_bits("fp32_to_fp16(65504)", mxp_fp32_to_fp16(65504.0f), 0x7bff);
    expect_bits("fp32_to_fp16(1e-8)", mxp_fp32_to_fp16(1e-8f), 0x0000);     /* below 2^-25 */
    expect_bits("fp32_to_fp16(-2)", mxp_fp32_to_fp16(-2.0f), 0xc000);
    expect_bits("fp32_to_bf16(65520)", mxp_fp32_to_bf16(65520.0f), 0x4780);
    expect_bits("fp32_to_bf16(1)", mxp_fp32_to_bf16(1.0f), 0x3f80);
    expect_float("fp16_to_fp32(0x2e66)", mxp_fp16_to_fp32(0x2e66), 0.0999755859375f);
    expect_float("fp16_to_fp32(0x0001)", mxp_fp16_to_fp32(0x0001), 5.9604644775390625e-8f);
    expect_float("bf16_to_fp32(0x3dcd)", mxp_bf16_to_fp32(0x3dcd), 0.10009765625f);
    expect_float("bf16_to_fp32(0xc000)", mxp_bf16_to_fp32(0xc000), -2.0f);

    /* the bulk conversion, long enough for the SIMD paths, against the scalar ones */
    enum { N = 1000 };
    static float x[N], back[N];
    static uint16_t h[N], b[N];
    uint32_t state = 12345; /* every kind of fp32 bit pattern, then a sweep across the fp16 range */
    for (int i = 0; i < N / 2; i++) {
        state = state * 1664525u + 1013904223u;
        memcpy(&x[i], &state, sizeof state);
    }
    for (int i = N / 2; i < N; i++) x[i] = (i % 2 ? -1.0f : 1.0f) * 1e-9f * (float)i * (float)i * (float)i * (float)(i % 7);
    x[0] = 0.1f, x[1] = 1e-8f, x[2] = 65520.0f, x[3] = 70000.0f;
    if (mxp_convert(h, MXP_DTYPE_F16, x, MXP_DTYPE_F32, N) != MXP_OK ||
        mxp_convert(b, MXP_DTYPE_BF16, x, MXP_DTYPE_F32, N) != MXP_OK) {
        printf("  mxp_convert failed: %s\n", mxp_last_error());
        return 1;
    }
    expect_bits("convert f32->f16 [0.1]", h[0], 0x2e66);
    expect_bits("convert f32->f16 [1e-8]", h[1], 0x0000);
    expect_bits("convert f32->f16 [65520]", h[2], 0x7c00);
    expect_bits("convert f32->f16 [70000]", h[3], 0x7c00);
    expect_bits("convert f32->bf16 [0.1]", b[0], 0x3dcd);
    int mismatches = 0;
    for (int i = 0; i < N; i++)
        mismatches += h[i] != mxp_fp32_to_fp16(x[i]) || b[i] != mxp_fp32_to_bf16(x[i]);
    if (mismatches) printf("  mxp_convert differs from the scalar conversions at %d of %d\n", mismatches, N);
    failures += mismatches;

    if (mxp_convert(back, MXP_DTYPE_F32, h, MXP_DTYPE_F16, N) != MXP_OK) return 1;
    expect_float("convert f16->f32 [0x2e66]", back[0], 0.0999755859375f);
    if (mxp_convert(back, MXP_DTYPE_F32, b, MXP_DTYPE_BF16, N) != MXP_OK) return 1;
    expect_float("convert bf16->f32 [0x3dcd]", back[0], 0.10009765625f);
    if (mxp_convert(h, MXP_DTYPE_F16, b, MXP_DTYPE_BF16, N) != MXP_OK) return 1;
    expect_bits("convert bf16->f16 [0x3dcd]", h[0], mxp_fp32_to_fp16(0.10009765625f));

    printf("  libmixprec %s: %s\n", mxp_version(), failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
EOF

# ---- compile, link, run -------------------------------------------------------
cd "$tmp/user" || fail "cd $tmp/user"
run_case() { # name, pkg-config prefix, extra pkg-config option
    name=$1 prefix=$2 opt=$3
    pc_path=$(pcdir "$prefix")
    flags=$(PKG_CONFIG_PATH="$pc_path" pkg-config $opt --cflags --libs mixprec) ||
        fail "$name: pkg-config $opt --cflags --libs mixprec"
    echo "$name: $cc prog.c $flags $extra"
    # shellcheck disable=SC2086 # word splitting of the flags is intended
    "$cc" -std=c11 -Wall -Wextra -Werror prog.c -o "prog-$name" $flags $extra ||
        fail "$name: compile and link"
    libdir=$(PKG_CONFIG_PATH="$pc_path" pkg-config --variable=libdir mixprec)
    if command -v readelf >/dev/null 2>&1; then
        needs=no
        readelf -d "prog-$name" | grep -q 'NEEDED.*libmixprec\.so' && needs=yes
        [ "$name" = shared ] && [ $needs = no ] && fail "shared: the program does not use libmixprec.so"
        [ "$name" = static ] && [ $needs = yes ] && fail "static: the program still needs libmixprec.so"
    fi
    LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "./prog-$name" ||
        fail "$name: the program failed"
}
run_case shared "$tmp/shared" ""
run_case static "$tmp/static" "--static"
echo "PASS: pkg-config shared and static"
exit 0
