/*
 * test_numerics.c - the numerics layer against values no one here computed: numpy float16,
 * PyTorch bfloat16 and ml_dtypes fp8 bits (tests/reference/numerics_ref.bin), the Random123
 * Philox4x32-10 known answers, and DESIGN.md's NaN rule; plus mxp_convert on every ISA this CPU
 * has, error paths, classification, facts, ulp, range statistics and stochastic rounding.
 * It does not sweep all 2^32 inputs: test_numerics_exhaustive.c and check_exhaustive.py do.
 */
#include <fenv.h>
#include <float.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define HAVE_MXCSR 1
#endif

#include "check.h"
#include "numerics/numerics_impl.h" /* mxp_f32_bits, mxp_bits_f32 */
#include "mixprec/numerics.h"
#include "test_util.h"

#ifndef MIXPREC_SOURCE_DIR
#define MIXPREC_SOURCE_DIR "."
#endif

static int is_nan_bits(uint32_t u) { return (u & 0x7fffffffu) > 0x7f800000u; }

/* ---- the fixture (format: tests/reference/gen_numerics.py) -------------- */

static uint8_t *fixture;
static size_t fixture_len;

typedef struct section {
    const uint8_t *p; /* first record */
    uint32_t count, rec;
} section;

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static double rdf64(const uint8_t *p) {
    uint64_t u = (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static int load_fixture(void) {
    const char *path = getenv("MIXPREC_NUMERICS_REF");
    char buf[4096];
    if (!path) {
        snprintf(buf, sizeof buf, "%s/tests/reference/numerics_ref.bin", MIXPREC_SOURCE_DIR);
        path = buf;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "cannot open fixture %s (regenerate: tests/reference/README.md)\n", path);
        return 0;
    }
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    fixture = malloc(len > 0 ? (size_t)len : 1);
    fixture_len = len > 0 && fread(fixture, 1, (size_t)len, fp) == (size_t)len ? (size_t)len : 0;
    fclose(fp);
    if (fixture_len < 16 || memcmp(fixture, "MXPNUMRF", 8) != 0 || rd32(fixture + 8) != 1) {
        fprintf(stderr, "%s: not a version 1 MXPNUMRF fixture\n", path);
        return 0;
    }
    return 1;
}

/* The section called tag; count 0 (and a failed CHECK) if it is missing or truncated. */
static section find_section(const char *tag, uint32_t rec) {
    section s = {NULL, 0, 0};
    size_t off = 16;
    uint32_t nsec = rd32(fixture + 12);
    for (uint32_t i = 0; i < nsec && off + 16 <= fixture_len; i++) {
        uint32_t count = rd32(fixture + off + 8), size = rd32(fixture + off + 12);
        if (off + 16 + (size_t)count * size > fixture_len) break;
        if (strncmp((const char *)fixture + off, tag, 8) == 0 && size == rec) {
            s.p = fixture + off + 16;
            s.count = count;
            s.rec = size;
            break;
        }
        off += 16 + (size_t)count * size;
    }
    CHECK(s.count > 0, "fixture section '%s' (record size %u) missing or truncated", tag, rec);
    return s;
}

/* ---- encode against numpy / torch / ml_dtypes --------------------------- */

/* DESIGN.md: a NaN becomes a quiet NaN of the same sign whose payload is the top mantissa bits
 * of the input; a FN format has one NaN per sign (all ones). Checked as properties of `got`. */
static int nan_rule_ok(const mxp_format *f, uint32_t x, uint32_t got) {
    const int M = f->man_bits;
    const uint32_t sign = (x >> 31) & 1u;
    if ((got >> (f->bits - 1)) != sign) return 0;
    if (got >> f->bits) return 0;
    if (mxp_format_classify(f, got) != MXP_CLASS_NAN) return 0;
    if (f->special == MXP_SPECIAL_FN)
        return (got & ((1u << (f->bits - 1)) - 1)) == (1u << (f->bits - 1)) - 1;
    const uint32_t quiet = 1u << (M - 1);
    const uint32_t payload_mask = quiet - 1;
    if (!(got & quiet)) return 0;
    return (got & payload_mask) == ((x >> (23 - M)) & payload_mask);
}

static const char *const kind_names[] = {"special",     "binade",          "value",     "tie",
                                         "random-bits", "random-in-range", "random-tie"};

static void test_encode_fixture(void) {
    section s = find_section("encode", 12);
    size_t bad[5] = {0}, nans = 0;
    for (uint32_t i = 0; i < s.count; i++) {
        const uint8_t *r = s.p + (size_t)i * s.rec;
        const uint32_t xb = rd32(r);
        const float x = mxp_bits_f32(xb);
        const uint32_t want[4] = {rd16(r + 4), rd16(r + 6), r[8], r[9]};
        const int nan = r[10] & 1;
        const char *kind = r[11] < 7 ? kind_names[r[11]] : "?";
        const mxp_format *fm[4] = {&mxp_format_fp16, &mxp_format_bf16, &mxp_format_e4m3,
                                   &mxp_format_e5m2};
        uint32_t got[4];
        for (int k = 0; k < 4; k++) got[k] = mxp_format_encode(fm[k], x);
        const uint32_t h = mxp_fp32_to_fp16(x), b = mxp_fp32_to_bf16(x);
        CHECK(h == got[0], "x=0x%08x: mxp_fp32_to_fp16 0x%04x != mxp_format_encode 0x%04x", xb, h,
              got[0]);
        CHECK(b == got[1], "x=0x%08x: mxp_fp32_to_bf16 0x%04x != mxp_format_encode 0x%04x", xb, b,
              got[1]);
        CHECK(nan == is_nan_bits(xb), "fixture NaN flag wrong for 0x%08x", xb);
        if (nan) {
            nans++;
            for (int k = 0; k < 4; k++) {
                int ok = nan_rule_ok(fm[k], xb, got[k]);
                bad[k] += !ok;
                CHECK(ok, "NaN x=0x%08x -> %s 0x%x breaks the NaN rule", xb, fm[k]->name, got[k]);
            }
            continue;
        }
        for (int k = 0; k < 4; k++) {
            bad[k] += got[k] != want[k];
            CHECK(got[k] == want[k], "%s x=0x%08x (%.9g, %s): want 0x%x (%s), got 0x%x",
                  fm[k]->name, xb, (double)x, kind, want[k],
                  k == 0   ? "numpy"
                  : k == 1 ? "torch"
                           : "ml_dtypes",
                  got[k]);
        }
        /* fp32 as a format: encoding is the identity */
        uint32_t e32 = mxp_format_encode(&mxp_format_fp32, x);
        bad[4] += e32 != xb;
        CHECK(e32 == xb, "fp32 encode of 0x%08x gave 0x%08x", xb, e32);
    }
    printf("encode: %u fixture inputs (%zu NaN); mismatches fp16 %zu, bf16 %zu, e4m3 %zu, "
           "e5m2 %zu, fp32 %zu\n",
           s.count, nans, bad[0], bad[1], bad[2], bad[3], bad[4]);
    CHECK(s.count > 20000 && nans > 20, "fixture too small (%u inputs, %zu NaN)", s.count, nans);
}

/* ---- decode, classify and ulp against the decode tables ----------------- */

/* The class a decoded reference value implies for format f. */
static mxp_class class_of_value(const mxp_format *f, float v) {
    if (isnan(v)) return MXP_CLASS_NAN;
    if (isinf(v)) return MXP_CLASS_INF;
    if (v == 0) return MXP_CLASS_ZERO;
    return fabs((double)v) < mxp_format_min_normal(f) ? MXP_CLASS_SUBNORMAL : MXP_CLASS_NORMAL;
}

/* Check decode, classify and ulp for the patterns of an indexed table (ref[i] = pattern i). */
static void check_decode_table(const mxp_format *f, const section *s, int nan_payload_kept) {
    size_t bad = 0;
    for (uint32_t i = 0; i < s->count; i++) {
        const uint32_t want = rd32(s->p + (size_t)i * 4);
        uint32_t got = mxp_f32_bits(mxp_format_decode(f, i));
        if (f == &mxp_format_fp16) {
            uint32_t g2 = mxp_f32_bits(mxp_fp16_to_fp32((uint16_t)i));
            CHECK(g2 == got, "fp16 0x%04x: mxp_fp16_to_fp32 0x%08x != decode 0x%08x", i, g2, got);
        }
        if (is_nan_bits(want)) {
            /* the library keeps sign and payload (numpy does too; ml_dtypes drops the payload) */
            const int M = f->man_bits;
            uint32_t m = i & ((1u << M) - 1);
            int ok = is_nan_bits(got) && (got >> 31) == (want >> 31);
            if (nan_payload_kept)
                ok = ok && got == want;
            else if (f->special == MXP_SPECIAL_IEEE)
                ok = ok && (got & 0x7fffffu) == m << (23 - M);
            bad += !ok;
            CHECK(ok, "%s NaN 0x%x: decode gave 0x%08x (reference 0x%08x)", f->name, i, got, want);
        } else {
            bad += got != want;
            CHECK(got == want, "%s 0x%x: decode 0x%08x, reference 0x%08x", f->name, i, got, want);
        }
        mxp_class c = mxp_format_classify(f, i), wc = class_of_value(f, mxp_bits_f32(want));
        CHECK(c == wc, "%s 0x%x: classify %s, reference value says %s", f->name, i,
              mxp_class_name(c), mxp_class_name(wc));
        /* ulp(v) is the gap to the next pattern up, for every positive finite v below max */
        if (i + 1 < s->count && !(i >> (f->bits - 1))) {
            float v = mxp_bits_f32(want), vn = mxp_bits_f32(rd32(s->p + (size_t)(i + 1) * 4));
            if (isfinite(v) && isfinite(vn) && vn > v) {
                double gap = (double)vn - (double)v;
                double u = mxp_format_ulp(f, v), um = mxp_format_ulp(f, (double)v + gap / 2);
                double un = mxp_format_ulp(f, -(double)v);
                CHECK(u == gap && um == gap && un == gap,
                      "%s 0x%x: ulp(%.9g) = %.9g / %.9g / %.9g, reference gap %.9g", f->name, i,
                      (double)v, u, um, un, gap);
            }
        }
    }
    printf("decode %s: %u patterns, %zu mismatches\n", f->name, s->count, bad);
}

static void test_decode_fixture(void) {
    section h = find_section("dec_fp16", 4);
    CHECK(h.count == 65536, "dec_fp16 has %u records", h.count);
    if (h.count == 65536) check_decode_table(&mxp_format_fp16, &h, 1);
    section e4 = find_section("dec_e4m3", 4), e5 = find_section("dec_e5m2", 4);
    CHECK(e4.count == 256 && e5.count == 256, "fp8 decode tables have %u, %u records", e4.count,
          e5.count);
    if (e4.count == 256) check_decode_table(&mxp_format_e4m3, &e4, 0);
    if (e5.count == 256) check_decode_table(&mxp_format_e5m2, &e5, 0);

    section b = find_section("dec_bf16", 8);
    size_t bad = 0;
    for (uint32_t i = 0; i < b.count; i++) {
        const uint8_t *r = b.p + (size_t)i * 8;
        const uint32_t pat = rd32(r), want = rd32(r + 4);
        const uint32_t got = mxp_f32_bits(mxp_bf16_to_fp32((uint16_t)pat));
        const uint32_t got2 = mxp_f32_bits(mxp_format_decode(&mxp_format_bf16, pat));
        bad += got != want || got2 != want;
        CHECK(got == want && got2 == want, "bf16 0x%04x: got 0x%08x / 0x%08x, torch 0x%08x", pat,
              got, got2, want);
        mxp_class c = mxp_format_classify(&mxp_format_bf16, pat);
        mxp_class wc = class_of_value(&mxp_format_bf16, mxp_bits_f32(want));
        CHECK(c == wc, "bf16 0x%04x: classify %s, torch value says %s", pat, mxp_class_name(c),
              mxp_class_name(wc));
        /* consecutive positive patterns in the table: ulp is their gap */
        if (i + 1 < b.count && rd32(r + 8) == pat + 1 && !(pat >> 15)) {
            float v = mxp_bits_f32(want), vn = mxp_bits_f32(rd32(r + 12));
            if (isfinite(v) && isfinite(vn)) {
                double gap = (double)vn - (double)v, u = mxp_format_ulp(&mxp_format_bf16, v);
                CHECK(u == gap, "bf16 0x%04x: ulp %.9g, torch gap %.9g", pat, u, gap);
            }
        }
    }
    printf("decode bf16: %u patterns, %zu mismatches\n", b.count, bad);
}

/* ---- facts, ulp, classification, names ---------------------------------- */

static void test_facts(void) {
    section s = find_section("facts", 40);
    int seen = 0;
    for (uint32_t i = 0; i < s.count; i++) {
        const uint8_t *r = s.p + (size_t)i * 40;
        char name[9] = {0};
        memcpy(name, r, 8);
        const mxp_format *f = mxp_format_find(name);
        CHECK(f != NULL, "mxp_format_find(\"%s\") is NULL", name);
        if (!f) continue;
        seen++;
        CHECK(strcmp(f->name, name) == 0, "find(%s) gave %s", name, f->name);
        CHECK(f->bits == 1 + f->exp_bits + f->man_bits, "%s: bits %d", name, f->bits);
        const double want[4] = {rdf64(r + 8), rdf64(r + 16), rdf64(r + 24), rdf64(r + 32)};
        const double got[4] = {mxp_format_max(f), mxp_format_min_normal(f),
                               mxp_format_min_subnormal(f), mxp_format_epsilon(f)};
        const char *what[4] = {"max", "min_normal", "min_subnormal", "epsilon"};
        for (int k = 0; k < 4; k++)
            CHECK(got[k] == want[k], "%s %s: %.17g, reference (finfo) %.17g", name, what[k], got[k],
                  want[k]);
        /* the largest finite value is what the format encodes and decodes it as */
        uint32_t mx = mxp_format_encode(f, (float)want[0]);
        CHECK(mxp_format_classify(f, mx) == MXP_CLASS_NORMAL &&
                  (double)mxp_format_decode(f, mx) == want[0],
              "%s: max %.9g does not round-trip (0x%x)", name, want[0], mx);
        double dd = mxp_format_decimal_digits(f);
        CHECK(fabs(dd - (f->man_bits + 1) * log10(2.0)) < 1e-12, "%s: decimal digits %.6f", name,
              dd);
    }
    CHECK(seen == 5, "facts for %d formats, want 5", seen);
}

static void test_ulp(void) {
    const struct {
        const mxp_format *f;
        double x, ulp;
    } cases[] = {
        {&mxp_format_fp16, 1.0, 0x1p-10},       {&mxp_format_fp16, -1.0, 0x1p-10},
        {&mxp_format_fp16, 1.5, 0x1p-10},       {&mxp_format_fp16, 2.0, 0x1p-9},
        {&mxp_format_fp16, 1.9999, 0x1p-10},    {&mxp_format_fp16, 65504.0, 32.0},
        {&mxp_format_fp16, 65519.0, 32.0},      {&mxp_format_fp16, 70000.0, 32.0},
        {&mxp_format_fp16, -1e30, 32.0},        {&mxp_format_fp16, 0.0, 0x1p-24},
        {&mxp_format_fp16, -0.0, 0x1p-24},      {&mxp_format_fp16, 0x1p-24, 0x1p-24},
        {&mxp_format_fp16, 0x1p-30, 0x1p-24},   {&mxp_format_fp16, 0x1p-20, 0x1p-24},
        {&mxp_format_fp16, 0x1p-14, 0x1p-24},   {&mxp_format_fp16, 0x1p-13, 0x1p-23},
        {&mxp_format_bf16, 1.0, 0x1p-7},        {&mxp_format_bf16, 0.0, 0x1p-133},
        {&mxp_format_bf16, 0x1p-126, 0x1p-133}, {&mxp_format_bf16, 3.3895313892515355e38, 0x1p120},
        {&mxp_format_bf16, 1e39, 0x1p120},      {&mxp_format_e4m3, 1.0, 0.125},
        {&mxp_format_e4m3, 448.0, 32.0},        {&mxp_format_e4m3, 500.0, 32.0},
        {&mxp_format_e4m3, 0.0, 0x1p-9},        {&mxp_format_e5m2, 1.0, 0.25},
        {&mxp_format_e5m2, 57344.0, 8192.0},    {&mxp_format_e5m2, 0.0, 0x1p-16},
        {&mxp_format_fp32, 1.0, 0x1p-23},       {&mxp_format_fp32, 0.0, 0x1p-149},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double u = mxp_format_ulp(cases[i].f, cases[i].x);
        CHECK(u == cases[i].ulp, "ulp %s(%.17g) = %.17g, want %.17g", cases[i].f->name, cases[i].x,
              u, cases[i].ulp);
    }
    CHECK(isnan(mxp_format_ulp(&mxp_format_fp16, NAN)), "ulp(NaN) is not NaN");
    CHECK(isnan(mxp_format_ulp(&mxp_format_fp16, INFINITY)), "ulp(inf) is not NaN");
    CHECK(isnan(mxp_format_ulp(&mxp_format_bf16, -INFINITY)), "ulp(-inf) is not NaN");
    /* the header's example: the update 1e-4 is lost on 1.0 in fp16 */
    CHECK(mxp_fp32_to_fp16(1.0f + 1e-4f) == 0x3c00, "1 + 1e-4 in fp16 is not 1");
}

static void test_classify(void) {
    const struct {
        const mxp_format *f;
        uint32_t bits;
        mxp_class c;
    } cases[] = {
        {&mxp_format_fp32, 0x00000000, MXP_CLASS_ZERO},
        {&mxp_format_fp32, 0x80000000, MXP_CLASS_ZERO},
        {&mxp_format_fp32, 0x00000001, MXP_CLASS_SUBNORMAL},
        {&mxp_format_fp32, 0x807fffff, MXP_CLASS_SUBNORMAL},
        {&mxp_format_fp32, 0x00800000, MXP_CLASS_NORMAL},
        {&mxp_format_fp32, 0xff7fffff, MXP_CLASS_NORMAL},
        {&mxp_format_fp32, 0x7f800000, MXP_CLASS_INF},
        {&mxp_format_fp32, 0xff800000, MXP_CLASS_INF},
        {&mxp_format_fp32, 0x7f800001, MXP_CLASS_NAN},
        {&mxp_format_fp32, 0xffc00000, MXP_CLASS_NAN},
        {&mxp_format_fp16, 0x0000, MXP_CLASS_ZERO},
        {&mxp_format_fp16, 0x8000, MXP_CLASS_ZERO},
        {&mxp_format_fp16, 0x0001, MXP_CLASS_SUBNORMAL},
        {&mxp_format_fp16, 0x83ff, MXP_CLASS_SUBNORMAL},
        {&mxp_format_fp16, 0x0400, MXP_CLASS_NORMAL},
        {&mxp_format_fp16, 0x7bff, MXP_CLASS_NORMAL},
        {&mxp_format_fp16, 0x7c00, MXP_CLASS_INF},
        {&mxp_format_fp16, 0xfc00, MXP_CLASS_INF},
        {&mxp_format_fp16, 0x7c01, MXP_CLASS_NAN},
        {&mxp_format_fp16, 0xfe00, MXP_CLASS_NAN},
        {&mxp_format_bf16, 0x0000, MXP_CLASS_ZERO},
        {&mxp_format_bf16, 0x8000, MXP_CLASS_ZERO},
        {&mxp_format_bf16, 0x0001, MXP_CLASS_SUBNORMAL},
        {&mxp_format_bf16, 0x807f, MXP_CLASS_SUBNORMAL},
        {&mxp_format_bf16, 0x0080, MXP_CLASS_NORMAL},
        {&mxp_format_bf16, 0x7f7f, MXP_CLASS_NORMAL},
        {&mxp_format_bf16, 0x7f80, MXP_CLASS_INF},
        {&mxp_format_bf16, 0xff80, MXP_CLASS_INF},
        {&mxp_format_bf16, 0x7f81, MXP_CLASS_NAN},
        {&mxp_format_bf16, 0xffc0, MXP_CLASS_NAN},
        {&mxp_format_e4m3, 0x00, MXP_CLASS_ZERO},
        {&mxp_format_e4m3, 0x80, MXP_CLASS_ZERO},
        {&mxp_format_e4m3, 0x01, MXP_CLASS_SUBNORMAL},
        {&mxp_format_e4m3, 0x87, MXP_CLASS_SUBNORMAL},
        {&mxp_format_e4m3, 0x08, MXP_CLASS_NORMAL},
        {&mxp_format_e4m3, 0x78, MXP_CLASS_NORMAL},
        {&mxp_format_e4m3, 0x7e, MXP_CLASS_NORMAL},
        {&mxp_format_e4m3, 0xfe, MXP_CLASS_NORMAL},
        {&mxp_format_e4m3, 0x7f, MXP_CLASS_NAN},
        {&mxp_format_e4m3, 0xff, MXP_CLASS_NAN},
        {&mxp_format_e5m2, 0x00, MXP_CLASS_ZERO},
        {&mxp_format_e5m2, 0x80, MXP_CLASS_ZERO},
        {&mxp_format_e5m2, 0x01, MXP_CLASS_SUBNORMAL},
        {&mxp_format_e5m2, 0x83, MXP_CLASS_SUBNORMAL},
        {&mxp_format_e5m2, 0x04, MXP_CLASS_NORMAL},
        {&mxp_format_e5m2, 0x7b, MXP_CLASS_NORMAL},
        {&mxp_format_e5m2, 0x7c, MXP_CLASS_INF},
        {&mxp_format_e5m2, 0xfc, MXP_CLASS_INF},
        {&mxp_format_e5m2, 0x7d, MXP_CLASS_NAN},
        {&mxp_format_e5m2, 0xff, MXP_CLASS_NAN},
    };
    int seen[5][5] = {{0}};
    const mxp_format *fs[5] = {&mxp_format_fp32, &mxp_format_fp16, &mxp_format_bf16,
                               &mxp_format_e4m3, &mxp_format_e5m2};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mxp_class c = mxp_format_classify(cases[i].f, cases[i].bits);
        CHECK(c == cases[i].c, "classify %s 0x%x = %s, want %s", cases[i].f->name, cases[i].bits,
              mxp_class_name(c), mxp_class_name(cases[i].c));
        for (int k = 0; k < 5; k++)
            if (cases[i].f == fs[k]) seen[k][cases[i].c] = 1;
    }
    /* every class in every format (e4m3 has no inf: no pattern may classify as one) */
    for (int k = 0; k < 5; k++)
        for (int c = 0; c < 5; c++)
            CHECK(seen[k][c] || (fs[k] == &mxp_format_e4m3 && c == MXP_CLASS_INF),
                  "no classify case for %s %s", fs[k]->name, mxp_class_name((mxp_class)c));
    for (uint32_t b = 0; b < 256; b++)
        CHECK(mxp_format_classify(&mxp_format_e4m3, b) != MXP_CLASS_INF, "e4m3 0x%02x is inf", b);
    const char *names[] = {"zero", "subnormal", "normal", "inf", "nan"};
    for (int c = 0; c < 5; c++)
        CHECK(strcmp(mxp_class_name((mxp_class)c), names[c]) == 0, "class name %d: %s", c,
              mxp_class_name((mxp_class)c));
}

static void test_dtype_names(void) {
    const struct {
        const char *name;
        mxp_dtype dt;
    } ok[] = {{"f32", MXP_DTYPE_F32},  {"fp32", MXP_DTYPE_F32},  {"float32", MXP_DTYPE_F32},
              {"f16", MXP_DTYPE_F16},  {"fp16", MXP_DTYPE_F16},  {"float16", MXP_DTYPE_F16},
              {"half", MXP_DTYPE_F16}, {"bf16", MXP_DTYPE_BF16}, {"bfloat16", MXP_DTYPE_BF16}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        mxp_dtype dt = MXP_DTYPE_COUNT;
        mxp_status st = mxp_dtype_parse(ok[i].name, &dt);
        CHECK(st == MXP_OK && dt == ok[i].dt, "parse(%s): st %d dt %d", ok[i].name, st, dt);
        const mxp_format *f = mxp_format_find(ok[i].name);
        CHECK(f == mxp_format_of(ok[i].dt), "format_find(%s) != format_of", ok[i].name);
    }
    const char *bad[] = {"", "f64", "fp8", "bf", "float", "f16 ", "e4m3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mxp_dtype dt = MXP_DTYPE_F16;
        mxp_clear_error();
        mxp_status st = mxp_dtype_parse(bad[i], &dt);
        CHECK(st == MXP_ERR_INVALID_ARG && mxp_last_error()[0] != '\0',
              "parse(\"%s\") st %d, message \"%s\"", bad[i], st, mxp_last_error());
        CHECK(dt == MXP_DTYPE_F16, "failed parse(\"%s\") wrote its output", bad[i]);
    }
    mxp_dtype dt;
    mxp_clear_error();
    CHECK(mxp_dtype_parse(NULL, &dt) == MXP_ERR_INVALID_ARG && mxp_last_error()[0], "parse(NULL)");
    CHECK(mxp_dtype_parse("f32", NULL) == MXP_ERR_INVALID_ARG, "parse(name, NULL)");

    const char *names[] = {"f32", "f16", "bf16"};
    const size_t sizes[] = {4, 2, 2};
    for (int i = 0; i < MXP_DTYPE_COUNT; i++) {
        CHECK(strcmp(mxp_dtype_name((mxp_dtype)i), names[i]) == 0, "name(%d) = %s", i,
              mxp_dtype_name((mxp_dtype)i));
        CHECK(mxp_dtype_size((mxp_dtype)i) == sizes[i], "size(%d)", i);
        mxp_dtype back;
        CHECK(mxp_dtype_parse(names[i], &back) == MXP_OK && back == (mxp_dtype)i,
              "name %s does not parse back", names[i]);
        CHECK(mxp_format_of((mxp_dtype)i) != NULL &&
                  (size_t)mxp_format_of((mxp_dtype)i)->bits == 8 * sizes[i],
              "format_of(%d)", i);
    }
    CHECK(strcmp(mxp_dtype_name(MXP_DTYPE_COUNT), "?") == 0, "name of an unknown dtype");
    CHECK(strcmp(mxp_dtype_name((mxp_dtype)-1), "?") == 0, "name of dtype -1");
    CHECK(mxp_dtype_size(MXP_DTYPE_COUNT) == 0 && mxp_dtype_size((mxp_dtype)-1) == 0,
          "size of an unknown dtype");
    CHECK(mxp_format_of(MXP_DTYPE_COUNT) == NULL, "format_of(unknown)");
    CHECK(mxp_format_find("e4m3") == &mxp_format_e4m3 &&
              mxp_format_find("fp8_e4m3") == &mxp_format_e4m3 &&
              mxp_format_find("e5m2") == &mxp_format_e5m2 &&
              mxp_format_find("fp8_e5m2") == &mxp_format_e5m2,
          "fp8 format names");
    CHECK(mxp_format_find("fp64") == NULL && mxp_format_find(NULL) == NULL, "unknown formats");
    /* base.h: the last error stays "valid until the next failing call on the same thread", so a
     * successful lookup must not wipe it */
    float one = 1.0f;
    CHECK(mxp_convert(NULL, MXP_DTYPE_F16, &one, MXP_DTYPE_F32, 1) == MXP_ERR_INVALID_ARG,
          "convert(NULL)");
    char before[256];
    snprintf(before, sizeof before, "%s", mxp_last_error());
    const mxp_format *f16 = mxp_format_find("fp16"), *e4 = mxp_format_find("e4m3");
    CHECK(f16 == &mxp_format_fp16 && e4 == &mxp_format_e4m3, "format_find");
    CHECK(before[0] && strcmp(mxp_last_error(), before) == 0,
          "a successful mxp_format_find changed the last error from \"%s\" to \"%s\"", before,
          mxp_last_error());
}

/* ---- range statistics ---------------------------------------------------- */

typedef struct stats_case {
    float x;
    int bin; /* 0 zero, 1 nonfinite, 2 overflow, 3 flush, 4 subnormal, 5 normal */
} stats_case;

static void check_stats(const mxp_format *f, const stats_case *c, size_t n) {
    float x[64];
    size_t want[6] = {0};
    double max_abs = 0, min_abs = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = c[i].x;
        want[c[i].bin]++;
        double a = fabs((double)c[i].x);
        if (isfinite(a) && a > 0) {
            if (a > max_abs) max_abs = a;
            if (min_abs == 0 || a < min_abs) min_abs = a;
        }
    }
    mxp_range_stats s;
    memset(&s, 0xff, sizeof s);
    mxp_status st = mxp_range_stats_f32(f, x, n, &s);
    CHECK(st == MXP_OK, "range_stats %s: %d", f->name, st);
    const size_t got[6] = {s.zero, s.nonfinite, s.overflow, s.flush, s.subnormal, s.normal};
    const char *bins[6] = {"zero", "nonfinite", "overflow", "flush", "subnormal", "normal"};
    CHECK(s.n == n, "%s: n %zu want %zu", f->name, s.n, n);
    for (int b = 0; b < 6; b++)
        CHECK(got[b] == want[b], "%s: %s = %zu, want %zu", f->name, bins[b], got[b], want[b]);
    CHECK(s.max_abs == max_abs && s.min_abs == min_abs, "%s: max_abs %.9g min_abs %.9g", f->name,
          s.max_abs, s.min_abs);
    /* which bin each input went to: one element at a time */
    for (size_t i = 0; i < n; i++) {
        mxp_range_stats one;
        mxp_range_stats_f32(f, &x[i], 1, &one);
        const size_t g1[6] = {one.zero,  one.nonfinite, one.overflow,
                              one.flush, one.subnormal, one.normal};
        CHECK(g1[c[i].bin] == 1, "%s: %.9g (0x%08x) not counted as %s", f->name, (double)x[i],
              mxp_f32_bits(x[i]), bins[c[i].bin]);
    }
}

static void test_range_stats(void) {
    const float tiny = 0x1p-149f;
    const stats_case fp16[] = {
        {0.0f, 0},
        {-0.0f, 0},
        {INFINITY, 1},
        {-INFINITY, 1},
        {NAN, 1},
        {mxp_bits_f32(0xff800001u), 1},
        {65520.0f, 2},
        {-65536.0f, 2},
        {1e10f, 2},
        {FLT_MAX, 2},
        {0x1p-25f, 3},
        {-0x1p-26f, 3},
        {tiny, 3},
        {-1e-30f, 3},
        {0x1.fffffep-26f, 3},
        {0x1p-24f, 4},
        {0x1.000002p-25f, 4},
        {-3e-5f, 4},
        {0x1.ff8p-15f, 4},
        {1.0f, 5},
        {-65504.0f, 5},
        {65519.996f, 5},
        {0x1p-14f, 5},
        {0x1.ffcp-15f, 5},
        {1e-4f, 5},
    };
    check_stats(&mxp_format_fp16, fp16, sizeof fp16 / sizeof fp16[0]);
    const stats_case bf16[] = {
        {-0.0f, 0},
        {NAN, 1},
        {FLT_MAX, 2},
        {-0x1.ffp127f, 2},
        {tiny, 3},
        {mxp_bits_f32(0x00008000u), 3},
        {mxp_bits_f32(0x00018000u), 4},
        {mxp_bits_f32(0x00400000u), 4},
        {-0x1p-133f, 4},
        {0x1.fep127f, 5},
        {0x1p-126f, 5},
        {mxp_bits_f32(0x007fffffu), 5},
        {1.0f, 5},
    };
    check_stats(&mxp_format_bf16, bf16, sizeof bf16 / sizeof bf16[0]);
    const stats_case e4m3[] = {
        {0.0f, 0},   {INFINITY, 1},        {480.0f, 2},    {-1e6f, 2},      {0x1p-10f, 3},
        {-1e-5f, 3}, {0x1.000002p-10f, 4}, {0x1p-9f, 4},   {-0x1.cp-7f, 4}, {464.0f, 5},
        {448.0f, 5}, {0x1p-6f, 5},         {0x1.ep-7f, 5},
    };
    check_stats(&mxp_format_e4m3, e4m3, sizeof e4m3 / sizeof e4m3[0]);
    const stats_case e5m2[] = {
        {61440.0f, 2},        {61439.0f, 5}, {0x1p-17f, 3},
        {0x1.000002p-17f, 4}, {INFINITY, 1}, {-0.0f, 0},
    };
    check_stats(&mxp_format_e5m2, e5m2, sizeof e5m2 / sizeof e5m2[0]);

    mxp_range_stats s;
    memset(&s, 0xff, sizeof s);
    CHECK(mxp_range_stats_f32(&mxp_format_fp16, NULL, 0, &s) == MXP_OK && s.n == 0 &&
              s.normal == 0 && s.max_abs == 0 && s.min_abs == 0,
          "range_stats on 0 elements");
    float one = 1.0f;
    mxp_clear_error();
    CHECK(mxp_range_stats_f32(&mxp_format_fp16, NULL, 3, &s) == MXP_ERR_INVALID_ARG &&
              mxp_last_error()[0],
          "range_stats(NULL, 3)");
    mxp_clear_error();
    CHECK(mxp_range_stats_f32(&mxp_format_fp16, &one, 1, NULL) == MXP_ERR_INVALID_ARG &&
              mxp_last_error()[0],
          "range_stats(out NULL)");
    CHECK(mxp_range_stats_f32(NULL, &one, 1, &s) == MXP_ERR_INVALID_ARG, "range_stats(f NULL)");
}

/* ---- mxp_convert ---------------------------------------------------------- */

/* src pools: every fixture input, then random patterns; a 16-bit pool holding every pattern */
enum { POOL = (1 << 18) + 8192, GUARD = 64, BIG_N = (1 << 18) + 4099 };
static uint32_t pool32[POOL];
static uint16_t pool16[POOL];

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng_next(void) { return splitmix64(&rng_state); }

static void fill_pools(void) {
    section s = find_section("encode", 12);
    size_t i = 0;
    for (; i < s.count && i < POOL; i++) pool32[i] = rd32(s.p + i * s.rec);
    for (; i < POOL; i++) {
        uint32_t r = (uint32_t)rng_next();
        /* half uniform bits, half values in or near fp16's range */
        pool32[i] = (i & 1) ? r : (r & 0x807fffffu) | ((uint32_t)(100 + (r >> 23) % 60) << 23);
    }
    for (i = 0; i < POOL; i++) pool16[i] = (uint16_t)(i * 40503u); /* odd step: every pattern */
}

static uint32_t widen(mxp_dtype st, const void *src, size_t i) {
    if (st == MXP_DTYPE_F32) return ((const uint32_t *)src)[i];
    uint16_t h = ((const uint16_t *)src)[i];
    return mxp_f32_bits(st == MXP_DTYPE_F16 ? mxp_fp16_to_fp32(h) : mxp_bf16_to_fp32(h));
}

/* What mxp_convert must give: the scalar functions, element by element. */
static void expected_convert(void *dst, mxp_dtype dt, const void *src, mxp_dtype st, size_t n) {
    if (dt == st) { /* same dtype: a copy, NaN bits included */
        memcpy(dst, src, n * mxp_dtype_size(dt));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u = widen(st, src, i);
        if (dt == MXP_DTYPE_F32)
            ((uint32_t *)dst)[i] = u;
        else if (dt == MXP_DTYPE_F16)
            ((uint16_t *)dst)[i] = mxp_fp32_to_fp16(mxp_bits_f32(u));
        else
            ((uint16_t *)dst)[i] = mxp_fp32_to_bf16(mxp_bits_f32(u));
    }
}

static uint8_t *dst_buf, *exp_buf;

/* Convert pool[src_off + misalign ..] into a guarded dst shifted by misalign elements. */
static void check_convert_case(mxp_dtype dt, mxp_dtype st, size_t n, size_t src_off,
                               size_t misalign, const char *isa, int threads) {
    const size_t ds = mxp_dtype_size(dt);
    const void *src = st == MXP_DTYPE_F32 ? (const void *)(pool32 + src_off + misalign)
                                          : (const void *)(pool16 + src_off + misalign);
    uint8_t *dst = dst_buf + (GUARD + misalign) * ds;
    memset(dst_buf, 0xa5, (n + 2 * GUARD + misalign) * ds);
    expected_convert(exp_buf, dt, src, st, n);
    mxp_clear_error();
    mxp_status status = mxp_convert(dst, dt, src, st, n);
    CHECK(status == MXP_OK, "convert %s->%s n=%zu (%s): status %d %s", mxp_dtype_name(st),
          mxp_dtype_name(dt), n, isa, status, mxp_last_error());
    size_t first = n;
    for (size_t i = 0; i < n && first == n; i++)
        if (memcmp(dst + i * ds, exp_buf + i * ds, ds) != 0) first = i;
    if (first < n) {
        uint32_t got = 0, want = 0;
        memcpy(&got, dst + first * ds, ds);
        memcpy(&want, exp_buf + first * ds, ds);
        const uint32_t raw =
            st == MXP_DTYPE_F32 ? ((const uint32_t *)src)[first] : ((const uint16_t *)src)[first];
        CHECK(first == n,
              "convert %s->%s n=%zu misalign=%zu isa=%s threads=%d: element %zu src 0x%08x got "
              "0x%x want 0x%x (scalar)",
              mxp_dtype_name(st), mxp_dtype_name(dt), n, misalign, isa, threads, first, raw, got,
              want);
    }
    int guard_ok = 1;
    for (size_t i = 0; i < (GUARD + misalign) * ds; i++) guard_ok &= dst_buf[i] == 0xa5;
    for (size_t i = 0; i < GUARD * ds; i++) guard_ok &= dst[n * ds + i] == 0xa5;
    CHECK(guard_ok, "convert %s->%s n=%zu isa=%s wrote outside dst", mxp_dtype_name(st),
          mxp_dtype_name(dt), n, isa);
}

static void test_convert(void) {
    static const size_t ns[] = {0, 1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1023};
    const mxp_isa isa0 = mxp_isa_active();
    const int nt0 = mxp_num_threads();
    dst_buf = malloc((BIG_N + 2 * GUARD + 8) * 4);
    exp_buf = malloc((BIG_N + 8) * 4);
    int tested = 0;
    for (int isa = 0; isa < MXP_ISA_COUNT; isa++) {
        if (mxp_isa_set((mxp_isa)isa) != MXP_OK) {
            printf("convert: isa %s not supported here, not tested\n", mxp_isa_name((mxp_isa)isa));
            continue;
        }
        CHECK(mxp_isa_active() == (mxp_isa)isa, "mxp_isa_set(%d) did not take", isa);
        tested++;
        const char *name = mxp_isa_name((mxp_isa)isa);
        for (int d = 0; d < MXP_DTYPE_COUNT; d++)
            for (int s = 0; s < MXP_DTYPE_COUNT; s++) {
                for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
                    for (size_t mis = 0; mis < 2; mis++)
                        check_convert_case((mxp_dtype)d, (mxp_dtype)s, ns[k], 0, mis, name, nt0);
                for (int nt = 1; nt <= 3; nt++) { /* > PARALLEL_MIN: the threaded path */
                    mxp_set_num_threads(nt);
                    check_convert_case((mxp_dtype)d, (mxp_dtype)s, BIG_N, 0, 1, name, nt);
                }
                mxp_set_num_threads(nt0);
            }
    }
    mxp_isa_set(isa0);
    mxp_set_num_threads(nt0);
    CHECK(mxp_isa_active() == isa0, "ISA not restored");
    printf("convert: 9 dtype pairs on %d ISA families (detected: %s)\n", tested,
           mxp_isa_name(mxp_isa_detect()));
    CHECK(tested >= 1, "no ISA family could be set");
    free(dst_buf);
    free(exp_buf);
}

/* The caller's floating-point environment must not change the bits: flush-to-zero and
 * denormals-are-zero (set by some frameworks for speed) and a directed rounding mode. n is below
 * the threading threshold, so every element runs on this thread, under this environment. */
static void test_convert_fpenv(void) {
    const mxp_isa isa0 = mxp_isa_active();
    const size_t n = 4099;
    dst_buf = malloc((n + 2 * GUARD + 8) * 4);
    exp_buf = malloc((n + 8) * 4);
    const int round0 = fegetround();
#ifdef HAVE_MXCSR
    const unsigned csr0 = _mm_getcsr();
#endif
    for (int env = 0; env < 2; env++) {
#ifdef HAVE_MXCSR
        if (env == 0) _mm_setcsr(csr0 | 0x8040u); /* FTZ | DAZ */
#else
        if (env == 0) continue;
#endif
        if (env == 1) fesetround(FE_TOWARDZERO);
        for (int isa = 0; isa < MXP_ISA_COUNT; isa++) {
            if (mxp_isa_set((mxp_isa)isa) != MXP_OK) continue;
            char name[64];
            snprintf(name, sizeof name, "%s under %s", mxp_isa_name((mxp_isa)isa),
                     env == 0 ? "ftz+daz" : "round-toward-zero");
            for (int d = 0; d < MXP_DTYPE_COUNT; d++)
                for (int s = 0; s < MXP_DTYPE_COUNT; s++)
                    for (size_t base = 0; base < 24576; base += n) /* the fixture's inputs */
                        check_convert_case((mxp_dtype)d, (mxp_dtype)s, n, base, 1, name, 1);
        }
#ifdef HAVE_MXCSR
        _mm_setcsr(csr0);
#endif
        fesetround(round0);
    }
    mxp_isa_set(isa0);
    free(dst_buf);
    free(exp_buf);
}

static void test_convert_errors(void) {
    float f[64];
    uint16_t h[64];
    for (int i = 0; i < 64; i++) f[i] = (float)i * 0.37f - 3.0f;
    struct {
        const char *what;
        void *dst;
        mxp_dtype dt;
        const void *src;
        mxp_dtype st;
        size_t n;
        mxp_status want;
    } cases[] = {
        {"unknown dst dtype", h, MXP_DTYPE_COUNT, f, MXP_DTYPE_F32, 8, MXP_ERR_DTYPE},
        {"unknown src dtype", h, MXP_DTYPE_F16, f, (mxp_dtype)-1, 8, MXP_ERR_DTYPE},
        {"unknown dtype, n=0", h, (mxp_dtype)7, f, MXP_DTYPE_F32, 0, MXP_ERR_DTYPE},
        {"NULL dst", NULL, MXP_DTYPE_F16, f, MXP_DTYPE_F32, 1, MXP_ERR_INVALID_ARG},
        {"NULL src", h, MXP_DTYPE_F16, NULL, MXP_DTYPE_F32, 3, MXP_ERR_INVALID_ARG},
        {"NULL both", NULL, MXP_DTYPE_BF16, NULL, MXP_DTYPE_BF16, 3, MXP_ERR_INVALID_ARG},
        {"f32 -> f16 in place", f, MXP_DTYPE_F16, f, MXP_DTYPE_F32, 8, MXP_ERR_INVALID_ARG},
        {"dst inside src", (char *)f + 2, MXP_DTYPE_F16, f, MXP_DTYPE_F32, 8, MXP_ERR_INVALID_ARG},
        {"src inside dst", f, MXP_DTYPE_F32, (char *)f + 30, MXP_DTYPE_BF16, 8,
         MXP_ERR_INVALID_ARG},
        {"last byte overlaps", f + 7, MXP_DTYPE_F32, f, MXP_DTYPE_F32, 8, MXP_ERR_INVALID_ARG},
        {"same dtype shifted", h + 1, MXP_DTYPE_F16, h, MXP_DTYPE_F16, 8, MXP_ERR_INVALID_ARG},
        {"n too large", h, MXP_DTYPE_F16, f, MXP_DTYPE_F32, SIZE_MAX, MXP_ERR_INVALID_ARG},
        {"adjacent, no overlap", f + 8, MXP_DTYPE_F32, f, MXP_DTYPE_F32, 8, MXP_OK},
        {"f16 right after f32", (char *)f + 32, MXP_DTYPE_F16, f, MXP_DTYPE_F32, 8, MXP_OK},
        {"n=0, NULL", NULL, MXP_DTYPE_F16, NULL, MXP_DTYPE_F32, 0, MXP_OK},
        {"dst == src, same dtype", f, MXP_DTYPE_F32, f, MXP_DTYPE_F32, 64, MXP_OK},
        {"dst == src, bf16", h, MXP_DTYPE_BF16, h, MXP_DTYPE_BF16, 64, MXP_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float before_f[64];
        uint16_t before_h[64];
        memcpy(before_f, f, sizeof f);
        memcpy(before_h, h, sizeof h);
        mxp_clear_error();
        mxp_status st =
            mxp_convert(cases[i].dst, cases[i].dt, cases[i].src, cases[i].st, cases[i].n);
        CHECK(st == cases[i].want, "%s: status %d (%s), want %d", cases[i].what, st,
              mxp_last_error(), cases[i].want);
        if (cases[i].want != MXP_OK)
            CHECK(mxp_last_error()[0] != '\0', "%s: no error message", cases[i].what);
        /* a failed call writes nothing; dst == src with equal dtypes leaves the data alone */
        if (cases[i].want != MXP_OK || cases[i].dst == cases[i].src)
            CHECK(memcmp(before_f, f, sizeof f) == 0 && memcmp(before_h, h, sizeof h) == 0,
                  "%s: the buffers changed", cases[i].what);
    }
    /* the same for stochastic rounding */
    mxp_clear_error();
    CHECK(mxp_convert_sr(h, MXP_DTYPE_F32, f, 4, 1, 0) == MXP_ERR_DTYPE && mxp_last_error()[0],
          "convert_sr to f32");
    CHECK(mxp_convert_sr(h, MXP_DTYPE_COUNT, f, 4, 1, 0) == MXP_ERR_DTYPE, "convert_sr unknown");
    mxp_clear_error();
    CHECK(mxp_convert_sr(NULL, MXP_DTYPE_BF16, f, 4, 1, 0) == MXP_ERR_INVALID_ARG &&
              mxp_last_error()[0],
          "convert_sr NULL dst");
    CHECK(mxp_convert_sr(h, MXP_DTYPE_BF16, NULL, 4, 1, 0) == MXP_ERR_INVALID_ARG,
          "convert_sr NULL src");
    mxp_clear_error();
    CHECK(mxp_convert_sr((char *)f + 4, MXP_DTYPE_F16, f, 8, 1, 0) == MXP_ERR_INVALID_ARG &&
              mxp_last_error()[0],
          "convert_sr overlap");
    CHECK(mxp_convert_sr(NULL, MXP_DTYPE_F16, NULL, 0, 1, 0) == MXP_OK, "convert_sr n=0");
}

/* ---- Philox4x32-10 and stochastic rounding -------------------------------- */

/* Philox4x32-10 with the full 128-bit counter, written from the paper (Salmon et al., SC'11):
 * the library's API only takes a 64-bit counter (c2 = c3 = 0), so this one is checked against
 * all three Random123 known answers and the library against it. */
static void philox_full(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]}, k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        const uint64_t a = (uint64_t)0xD2511F53u * c[0], b = (uint64_t)0xCD9E8D57u * c[2];
        const uint32_t n[4] = {(uint32_t)(b >> 32) ^ c[1] ^ k0, (uint32_t)b,
                               (uint32_t)(a >> 32) ^ c[3] ^ k1, (uint32_t)a};
        memcpy(c, n, sizeof c);
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    memcpy(out, c, sizeof c);
}

static void test_philox(void) {
    /* Random123 kat_vectors, philox4x32 10 rounds */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        philox_full(kat[v], kat[v] + 4, out);
        CHECK(memcmp(out, kat[v] + 6, sizeof out) == 0,
              "test's Philox, KAT %d: %08x %08x %08x %08x", v, out[0], out[1], out[2], out[3]);
        if (kat[v][2] == 0 && kat[v][3] == 0) { /* only these fit the 64-bit counter API */
            uint32_t lib[4];
            mxp_philox4x32((uint64_t)kat[v][5] << 32 | kat[v][4],
                           (uint64_t)kat[v][1] << 32 | kat[v][0], lib);
            CHECK(memcmp(lib, kat[v] + 6, sizeof lib) == 0,
                  "mxp_philox4x32 KAT %d: %08x %08x %08x %08x", v, lib[0], lib[1], lib[2], lib[3]);
        }
    }
    /* the library against the KAT-checked implementation, c2 = c3 = 0 */
    for (int i = 0; i < 4096; i++) {
        uint64_t seed = rng_next(), ctr = i < 64 ? (uint64_t)i : rng_next();
        if (i == 1) seed = ctr = UINT64_MAX;
        const uint32_t c[4] = {(uint32_t)ctr, (uint32_t)(ctr >> 32), 0, 0};
        const uint32_t k[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
        uint32_t want[4], got[4];
        philox_full(c, k, want);
        mxp_philox4x32(seed, ctr, got);
        CHECK(memcmp(want, got, sizeof got) == 0,
              "philox(seed %016llx, counter %016llx): %08x.. want %08x..", (unsigned long long)seed,
              (unsigned long long)ctr, got[0], want[0]);
    }
}

/* Random word w of the stream for seed, as mxp_convert_sr documents it. */
static uint32_t stream_word(uint64_t seed, uint64_t w) {
    uint32_t r[4];
    mxp_philox4x32(seed, w / 4, r);
    return r[w % 4];
}

/* The two neighbours of finite x in f (magnitude codes lo <= |x| < hi, sign added); *exact
 * when x is representable. hi may be the inf (or FN NaN) pattern past the largest finite. */
static void neighbours(const mxp_format *f, float x, uint32_t *lo, uint32_t *hi, int *exact) {
    const uint32_t sign = (mxp_f32_bits(x) >> 31) << (f->bits - 1);
    uint32_t c = mxp_format_encode(f, fabsf(x));
    uint32_t finite_max = mxp_format_encode(f, (float)mxp_format_max(f));
    if (c > finite_max) c = finite_max; /* RNE overflowed: lo is the largest finite */
    if ((double)mxp_format_decode(f, c) > fabs((double)x)) c--;
    *exact = (double)mxp_format_decode(f, c) == fabs((double)x);
    *lo = sign | c;
    *hi = sign | (c + 1);
}

static void test_encode_sr(void) {
    const mxp_format *fs[4] = {&mxp_format_fp16, &mxp_format_bf16, &mxp_format_e4m3,
                               &mxp_format_e5m2};
    section s = find_section("encode", 12);
    size_t checked = 0;
    for (uint32_t i = 0; i < s.count; i++) {
        const uint32_t xb = rd32(s.p + (size_t)i * s.rec);
        const float x = mxp_bits_f32(xb);
        for (int k = 0; k < 4; k++) {
            const mxp_format *f = fs[k];
            if (!isfinite(x)) {
                uint32_t want = mxp_format_encode(f, x), got = mxp_format_encode_sr(f, x, 12345);
                CHECK(got == want, "SR %s of non-finite 0x%08x: 0x%x, RNE gives 0x%x", f->name, xb,
                      got, want);
                continue;
            }
            uint32_t lo, hi;
            int exact;
            neighbours(f, x, &lo, &hi, &exact);
            if (exact) {
                for (uint32_t r = 0; r < 3; r++) {
                    uint32_t got = mxp_format_encode_sr(f, x, r * 0x7fffffffu);
                    CHECK(got == lo, "SR %s of exact 0x%08x: 0x%x want 0x%x", f->name, xb, got, lo);
                }
                continue;
            }
            /* P(up) = (|x| - lo) / (hi - lo), judged on 32 random bits: rnd < t rounds up,
             * t = P(up) * 2^32 (exact in double; an integer when the distance has at most 32
             * bits below the gap, else the library may use floor(t) or ceil(t)) */
            const double vlo = fabs((double)mxp_format_decode(f, lo));
            const double gap = mxp_format_ulp(f, vlo);
            const double t = (fabs((double)x) - vlo) / gap * 4294967296.0;
            if (t >= 4294967296.0) { /* past the overflow boundary: always inf (FN: NaN) */
                uint32_t g0 = mxp_format_encode_sr(f, x, 0), g1 = mxp_format_encode_sr(f, x, ~0u);
                CHECK(g0 == hi && g1 == hi,
                      "SR %s of 0x%08x past the largest finite: 0x%x 0x%x, "
                      "want 0x%x",
                      f->name, xb, g0, g1, hi);
                continue;
            }
            CHECK(t > 0, "SR %s 0x%08x: threshold %.17g", f->name, xb, t);
            const uint32_t dn = mxp_format_encode_sr(f, x, 0xffffffffu);
            CHECK(dn == lo, "SR %s 0x%08x: rnd max -> 0x%x, want 0x%x", f->name, xb, dn, lo);
            if (t >= 2) {
                const uint32_t below = (uint32_t)ceil(t) - 2, above = (uint32_t)ceil(t);
                const uint32_t g0 = mxp_format_encode_sr(f, x, 0);
                const uint32_t gb = mxp_format_encode_sr(f, x, below);
                const uint32_t ga = t < 4294967295.0 ? mxp_format_encode_sr(f, x, above) : lo;
                CHECK(g0 == hi && gb == hi && ga == lo,
                      "SR %s 0x%08x (threshold %.17g): rnd 0 -> 0x%x, rnd %u -> 0x%x, rnd %u -> "
                      "0x%x; want 0x%x, 0x%x, 0x%x",
                      f->name, xb, t, g0, below, gb, above, ga, hi, hi, lo);
            }
            if (t == floor(t)) {
                const uint32_t T = (uint32_t)t;
                const uint32_t below = mxp_format_encode_sr(f, x, T - 1);
                const uint32_t at = mxp_format_encode_sr(f, x, T);
                CHECK(below == hi && at == lo,
                      "SR %s 0x%08x: rnd %u (threshold-1) -> 0x%x, rnd %u -> 0x%x; want 0x%x, "
                      "0x%x",
                      f->name, xb, T - 1, below, T, at, hi, lo);
                checked++;
            }
        }
    }
    printf("encode_sr: exact thresholds checked on %zu (input, format) pairs\n", checked);
    CHECK(checked > 10000, "only %zu SR thresholds checked", checked);
}

typedef struct sr_case {
    mxp_dtype dt;
    float x;
} sr_case;

static void test_convert_sr(void) {
    const mxp_isa isa0 = mxp_isa_active();
    const int nt0 = mxp_num_threads();
    const size_t N = (size_t)1 << 20;
    float *x = malloc(N * sizeof *x);
    uint16_t *a = malloc(N * 2), *b = malloc(N * 2);

    /* element i uses word offset + i of the stream: the per-element definition */
    for (int d = 1; d <= 2; d++) {
        const mxp_dtype dt = (mxp_dtype)d;
        const mxp_format *f = mxp_format_of(dt);
        const size_t n = 4099;
        for (size_t i = 0; i < n; i++) x[i] = mxp_bits_f32(pool32[(i * 7919) % POOL]);
        for (uint64_t off = 0; off < 6; off += 5) {
            CHECK(mxp_convert_sr(a, dt, x, n, 42, off) == MXP_OK, "convert_sr");
            size_t bad = 0;
            for (size_t i = 0; i < n; i++) {
                uint32_t want = mxp_format_encode_sr(f, x[i], stream_word(42, off + i));
                if (a[i] != want && bad++ < 5)
                    CHECK(0, "convert_sr %s x=0x%08x i=%zu offset=%llu: 0x%04x want 0x%04x",
                          f->name, mxp_f32_bits(x[i]), i, (unsigned long long)off, a[i], want);
            }
            CHECK(bad == 0, "convert_sr %s: %zu elements differ from the per-element definition",
                  f->name, bad);
        }
    }

    /* unbiased: the mean of many SR results is x, and each result is one of the neighbours */
    const sr_case cases[] = {
        {MXP_DTYPE_F16, 1.0f + 0x1p-11f}, {MXP_DTYPE_F16, 1.0f + 0x1p-12f},
        {MXP_DTYPE_F16, 1.0f + 0x3p-12f}, {MXP_DTYPE_F16, 1.0f + 0x1p-20f},
        {MXP_DTYPE_F16, 0.3f * 0x1p-24f}, {MXP_DTYPE_F16, -2.7e-6f},
        {MXP_DTYPE_F16, 1000.3f},         {MXP_DTYPE_F16, 65500.0f},
        {MXP_DTYPE_F16, -0.1f},           {MXP_DTYPE_F16, 0x1p-14f - 0x1p-26f},
        {MXP_DTYPE_BF16, 1.0f + 0x1p-8f}, {MXP_DTYPE_BF16, 1.0f / 3.0f},
        {MXP_DTYPE_BF16, 3.14159265f},    {MXP_DTYPE_BF16, 1e-39f},
        {MXP_DTYPE_BF16, -1e30f},         {MXP_DTYPE_BF16, 1.0f + 0x1p-20f},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const mxp_format *f = mxp_format_of(cases[c].dt);
        const float v = cases[c].x;
        uint32_t lo, hi;
        int exact;
        neighbours(f, v, &lo, &hi, &exact);
        CHECK(!exact, "SR case %.9g is representable in %s", (double)v, f->name);
        const double dlo = mxp_format_decode(f, lo), dhi = mxp_format_decode(f, hi);
        const double p = (fabs((double)v) - fabs(dlo)) / (fabs(dhi) - fabs(dlo));
        for (size_t i = 0; i < N; i++) x[i] = v;
        CHECK(mxp_convert_sr(a, cases[c].dt, x, N, 0x5eed + c, 1000) == MXP_OK, "convert_sr");
        size_t ups = 0, others = 0;
        double sum = 0;
        for (size_t i = 0; i < N; i++) {
            ups += a[i] == hi;
            others += a[i] != hi && a[i] != lo;
            sum += mxp_format_decode(f, a[i]);
        }
        const double sd = sqrt(p * (1 - p) / (double)N), frac = (double)ups / (double)N;
        const double mean = sum / (double)N;
        CHECK(others == 0, "SR %s of %.9g: %zu results are neither 0x%x nor 0x%x", f->name,
              (double)v, others, lo, hi);
        CHECK(fabs(frac - p) <= 6 * sd + 1.0 / (double)N,
              "SR %s of %.9g: rounded up %.6f of the time, want %.6f +- %.6f", f->name, (double)v,
              frac, p, 6 * sd);
        CHECK(fabs(mean - (double)v) <= (6 * sd + 1.0 / (double)N) * fabs(dhi - dlo),
              "SR %s of %.9g: mean %.12g", f->name, (double)v, mean);
    }

    /* random values: every result is one of the two neighbours, never further */
    for (size_t i = 0; i < N; i++) x[i] = mxp_bits_f32(pool32[(i * 40503u) % POOL]);
    for (int d = 1; d <= 2; d++) {
        const mxp_format *f = mxp_format_of((mxp_dtype)d);
        mxp_convert_sr(a, (mxp_dtype)d, x, N, 7, 0);
        size_t bad = 0;
        for (size_t i = 0; i < N; i++) {
            if (!isfinite(x[i])) continue;
            uint32_t lo, hi;
            int exact;
            neighbours(f, x[i], &lo, &hi, &exact);
            int ok = a[i] == lo || (!exact && a[i] == hi);
            if (!ok && bad++ < 5)
                CHECK(0, "SR %s of 0x%08x gave 0x%04x, neighbours 0x%x 0x%x", f->name,
                      mxp_f32_bits(x[i]), a[i], lo, hi);
        }
        CHECK(bad == 0, "SR %s: %zu results outside the neighbours", f->name, bad);
    }

    /* the same bits on any thread count, ISA, and split into two calls */
    for (size_t i = 0; i < N; i++) {
        uint32_t r = (uint32_t)rng_next();
        x[i] = mxp_bits_f32((r & 0x807fffffu) | ((uint32_t)(100 + (r >> 23) % 50) << 23));
    }
    const size_t n = 3 * ((size_t)1 << 18) + 123;
    for (int d = 1; d <= 2; d++) {
        const mxp_dtype dt = (mxp_dtype)d;
        mxp_set_num_threads(1);
        mxp_convert_sr(a, dt, x, n, 99, 17);
        for (int isa = 0; isa < MXP_ISA_COUNT; isa++) {
            if (mxp_isa_set((mxp_isa)isa) != MXP_OK) continue;
            for (int nt = 1; nt <= 4; nt++) {
                mxp_set_num_threads(nt);
                memset(b, 0, n * 2);
                mxp_convert_sr(b, dt, x, n, 99, 17);
                CHECK(memcmp(a, b, n * 2) == 0, "convert_sr %s differs with %d threads on %s",
                      mxp_dtype_name(dt), nt, mxp_isa_name((mxp_isa)isa));
            }
        }
        mxp_isa_set(isa0);
        mxp_set_num_threads(nt0);
        const size_t splits[] = {1, 3, 4, 12345, (size_t)1 << 18, n - 1};
        for (size_t k = 0; k < sizeof splits / sizeof splits[0]; k++) {
            const size_t m = splits[k];
            memset(b, 0, n * 2);
            mxp_convert_sr(b, dt, x, m, 99, 17);
            mxp_convert_sr(b + m, dt, x + m, n - m, 99, 17 + m);
            CHECK(memcmp(a, b, n * 2) == 0, "convert_sr %s split at %zu differs",
                  mxp_dtype_name(dt), m);
        }
        /* deterministic per seed; another seed gives other bits */
        mxp_convert_sr(b, dt, x, n, 99, 17);
        CHECK(memcmp(a, b, n * 2) == 0, "convert_sr %s is not deterministic", mxp_dtype_name(dt));
        mxp_convert_sr(b, dt, x, n, 100, 17);
        size_t diff = 0;
        for (size_t i = 0; i < n; i++) diff += a[i] != b[i];
        CHECK(diff > n / 4, "convert_sr %s: seeds 99 and 100 differ in only %zu of %zu",
              mxp_dtype_name(dt), diff, n);
    }
    mxp_isa_set(isa0);
    mxp_set_num_threads(nt0);
    free(x);
    free(a);
    free(b);
}

int main(void) {
    if (!load_fixture()) {
        CHECK(0, "fixture not loaded");
        return check_exit("test_numerics");
    }
    test_encode_fixture();
    test_decode_fixture();
    test_facts();
    test_ulp();
    test_classify();
    test_dtype_names();
    test_range_stats();
    fill_pools();
    test_convert();
    test_convert_fpenv();
    test_convert_errors();
    test_philox();
    test_encode_sr();
    test_convert_sr();
    free(fixture);
    return check_exit("test_numerics");
}
