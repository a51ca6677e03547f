/*
 * tiny_idx.h - tiny Fashion-MNIST-shaped IDX datasets for tests: 28x28
 * images with a class-dependent pattern a model can learn in a few steps,
 * written in the four files the loader looks for (some gzipped, some not),
 * with optional damage (truncation, a bad label).
 */
#ifndef MIXPREC_TEST_TINY_IDX_H
#define MIXPREC_TEST_TINY_IDX_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zlib.h>

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* an IDX file of n images (28x28) or labels; gz: through zlib. truncate: drop that many
 * trailing bytes. label_bad: index given label 12. */
static void write_idx(const char *dir, const char *name, int images, uint32_t n, int gz,
                      size_t truncate, int label_bad) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
    const size_t hdr = images ? 16 : 8, body = images ? (size_t)n * 784 : n;
    unsigned char *buf = malloc(hdr + body);
    buf[0] = buf[1] = 0;
    buf[2] = 0x08;
    buf[3] = images ? 3 : 1;
    put_be32(buf + 4, n);
    if (images) {
        put_be32(buf + 8, 28);
        put_be32(buf + 12, 28);
    }
    for (size_t i = 0; i < body; i++) /* a class-dependent pattern a model can learn */
        buf[hdr + i] =
            images ? (unsigned char)(((i / 784) % 10 == (i % 784) % 10) * 200 + (i * 7) % 31)
                   : (unsigned char)(i % 10);
    if (!images && label_bad >= 0) buf[hdr + (size_t)label_bad] = 12;
    const size_t len = hdr + body - truncate;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, buf, (unsigned)len);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, len, f);
        fclose(f);
    }
    free(buf);
}

/* a dataset directory root/name with train (n_train) and t10k (n_test) files */
static const char *make_set(const char *root, const char *name, uint32_t n_train, uint32_t n_labels,
                            uint32_t n_test, size_t truncate_images, int label_bad) {
    static char dir[8][512];
    static int k;
    char *d = dir[k++ % 8];
    snprintf(d, 512, "%s/%s", root, name);
    mkdir(d, 0700);
    write_idx(d, "train-images-idx3-ubyte", 1, n_train, 1, truncate_images, -1);
    write_idx(d, "train-labels-idx1-ubyte", 0, n_labels, 0, 0, label_bad);
    write_idx(d, "t10k-images-idx3-ubyte", 1, n_test, 0, 0, -1);
    write_idx(d, "t10k-labels-idx1-ubyte", 0, n_test, 1, 0, -1);
    return d;
}

#endif
