/*
 * test_data.c - the data layer: IDX files written here (plain and gzip) read back or refused
 * with the right status and message; datasets from them; the loader's order (every sample once
 * per epoch, a permutation fixed by (seed, epoch), resuming at a position), its batches and
 * its normalisation, bit-exact in f32, bf16 and f16; allocation failures at every step.
 * With /usr/share/datasets/fashion-mnist present, the real data set is loaded and checked too.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "mixprec/data.h"
#include "test_util.h"

/* ---- writing IDX files ------------------------------------------------------------------- */

/* An IDX image in buf (cap bytes): the 4 magic bytes as given, big-endian dims, then body.
 * Returns the size. */
static size_t make_idx(uint8_t *buf, size_t cap, int type, int ndim, const uint32_t *dims,
                       const uint8_t *body, size_t body_len) {
    size_t n = 0;
    buf[n++] = 0;
    buf[n++] = 0;
    buf[n++] = (uint8_t)type;
    buf[n++] = (uint8_t)ndim;
    for (int d = 0; d < ndim; d++) {
        buf[n++] = (uint8_t)(dims[d] >> 24);
        buf[n++] = (uint8_t)(dims[d] >> 16);
        buf[n++] = (uint8_t)(dims[d] >> 8);
        buf[n++] = (uint8_t)dims[d];
    }
    if (n + body_len > cap) {
        fprintf(stderr, "make_idx: buffer too small\n");
        exit(2);
    }
    if (body_len) memcpy(buf + n, body, body_len);
    return n + body_len;
}

/* Write bytes to path, plain or gzip (zlib's gzopen "wb"). */
static void write_bytes(const char *path, const void *bytes, size_t n, int gz) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f || (n && gzwrite(f, bytes, (unsigned)n) != (int)n) || gzclose(f) != Z_OK) {
            fprintf(stderr, "cannot write %s\n", path);
            exit(2);
        }
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

static size_t read_bytes(const char *path, uint8_t *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* An IDX file of dims with body[i] = (i * 7 + 3) & 255. */
static void write_idx(const char *path, int ndim, const uint32_t *dims, int gz) {
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= dims[d];
    uint8_t *body = malloc(numel), *buf = malloc(numel + 32);
    for (size_t i = 0; i < numel; i++) body[i] = (uint8_t)(i * 7 + 3);
    write_bytes(path, buf, make_idx(buf, numel + 32, 8, ndim, dims, body, numel), gz);
    free(body);
    free(buf);
}

/* ---- mxp_idx_read ------------------------------------------------------------------------- */

/* The status of reading bytes written (plain or gz) to a file; msg must mention `want`. */
static void expect_refused(const char *what, const uint8_t *bytes, size_t n, int gz,
                           mxp_status want_st, const char *want) {
    const char *path = tpath(gz ? "bad.gz" : "bad");
    write_bytes(path, bytes, n, gz);
    mxp_idx idx;
    memset(&idx, 0x5a, sizeof idx);
    mxp_clear_error();
    const mxp_status st = mxp_idx_read(&idx, path);
    const char *msg = mxp_last_error();
    CHECK(st == want_st, "%s (%s): status %d, want %d: %s", what, gz ? "gz" : "plain", st, want_st,
          msg);
    CHECK(strstr(msg, path) != NULL, "%s (%s): message does not name the file: %s", what,
          gz ? "gz" : "plain", msg);
    CHECK(strstr(msg, want) != NULL, "%s (%s): message lacks '%s': %s", what, gz ? "gz" : "plain",
          want, msg);
    CHECK(idx.data == NULL && idx.ndim == 0 && idx.shape[0] == 0, "%s: out not zeroed on error",
          what);
    remove(path);
}

static void test_idx_good(void) {
    static const uint32_t shapes[4][4] = {{11}, {5, 3, 2}, {2, 3, 4, 5}, {1, 1, 1}};
    static const int ndims[4] = {1, 3, 4, 3};
    for (int gz = 0; gz < 2; gz++)
        for (int s = 0; s < 4; s++) {
            const char *path = tpath(gz ? "good.gz" : "good");
            write_idx(path, ndims[s], shapes[s], gz);
            mxp_idx idx;
            mxp_status st = mxp_idx_read(&idx, path);
            CHECK(st == MXP_OK, "read %s shape %d: %s", path, s, mxp_last_error());
            if (st != MXP_OK) continue;
            CHECK(idx.ndim == ndims[s], "ndim %d, want %d", idx.ndim, ndims[s]);
            size_t numel = 1;
            for (int d = 0; d < ndims[s]; d++) {
                CHECK(idx.shape[d] == shapes[s][d], "shape[%d] %" PRId64 ", want %u", d,
                      idx.shape[d], shapes[s][d]);
                numel *= shapes[s][d];
            }
            int bad = 0;
            for (size_t i = 0; i < numel; i++) bad += idx.data[i] != (uint8_t)(i * 7 + 3);
            CHECK(bad == 0, "%s: %d of %zu bytes differ", path, bad, numel);
            mxp_idx_free(&idx);
            CHECK(idx.data == NULL && idx.ndim == 0, "mxp_idx_free did not zero");
            remove(path);
        }
    mxp_idx_free(NULL);
}

static void test_idx_bad(void) {
    uint8_t buf[4096], body[256];
    for (int i = 0; i < 256; i++) body[i] = (uint8_t)i;
    const uint32_t d3[3] = {4, 3, 5}; /* 60 bytes */
    size_t n;
    for (int gz = 0; gz < 2; gz++) {
        n = make_idx(buf, sizeof buf, 8, 3, d3, body, 60);
        buf[0] = 0x01;
        expect_refused("wrong magic", buf, n, gz, MXP_ERR_FORMAT, "magic 01 00 08 03");
        n = make_idx(buf, sizeof buf, 8, 3, d3, body, 60);
        buf[1] = 0x08;
        expect_refused("wrong magic byte 1", buf, n, gz, MXP_ERR_FORMAT, "magic");
        n = make_idx(buf, sizeof buf, 0x0d, 3, d3, body, 60);
        expect_refused("float type", buf, n, gz, MXP_ERR_FORMAT, "type 0x0d");
        n = make_idx(buf, sizeof buf, 0x09, 3, d3, body, 60);
        expect_refused("signed byte type", buf, n, gz, MXP_ERR_FORMAT, "type 0x09");
        n = make_idx(buf, sizeof buf, 8, 0, d3, body, 60);
        expect_refused("ndim 0", buf, n, gz, MXP_ERR_FORMAT, "ndim 0");
        const uint32_t d5[5] = {1, 2, 2, 3, 5};
        n = make_idx(buf, sizeof buf, 8, 5, d5, body, 60);
        expect_refused("ndim 5", buf, n, gz, MXP_ERR_FORMAT, "ndim 5");
        const uint32_t z[3] = {4, 0, 5};
        n = make_idx(buf, sizeof buf, 8, 3, z, body, 0);
        expect_refused("zero size", buf, n, gz, MXP_ERR_FORMAT, "size 0");
        n = make_idx(buf, sizeof buf, 8, 3, d3, body, 59);
        expect_refused("truncated body", buf, n, gz, MXP_ERR_FORMAT, "truncated");
        n = make_idx(buf, sizeof buf, 8, 3, d3, body, 61);
        expect_refused("trailing byte", buf, n, gz, MXP_ERR_FORMAT, "trailing");
        n = make_idx(buf, sizeof buf, 8, 3, d3, body, 0);
        expect_refused("header only", buf, n, gz, MXP_ERR_FORMAT, "truncated");
        expect_refused("3 bytes", buf, 3, gz, MXP_ERR_FORMAT, "truncated IDX header");
        expect_refused("half a size", buf, 10, gz, MXP_ERR_FORMAT, "truncated IDX header");
        expect_refused("empty", buf, 0, gz, MXP_ERR_FORMAT, "truncated IDX header");

        /* absurd sizes are refused from the header alone: the allocator never sees them */
        hook_on(-1);
        const uint32_t huge[3] = {1u << 31, 1u << 31, 1u << 31};
        n = make_idx(buf, sizeof buf, 8, 3, huge, body, 16);
        expect_refused("2^31 x 2^31 x 2^31", buf, n, gz, MXP_ERR_FORMAT, "2^31");
        const uint32_t big4[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
        n = make_idx(buf, sizeof buf, 8, 4, big4, body, 16);
        expect_refused("(2^32-1)^4", buf, n, gz, MXP_ERR_FORMAT, "2^31");
        const uint32_t over[1] = {(1u << 31) + 1};
        n = make_idx(buf, sizeof buf, 8, 1, over, body, 16);
        expect_refused("2^31 + 1 bytes", buf, n, gz, MXP_ERR_FORMAT, "2^31");
        CHECK(hk.allocs == 0 && hk.biggest == 0, "an absurd size reached the allocator (%zu)",
              hk.biggest);
        /* exactly 2^31 bytes is allowed, and 16 of them are present: a plain file of the wrong
         * length is refused from its size before allocating; a gzip one's size is known only
         * by reading it, and its buffer grows with the data (1 MiB at first), never to the
         * 2^31 bytes claimed (fuzz/fuzz_idx.c found a 12-byte header that made it allocate
         * 2 GiB) */
        const uint32_t limit[2] = {1u << 16, 1u << 15};
        n = make_idx(buf, sizeof buf, 8, 2, limit, body, 16);
        hook_on(-1);
        expect_refused("2^31 bytes, short", buf, n, gz, MXP_ERR_FORMAT, "truncated");
        CHECK(hk.allocs == hk.frees && hk.biggest == (gz ? (size_t)1 << 20 : 0),
              "2^31 bytes (%s): the allocator saw %zu bytes, %ld allocations, %ld frees",
              gz ? "gz" : "plain", hk.biggest, hk.allocs, hk.frees);
        hook_off();
    }

    /* damaged gzip: cut at every length, and a flipped byte; never a crash or an OK */
    n = make_idx(buf, sizeof buf, 8, 3, d3, body, 60);
    const char *gzpath = tpath("whole.gz");
    write_bytes(gzpath, buf, n, 1);
    uint8_t gzb[1024];
    const size_t gzn = read_bytes(gzpath, gzb, sizeof gzb);
    CHECK(gzn > 20 && gzb[0] == 0x1f && gzb[1] == 0x8b, "gzip file of %zu bytes", gzn);
    int cut_ok = 0, cut_other = 0;
    for (size_t cut = 2; cut < gzn; cut++) {
        const char *p = tpath("cut.gz");
        write_bytes(p, gzb, cut, 0);
        mxp_idx idx;
        const mxp_status st = mxp_idx_read(&idx, p);
        cut_ok += st == MXP_OK;
        cut_other += st != MXP_OK && st != MXP_ERR_FORMAT;
        if (st == MXP_OK)
            fprintf(stderr, "  gzip cut at %zu of %zu bytes was accepted\n", cut, gzn);
        mxp_idx_free(&idx);
        remove(p);
    }
    CHECK(cut_ok == 0 && cut_other == 0, "truncated gzip: %d accepted, %d not FORMAT", cut_ok,
          cut_other);
    expect_refused("gzip cut in the CRC", gzb, gzn - 1, 0, MXP_ERR_FORMAT, "gzip");
    expect_refused("gzip cut in half", gzb, gzn / 2, 0, MXP_ERR_FORMAT, "gzip");
    gzb[gzn - 6] ^= 0xff; /* the CRC */
    expect_refused("gzip with a bad CRC", gzb, gzn, 0, MXP_ERR_FORMAT, "gzip");
    gzb[gzn - 6] ^= 0xff;
    gzb[14] ^= 0x55; /* the deflate data */
    expect_refused("gzip with a damaged body", gzb, gzn, 0, MXP_ERR_FORMAT, "");
    remove(gzpath);

    /* cannot open: IO, naming the path */
    mxp_idx idx;
    mxp_clear_error();
    const char *missing = tpath("no-such-file");
    CHECK(mxp_idx_read(&idx, missing) == MXP_ERR_IO, "missing file");
    CHECK(strstr(mxp_last_error(), missing) != NULL, "message lacks the path: %s",
          mxp_last_error());
    CHECK(idx.data == NULL, "missing file: data not zeroed");
    CHECK(mxp_idx_read(&idx, tmpdir) == MXP_ERR_IO, "a directory: %s", mxp_last_error());
    CHECK(mxp_idx_read(&idx, NULL) == MXP_ERR_INVALID_ARG, "NULL path");
    CHECK(mxp_idx_read(NULL, missing) == MXP_ERR_INVALID_ARG, "NULL out");
}

/* Allocation failure at each allocation: NOMEM, nothing leaked, out zeroed. */
static void test_idx_nomem(void) {
    const uint32_t d3[3] = {6, 5, 4};
    for (int gz = 0; gz < 2; gz++) {
        const char *path = tpath(gz ? "nomem.gz" : "nomem");
        write_idx(path, 3, d3, gz);
        for (long budget = 0;; budget++) {
            hook_on(budget);
            mxp_idx idx;
            const mxp_status st = mxp_idx_read(&idx, path);
            if (st == MXP_OK) {
                mxp_idx_free(&idx);
                CHECK(hk.allocs == hk.frees, "idx read: %ld allocations, %ld frees", hk.allocs,
                      hk.frees);
                hook_off();
                CHECK(budget >= 1, "idx read allocated nothing through the hook");
                break;
            }
            CHECK(st == MXP_ERR_NOMEM, "idx read, budget %ld: status %d: %s", budget, st,
                  mxp_last_error());
            CHECK(hk.allocs == hk.frees, "idx read, budget %ld: leaked %ld", budget,
                  hk.allocs - hk.frees);
            CHECK(idx.data == NULL, "idx read, budget %ld: data not zeroed", budget);
            hook_off();
            if (budget > 10) break;
        }
        remove(path);
    }
}

/* A gzip file's data buffer starts at 1 MiB and doubles as the data arrives (test_idx_bad
 * checks that a short file claiming 2^31 bytes never gets more): data larger than the first
 * buffer arrives whole, in one buffer of exactly its size. */
static void test_idx_gz_growth(void) {
    static const uint32_t big[3] = {3, 1024, 1029}; /* 3.0 MiB: two doublings past 1 MiB */
    const size_t numel = 3 * 1024 * 1029;
    const char *path = tpath("big.gz");
    write_idx(path, 3, big, 1);
    hook_on(-1);
    mxp_idx idx;
    const mxp_status st = mxp_idx_read(&idx, path);
    const long leaked = hk.allocs - hk.frees;
    const size_t biggest = hk.biggest;
    hook_off();
    CHECK(st == MXP_OK, "3 MiB gz: %s", mxp_last_error());
    if (st == MXP_OK) {
        int bad = 0;
        for (size_t i = 0; i < numel; i++) bad += idx.data[i] != (uint8_t)(i * 7 + 3);
        CHECK(bad == 0, "3 MiB gz: %d of %zu bytes differ", bad, numel);
        CHECK(leaked == 1, "3 MiB gz: %ld buffers held, want only the data", leaked);
        CHECK(biggest == numel, "3 MiB gz: largest buffer %zu bytes, want %zu", biggest, numel);
        mxp_idx_free(&idx);
    }
    remove(path);
}

/* ---- datasets ------------------------------------------------------------------------------ */

enum { DN = 37, DH = 4, DW = 3 };

/* dir/<prefix>-images-idx3-ubyte and -labels (with .gz when gz), DN images of (DH, DW); pixels
 * from seed, labels i % 10 unless given. n_labels may differ from DN. */
static void write_split(const char *dir, const char *prefix, int gz, int seed, int n_labels,
                        const uint8_t *labels) {
    static uint8_t px[DN * DH * DW], lab[DN + 8], buf[DN * DH * DW + 64];
    for (int i = 0; i < DN * DH * DW; i++) px[i] = (uint8_t)(i * 13 + seed * 101 + (i >> 3));
    for (int i = 0; i < n_labels; i++) lab[i] = labels ? labels[i] : (uint8_t)(i % 10);
    char path[512];
    const uint32_t di[3] = {DN, DH, DW}, dl[1] = {(uint32_t)n_labels};
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, prefix, gz ? ".gz" : "");
    write_bytes(path, buf, make_idx(buf, sizeof buf, 8, 3, di, px, sizeof px), gz);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, prefix, gz ? ".gz" : "");
    write_bytes(path, buf, make_idx(buf, sizeof buf, 8, 1, dl, lab, (size_t)n_labels), gz);
}

static void clear_dir(const char *dir) {
    static const char *const names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char path[512];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
        snprintf(path, sizeof path, "%s/%s.gz", dir, names[i]);
        remove(path);
    }
}

static void expect_load_fails(const char *what, const char *dir, const char *split,
                              mxp_status want_st, const char *want1, const char *want2) {
    mxp_dataset_t *ds = (mxp_dataset_t *)&ds; /* not NULL: must come back NULL */
    mxp_clear_error();
    const mxp_status st = mxp_dataset_load_idx(&ds, dir, split);
    const char *msg = mxp_last_error();
    CHECK(st == want_st, "%s: status %d, want %d: %s", what, st, want_st, msg);
    CHECK(ds == NULL, "%s: *out not NULL on error", what);
    CHECK(strchr(msg, '\n') == NULL, "%s: message is more than one line: %s", what, msg);
    if (want1) CHECK(strstr(msg, want1) != NULL, "%s: message lacks '%s': %s", what, want1, msg);
    if (want2) CHECK(strstr(msg, want2) != NULL, "%s: message lacks '%s': %s", what, want2, msg);
    mxp_dataset_free(st == MXP_OK ? ds : NULL);
}

static void test_dataset(void) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s/ds", tmpdir);
    mkdir(dir, 0700);
    for (int gz = 0; gz < 2; gz++) {
        write_split(dir, "train", gz, 1, DN, NULL);
        write_split(dir, "t10k", gz, 2, DN, NULL);
        mxp_dataset_t *tr = NULL, *te = NULL;
        CHECK(mxp_dataset_load_idx(&tr, dir, "train") == MXP_OK, "train: %s", mxp_last_error());
        CHECK(mxp_dataset_load_idx(&te, dir, "test") == MXP_OK, "test: %s", mxp_last_error());
        if (!tr || !te) return;
        CHECK(tr->n == DN && tr->H == DH && tr->W == DW && tr->C == 1 && tr->n_classes == 10,
              "train n %" PRId64 " (%" PRId64 ", %" PRId64 ", %" PRId64 ") classes %d", tr->n,
              tr->H, tr->W, tr->C, tr->n_classes);
        double s = 0, ss = 0;
        int bad = 0;
        for (int i = 0; i < DN * DH * DW; i++) {
            const uint8_t want = (uint8_t)(i * 13 + 101 + (i >> 3));
            bad += tr->pixels[i] != want;
            s += want / 255.0;
        }
        const double mean = s / (DN * DH * DW);
        for (int i = 0; i < DN * DH * DW; i++) {
            const double v = tr->pixels[i] / 255.0 - mean;
            ss += v * v;
        }
        const double std = sqrt(ss / (DN * DH * DW));
        for (int i = 0; i < DN; i++) bad += tr->labels[i] != i % 10;
        CHECK(bad == 0, "train: %d pixels or labels differ", bad);
        CHECK(check_close(tr->mean, mean, 0, 1e-7) && check_close(tr->std, std, 0, 1e-6),
              "train mean %.9g std %.9g, want %.9g %.9g", tr->mean, tr->std, mean, std);
        CHECK(te->mean == 0.5f && te->std == 0.5f, "test norm %g %g, want 0.5 0.5", te->mean,
              te->std);
        CHECK(te->pixels[0] == (uint8_t)(202) && te->n == DN, "test split has the train data?");
        CHECK(mxp_dataset_set_norm(te, tr->mean, tr->std) == MXP_OK, "set_norm");
        CHECK(te->mean == tr->mean && te->std == tr->std, "set_norm did not set");
        /* set_norm errors leave the values alone */
        static const float badn[][2] = {{0.1f, 0},        {0.1f, -1},  {NAN, 1},
                                        {0.1f, INFINITY}, {0.1f, NAN}, {INFINITY, 1}};
        for (int k = 0; k < 6; k++) {
            mxp_clear_error();
            CHECK(mxp_dataset_set_norm(te, badn[k][0], badn[k][1]) == MXP_ERR_INVALID_ARG,
                  "set_norm(%g, %g) accepted", badn[k][0], badn[k][1]);
            CHECK(strlen(mxp_last_error()) > 0, "set_norm(%g, %g): no message", badn[k][0],
                  badn[k][1]);
        }
        CHECK(te->mean == tr->mean && te->std == tr->std, "a refused set_norm changed values");
        CHECK(mxp_dataset_set_norm(NULL, 0, 1) == MXP_ERR_INVALID_ARG, "set_norm(NULL)");
        mxp_dataset_free(tr);
        mxp_dataset_free(te);
        clear_dir(dir);
    }
    mxp_dataset_free(NULL);

    /* .gz is tried first */
    write_split(dir, "train", 0, 3, DN, NULL);
    write_split(dir, "train", 1, 4, DN, NULL);
    mxp_dataset_t *ds = NULL;
    CHECK(mxp_dataset_load_idx(&ds, dir, "train/") == MXP_ERR_INVALID_ARG, "split 'train/'");
    char slashed[300];
    snprintf(slashed, sizeof slashed, "%s//", dir);
    CHECK(mxp_dataset_load_idx(&ds, slashed, "train") == MXP_OK, "dir with '/': %s",
          mxp_last_error());
    if (ds) CHECK(ds->pixels[0] == (uint8_t)(4 * 101), "the plain file was read, not the .gz");
    mxp_dataset_free(ds);
    clear_dir(dir);

    /* count mismatch, label out of range, wrong ndim */
    write_split(dir, "t10k", 1, 0, DN - 1, NULL);
    char want[400];
    snprintf(want, sizeof want, "%s/t10k-labels-idx1-ubyte.gz: %d labels but %d images", dir,
             DN - 1, DN);
    expect_load_fails("count mismatch", dir, "test", MXP_ERR_FORMAT, want, NULL);
    uint8_t labs[DN];
    for (int i = 0; i < DN; i++) labs[i] = (uint8_t)(i % 10);
    labs[5] = 12;
    labs[9] = 200;
    write_split(dir, "t10k", 1, 0, DN, labs);
    expect_load_fails("label out of range", dir, "test", MXP_ERR_FORMAT,
                      "label 12 at index 5 is out of range [0, 10)", "t10k-labels");
    labs[5] = 10;
    write_split(dir, "t10k", 1, 0, DN, labs);
    expect_load_fails("label 10", dir, "test", MXP_ERR_FORMAT, "label 10 at index 5", NULL);
    {
        uint8_t buf[512], body[64] = {0};
        const uint32_t d1[1] = {DN}, d3[3] = {DN, 1, 1};
        char p[400];
        snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", dir);
        write_split(dir, "t10k", 1, 0, DN, NULL);
        write_bytes(p, buf, make_idx(buf, sizeof buf, 8, 1, d1, body, DN), 1);
        expect_load_fails("images of ndim 1", dir, "test", MXP_ERR_FORMAT, "expected 3", p);
        write_split(dir, "t10k", 1, 0, DN, NULL);
        snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", dir);
        write_bytes(p, buf, make_idx(buf, sizeof buf, 8, 3, d3, body, DN), 1);
        expect_load_fails("labels of ndim 3", dir, "test", MXP_ERR_FORMAT, "expected 1", p);
        /* a damaged images file: its own message */
        snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", dir);
        write_bytes(p, "garbage", 7, 0);
        expect_load_fails("damaged images", dir, "test", MXP_ERR_FORMAT, p, "magic");
    }
    clear_dir(dir);

    /* missing files: the message names what was looked for */
    snprintf(want, sizeof want, "no IDX images in %s (expected train-images-idx3-ubyte or .gz)",
             dir);
    expect_load_fails("empty dir", dir, "train", MXP_ERR_IO, want, NULL);
    write_split(dir, "t10k", 0, 0, DN, NULL);
    snprintf(want, sizeof want, "%s/t10k-labels-idx1-ubyte", dir);
    remove(want);
    snprintf(want, sizeof want, "no IDX labels in %s (expected t10k-labels-idx1-ubyte or .gz)",
             dir);
    expect_load_fails("labels missing", dir, "test", MXP_ERR_IO, want, NULL);
    clear_dir(dir);
    expect_load_fails("no such dir", "/nonexistent/mxp-data", "train", MXP_ERR_IO,
                      "/nonexistent/mxp-data", "train-images-idx3-ubyte");
    struct stat st;
    if (stat(MXP_FASHION_MNIST_DIR, &st) != 0) {
        expect_load_fails("default dir", MXP_FASHION_MNIST_DIR, "train", MXP_ERR_IO,
                          "fashion-mnist not found: " MXP_FASHION_MNIST_DIR
                          "/train-images-idx3-ubyte.gz",
                          "apt-get install dataset-fashion-mnist");
    } else {
        printf("note: " MXP_FASHION_MNIST_DIR " exists, so its not-found message is not tested\n");
    }
    expect_load_fails("unknown split", dir, "validation", MXP_ERR_INVALID_ARG, "validation", NULL);
    expect_load_fails("NULL dir", NULL, "train", MXP_ERR_INVALID_ARG, NULL, NULL);
    expect_load_fails("NULL split", dir, NULL, MXP_ERR_INVALID_ARG, NULL, NULL);
    CHECK(mxp_dataset_load_idx(NULL, dir, "train") == MXP_ERR_INVALID_ARG, "NULL out");

    /* allocation failures at every step of a load */
    write_split(dir, "train", 1, 1, DN, NULL);
    for (long budget = 0;; budget++) {
        hook_on(budget);
        ds = NULL;
        const mxp_status s = mxp_dataset_load_idx(&ds, dir, "train");
        if (s == MXP_OK) {
            mxp_dataset_free(ds);
            CHECK(hk.allocs == hk.frees, "load: %ld allocations, %ld frees", hk.allocs, hk.frees);
            hook_off();
            CHECK(budget >= 3, "load made only %ld allocations", budget);
            break;
        }
        CHECK(s == MXP_ERR_NOMEM && ds == NULL, "load, budget %ld: status %d: %s", budget, s,
              mxp_last_error());
        CHECK(hk.allocs == hk.frees, "load, budget %ld: leaked %ld", budget, hk.allocs - hk.frees);
        hook_off();
        if (budget > 20) break;
    }
    clear_dir(dir);
    rmdir(dir);
}

/* ---- loaders ------------------------------------------------------------------------------- */

/* A dataset of n samples of (h, w, 1) in caller memory: pixel 0 is k & 255, pixel 1 is k >> 8
 * (so a sample's index can be read back), the rest vary; label k % 10. */
typedef struct synth {
    mxp_dataset ds;
    uint8_t *px;
    int32_t *lab;
} synth;

static void synth_init(synth *s, int64_t n, int64_t h, int64_t w) {
    memset(s, 0, sizeof *s);
    const int64_t sample = h * w;
    s->px = malloc((size_t)(n * sample));
    s->lab = malloc((size_t)n * sizeof *s->lab);
    for (int64_t k = 0; k < n; k++) {
        for (int64_t j = 0; j < sample; j++) s->px[k * sample + j] = (uint8_t)(k * 31 + j * 7);
        s->px[k * sample] = (uint8_t)(k & 255);
        if (sample > 1) s->px[k * sample + 1] = (uint8_t)(k >> 8);
        s->lab[k] = (int32_t)(k % 10);
    }
    s->ds.n = n;
    s->ds.H = h;
    s->ds.W = w;
    s->ds.C = 1;
    s->ds.n_classes = 10;
    s->ds.pixels = s->px;
    s->ds.labels = s->lab;
    s->ds.mean = 0.25f;
    s->ds.std = 0.375f;
}

static void synth_free(synth *s) {
    free(s->px);
    free(s->lab);
}

/* The contract's normalisation, in fp32. */
static float norm_ref(int p, float mean, float std) { return ((float)p / 255.0f - mean) / std; }

/* The byte that x came from (f32 output), or -1. */
static int unnorm(float x, float mean, float std) {
    for (int p = 0; p < 256; p++)
        if (norm_ref(p, mean, std) == x) return p;
    return -1;
}

/* One epoch from the loader (f32): the sample indices in order, into order[]; checks every
 * batch's size, content and labels against the dataset. Returns the samples handed out. */
static int64_t run_epoch(mxp_loader_t *ld, const synth *s, int64_t *order, int64_t *nbatches) {
    const mxp_dataset *ds = &s->ds;
    const int64_t batch = 64, sample = ds->H * ds->W;
    float *x = malloc((size_t)(batch * sample) * sizeof *x);
    int32_t y[64];
    int64_t got = 0, b = -1, calls = 0;
    int bad = 0;
    while (mxp_loader_next(ld, x, MXP_DTYPE_F32, y, &b) == MXP_OK && b > 0) {
        calls++;
        for (int64_t i = 0; i < b; i++) {
            const int lo = unnorm(x[i * sample], ds->mean, ds->std);
            const int hi = sample > 1 ? unnorm(x[i * sample + 1], ds->mean, ds->std) : 0;
            const int64_t k = lo + 256 * hi;
            if (lo < 0 || hi < 0 || k >= ds->n) {
                bad++;
                continue;
            }
            for (int64_t j = 0; j < sample; j++)
                bad += x[i * sample + j] != norm_ref(s->px[k * sample + j], ds->mean, ds->std);
            bad += y[i] != s->lab[k];
            order[got++] = k;
        }
        if (calls > ds->n + 1) break;
    }
    CHECK(bad == 0, "epoch: %d values or labels differ from the dataset", bad);
    CHECK(b == 0, "epoch ended with b = %" PRId64, b);
    free(x);
    *nbatches = calls;
    return got;
}

static int is_permutation(const int64_t *order, int64_t got, int64_t n) {
    if (got != n) return 0;
    char *seen = calloc((size_t)n, 1);
    int ok = 1;
    for (int64_t i = 0; i < n && ok; i++) {
        if (order[i] < 0 || order[i] >= n || seen[order[i]])
            ok = 0;
        else
            seen[order[i]] = 1;
    }
    free(seen);
    return ok;
}

/* The order documented in dataset.c, written out independently: Fisher-Yates from the top,
 * j uniform in [0, i] by Lemire's method; random word w of epoch e is word w % 4 of Philox
 * block (e << 32) + w / 4 under key seed. */
static void ref_perm(int64_t *perm, int64_t n, uint64_t seed, int64_t epoch) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    uint64_t w = 0;
    uint32_t blk[4];
#define WORD()                                                                                     \
    (w % 4 == 0 ? mxp_philox4x32(seed, ((uint64_t)epoch << 32) + w / 4, blk) : (void)0,            \
     blk[w++ % 4])
    for (int64_t i = n - 1; i > 0; i--) {
        const uint64_t s = (uint64_t)i + 1;
        uint64_t m = (uint64_t)WORD() * s;
        while ((uint32_t)m < (uint32_t)(((uint64_t)1 << 32) % s)) m = (uint64_t)WORD() * s;
        const int64_t j = (int64_t)(m >> 32), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
#undef WORD
}

static void test_loader_order(void) {
    enum { N = 1000 };
    synth s;
    synth_init(&s, N, 2, 3);
    static int64_t o0[N], o1[N], o2[N], ref[N];
    int64_t nb;
    mxp_loader_t *ld = NULL;

    /* in file order: batches of 64, a short last one of 1000 - 15 * 64 = 40 */
    CHECK(mxp_loader_create(&ld, &s.ds, 64, 0, 42, 0) == MXP_OK, "create: %s", mxp_last_error());
    CHECK(mxp_loader_batches_per_epoch(ld) == 16, "batches %" PRId64,
          mxp_loader_batches_per_epoch(ld));
    CHECK(mxp_loader_dataset(ld) == &s.ds, "mxp_loader_dataset");
    CHECK(mxp_loader_batch_size(ld) == 64, "batch size %" PRId64, mxp_loader_batch_size(ld));
    CHECK(run_epoch(ld, &s, o0, &nb) == N && nb == 16, "plain epoch: %" PRId64 " batches", nb);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += o0[i] != i;
    CHECK(bad == 0, "unshuffled order differs from file order at %d places", bad);
    CHECK(mxp_loader_position(ld) == N && mxp_loader_epoch(ld) == 0, "position %" PRId64,
          mxp_loader_position(ld));
    CHECK(mxp_loader_start_epoch(ld, 1, 0) == MXP_OK, "start_epoch 1");
    CHECK(run_epoch(ld, &s, o1, &nb) == N && memcmp(o0, o1, sizeof o0) == 0,
          "unshuffled epoch 1 differs from epoch 0");
    mxp_loader_free(ld);

    /* drop_last: 15 full batches, the 40 left over are not handed out */
    CHECK(mxp_loader_create(&ld, &s.ds, 64, 0, 42, 1) == MXP_OK, "create drop_last");
    CHECK(mxp_loader_batches_per_epoch(ld) == 15, "batches (drop_last) %" PRId64,
          mxp_loader_batches_per_epoch(ld));
    CHECK(run_epoch(ld, &s, o0, &nb) == 15 * 64 && nb == 15, "drop_last epoch: %" PRId64, nb);
    CHECK(mxp_loader_position(ld) == 15 * 64, "drop_last position %" PRId64,
          mxp_loader_position(ld));
    mxp_loader_free(ld);

    /* shuffled: a permutation per epoch, the documented one, different between epochs and
     * seeds, the same for the same (seed, epoch) */
    CHECK(mxp_loader_create(&ld, &s.ds, 64, 1, 42, 0) == MXP_OK, "create shuffled");
    CHECK(run_epoch(ld, &s, o0, &nb) == N && is_permutation(o0, N, N), "epoch 0 not a permutation");
    ref_perm(ref, N, 42, 0);
    CHECK(memcmp(o0, ref, sizeof ref) == 0, "epoch 0 is not the documented Philox order");
    int fixed = 0;
    for (int i = 0; i < N; i++) fixed += o0[i] == i;
    CHECK(fixed < 10, "shuffled order keeps %d of %d in place", fixed, N);
    CHECK(mxp_loader_start_epoch(ld, 1, 0) == MXP_OK && mxp_loader_epoch(ld) == 1, "epoch 1");
    CHECK(run_epoch(ld, &s, o1, &nb) == N && is_permutation(o1, N, N), "epoch 1 not a permutation");
    CHECK(memcmp(o0, o1, sizeof o0) != 0, "epochs 0 and 1 in the same order");
    ref_perm(ref, N, 42, 1);
    CHECK(memcmp(o1, ref, sizeof ref) == 0, "epoch 1 is not the documented Philox order");
    /* back to epoch 0 on the same loader, and on a new one */
    CHECK(mxp_loader_start_epoch(ld, 0, 0) == MXP_OK, "epoch 0 again");
    CHECK(run_epoch(ld, &s, o2, &nb) == N && memcmp(o0, o2, sizeof o0) == 0,
          "epoch 0 repeated differs");
    mxp_loader_t *ld2 = NULL;
    CHECK(mxp_loader_create(&ld2, &s.ds, 64, 1, 42, 0) == MXP_OK, "second loader");
    CHECK(run_epoch(ld2, &s, o2, &nb) == N && memcmp(o0, o2, sizeof o0) == 0,
          "same seed, new loader: a different order");
    mxp_loader_free(ld2);
    CHECK(mxp_loader_create(&ld2, &s.ds, 64, 1, 43, 0) == MXP_OK, "seed 43");
    CHECK(run_epoch(ld2, &s, o2, &nb) == N && memcmp(o0, o2, sizeof o0) != 0,
          "seeds 42 and 43 give the same order");
    mxp_loader_free(ld2);

    /* resuming: epoch 1 from position 100 hands out exactly o1[100..] */
    CHECK(mxp_loader_start_epoch(ld, 1, 100) == MXP_OK, "start_epoch(1, 100)");
    CHECK(mxp_loader_position(ld) == 100, "position after start %" PRId64, mxp_loader_position(ld));
    CHECK(run_epoch(ld, &s, o2, &nb) == N - 100 && memcmp(o2, o1 + 100, (N - 100) * 8) == 0,
          "resumed epoch 1 differs from the tail of epoch 1");
    CHECK(nb == (N - 100 + 63) / 64, "resumed epoch: %" PRId64 " batches", nb);
    CHECK(mxp_loader_start_epoch(ld, 1, N) == MXP_OK, "start at the end");
    CHECK(run_epoch(ld, &s, o2, &nb) == 0 && nb == 0, "an epoch started at its end gave data");
    CHECK(mxp_loader_start_epoch(ld, 7, 0) == MXP_OK, "epoch 7");
    CHECK(run_epoch(ld, &s, o2, &nb) == N && is_permutation(o2, N, N), "epoch 7");
    ref_perm(ref, N, 42, 7);
    CHECK(memcmp(o2, ref, sizeof ref) == 0, "epoch 7 is not the documented Philox order");

    /* refused arguments leave the loader where it was */
    CHECK(mxp_loader_start_epoch(ld, 7, 5) == MXP_OK, "epoch 7 at 5");
    CHECK(mxp_loader_start_epoch(ld, -1, 0) == MXP_ERR_INVALID_ARG, "epoch -1");
    CHECK(mxp_loader_start_epoch(ld, 0, -1) == MXP_ERR_INVALID_ARG, "pos -1");
    CHECK(mxp_loader_start_epoch(ld, 0, N + 1) == MXP_ERR_INVALID_ARG, "pos n + 1");
    CHECK(mxp_loader_start_epoch(ld, (int64_t)1 << 40, 0) == MXP_ERR_INVALID_ARG, "epoch 2^40");
    CHECK(mxp_loader_start_epoch(NULL, 0, 0) == MXP_ERR_INVALID_ARG, "NULL loader");
    CHECK(mxp_loader_epoch(ld) == 7 && mxp_loader_position(ld) == 5, "a refused start moved it");
    float x[64 * 6];
    int32_t y[64];
    int64_t b = -1;
    CHECK(mxp_loader_next(ld, x, MXP_DTYPE_COUNT, y, &b) == MXP_ERR_DTYPE && b == 0, "dtype");
    CHECK(mxp_loader_next(ld, x, (mxp_dtype)-1, y, &b) == MXP_ERR_DTYPE, "dtype -1");
    CHECK(mxp_loader_next(ld, NULL, MXP_DTYPE_F32, y, &b) == MXP_ERR_INVALID_ARG, "NULL x");
    CHECK(mxp_loader_next(ld, x, MXP_DTYPE_F32, NULL, &b) == MXP_ERR_INVALID_ARG, "NULL y");
    CHECK(mxp_loader_next(ld, x, MXP_DTYPE_F32, y, NULL) == MXP_ERR_INVALID_ARG, "NULL b");
    CHECK(mxp_loader_next(NULL, x, MXP_DTYPE_F32, y, &b) == MXP_ERR_INVALID_ARG, "NULL ld");
    CHECK(mxp_loader_position(ld) == 5, "a refused next moved it");
    mxp_loader_free(ld);
    mxp_loader_free(NULL);
    CHECK(mxp_loader_batches_per_epoch(NULL) == 0 && mxp_loader_dataset(NULL) == NULL &&
              mxp_loader_batch_size(NULL) == 0,
          "NULL loader queries");

    /* create: batch range, NULLs, an unusable dataset */
    ld = (mxp_loader_t *)&ld;
    CHECK(mxp_loader_create(&ld, &s.ds, 0, 0, 0, 0) == MXP_ERR_INVALID_ARG && ld == NULL,
          "batch 0");
    CHECK(mxp_loader_create(&ld, &s.ds, N + 1, 0, 0, 0) == MXP_ERR_INVALID_ARG, "batch n+1");
    CHECK(mxp_loader_create(&ld, &s.ds, -5, 0, 0, 0) == MXP_ERR_INVALID_ARG, "batch -5");
    CHECK(mxp_loader_create(&ld, NULL, 1, 0, 0, 0) == MXP_ERR_INVALID_ARG, "NULL ds");
    CHECK(mxp_loader_create(NULL, &s.ds, 1, 0, 0, 0) == MXP_ERR_INVALID_ARG, "NULL out");
    CHECK(mxp_loader_create(&ld, &s.ds, N, 1, 0, 1) == MXP_OK && ld, "batch n");
    if (ld) {
        CHECK(mxp_loader_batches_per_epoch(ld) == 1, "batch n: batches");
        mxp_loader_free(ld);
    }
    synth e = s;
    e.ds.pixels = NULL;
    CHECK(mxp_loader_create(&ld, &e.ds, 1, 0, 0, 0) == MXP_ERR_INVALID_ARG, "no pixels");

    /* a short last batch and a batch of one */
    CHECK(mxp_loader_create(&ld, &s.ds, 1, 1, 9, 0) == MXP_OK, "batch 1");
    CHECK(mxp_loader_batches_per_epoch(ld) == N, "batch 1: batches");
    mxp_loader_free(ld);

    /* allocation failures in create */
    for (long budget = 0;; budget++) {
        hook_on(budget);
        ld = NULL;
        const mxp_status st = mxp_loader_create(&ld, &s.ds, 10, 1, 1, 0);
        if (st == MXP_OK) {
            mxp_loader_free(ld);
            CHECK(hk.allocs == hk.frees, "loader: %ld allocations, %ld frees", hk.allocs, hk.frees);
            hook_off();
            CHECK(budget == 2, "a shuffling loader made %ld allocations, expected 2", budget);
            break;
        }
        CHECK(st == MXP_ERR_NOMEM && ld == NULL, "loader, budget %ld: %d", budget, st);
        CHECK(hk.allocs == hk.frees, "loader, budget %ld: leaked %ld", budget,
              hk.allocs - hk.frees);
        hook_off();
        if (budget > 5) break;
    }
    synth_free(&s);
}

/* Sharding for data parallelism: each global batch of world * batch samples of the
 * per-epoch order is split in rank order; the shares of every rank, put side by side, are
 * the unsharded loader's batches of world * batch; a short last batch is split evenly, a
 * rest smaller than world is dropped; positions count global samples. */
static void test_loader_shard(void) {
    enum { N = 1000, W = 3, B = 64 };
    synth s;
    synth_init(&s, N, 2, 3);
    static int64_t whole[N], part[W][N];
    int64_t got[W], nb;
    mxp_loader_t *ld = NULL;
    /* the reference order: the unsharded loader's, read through run_epoch at batch 64 */
    CHECK(mxp_loader_create(&ld, &s.ds, B, 1, 9, 0) == MXP_OK, "create ref");
    CHECK(mxp_loader_start_epoch(ld, 2, 0) == MXP_OK, "ref epoch 2");
    CHECK(run_epoch(ld, &s, whole, &nb) == N, "reference epoch");
    mxp_loader_free(ld);
    for (int r = 0; r < W; r++) {
        CHECK(mxp_loader_create(&ld, &s.ds, B, 1, 9, 0) == MXP_OK, "create rank %d", r);
        CHECK(mxp_loader_shard(ld, r, W) == MXP_OK, "shard %d: %s", r, mxp_last_error());
        /* 1000 = 5 * 192 + 40: five full global batches and one of 40 (14 + 13 + 13) */
        CHECK(mxp_loader_batches_per_epoch(ld) == 6, "rank %d: %" PRId64 " batches", r,
              mxp_loader_batches_per_epoch(ld));
        CHECK(mxp_loader_start_epoch(ld, 2, 0) == MXP_OK, "rank %d epoch 2", r);
        got[r] = run_epoch(ld, &s, part[r], &nb);
        CHECK(nb == 6 && got[r] == 5 * B + (r == 0 ? 14 : 13), "rank %d: %" PRId64 " samples", r,
              got[r]);
        CHECK(mxp_loader_position(ld) == N && mxp_loader_global_count(ld) == 0,
              "rank %d: position %" PRId64 ", global batch of the empty call %" PRId64, r,
              mxp_loader_position(ld), mxp_loader_global_count(ld));
        mxp_loader_free(ld);
    }
    int bad = 0;
    for (int k = 0; k < 6; k++) /* global batch k: rank 0's share, rank 1's, rank 2's */
        for (int r = 0, at = 0; r < W; r++) {
            const int share = k < 5 ? B : (r == 0 ? 14 : 13);
            for (int i = 0; i < share; i++) bad += part[r][k * B + i] != whole[k * W * B + at + i];
            at += share;
        }
    CHECK(bad == 0, "sharded order differs from the whole order at %d places", bad);
    /* a resumed rank starts at a global position */
    CHECK(mxp_loader_create(&ld, &s.ds, B, 1, 9, 0) == MXP_OK &&
              mxp_loader_shard(ld, 1, W) == MXP_OK,
          "create resumed");
    CHECK(mxp_loader_start_epoch(ld, 2, 2 * W * B) == MXP_OK, "start at global batch 2");
    CHECK(run_epoch(ld, &s, part[0], &nb) == 3 * B + 13 && part[0][0] == whole[2 * W * B + B],
          "resumed rank 1 starts at %" PRId64, part[0][0]);
    mxp_loader_free(ld);
    /* a rest smaller than the world is dropped: 1000 = 999 + 1 for 3 x 333 */
    CHECK(mxp_loader_create(&ld, &s.ds, 333, 0, 0, 0) == MXP_OK &&
              mxp_loader_shard(ld, 2, W) == MXP_OK,
          "create 333");
    CHECK(mxp_loader_batches_per_epoch(ld) == 1, "333: %" PRId64 " batches",
          mxp_loader_batches_per_epoch(ld));
    /* refused: a rank outside the world, a world whose global batch the data cannot fill */
    CHECK(mxp_loader_shard(ld, 3, 3) == MXP_ERR_INVALID_ARG, "rank 3 of 3");
    CHECK(mxp_loader_shard(ld, 0, 4) == MXP_ERR_INVALID_ARG &&
              strstr(mxp_last_error(), "4 processes"),
          "4 x 333 > 1000: %s", mxp_last_error());
    mxp_loader_free(ld);
    synth_free(&s);
}

/* Fisher-Yates over 3 elements: each of the 6 orders about equally often (a wrong bound, e.g.
 * j in [0, i), gives only 2 of them). */
static void test_loader_uniform(void) {
    synth s;
    synth_init(&s, 3, 1, 1);
    mxp_loader_t *ld = NULL;
    CHECK(mxp_loader_create(&ld, &s.ds, 3, 1, 2024, 0) == MXP_OK, "create");
    if (!ld) return;
    enum { EPOCHS = 6000 };
    int count[6] = {0};
    for (int e = 0; e < EPOCHS; e++) {
        mxp_loader_start_epoch(ld, e, 0);
        float x[3];
        int32_t y[3];
        int64_t b = 0;
        mxp_loader_next(ld, x, MXP_DTYPE_F32, y, &b);
        int p[3];
        for (int i = 0; i < 3; i++) p[i] = unnorm(x[i], s.ds.mean, s.ds.std);
        /* index of the permutation: first element * 2 + whether the rest is ascending */
        count[p[0] * 2 + (p[1] > p[2])]++;
    }
    for (int k = 0; k < 6; k++) /* mean 1000, sd ~29: 6 sd either way */
        CHECK(count[k] > 825 && count[k] < 1175, "order %d drawn %d times of %d", k, count[k],
              EPOCHS);
    mxp_loader_free(ld);
    synth_free(&s);
}

/* Normalised values in f32, bf16 and f16, bit-exact against the scalar conversions of the fp32
 * value; a dataset's normalisation changed after the loader was made is used. */
static void test_loader_values(void) {
    synth s;
    synth_init(&s, 256, 1, 1); /* sample k has the one pixel k */
    mxp_loader_t *ld = NULL;
    CHECK(mxp_loader_create(&ld, &s.ds, 256, 0, 0, 0) == MXP_OK, "create");
    if (!ld) return;
    static const float norms[][2] = {
        {0.2860f, 0.3530f}, {0.5f, 0.5f}, {0, 1}, {0.1307f, 0.3081f}, {-3.0f, 1e-3f}};
    for (int k = 0; k < 5; k++) {
        CHECK(mxp_dataset_set_norm(&s.ds, norms[k][0], norms[k][1]) == MXP_OK, "set_norm");
        for (int dt = 0; dt < 3; dt++) {
            const mxp_dtype dtype = dt == 0   ? MXP_DTYPE_F32
                                    : dt == 1 ? MXP_DTYPE_BF16
                                              : MXP_DTYPE_F16;
            union {
                float f[256];
                uint16_t h[256];
            } x;
            int32_t y[256];
            int64_t b = 0;
            mxp_loader_start_epoch(ld, 0, 0);
            CHECK(mxp_loader_next(ld, &x, dtype, y, &b) == MXP_OK && b == 256, "next %s",
                  mxp_dtype_name(dtype));
            int bad = 0;
            for (int p = 0; p < 256; p++) {
                const float r = norm_ref(p, norms[k][0], norms[k][1]);
                uint32_t got, want;
                if (dtype == MXP_DTYPE_F32) {
                    memcpy(&got, &x.f[p], 4);
                    memcpy(&want, &r, 4);
                } else {
                    got = x.h[p];
                    want = dtype == MXP_DTYPE_BF16 ? mxp_fp32_to_bf16(r) : mxp_fp32_to_fp16(r);
                }
                if (got != want && bad++ < 3)
                    fprintf(stderr, "  %s pixel %d norm (%g, %g): 0x%x, want 0x%x\n",
                            mxp_dtype_name(dtype), p, norms[k][0], norms[k][1], got, want);
                bad += y[p] != p % 10;
            }
            CHECK(bad == 0, "%s, norm (%g, %g): %d values differ", mxp_dtype_name(dtype),
                  norms[k][0], norms[k][1], bad);
        }
    }
    /* an invalid normalisation written into the struct directly */
    s.ds.std = 0;
    float x[256];
    int32_t y[256];
    int64_t b = 9;
    mxp_loader_start_epoch(ld, 0, 0);
    CHECK(mxp_loader_next(ld, x, MXP_DTYPE_F32, y, &b) == MXP_ERR_INVALID_ARG && b == 0,
          "std 0 in the dataset");
    mxp_loader_free(ld);
    synth_free(&s);

    /* a batch large enough to be gathered on several threads: the same as sample by sample */
    synth big;
    synth_init(&big, 3000, 28, 28);
    CHECK(mxp_loader_create(&ld, &big.ds, 2500, 1, 5, 0) == MXP_OK, "big loader");
    if (!ld) return;
    uint16_t *xb = malloc(2500 * 784 * 2);
    int32_t *yb = malloc(2500 * 4);
    int64_t *ref = malloc(3000 * 8);
    ref_perm(ref, 3000, 5, 0);
    int bad = 0;
    for (int round = 0; round < 2; round++) {
        CHECK(mxp_loader_next(ld, xb, MXP_DTYPE_BF16, yb, &b) == MXP_OK &&
                  b == (round ? 500 : 2500),
              "big batch %d: %" PRId64, round, b);
        for (int64_t i = 0; i < b; i++) {
            const int64_t k = ref[round * 2500 + i];
            for (int j = 0; j < 784; j++)
                bad += xb[i * 784 + j] !=
                       mxp_fp32_to_bf16(norm_ref(big.px[k * 784 + j], big.ds.mean, big.ds.std));
            bad += yb[i] != big.lab[k];
        }
    }
    CHECK(bad == 0, "big batches: %d values differ", bad);
    free(xb);
    free(yb);
    free(ref);
    mxp_loader_free(ld);
    synth_free(&big);
}

/* ---- the real Fashion-MNIST ------------------------------------------------------------------ */

static double now_ms(void) { return 1e3 * seconds(); }

static void test_fashion_mnist(void) {
    struct stat st;
    if (stat(MXP_FASHION_MNIST_DIR, &st) != 0) {
        printf("note: %s is absent; the real-data checks are skipped (apt-get install "
               "dataset-fashion-mnist)\n",
               MXP_FASHION_MNIST_DIR);
        return;
    }
    mxp_dataset_t *tr = NULL, *te = NULL;
    double t0 = now_ms();
    mxp_status s = mxp_dataset_load_idx(&tr, MXP_FASHION_MNIST_DIR, "train");
    const double t_train = now_ms() - t0;
    CHECK(s == MXP_OK, "fashion-mnist train: %s", mxp_last_error());
    t0 = now_ms();
    s = mxp_dataset_load_idx(&te, MXP_FASHION_MNIST_DIR, "test");
    const double t_test = now_ms() - t0;
    CHECK(s == MXP_OK, "fashion-mnist test: %s", mxp_last_error());
    if (!tr || !te) {
        mxp_dataset_free(tr);
        mxp_dataset_free(te);
        return;
    }
    const mxp_dataset_t *sets[2] = {tr, te};
    const int64_t want_n[2] = {60000, 10000};
    for (int k = 0; k < 2; k++) {
        const mxp_dataset_t *d = sets[k];
        CHECK(d->n == want_n[k] && d->H == 28 && d->W == 28 && d->C == 1 && d->n_classes == 10,
              "%s: n %" PRId64 " (%" PRId64 ", %" PRId64 ", %" PRId64 ")", k ? "test" : "train",
              d->n, d->H, d->W, d->C);
        int64_t count[10] = {0}, out = 0;
        for (int64_t i = 0; i < d->n; i++) {
            if (d->labels[i] < 0 || d->labels[i] >= 10)
                out++;
            else
                count[d->labels[i]]++;
        }
        CHECK(out == 0, "%s: %" PRId64 " labels out of range", k ? "test" : "train", out);
        for (int c = 0; c < 10; c++)
            CHECK(count[c] == want_n[k] / 10, "%s: class %d has %" PRId64 " samples",
                  k ? "test" : "train", c, count[c]);
    }
    printf("fashion-mnist: train mean %.6f std %.6f (loaded in %.0f ms), test loaded in %.0f ms\n",
           tr->mean, tr->std, t_train, t_test);
    CHECK(check_close(tr->mean, 0.2860, 5e-4, 0), "train mean %.6f, want ~0.2860", tr->mean);
    CHECK(check_close(tr->std, 0.3530, 5e-4, 0), "train std %.6f, want ~0.3530", tr->std);
    CHECK(mxp_dataset_set_norm(te, tr->mean, tr->std) == MXP_OK, "set_norm test");

    /* one epoch of batch 128 in bf16, shuffled: every sample once */
    mxp_loader_t *ld = NULL;
    CHECK(mxp_loader_create(&ld, tr, 128, 1, 42, 0) == MXP_OK, "loader: %s", mxp_last_error());
    if (ld) {
        uint16_t *x = malloc(128 * 784 * 2);
        int32_t y[128];
        int64_t b = 0, seen = 0, counts[10] = {0};
        t0 = now_ms();
        while (mxp_loader_next(ld, x, MXP_DTYPE_BF16, y, &b) == MXP_OK && b > 0) {
            seen += b;
            for (int64_t i = 0; i < b; i++) counts[y[i] % 10]++;
        }
        const double t_epoch = now_ms() - t0;
        CHECK(seen == 60000, "an epoch handed out %" PRId64 " samples", seen);
        for (int c = 0; c < 10; c++)
            CHECK(counts[c] == 6000, "epoch class %d: %" PRId64, c, counts[c]);
        printf("fashion-mnist: one epoch, batch 128 bf16, shuffled: %.1f ms (%" PRId64
               " batches)\n",
               t_epoch, mxp_loader_batches_per_epoch(ld));
        free(x);
        mxp_loader_free(ld);
    }
    mxp_dataset_free(tr);
    mxp_dataset_free(te);
}

int main(void) {
    if (tmpdir_make("data") != 0) {
        perror("mkdtemp");
        return 1;
    }
    test_idx_good();
    test_idx_bad();
    test_idx_nomem();
    test_idx_gz_growth();
    test_dataset();
    test_loader_order();
    test_loader_shard();
    test_loader_uniform();
    test_loader_values();
    test_fashion_mnist();
    tmpdir_remove();
    return check_exit("test_data");
}
