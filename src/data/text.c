/*
 * text.c - token corpora for the gpt model: plain text and fortune files at character level,
 * and llm.c token shards (read and written), each loaded whole and split into a training and a
 * validation dataset. It does not tokenise with BPE (shards arrive tokenised), keeps no file
 * open after loading, and leaves windows and their order to the loader (dataset.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base_impl.h"
#include "io/io_impl.h"
#include "mixprec/data.h"

enum {
    HEADER_INTS = 256,              /* llm.c's shard header: 256 int32 */
    HEADER_BYTES = HEADER_INTS * 4, /* 1024 */
    GPT2_VOCAB = 50257,             /* GPT-2's BPE: ids 0..50256 (50256 is <|endoftext|>) */
    READ_CHUNK = 1 << 26,           /* bytes per read() call (well under SSIZE_MAX anywhere) */
    WRITE_TOKENS = 1 << 14,         /* tokens per write() of mxp_shard_write's LE buffer */
    MAX_BLOCK = 1 << 24,            /* a window longer than this is surely a mistake */
};

/* A token dataset is one allocation: the public struct, then its tokens. dataset.c's
 * mxp_dataset_free knows this layout by kind and releases it with one mxp_free. */
typedef struct tokens_owned {
    mxp_dataset pub;
    uint16_t tokens[]; /* (n_tokens) */
} tokens_owned;

/* A dataset of n_tokens tokens (left unset) and block T; NULL (error set) when out of memory. */
static mxp_dataset *tokens_new(int64_t n_tokens, int64_t block) {
    const size_t bytes = sizeof(tokens_owned) + (size_t)n_tokens * sizeof(uint16_t);
    tokens_owned *d = mxp_alloc(bytes);
    if (!d) {
        MXP_FAIL(MXP_ERR_NOMEM, "cannot allocate a dataset of %" PRId64 " tokens", n_tokens);
        return NULL;
    }
    memset(&d->pub, 0, sizeof d->pub);
    mxp_dataset *p = &d->pub;
    p->kind = MXP_DATASET_TOKENS;
    p->tokens = d->tokens;
    p->n_tokens = n_tokens;
    p->block = block;
    p->n = (n_tokens - block) / block; /* every window start shift + k T, shift < T, fits */
    return p;
}

/* The writable tokens of a dataset from tokens_new. */
static uint16_t *tokens_of(mxp_dataset *p) { return ((tokens_owned *)p)->tokens; }

static int host_is_le(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static void swap16(uint16_t *t, int64_t n) {
    for (int64_t i = 0; i < n; i++) t[i] = (uint16_t)(t[i] << 8 | t[i] >> 8);
}

static int ends_with(const char *s, const char *suffix) {
    const size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* ---- the split --------------------------------------------------------------------------- */

/* The validation share of n tokens: the last floor(n * val_frac). */
static int64_t val_count(int64_t n, double val_frac) {
    return (int64_t)floor((double)n * val_frac);
}

/* Both sides of a split of n tokens need 2 T; the error says how many there are and how many
 * the block and val_frac need. what: the file or directory, for the message. */
static mxp_status check_split(const char *what, int64_t n, int64_t n_val, int64_t block,
                              double val_frac) {
    if (n - n_val >= 2 * block && (val_frac == 0 || n_val >= 2 * block)) return MXP_OK;
    int64_t need = 2 * block;
    if (val_frac > 0) {
        need = (int64_t)ceil(2.0 * (double)block / val_frac);
        while (val_count(need, val_frac) < 2 * block) need++; /* floating point at the edge */
        while (need > 1 && val_count(need - 1, val_frac) >= 2 * block) need--;
        need = MXP_MAX(need, 4 * block);
    }
    return MXP_FAIL(MXP_ERR_FORMAT,
                    "%s: %" PRId64 " tokens, too few: block %" PRId64 " needs at least %" PRId64
                    " tokens in each split (%" PRId64 " training, %" PRId64
                    " validation here), so at least %" PRId64 " in all at val_frac %g",
                    what, n, block, 2 * block, n - n_val, n_val, need, val_frac);
}

/* ---- reading files ----------------------------------------------------------------------- */

/* Read exactly n bytes from fd into buf; 0, or -1 with errno set (0 for a short file). */
static int read_exact(int fd, void *buf, uint64_t n) {
    uint64_t got = 0;
    while (got < n) {
        const size_t want = (size_t)MXP_MIN(n - got, (uint64_t)READ_CHUNK);
        const ssize_t k = read(fd, (char *)buf + got, want);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = 0;
            return -1;
        }
        got += (uint64_t)k;
    }
    return 0;
}

/* Write n bytes; 0, or -1 with errno set (EIO when write makes no progress). */
static int write_all(int fd, const void *buf, size_t n) {
    for (size_t done = 0; done < n;) {
        const ssize_t k = write(fd, (const char *)buf + done, n - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = EIO;
            return -1;
        }
        done += (size_t)k;
    }
    return 0;
}

static mxp_status read_failed(const char *path, int err) {
    if (err == 0) return MXP_FAIL(MXP_ERR_IO, "%s: the file got shorter while it was read", path);
    return MXP_FAIL(MXP_ERR_IO, "%s: read failed: %s", path, strerror(err));
}

static mxp_status open_failed(const char *path, int err) {
    return MXP_FAIL(MXP_ERR_IO, "cannot open %s: %s", path, strerror(err));
}

/* A growable byte buffer. */
typedef struct bytes {
    uint8_t *p; /* (cap) */
    size_t len, cap;
} bytes;

static mxp_status bytes_reserve(bytes *b, size_t more) {
    if (b->cap - b->len >= more) return MXP_OK;
    size_t cap = MXP_MAX(b->cap * 2, (size_t)1 << 16);
    while (cap - b->len < more) cap *= 2;
    uint8_t *p = mxp_alloc(cap);
    if (!p) return MXP_FAIL(MXP_ERR_NOMEM, "cannot allocate %zu bytes of text", cap);
    if (b->len) memcpy(p, b->p, b->len);
    mxp_free(b->p);
    b->p = p;
    b->cap = cap;
    return MXP_OK;
}

/* Append the whole file at path to b. */
static mxp_status bytes_append_file(bytes *b, const char *path) {
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return open_failed(path, errno);
    struct stat st;
    mxp_status s = MXP_OK;
    if (fstat(fd, &st) != 0) {
        s = MXP_FAIL(MXP_ERR_IO, "%s: stat failed: %s", path, strerror(errno));
    } else if ((s = bytes_reserve(b, (size_t)st.st_size)) == MXP_OK) {
        if (read_exact(fd, b->p + b->len, (uint64_t)st.st_size) != 0)
            s = read_failed(path, errno);
        else
            b->len += (size_t)st.st_size;
    }
    close(fd);
    return s;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir, sorted by strcmp, without hidden ones (a leading '.', so "." and ".." too):
 * *names is one allocation (the pointers, then the strings; free it with mxp_free), *n its
 * count. */
static mxp_status list_dir(const char *dir, char ***names, int64_t *n) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return open_failed(dir, errno);
    int64_t count = 0;
    size_t chars = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        count++;
        chars += strlen(e->d_name) + 1;
    }
    if (!count) {
        closedir(d);
        return MXP_OK;
    }
    char **v = mxp_alloc((size_t)count * sizeof *v + chars);
    if (!v) {
        closedir(d);
        return MXP_FAIL(MXP_ERR_NOMEM, "cannot allocate the listing of %s", dir);
    }
    char *const strings = (char *)(v + count);
    size_t used = 0;
    int64_t k = 0;
    rewinddir(d);
    /* the directory may change between the passes: take what fits in the first pass's room */
    while ((e = readdir(d)) != NULL && k < count) {
        if (e->d_name[0] == '.') continue;
        const size_t len = strlen(e->d_name) + 1;
        if (used + len > chars) break;
        memcpy(strings + used, e->d_name, len);
        v[k++] = strings + used;
        used += len;
    }
    closedir(d);
    qsort(v, (size_t)k, sizeof *v, cmp_names);
    *names = v;
    *n = k;
    return MXP_OK;
}

/* dir + "/" + name into buf (cap bytes); dir's trailing '/'s dropped. */
static mxp_status join(char *buf, size_t cap, const char *dir, const char *name) {
    size_t dn = strlen(dir);
    while (dn > 1 && dir[dn - 1] == '/') dn--;
    const int k = snprintf(buf, cap, "%.*s/%s", (int)dn, dir, name);
    if (k < 0 || (size_t)k >= cap)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "path too long: %s/%s", dir, name);
    return MXP_OK;
}

/* ---- llm.c shards -------------------------------------------------------------------------- */

static int32_t le32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

/* Open the shard at path and check its header against the file: magic, version, and a size of
 * exactly 1024 + 2 n bytes. On success *fd is positioned at the first token and *n is the
 * count; on error nothing is left open. */
static mxp_status shard_open(const char *path, int *fd, int64_t *n) {
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) return open_failed(path, errno);
    struct stat st;
    uint8_t h[HEADER_BYTES];
    mxp_status s = MXP_OK;
    if (fstat(*fd, &st) != 0) {
        s = MXP_FAIL(MXP_ERR_IO, "%s: stat failed: %s", path, strerror(errno));
    } else if (st.st_size == 0) {
        s = MXP_FAIL(MXP_ERR_FORMAT,
                     "%s: empty file (an llm.c token shard starts with a %d-byte header)", path,
                     HEADER_BYTES);
    } else if (st.st_size < HEADER_BYTES) {
        s = MXP_FAIL(MXP_ERR_FORMAT,
                     "%s: %lld bytes, shorter than the %d-byte header of an llm.c token shard",
                     path, (long long)st.st_size, HEADER_BYTES);
    } else if (read_exact(*fd, h, HEADER_BYTES) != 0) {
        s = read_failed(path, errno);
    } else if (le32(h) != MXP_SHARD_MAGIC) {
        s = MXP_FAIL(MXP_ERR_FORMAT,
                     "%s: magic %" PRId32 ", expected %d (not an llm.c token shard)", path, le32(h),
                     MXP_SHARD_MAGIC);
    } else if (le32(h + 4) != MXP_SHARD_VERSION) {
        s = MXP_FAIL(MXP_ERR_FORMAT,
                     "%s: shard version %" PRId32 ", only %d (uint16 tokens) is supported", path,
                     le32(h + 4), MXP_SHARD_VERSION);
    } else if (le32(h + 8) < 0) {
        s = MXP_FAIL(MXP_ERR_FORMAT, "%s: the header counts %" PRId32 " tokens", path, le32(h + 8));
    } else {
        const int64_t count = le32(h + 8);
        const int64_t want = HEADER_BYTES + 2 * count;
        if ((int64_t)st.st_size != want)
            s = MXP_FAIL(MXP_ERR_FORMAT,
                         "%s: the header counts %" PRId64 " tokens, so the file should be %" PRId64
                         " bytes, but it is %lld (%s)",
                         path, count, want, (long long)st.st_size,
                         (int64_t)st.st_size < want ? "truncated" : "trailing bytes");
        *n = count;
    }
    if (s != MXP_OK) {
        close(*fd);
        *fd = -1;
    }
    return s;
}

/* Where a shard's tokens go: dst[0] (cap[0] tokens), then dst[1]; `at` tokens of dst[part]
 * are written. */
typedef struct sink {
    uint16_t *dst[2]; /* (cap[0]), (cap[1]) */
    int64_t cap[2];
    int part;
    int64_t at;
} sink;

/* Read the shard at path, whose header counted n tokens, into the sink (which has room). */
static mxp_status shard_read(const char *path, int64_t n, sink *k) {
    int fd;
    int64_t again = 0;
    MXP_TRY(shard_open(path, &fd, &again));
    mxp_status s = MXP_OK;
    if (again != n) s = MXP_FAIL(MXP_ERR_IO, "%s: the file changed while it was read", path);
    for (int64_t left = n; s == MXP_OK && left > 0;) {
        while (k->part < 1 && k->at == k->cap[k->part]) k->part++, k->at = 0;
        if (k->at == k->cap[k->part]) { /* the headers promised less than this: cannot happen */
            s = MXP_FAIL(MXP_ERR_IO, "%s: more tokens than counted", path);
            break;
        }
        const int64_t m = MXP_MIN(left, k->cap[k->part] - k->at);
        uint16_t *dst = k->dst[k->part] + k->at;
        if (read_exact(fd, dst, (uint64_t)m * 2) != 0) {
            s = read_failed(path, errno);
            break;
        }
        if (!host_is_le()) swap16(dst, m);
        k->at += m;
        left -= m;
    }
    close(fd);
    return s;
}

/* The largest token of t (n). */
static int max_token(const uint16_t *t, int64_t n) {
    uint16_t m = 0;
    for (int64_t i = 0; i < n; i++) m = t[i] > m ? t[i] : m;
    return m;
}

/* Load the shards paths[0..n) (is_val[i]: a validation shard) into *train and *val. what: the
 * file or directory the user named, for messages. */
static mxp_status load_shards(mxp_dataset **train, mxp_dataset **val, const char *what,
                              char *const *paths, const int *is_val, int64_t n_files,
                              const mxp_text_options *o) {
    if (!n_files) return MXP_FAIL(MXP_ERR_FORMAT, "%s: no shards", what);
    int64_t *counts = mxp_alloc_array((size_t)n_files, sizeof *counts);
    if (!counts) return MXP_FAIL(MXP_ERR_NOMEM, "cannot allocate %" PRId64 " counts", n_files);
    mxp_status s = MXP_OK;
    int64_t n_tr = 0, n_va = 0, files_va = 0;
    for (int64_t i = 0; i < n_files && s == MXP_OK; i++) {
        int fd;
        s = shard_open(paths[i], &fd, &counts[i]);
        if (s != MXP_OK) break;
        close(fd);
        if (is_val[i])
            n_va += counts[i], files_va++;
        else
            n_tr += counts[i];
    }
    const int64_t T = o->block;
    if (s == MXP_OK && files_va == n_files) {
        s = MXP_FAIL(MXP_ERR_FORMAT,
                     "%s: every shard's name contains \"val\", so there is no training shard",
                     what);
    } else if (s == MXP_OK && files_va) {
        if (n_tr < 2 * T || n_va < 2 * T)
            s = MXP_FAIL(MXP_ERR_FORMAT,
                         "%s: the %s shards hold %" PRId64 " tokens, too few: block %" PRId64
                         " needs at least %" PRId64,
                         what, n_tr < 2 * T ? "training" : "validation", n_tr < 2 * T ? n_tr : n_va,
                         T, 2 * T);
    } else if (s == MXP_OK) {
        const int64_t total = n_tr;
        n_va = val_count(total, o->val_frac);
        n_tr = total - n_va;
        s = check_split(what, total, n_va, T, o->val_frac);
    }
    mxp_dataset *tr = NULL, *va = NULL;
    if (s == MXP_OK && !(tr = tokens_new(n_tr, T))) s = MXP_ERR_NOMEM;
    if (s == MXP_OK && n_va && !(va = tokens_new(n_va, T))) s = MXP_ERR_NOMEM;
    if (s == MXP_OK) {
        /* validation shards fill val alone; without them the stream runs on from train to val */
        sink k_tr = {{tokens_of(tr), va ? tokens_of(va) : NULL}, {n_tr, files_va ? 0 : n_va}, 0, 0};
        sink k_va = {{va ? tokens_of(va) : NULL, NULL}, {n_va, 0}, 0, 0};
        for (int64_t i = 0; i < n_files && s == MXP_OK; i++)
            s = shard_read(paths[i], counts[i], is_val[i] ? &k_va : &k_tr);
    }
    if (s == MXP_OK) {
        int vocab = max_token(tokens_of(tr), n_tr) + 1;
        if (va) vocab = MXP_MAX(vocab, max_token(tokens_of(va), n_va) + 1);
        vocab = MXP_MAX(vocab, GPT2_VOCAB);
        tr->vocab_size = vocab;
        if (va) va->vocab_size = vocab;
        *train = tr;
        *val = va;
    } else {
        mxp_dataset_free(tr);
        mxp_dataset_free(va);
    }
    mxp_free(counts);
    return s;
}

/* A directory holding .bin files: their paths in name order, "val" in the name validating. */
static mxp_status load_shard_dir(mxp_dataset **train, mxp_dataset **val, const char *dir,
                                 char *const *names, int64_t n_names, const mxp_text_options *o) {
    const size_t cap = 4096;
    char **paths = mxp_alloc((size_t)n_names * (sizeof *paths + cap + sizeof(int)));
    if (!paths) return MXP_FAIL(MXP_ERR_NOMEM, "cannot allocate the shard list of %s", dir);
    int *is_val = (int *)(paths + n_names);
    char *room = (char *)(is_val + n_names);
    int64_t n = 0;
    mxp_status s = MXP_OK;
    for (int64_t i = 0; i < n_names && s == MXP_OK; i++) {
        if (!ends_with(names[i], ".bin")) continue;
        paths[n] = room + (size_t)n * cap;
        s = join(paths[n], cap, dir, names[i]);
        struct stat st;
        if (s != MXP_OK || stat(paths[n], &st) != 0 || !S_ISREG(st.st_mode)) continue;
        is_val[n] = strstr(names[i], "val") != NULL;
        n++;
    }
    if (s == MXP_OK) s = load_shards(train, val, dir, paths, is_val, n, o);
    mxp_free(paths);
    return s;
}

/* Whether the listing of dir holds a .bin name that is (or links to) a regular file. */
static int has_shards(const char *dir, char *const *names, int64_t n) {
    char path[4096];
    for (int64_t i = 0; i < n; i++) {
        struct stat st;
        if (ends_with(names[i], ".bin") && join(path, sizeof path, dir, names[i]) == MXP_OK &&
            stat(path, &st) == 0 && S_ISREG(st.st_mode))
            return 1;
    }
    return 0;
}

mxp_status mxp_shard_write(const char *path, const uint16_t *tokens, int64_t n) {
    if (!path || !*path || n < 0 || n > INT32_MAX || (!tokens && n))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_shard_write: %s (n = %" PRId64 ", at most 2^31 - 1 tokens)",
                        !path || !*path ? "no path" : "bad token count or NULL tokens", n);
    const size_t plen = strlen(path);
    char *names = mxp_alloc(2 * (plen + 32));
    if (!names) return MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate its name", path);
    char *tmp = names, *dir = names + plen + 32;
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    const char *slash = strrchr(path, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == path)
        strcpy(dir, "/");
    else
        snprintf(dir, plen + 32, "%.*s", (int)(slash - path), path);

    mxp_status st = MXP_OK;
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        st = MXP_FAIL(MXP_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        mxp_free(names);
        return st;
    }
    /* the header, then the tokens through a little-endian buffer, WRITE_TOKENS at a time */
    uint8_t buf[WRITE_TOKENS * 2];
    memset(buf, 0, HEADER_BYTES);
    const int32_t head[3] = {MXP_SHARD_MAGIC, MXP_SHARD_VERSION, (int32_t)n};
    for (int i = 0; i < 3; i++)
        for (int b = 0; b < 4; b++) buf[4 * i + b] = (uint8_t)((uint32_t)head[i] >> (8 * b));
    int rc = write_all(fd, buf, HEADER_BYTES);
    for (int64_t i = 0; rc == 0 && i < n; i += WRITE_TOKENS) {
        const int64_t m = MXP_MIN((int64_t)WRITE_TOKENS, n - i);
        for (int64_t j = 0; j < m; j++) {
            buf[2 * j] = (uint8_t)tokens[i + j];
            buf[2 * j + 1] = (uint8_t)(tokens[i + j] >> 8);
        }
        rc = write_all(fd, buf, (size_t)m * 2);
    }
    if (rc == 0) rc = fsync(fd);
    int err = errno; /* of the step that failed, if one did */
    if (close(fd) != 0 && rc == 0) rc = -1, err = errno;
    if (rc == 0 && rename(tmp, path) != 0) rc = -1, err = errno;
    if (rc != 0) {
        unlink(tmp);
        st = MXP_FAIL(MXP_ERR_IO, "%s: writing failed: %s (the temporary was removed)", path,
                      strerror(err));
    } else if (mxp_sync_dir(dir) != 0) {
        st = MXP_FAIL(MXP_ERR_IO, "%s: written, but syncing directory %s failed: %s", path, dir,
                      strerror(errno));
    }
    mxp_free(names);
    return st;
}

/* ---- text at character level ----------------------------------------------------------------- */

/* Append one fortune entry (p, len bytes) to out: its trailing empty lines dropped, one '\n'
 * ending its last line, and an empty line before it unless it is the first. An entry of
 * nothing but newlines adds nothing. */
static mxp_status entry_append(bytes *out, const uint8_t *p, size_t len) {
    while (len && p[len - 1] == '\n') len--;
    if (!len) return MXP_OK;
    MXP_TRY(bytes_reserve(out, len + 2));
    if (out->len) out->p[out->len++] = '\n';
    memcpy(out->p + out->len, p, len);
    out->len += len;
    out->p[out->len++] = '\n';
    return MXP_OK;
}

/* The entries of one fortune file (src, n bytes), whose lines holding only '%' (or "%\r")
 * separate them, appended to out. */
static mxp_status fortune_append(bytes *out, const uint8_t *src, size_t n) {
    size_t begin = 0; /* the current entry's first byte */
    for (size_t i = 0;;) {
        const uint8_t *nl = i < n ? memchr(src + i, '\n', n - i) : NULL;
        const size_t e = nl ? (size_t)(nl - src) : n; /* the line is [i, e) */
        const int sep =
            i < n && src[i] == '%' && (e - i == 1 || (e - i == 2 && src[i + 1] == '\r'));
        if (sep || !nl) {
            MXP_TRY(entry_append(out, src + begin, (sep ? i : n) - begin));
            if (!nl) return MXP_OK;
            begin = e + 1;
        }
        i = e + 1;
    }
}

/* The corpus as one byte stream, and where each file's part of it begins (for messages). */
typedef struct corpus {
    bytes text;
    char **files;   /* (n_files) paths, pointing into `room`; NULL for a single file */
    size_t *starts; /* (n_files) offset of each file's first byte in text */
    int64_t n_files;
    char *room;
} corpus;

static void corpus_free(corpus *c) {
    mxp_free(c->text.p);
    mxp_free(c->files); /* files, starts and room are one allocation */
    memset(c, 0, sizeof *c);
}

/* Every regular file of dir (not symlinks, *.dat, *.u8, hidden files or directories) read as
 * fortune files, in name order. */
static mxp_status load_fortune_dir(corpus *c, const char *dir, char *const *names,
                                   int64_t n_names) {
    const size_t cap = 4096;
    c->files = mxp_alloc((size_t)n_names * (sizeof *c->files + sizeof *c->starts + cap) + 1);
    if (!c->files) return MXP_FAIL(MXP_ERR_NOMEM, "cannot allocate the file list of %s", dir);
    c->starts = (size_t *)(c->files + n_names);
    c->room = (char *)(c->starts + n_names);
    bytes file = {0};
    mxp_status s = MXP_OK;
    for (int64_t i = 0; i < n_names && s == MXP_OK; i++) {
        /* an IDX image set ((Fashion-)MNIST) is no text: its gzip bytes would train */
        if (strstr(names[i], "-idx") && strstr(names[i], "-ubyte")) {
            s = MXP_FAIL(MXP_ERR_FORMAT,
                         "%s holds IDX image files (%s), data for the mlp and cnn models; a "
                         "gpt trains on text or llm.c .bin shards",
                         dir, names[i]);
            break;
        }
        if (ends_with(names[i], ".dat") || ends_with(names[i], ".u8")) continue;
        char *path = c->room + (size_t)c->n_files * cap;
        s = join(path, cap, dir, names[i]);
        struct stat st;
        if (s != MXP_OK || lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        file.len = 0;
        s = bytes_append_file(&file, path);
        if (s != MXP_OK) break;
        c->files[c->n_files] = path;
        c->starts[c->n_files++] = c->text.len;
        if (file.len) s = fortune_append(&c->text, file.p, file.len);
    }
    mxp_free(file.p);
    if (s == MXP_OK && !c->n_files)
        s = MXP_FAIL(MXP_ERR_FORMAT,
                     "%s: no .bin shards and no text files (regular files other than *.dat, "
                     "*.u8 and hidden ones) in this directory",
                     dir);
    return s;
}

/* The file the byte at offset `at` of the corpus came from. */
static const char *file_at(const corpus *c, size_t at, const char *whole) {
    if (!c->n_files) return whole;
    int64_t f = 0;
    while (f + 1 < c->n_files && c->starts[f + 1] <= at) f++;
    return c->files[f];
}

/* The corpus as character tokens in *train and *val. what: the path the user named. */
static mxp_status load_chars(mxp_dataset **train, mxp_dataset **val, const char *what,
                             const corpus *c, const mxp_text_options *o) {
    const uint8_t *text = c->text.p; /* (n) */
    const int64_t n = (int64_t)c->text.len;
    int16_t id[256]; /* byte -> token, -1 outside the vocabulary */
    uint8_t chars[256];
    int n_chars = 0;
    for (int v = 0; v < 256; v++) id[v] = -1;
    if (o->n_chars > 0) {
        for (int i = 0; i < o->n_chars; i++) id[o->chars[i]] = (int16_t)i;
        memcpy(chars, o->chars, (size_t)o->n_chars);
        n_chars = o->n_chars;
        for (int64_t i = 0; i < n; i++)
            if (id[text[i]] < 0)
                return MXP_FAIL(MXP_ERR_FORMAT,
                                "%s: byte %d (0x%02x) is not in the fixed vocabulary of %d "
                                "characters (the run's or checkpoint's)",
                                file_at(c, (size_t)i, what), text[i], text[i], n_chars);
    } else {
        uint8_t seen[256] = {0};
        for (int64_t i = 0; i < n; i++) seen[text[i]] = 1;
        for (int v = 0; v < 256; v++)
            if (seen[v]) id[v] = (int16_t)n_chars, chars[n_chars++] = (uint8_t)v;
    }
    const int64_t n_va = val_count(n, o->val_frac), n_tr = n - n_va;
    MXP_TRY(check_split(what, n, n_va, o->block, o->val_frac));
    mxp_dataset *tr = tokens_new(n_tr, o->block);
    mxp_dataset *va = tr && n_va ? tokens_new(n_va, o->block) : NULL;
    if (!tr || (n_va && !va)) {
        mxp_dataset_free(tr);
        return MXP_ERR_NOMEM;
    }
    mxp_dataset *both[2] = {tr, va};
    for (int d = 0; d < 2 && both[d]; d++) {
        uint16_t *t = tokens_of(both[d]); /* (n_tokens) */
        const uint8_t *src = text + (d ? n_tr : 0);
        for (int64_t i = 0; i < both[d]->n_tokens; i++) t[i] = (uint16_t)id[src[i]];
        both[d]->vocab_size = n_chars;
        both[d]->n_chars = n_chars;
        memcpy(both[d]->chars, chars, (size_t)n_chars);
    }
    *train = tr;
    *val = va;
    return MXP_OK;
}

/* ---- the entry point ---------------------------------------------------------------------------
 */

void mxp_text_options_default(mxp_text_options *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->block = 256;
    o->val_frac = 0.1;
}

static mxp_status check_options(const mxp_text_options *o) {
    if (o->block < 1 || o->block > MAX_BLOCK)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_text_load: block %" PRId64 " is out of range [1, %d]", o->block,
                        MAX_BLOCK);
    if (!(o->val_frac >= 0 && o->val_frac <= 0.5))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_text_load: val_frac %g is not in [0, 0.5]",
                        o->val_frac);
    if (o->n_chars < 0 || o->n_chars > 256 || (o->n_chars > 0 && !o->chars))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_text_load: n_chars %d (need 0, or 1..256 with chars)", o->n_chars);
    for (int i = 1; i < o->n_chars; i++)
        if (o->chars[i] <= o->chars[i - 1])
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "mxp_text_load: the fixed vocabulary is not strictly ascending at "
                            "index %d (%d after %d)",
                            i, o->chars[i], o->chars[i - 1]);
    return MXP_OK;
}

/* The path "fortunes" names: $MIXPREC_DATA_DIR/fortunes, else MXP_FORTUNES_DIR; it must be a
 * directory. */
static mxp_status fortunes_dir(char *out, size_t cap) {
    const char *root = getenv("MIXPREC_DATA_DIR");
    const int k = root && *root ? snprintf(out, cap, "%s/fortunes", root)
                                : snprintf(out, cap, "%s", MXP_FORTUNES_DIR);
    if (k < 0 || (size_t)k >= cap)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "MIXPREC_DATA_DIR is too long: %s", root);
    struct stat st;
    if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode))
        return MXP_FAIL(MXP_ERR_IO,
                        "fortunes not found at %s (install it: apt-get install fortunes, or "
                        "pass --data FILE|DIR)",
                        out);
    return MXP_OK;
}

mxp_status mxp_text_load(mxp_dataset_t **train, mxp_dataset_t **val, const char *data,
                         const mxp_text_options *o) {
    if (!train || !val || !data || !*data)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_text_load: %s",
                        !train || !val ? "train or val is NULL" : "no data given");
    mxp_text_options defaults;
    mxp_text_options_default(&defaults);
    if (!o) o = &defaults;
    MXP_TRY(check_options(o));

    char fortunes[4096];
    const char *path = data;
    if (strcmp(data, "fortunes") == 0) {
        MXP_TRY(fortunes_dir(fortunes, sizeof fortunes));
        path = fortunes;
    }
    struct stat st;
    if (stat(path, &st) != 0) return open_failed(path, errno);
    mxp_dataset *tr = NULL, *va = NULL;
    mxp_status s;
    if (S_ISDIR(st.st_mode)) {
        char **names;
        int64_t n;
        MXP_TRY(list_dir(path, &names, &n));
        if (has_shards(path, names, n)) {
            s = load_shard_dir(&tr, &va, path, names, n, o);
        } else {
            corpus c = {0};
            s = load_fortune_dir(&c, path, names, n);
            if (s == MXP_OK) s = load_chars(&tr, &va, path, &c, o);
            corpus_free(&c);
        }
        mxp_free(names);
    } else if (ends_with(path, ".bin")) {
        char *paths[1] = {(char *)path};
        const int is_val[1] = {0};
        s = load_shards(&tr, &va, path, paths, is_val, 1, o);
    } else {
        corpus c = {0};
        s = bytes_append_file(&c.text, path);
        if (s == MXP_OK) s = load_chars(&tr, &va, path, &c, o);
        corpus_free(&c);
    }
    if (s != MXP_OK) return s;
    *train = tr;
    *val = va;
    return MXP_OK;
}
