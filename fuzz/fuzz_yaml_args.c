/*
 * fuzz_yaml_args.c - mxp_yaml_read_flat on arbitrary bytes as a Trainer argument file; what it
 * accepts must be a list of non-empty, unique keys with values. Each then goes through
 * mxp_trainer_args_set (a refusal is an expected result, and must leave the arguments as they
 * were), and the result must agree with mxp_trainer_args_load. The arguments are printed with
 * mxp_trainer_args_each and set again, as a checkpoint's config.json records and reads them:
 * every printed value must be accepted back and print the same. It runs no training.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "fuzz_args.h"
#include "mixprec/io.h"
#include "mixprec/train.h"

static fuzz_file file;

int mixprec_fuzz_yaml_args(const uint8_t *data, size_t size) {
    const char *path = fuzz_file_put(&file, "yaml", ".yaml", data, size);
    if (!path) return 1;
    mxp_kvlist kv;
    if (mxp_yaml_read_flat(&kv, path) != MXP_OK) {
        FUZZ_CHECK(kv.n == 0 && kv.items == NULL, "a refused file left %d entries", kv.n);
        return 0;
    }
    FUZZ_CHECK(kv.n >= 0 && (kv.n == 0 || kv.items), "n = %d", kv.n);
    mxp_trainer_args a;
    mxp_trainer_args_default(&a);
    int all_set = 1;
    for (int i = 0; i < kv.n; i++) {
        const mxp_kv *e = &kv.items[i];
        FUZZ_CHECK(e->key && e->key[0] && e->value, "entry %d: empty key or no value", i);
        FUZZ_CHECK(e->line >= 1, "entry %d: line %d", i, e->line);
        FUZZ_CHECK(strlen(e->key) < size && strlen(e->value) < size,
                   "entry %d is longer than the file", i);
        for (int j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(kv.items[j].key, e->key) != 0, "key '%s' twice", e->key);
        FUZZ_CHECK(mxp_kvlist_get(&kv, e->key) == e->value, "get('%s') is not entry %d", e->key, i);
        /* a refusal is an expected result, and must leave the arguments as they were */
        static printed before, after;
        before.len = after.len = 0;
        mxp_trainer_args_each(&a, print_arg, &before);
        if (mxp_trainer_args_set(&a, e->key, e->value) != MXP_OK) {
            all_set = 0;
            mxp_trainer_args_each(&a, print_arg, &after);
            FUZZ_CHECK(before.len == after.len && memcmp(before.text, after.text, before.len) == 0,
                       "the refused '%s: %s' changed the arguments:\n%.*s---\n%.*s", e->key,
                       e->value, (int)before.len, before.text, (int)after.len, after.text);
        }
    }

    /* mxp_trainer_args_load does the same in one call, stopping at the first refusal */
    mxp_trainer_args loaded;
    mxp_trainer_args_default(&loaded);
    const mxp_status sl = mxp_trainer_args_load(&loaded, path);
    FUZZ_CHECK((sl == MXP_OK) == all_set, "load: %s, but the keys one by one: %s",
               mxp_status_str(sl), all_set ? "all accepted" : "one refused");
    if (all_set) {
        static printed pa, pl;
        pa.len = pl.len = 0;
        mxp_trainer_args_each(&a, print_arg, &pa);
        mxp_trainer_args_each(&loaded, print_arg, &pl);
        FUZZ_CHECK(pa.len == pl.len && memcmp(pa.text, pl.text, pa.len) == 0,
                   "load and set one by one differ");
    }

    check_round_trip(&a);
    mxp_kvlist_free(&kv);
    FUZZ_CHECK(kv.n == 0 && kv.items == NULL, "mxp_kvlist_free left entries");
    return 0;
}

FUZZ_ENTRY(mixprec_fuzz_yaml_args)
