/*
 * test_text.c - the gpt model's data: plain text and fortune directories at character level
 * (vocabulary, tokens, the split), llm.c shards written with mxp_shard_write and read back
 * alone or as a directory with train/val names, every malformed shard refused with its file
 * named, a fixed vocabulary, corpora too short for the block; the token loader (x/y shift,
 * every window once per epoch, the per-epoch shift, determinism, exact resume, no shuffle).
 * With /usr/share/games/fortunes present, the real corpus is loaded and its size printed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "mixprec/data.h"
#include "test_util.h"

static void die(const char *what) {
    fprintf(stderr, "test_text: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void write_file(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(bytes, 1, n, f) != n) || fclose(f) != 0) die(path);
}

static void write_str(const char *path, const char *s) { write_file(path, s, strlen(s)); }

static void make_dir(const char *path) {
    if (mkdir(path, 0777) != 0) die(path);
}

/* A dataset's tokens back to text (char level) in a malloc'd NUL-terminated string. */
static char *decode(const mxp_dataset_t *ds) {
    char *s = xmalloc((size_t)ds->n_tokens + 1);
    for (int64_t i = 0; i < ds->n_tokens; i++) s[i] = (char)ds->chars[ds->tokens[i]];
    s[ds->n_tokens] = '\0';
    return s;
}

/* The train and val datasets' text concatenated (the whole stream). */
static char *decode_both(const mxp_dataset_t *tr, const mxp_dataset_t *va) {
    char *a = decode(tr), *b = va ? decode(va) : NULL;
    const size_t na = strlen(a), nb = b ? strlen(b) : 0;
    char *s = xmalloc(na + nb + 1);
    memcpy(s, a, na);
    if (b) memcpy(s + na, b, nb);
    s[na + nb] = '\0';
    free(a);
    free(b);
    return s;
}

static mxp_text_options opts(int64_t block, double val_frac) {
    mxp_text_options o;
    mxp_text_options_default(&o);
    o.block = block;
    o.val_frac = val_frac;
    return o;
}

/* A load that must fail with `want`, its message containing each of the NULL-terminated
 * needles. */
static void expect_fail(const char *data, const mxp_text_options *o, mxp_status want,
                        const char *const *needles, int line) {
    mxp_dataset_t *tr = (mxp_dataset_t *)1, *va = (mxp_dataset_t *)1;
    const mxp_status st = mxp_text_load(&tr, &va, data, o);
    CHECK(st == want, "line %d: %s: status %d, want %d (%s)", line, data, (int)st, (int)want,
          mxp_last_error());
    CHECK(tr == (mxp_dataset_t *)1 && va == (mxp_dataset_t *)1,
          "line %d: outputs touched on failure", line);
    for (const char *const *n = needles; n && *n; n++)
        CHECK(strstr(mxp_last_error(), *n) != NULL, "line %d: message lacks '%s': %s", line, *n,
              mxp_last_error());
    if (st == MXP_OK) {
        mxp_dataset_free(tr);
        mxp_dataset_free(va);
    }
}
#define EXPECT_FAIL(data, o, want, ...)                                                            \
    do {                                                                                           \
        const char *needles_[] = {__VA_ARGS__, NULL};                                              \
        expect_fail((data), (o), (want), needles_, __LINE__);                                      \
    } while (0)

/* ---- plain text ---------------------------------------------------------------------------- */

static void test_plain(void) {
    const char *text = "the quick brown fox jumps over the lazy dog\nTHE END\n";
    const char *path = tpath("plain.txt");
    write_str(path, text);
    const int64_t n = (int64_t)strlen(text);
    mxp_text_options o = opts(4, 0.25);
    mxp_dataset_t *tr = NULL, *va = NULL;
    mxp_status st = mxp_text_load(&tr, &va, path, &o);
    CHECK(st == MXP_OK, "%s", mxp_last_error());
    if (st != MXP_OK) return;
    /* the vocabulary: the distinct bytes, ascending */
    int seen[256] = {0}, nd = 0;
    for (int64_t i = 0; i < n; i++) seen[(uint8_t)text[i]] = 1;
    uint8_t want[256];
    for (int v = 0; v < 256; v++)
        if (seen[v]) want[nd++] = (uint8_t)v;
    CHECK(tr->kind == MXP_DATASET_TOKENS && va->kind == MXP_DATASET_TOKENS, "kind");
    CHECK(tr->n_chars == nd && tr->vocab_size == nd && va->n_chars == nd && va->vocab_size == nd,
          "vocab %d/%d, want %d", tr->n_chars, tr->vocab_size, nd);
    CHECK(memcmp(tr->chars, want, (size_t)nd) == 0 && memcmp(va->chars, want, (size_t)nd) == 0,
          "chars");
    /* the split: the last floor(n / 4) tokens validate */
    const int64_t n_va = n / 4;
    CHECK(va->n_tokens == n_va && tr->n_tokens == n - n_va, "split %" PRId64 " + %" PRId64,
          tr->n_tokens, va->n_tokens);
    CHECK(tr->block == 4 && tr->n == (tr->n_tokens - 4) / 4 && va->n == (n_va - 4) / 4,
          "windows %" PRId64 " %" PRId64, tr->n, va->n);
    CHECK(tr->pixels == NULL && tr->labels == NULL && tr->H == 0, "image fields");
    for (int64_t i = 0; i < tr->n_tokens; i++)
        CHECK(tr->tokens[i] < nd, "token %" PRId64 " = %d", i, tr->tokens[i]);
    char *back = decode_both(tr, va);
    CHECK(strcmp(back, text) == 0, "round trip: '%s'", back);
    free(back);
    mxp_dataset_free(tr);
    mxp_dataset_free(va);

    /* val_frac 0: no validation set, everything trains */
    o = opts(4, 0);
    st = mxp_text_load(&tr, &va, path, &o);
    CHECK(st == MXP_OK && va == NULL && tr->n_tokens == n, "val_frac 0: %s", mxp_last_error());
    if (st == MXP_OK) mxp_dataset_free(tr);

    /* NULL options are the defaults (block 256): this text is too short for them */
    EXPECT_FAIL(path, NULL, MXP_ERR_FORMAT, path, "block 256");
}

/* ---- fortune directories ------------------------------------------------------------------- */

static void test_fortunes_dir(void) {
    const char *dir = tpath("fort");
    make_dir(dir);
    char p[512];
    snprintf(p, sizeof p, "%s/b", dir);
    /* leading separator, trailing empty lines, an empty entry, no final newline */
    write_str(p, "%\none\n%\ntwo\nlines\n\n\n%\n%\nthree");
    snprintf(p, sizeof p, "%s/a", dir);
    write_str(p, "zero\n% not a separator\n%\r\n%%\n");
    snprintf(p, sizeof p, "%s/c", dir);
    write_str(p, ""); /* an empty file adds nothing */
    /* what must be skipped: the index, the .u8 link, another link, hidden, a subdirectory */
    const uint8_t junk[] = {0xff, 0xfe, '\n'};
    snprintf(p, sizeof p, "%s/a.dat", dir);
    write_file(p, junk, sizeof junk);
    snprintf(p, sizeof p, "%s/a.u8", dir);
    if (symlink("a", p) != 0) die(p);
    snprintf(p, sizeof p, "%s/link", dir);
    if (symlink("b", p) != 0) die(p);
    snprintf(p, sizeof p, "%s/.hidden", dir);
    write_file(p, junk, sizeof junk);
    snprintf(p, sizeof p, "%s/sub", dir);
    make_dir(p);
    snprintf(p, sizeof p, "%s/sub/x", dir);
    write_file(p, junk, sizeof junk);

    const char *want = "zero\n% not a separator\n\n%%\n\none\n\ntwo\nlines\n\nthree\n";
    mxp_text_options o = opts(2, 0.2);
    mxp_dataset_t *tr = NULL, *va = NULL;
    const mxp_status st = mxp_text_load(&tr, &va, dir, &o);
    CHECK(st == MXP_OK, "%s", mxp_last_error());
    if (st != MXP_OK) return;
    char *back = decode_both(tr, va);
    CHECK(strcmp(back, want) == 0, "stream:\n'%s'\nwant\n'%s'", back, want);
    free(back);
    for (int i = 0; i < tr->n_chars; i++)
        CHECK(tr->chars[i] < 0x80 && tr->chars[i] != '\r', "char %d from a skipped file",
              tr->chars[i]);
    mxp_dataset_free(tr);
    mxp_dataset_free(va);

    /* a directory with nothing readable in it */
    const char *empty = tpath("empty");
    make_dir(empty);
    snprintf(p, sizeof p, "%s/x.dat", empty);
    write_str(p, "index");
    EXPECT_FAIL(empty, &o, MXP_ERR_FORMAT, empty, "no .bin shards and no text files");
}

/* ---- shards -------------------------------------------------------------------------------- */

static uint16_t *ramp(int64_t n, uint16_t first) {
    uint16_t *t = xmalloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) t[i] = (uint16_t)(first + i);
    return t;
}

static void test_shards(void) {
    /* the bytes: header [magic, 1, n, 0 x 253] then uint16 LE */
    const int64_t n = 300;
    uint16_t *t = ramp(n, 1000);
    t[7] = 0xfedc; /* larger than GPT-2's vocabulary: vocab_size becomes 0xfedc + 1 */
    const char *path = tpath("one.bin");
    CHECK(mxp_shard_write(path, t, n) == MXP_OK, "%s", mxp_last_error());
    size_t len = 0;
    unsigned char *b = file_bytes(path, &len);
    CHECK(b && len == 1024 + 2 * (size_t)n, "size %zu", len);
    if (b && len == 1024 + 2 * (size_t)n) {
        const int32_t head[3] = {20240520, 1, (int32_t)n};
        for (int i = 0; i < 3; i++)
            CHECK(b[4 * i] == (uint8_t)head[i] && b[4 * i + 1] == (uint8_t)(head[i] >> 8) &&
                      b[4 * i + 2] == (uint8_t)(head[i] >> 16) &&
                      b[4 * i + 3] == (uint8_t)(head[i] >> 24),
                  "header int %d", i);
        int zeros = 1;
        for (int i = 12; i < 1024; i++) zeros &= b[i] == 0;
        CHECK(zeros, "header padding");
        CHECK(b[1024 + 14] == 0xdc && b[1024 + 15] == 0xfe, "little-endian tokens");
    }
    free(b);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    struct stat st;
    CHECK(stat(tmp, &st) != 0, "temporary %s left behind", tmp);

    mxp_text_options o = opts(8, 0.1);
    mxp_dataset_t *tr = NULL, *va = NULL;
    mxp_status s = mxp_text_load(&tr, &va, path, &o);
    CHECK(s == MXP_OK, "%s", mxp_last_error());
    if (s == MXP_OK) {
        CHECK(tr->n_tokens == 270 && va->n_tokens == 30, "split %" PRId64 " %" PRId64, tr->n_tokens,
              va->n_tokens);
        CHECK(tr->vocab_size == 0xfedc + 1 && va->vocab_size == 0xfedc + 1, "vocab %d",
              tr->vocab_size);
        CHECK(tr->n_chars == 0 && va->n_chars == 0, "shards have no chars");
        CHECK(memcmp(tr->tokens, t, 270 * 2) == 0 && memcmp(va->tokens, t + 270, 30 * 2) == 0,
              "tokens back");
        mxp_dataset_free(tr);
        mxp_dataset_free(va);
    }
    free(t);

    /* an empty shard is written fine (and is then too short to train on) */
    CHECK(mxp_shard_write(tpath("zero.bin"), NULL, 0) == MXP_OK, "%s", mxp_last_error());
    EXPECT_FAIL(tpath("zero.bin"), &o, MXP_ERR_FORMAT, "zero.bin", "0 tokens");
    CHECK(mxp_shard_write(NULL, NULL, 0) == MXP_ERR_INVALID_ARG, "NULL path");
    CHECK(mxp_shard_write(tpath("neg.bin"), NULL, -1) == MXP_ERR_INVALID_ARG, "n < 0");
    CHECK(mxp_shard_write(tpath("null.bin"), NULL, 5) == MXP_ERR_INVALID_ARG, "NULL tokens");
    CHECK(mxp_shard_write(tpath("nodir/x.bin"), NULL, 0) == MXP_ERR_IO, "missing directory");
    CHECK(strstr(mxp_last_error(), "nodir/x.bin") != NULL, "%s", mxp_last_error());
}

static void test_shard_dir(void) {
    const char *dir = tpath("shards");
    make_dir(dir);
    char p[512];
    uint16_t *a = ramp(100, 0), *b = ramp(50, 100), *v = ramp(40, 7);
    snprintf(p, sizeof p, "%s/tiny_train_001.bin", dir);
    CHECK(mxp_shard_write(p, b, 50) == MXP_OK, "%s", mxp_last_error());
    snprintf(p, sizeof p, "%s/tiny_train_000.bin", dir);
    CHECK(mxp_shard_write(p, a, 100) == MXP_OK, "%s", mxp_last_error());
    snprintf(p, sizeof p, "%s/tiny_val_000.bin", dir);
    CHECK(mxp_shard_write(p, v, 40) == MXP_OK, "%s", mxp_last_error());
    snprintf(p, sizeof p, "%s/README", dir);
    write_str(p, "ignored next to shards\n");
    snprintf(p, sizeof p, "%s/.hidden.bin", dir);
    write_str(p, "not a shard, but hidden");

    mxp_text_options o = opts(16, 0.1);
    mxp_dataset_t *tr = NULL, *va = NULL;
    mxp_status s = mxp_text_load(&tr, &va, dir, &o);
    CHECK(s == MXP_OK, "%s", mxp_last_error());
    if (s == MXP_OK) {
        /* train: the train shards in name order; val: the val shard; val_frac unused */
        CHECK(tr->n_tokens == 150 && va->n_tokens == 40, "%" PRId64 " %" PRId64, tr->n_tokens,
              va->n_tokens);
        int ok = 1;
        for (int64_t i = 0; i < tr->n_tokens; i++) ok &= tr->tokens[i] == i;
        CHECK(ok, "training shards in name order");
        CHECK(memcmp(va->tokens, v, 80) == 0, "validation shard");
        CHECK(tr->vocab_size == 50257 && va->vocab_size == 50257, "vocab %d", tr->vocab_size);
        CHECK(tr->n == (150 - 16) / 16 && va->n == (40 - 16) / 16, "windows");
        mxp_dataset_free(tr);
        mxp_dataset_free(va);
    }
    /* the validation shard too short for the block */
    o.block = 32;
    EXPECT_FAIL(dir, &o, MXP_ERR_FORMAT, dir, "validation", "40 tokens");

    /* without a val shard the training stream's end validates */
    const char *dir2 = tpath("shards2");
    make_dir(dir2);
    snprintf(p, sizeof p, "%s/s0.bin", dir2);
    CHECK(mxp_shard_write(p, a, 100) == MXP_OK, "%s", mxp_last_error());
    snprintf(p, sizeof p, "%s/s1.bin", dir2);
    CHECK(mxp_shard_write(p, b, 50) == MXP_OK, "%s", mxp_last_error());
    o = opts(4, 0.2);
    s = mxp_text_load(&tr, &va, dir2, &o);
    CHECK(s == MXP_OK, "%s", mxp_last_error());
    if (s == MXP_OK) {
        CHECK(tr->n_tokens == 120 && va->n_tokens == 30, "%" PRId64 " %" PRId64, tr->n_tokens,
              va->n_tokens);
        int ok = 1;
        for (int64_t i = 0; i < 120; i++) ok &= tr->tokens[i] == i;
        for (int64_t i = 0; i < 30; i++) ok &= va->tokens[i] == 120 + i;
        CHECK(ok, "stream split across shards");
        mxp_dataset_free(tr);
        mxp_dataset_free(va);
    }
    /* only validation shards */
    const char *dir3 = tpath("shards3");
    make_dir(dir3);
    snprintf(p, sizeof p, "%s/x_val.bin", dir3);
    CHECK(mxp_shard_write(p, a, 100) == MXP_OK, "%s", mxp_last_error());
    EXPECT_FAIL(dir3, &o, MXP_ERR_FORMAT, dir3, "no training shard");
    free(a);
    free(b);
    free(v);
}

/* A shard file of raw parts: header ints (magic, version, count) and `tokens` zero tokens. */
static void raw_shard(const char *path, int32_t magic, int32_t version, int32_t count,
                      size_t tokens) {
    const size_t n = 1024 + 2 * tokens;
    uint8_t *b = calloc(1, n);
    const int32_t head[3] = {magic, version, count};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++) b[4 * i + k] = (uint8_t)((uint32_t)head[i] >> (8 * k));
    write_file(path, b, n);
    free(b);
}

static void test_bad_shards(void) {
    const mxp_text_options o = opts(4, 0.1);
    const char *p;
    raw_shard(p = tpath("magic.bin"), 20240521, 1, 100, 100);
    EXPECT_FAIL(p, &o, MXP_ERR_FORMAT, p, "magic 20240521");
    raw_shard(p = tpath("version.bin"), 20240520, 2, 100, 100);
    EXPECT_FAIL(p, &o, MXP_ERR_FORMAT, p, "version 2");
    raw_shard(p = tpath("truncated.bin"), 20240520, 1, 100, 99);
    EXPECT_FAIL(p, &o, MXP_ERR_FORMAT, p, "1224", "1222", "truncated");
    raw_shard(p = tpath("trailing.bin"), 20240520, 1, 100, 101);
    EXPECT_FAIL(p, &o, MXP_ERR_FORMAT, p, "1224", "1226", "trailing");
    raw_shard(p = tpath("huge.bin"), 20240520, 1, INT32_MAX, 10);
    EXPECT_FAIL(p, &o, MXP_ERR_FORMAT, p, "2147483647 tokens", "truncated");
    raw_shard(p = tpath("negative.bin"), 20240520, 1, -5, 10);
    EXPECT_FAIL(p, &o, MXP_ERR_FORMAT, p, "-5");
    write_file(p = tpath("empty.bin"), "", 0);
    EXPECT_FAIL(p, &o, MXP_ERR_FORMAT, p, "empty");
    write_str(p = tpath("short.bin"), "not a shard at all");
    EXPECT_FAIL(p, &o, MXP_ERR_FORMAT, p, "18 bytes");
    /* in a directory, the bad shard is the one named */
    const char *dir = tpath("badshards");
    make_dir(dir);
    char q[512];
    uint16_t *t = ramp(100, 0);
    snprintf(q, sizeof q, "%s/a.bin", dir);
    CHECK(mxp_shard_write(q, t, 100) == MXP_OK, "%s", mxp_last_error());
    free(t);
    snprintf(q, sizeof q, "%s/b.bin", dir);
    raw_shard(q, 20240520, 1, 100, 50);
    EXPECT_FAIL(dir, &o, MXP_ERR_FORMAT, q, "truncated");
}

/* ---- vocabularies, lengths, arguments ------------------------------------------------------ */

static void test_vocab_and_errors(void) {
    const char *path = tpath("abc.txt");
    write_str(path, "abcabcabcabcabcabcabcabcabcabcabcabcabcabcabc\n");
    const uint8_t chars[] = {'\n', 'a', 'b', 'c', 'z'};
    mxp_text_options o = opts(4, 0.2);
    o.chars = chars;
    o.n_chars = 5;
    mxp_dataset_t *tr = NULL, *va = NULL;
    mxp_status s = mxp_text_load(&tr, &va, path, &o);
    CHECK(s == MXP_OK, "%s", mxp_last_error());
    if (s == MXP_OK) {
        CHECK(tr->vocab_size == 5 && tr->n_chars == 5 && memcmp(tr->chars, chars, 5) == 0,
              "fixed vocab kept whole (z unused)");
        CHECK(tr->tokens[0] == 1 && tr->tokens[1] == 2 && tr->tokens[2] == 3, "ids from chars");
        mxp_dataset_free(tr);
        mxp_dataset_free(va);
    }
    const char *bad = tpath("abd.txt");
    write_str(bad, "abcabcabcabcabcabcabcabcabcabcabcabcabcabcabd\n");
    EXPECT_FAIL(bad, &o, MXP_ERR_FORMAT, bad, "byte 100 (0x64)", "fixed vocabulary");
    /* in a fortune directory, the file holding the byte is named */
    const char *dir = tpath("vocabdir");
    make_dir(dir);
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/1", dir);
    write_str(p1, "abcabcabcabcabc\n%\nabcabcabcabc\n");
    snprintf(p2, sizeof p2, "%s/2", dir);
    write_str(p2, "abcabcabcabc\n%\nabcabcabcQbc\n");
    EXPECT_FAIL(dir, &o, MXP_ERR_FORMAT, p2, "byte 81");

    /* too short: the counts in one line */
    const char *tiny = tpath("tiny.txt");
    write_str(tiny, "0123456789");
    o = opts(4, 0.1);
    EXPECT_FAIL(tiny, &o, MXP_ERR_FORMAT, tiny, "10 tokens", "at least 8", "at least 80");
    o = opts(4, 0.5);
    EXPECT_FAIL(tiny, &o, MXP_ERR_FORMAT, tiny, "10 tokens", "at least 16");
    o = opts(2, 0.5); /* 8 tokens: 4 + 4, the least that works */
    write_str(tiny, "01234567");
    s = mxp_text_load(&tr, &va, tiny, &o);
    CHECK(s == MXP_OK && tr->n == 1 && va->n == 1, "the shortest corpus: %s", mxp_last_error());
    if (s == MXP_OK) mxp_dataset_free(tr), mxp_dataset_free(va);

    /* arguments */
    o = opts(0, 0.1);
    EXPECT_FAIL(path, &o, MXP_ERR_INVALID_ARG, "block 0");
    o = opts(4, 0.6);
    EXPECT_FAIL(path, &o, MXP_ERR_INVALID_ARG, "val_frac");
    o = opts(4, 0.1);
    const uint8_t unsorted[] = {'b', 'a'};
    o.chars = unsorted;
    o.n_chars = 2;
    EXPECT_FAIL(path, &o, MXP_ERR_INVALID_ARG, "ascending");
    o = opts(4, 0.1);
    CHECK(mxp_text_load(NULL, &va, path, &o) == MXP_ERR_INVALID_ARG, "NULL train");
    CHECK(mxp_text_load(&tr, &va, NULL, &o) == MXP_ERR_INVALID_ARG, "NULL data");
    EXPECT_FAIL(tpath("missing.txt"), &o, MXP_ERR_IO, "missing.txt");

    /* "fortunes" under MIXPREC_DATA_DIR: missing, then present */
    const char *old = getenv("MIXPREC_DATA_DIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("MIXPREC_DATA_DIR", tmpdir, 1);
    EXPECT_FAIL("fortunes", &o, MXP_ERR_IO, "apt-get install fortunes", tmpdir);
    char fd[256];
    snprintf(fd, sizeof fd, "%s/fortunes", tmpdir);
    make_dir(fd);
    snprintf(p1, sizeof p1, "%s/one", fd);
    write_str(p1, "Happiness is a warm terminal.\n%\nIt is easier to write an incorrect program "
                  "than understand a correct one.\n");
    s = mxp_text_load(&tr, &va, "fortunes", &o);
    CHECK(s == MXP_OK, "%s", mxp_last_error());
    if (s == MXP_OK) mxp_dataset_free(tr), mxp_dataset_free(va);
    if (saved)
        setenv("MIXPREC_DATA_DIR", saved, 1);
    else
        unsetenv("MIXPREC_DATA_DIR");
    free(saved);
}

/* ---- the loader ---------------------------------------------------------------------------- */

/* A token dataset whose token at position i is i: a window's first token is its start. */
static mxp_dataset_t *positions(int64_t n, int64_t block) {
    uint16_t *t = ramp(n, 0);
    const char *path = tpath("pos.bin");
    if (mxp_shard_write(path, t, n) != MXP_OK) die(mxp_last_error());
    free(t);
    mxp_text_options o = opts(block, 0);
    mxp_dataset_t *tr = NULL, *va = NULL;
    if (mxp_text_load(&tr, &va, path, &o) != MXP_OK || va) die(mxp_last_error());
    return tr;
}

typedef struct epoch_log {
    int64_t starts[4096]; /* (n) window starts in the order handed out */
    int64_t n, batches;
} epoch_log;

/* Run the loader to the end of its epoch, checking every batch's shape; log the starts. */
static void run_epoch(mxp_loader_t *ld, epoch_log *log) {
    const mxp_dataset_t *ds = mxp_loader_dataset(ld);
    const int64_t T = ds->block, B = mxp_loader_batch_size(ld);
    int32_t *x = xmalloc((size_t)(B * T) * 4), *y = xmalloc((size_t)(B * T) * 4);
    log->n = log->batches = 0;
    int64_t b;
    while (mxp_loader_next_tokens(ld, x, y, &b) == MXP_OK && b > 0) {
        int ok = 1;
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j < T; j++)
                ok &= x[i * T + j] == x[i * T] + j && y[i * T + j] == x[i * T + j] + 1;
        CHECK(ok, "a row is not a window with y = x shifted by one");
        for (int64_t i = 0; i < b && log->n < 4096; i++) log->starts[log->n++] = x[i * T];
        log->batches++;
    }
    free(x);
    free(y);
}

static void test_loader(void) {
    const int64_t T = 7;
    mxp_dataset_t *ds = positions(1000, T); /* 141 windows */
    CHECK(ds->n == (1000 - T) / T, "n %" PRId64, ds->n);
    static epoch_log a, b2;
    mxp_loader_t *ld = NULL, *ld2 = NULL;
    CHECK(mxp_loader_create(&ld, ds, 10, 1, 42, 0) == MXP_OK, "%s", mxp_last_error());
    CHECK(mxp_loader_batches_per_epoch(ld) == 15, "batches %" PRId64,
          mxp_loader_batches_per_epoch(ld));
    int shifts[8], distinct = 0;
    for (int e = 0; e < 8; e++) {
        if (e) CHECK(mxp_loader_start_epoch(ld, e, 0) == MXP_OK, "%s", mxp_last_error());
        run_epoch(ld, &a);
        CHECK(a.n == ds->n && a.batches == 15, "epoch %d: %" PRId64 " windows", e, a.n);
        /* one shift per epoch, < T; every window k exactly once */
        const int64_t shift = a.starts[0] % T;
        shifts[e] = (int)shift;
        CHECK(shift < T, "shift");
        char seen[200] = {0};
        int ok = 1, ordered = 1;
        for (int64_t i = 0; i < a.n; i++) {
            ok &= a.starts[i] % T == shift;
            const int64_t k = a.starts[i] / T;
            ok &= k < ds->n && !seen[k];
            if (k < ds->n) seen[k] = 1;
            ordered &= k == i;
        }
        CHECK(ok, "epoch %d: not a permutation of the windows at one shift", e);
        CHECK(!ordered, "epoch %d: shuffled order equals file order", e);
        int new_shift = 1;
        for (int f = 0; f < e; f++) new_shift &= shifts[f] != shifts[e];
        distinct += new_shift;
    }
    CHECK(distinct >= 3, "only %d distinct shifts in 8 epochs", distinct);

    /* the same seed: the same batches; another seed: others */
    CHECK(mxp_loader_create(&ld2, ds, 10, 1, 42, 0) == MXP_OK, "%s", mxp_last_error());
    CHECK(mxp_loader_start_epoch(ld, 3, 0) == MXP_OK, "restart");
    CHECK(mxp_loader_start_epoch(ld2, 3, 0) == MXP_OK, "start");
    run_epoch(ld, &a);
    run_epoch(ld2, &b2);
    CHECK(a.n == b2.n && memcmp(a.starts, b2.starts, (size_t)a.n * 8) == 0, "same seed");
    mxp_loader_free(ld2);
    CHECK(mxp_loader_create(&ld2, ds, 10, 1, 43, 0) == MXP_OK, "%s", mxp_last_error());
    CHECK(mxp_loader_start_epoch(ld2, 3, 0) == MXP_OK, "start");
    run_epoch(ld2, &b2);
    CHECK(memcmp(a.starts, b2.starts, (size_t)a.n * 8) != 0, "another seed, same order");
    mxp_loader_free(ld2);

    /* resume at (epoch 5, position 30) on a fresh loader: the same following batches */
    CHECK(mxp_loader_start_epoch(ld, 5, 0) == MXP_OK, "start");
    run_epoch(ld, &a);
    CHECK(mxp_loader_create(&ld2, ds, 10, 1, 42, 0) == MXP_OK, "%s", mxp_last_error());
    CHECK(mxp_loader_start_epoch(ld2, 5, 30) == MXP_OK, "resume");
    CHECK(mxp_loader_epoch(ld2) == 5 && mxp_loader_position(ld2) == 30, "epoch/position");
    run_epoch(ld2, &b2);
    CHECK(b2.n == a.n - 30 && memcmp(a.starts + 30, b2.starts, (size_t)b2.n * 8) == 0,
          "resumed batches differ");
    /* and back: a loader moved to another epoch and then to 5 again gives the same */
    CHECK(mxp_loader_start_epoch(ld2, 1, 0) == MXP_OK &&
              mxp_loader_start_epoch(ld2, 5, 30) == MXP_OK,
          "moves");
    run_epoch(ld2, &b2);
    CHECK(memcmp(a.starts + 30, b2.starts, (size_t)b2.n * 8) == 0, "resume after a detour");
    mxp_loader_free(ld2);
    mxp_loader_free(ld);

    /* no shuffle: shift 0, in order; drop_last drops the window left over */
    CHECK(mxp_loader_create(&ld, ds, 10, 0, 42, 1) == MXP_OK, "%s", mxp_last_error());
    CHECK(mxp_loader_batches_per_epoch(ld) == 14, "drop_last batches");
    for (int e = 0; e < 2; e++) {
        CHECK(mxp_loader_start_epoch(ld, e, 0) == MXP_OK, "start");
        run_epoch(ld, &a);
        int ok = a.n == 140;
        for (int64_t i = 0; i < a.n; i++) ok &= a.starts[i] == i * T;
        CHECK(ok, "epoch %d: not in order at shift 0", e);
    }

    /* the wrong call for the kind, both ways */
    int32_t x[70], y[70];
    float xf[70];
    int64_t b = -1;
    CHECK(mxp_loader_next(ld, xf, MXP_DTYPE_F32, y, &b) == MXP_ERR_INVALID_ARG && b == 0,
          "mxp_loader_next on tokens");
    CHECK(strstr(mxp_last_error(), "mxp_loader_next_tokens") != NULL, "%s", mxp_last_error());
    mxp_loader_free(ld);
    uint8_t px[4 * 4] = {0};
    int32_t lab[4] = {0};
    mxp_dataset img;
    memset(&img, 0, sizeof img);
    img.n = 4, img.H = 2, img.W = 2, img.C = 1, img.n_classes = 10;
    img.pixels = px, img.labels = lab, img.mean = 0, img.std = 1;
    CHECK(mxp_loader_create(&ld, &img, 2, 1, 1, 0) == MXP_OK, "%s", mxp_last_error());
    CHECK(mxp_loader_next_tokens(ld, x, y, &b) == MXP_ERR_INVALID_ARG && b == 0,
          "mxp_loader_next_tokens on images");
    CHECK(strstr(mxp_last_error(), "images") != NULL, "%s", mxp_last_error());
    mxp_loader_free(ld);

    /* a hand-made token dataset with more windows than its tokens hold is refused */
    mxp_dataset bad = *ds;
    bad.n = ds->n + 1;
    CHECK(mxp_loader_create(&ld, &bad, 2, 1, 1, 0) == MXP_ERR_INVALID_ARG && !ld, "inconsistent n");
    mxp_dataset_free(ds);
}

/* ---- out of memory ------------------------------------------------------------------------ */

/* Every allocation of a load refused in turn: NOMEM and nothing leaked, until it succeeds. */
static void test_nomem(void) {
    const char *srcs[] = {tpath("fort"), tpath("shards"), tpath("one.bin"), tpath("plain.txt")};
    const mxp_text_options o = opts(4, 0.2);
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
        mxp_status st = MXP_ERR_NOMEM;
        long budget = 0;
        for (; st == MXP_ERR_NOMEM && budget < 100; budget++) {
            mxp_dataset_t *tr = NULL, *va = NULL;
            hook_on(budget);
            st = mxp_text_load(&tr, &va, srcs[i], &o);
            if (st == MXP_OK) mxp_dataset_free(tr), mxp_dataset_free(va);
            hook_off();
            CHECK(st == MXP_OK || st == MXP_ERR_NOMEM, "%s, budget %ld: %s", srcs[i], budget,
                  mxp_last_error());
            CHECK(hk.allocs == hk.frees, "%s, budget %ld: %ld allocations, %ld frees", srcs[i],
                  budget, hk.allocs, hk.frees);
        }
        CHECK(st == MXP_OK && budget > 1, "%s: never loaded (%ld allocations)", srcs[i], budget);
    }
}

/* ---- the real corpus ------------------------------------------------------------------------ */

static void test_real_fortunes(void) {
    struct stat st;
    if (stat(MXP_FORTUNES_DIR, &st) != 0) {
        printf("fortunes: %s absent (apt-get install fortunes); skipped\n", MXP_FORTUNES_DIR);
        return;
    }
    const char *old = getenv("MIXPREC_DATA_DIR");
    char *saved = old ? strdup(old) : NULL;
    unsetenv("MIXPREC_DATA_DIR");
    mxp_text_options o;
    mxp_text_options_default(&o);
    mxp_dataset_t *tr = NULL, *va = NULL;
    const double t0 = seconds();
    const mxp_status s = mxp_text_load(&tr, &va, "fortunes", &o);
    const double dt = seconds() - t0;
    if (saved) setenv("MIXPREC_DATA_DIR", saved, 1);
    free(saved);
    CHECK(s == MXP_OK, "%s", mxp_last_error());
    if (s != MXP_OK) return;
    CHECK(tr->vocab_size == va->vocab_size && tr->vocab_size <= 256 && tr->vocab_size > 60,
          "vocab %d", tr->vocab_size);
    CHECK(memcmp(tr->chars, va->chars, 256) == 0, "one vocabulary");
    const int64_t total = tr->n_tokens + va->n_tokens;
    CHECK(va->n_tokens == (int64_t)((double)total * 0.1), "split");
    printf("fortunes: %" PRId64 " tokens (%" PRId64 " train, %" PRId64 " val), vocab %d, %" PRId64
           " + %" PRId64 " windows of 256, loaded in %.3f s\n",
           total, tr->n_tokens, va->n_tokens, tr->vocab_size, tr->n, va->n, dt);
    mxp_dataset_free(tr);
    mxp_dataset_free(va);
}

int main(void) {
    if (tmpdir_make("text") != 0) die("mkdtemp");
    const test_part parts[] = {
        {"plain", test_plain},
        {"fortune dir", test_fortunes_dir},
        {"shards", test_shards},
        {"shard dir", test_shard_dir},
        {"bad shards", test_bad_shards},
        {"vocab, errors", test_vocab_and_errors},
        {"loader", test_loader},
        {"out of memory", test_nomem},
        {"real fortunes", test_real_fortunes},
    };
    run_parts(parts, sizeof parts / sizeof parts[0]);
    tmpdir_remove();
    return check_exit("test_text");
}
