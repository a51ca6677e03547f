/*
 * io_impl.h - what the io layer lends to the layers above it (the train
 * layer's checkpoints) without making it public API. Never installed.
 */
#ifndef MIXPREC_IO_IMPL_H
#define MIXPREC_IO_IMPL_H

/* fsync the directory dir, so that renames and creations in it survive a crash.
 * A filesystem that cannot sync a directory (EINVAL) counts as done. 0, or -1 with
 * errno set. */
int mxp_sync_dir(const char *dir);

#endif
