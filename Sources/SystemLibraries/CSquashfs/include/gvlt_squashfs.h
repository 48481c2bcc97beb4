// A narrow, read-only view of a SquashFS file system through libsquashfs (squashfs-tools-ng), for
// `gvlt inspect`: open an image at a byte offset, resolve one path component at a time, list a
// directory, read a file's bytes. Nothing is ever extracted onto the host. Swift calls these
// instead of libsquashfs itself because its inodes are unions with flexible array members.
#ifndef GVLT_SQUASHFS_H
#define GVLT_SQUASHFS_H

#include <stddef.h>
#include <stdint.h>

typedef struct gvlt_sqfs gvlt_sqfs;
typedef struct sqfs_inode_generic_t gvlt_sqfs_inode;

enum { GVLT_SQFS_DIR = 1, GVLT_SQFS_FILE = 2, GVLT_SQFS_SYMLINK = 3, GVLT_SQFS_OTHER = 4 };

/// Opens the file system stored in `fd` from `offset` for `length` bytes. On failure returns NULL
/// and sets `*error` to a libsquashfs error code (negative) and `*what` to the step that failed.
gvlt_sqfs *gvlt_sqfs_open(int fd, uint64_t offset, uint64_t length, int *error, const char **what);
void gvlt_sqfs_close(gvlt_sqfs *fs);

/// The compressor's name ("xz", "zstd", ...), the bytes used, the block size.
const char *gvlt_sqfs_compressor(const gvlt_sqfs *fs);
uint64_t gvlt_sqfs_bytes_used(const gvlt_sqfs *fs);

int gvlt_sqfs_root(gvlt_sqfs *fs, gvlt_sqfs_inode **out);
/// The entry `name` of directory `dir`: 0 and `*out` when found, 1 when there is none, < 0 on error.
int gvlt_sqfs_lookup(gvlt_sqfs *fs, const gvlt_sqfs_inode *dir, const char *name, gvlt_sqfs_inode **out);

/// Starts listing `dir`; then `gvlt_sqfs_next` gives one entry at a time (0), the end (1) or an
/// error (< 0). `name` gets the entry's name (NUL-terminated, cut to `capacity`), `*out` its inode.
int gvlt_sqfs_open_dir(gvlt_sqfs *fs, const gvlt_sqfs_inode *dir);
int gvlt_sqfs_next(gvlt_sqfs *fs, char *name, size_t capacity, gvlt_sqfs_inode **out);

int gvlt_sqfs_kind(const gvlt_sqfs_inode *inode);
uint16_t gvlt_sqfs_mode(const gvlt_sqfs_inode *inode);
/// A regular file's size.
uint64_t gvlt_sqfs_file_size(const gvlt_sqfs_inode *inode);
/// A symlink's target and its length (not NUL-terminated); NULL for other inodes.
const char *gvlt_sqfs_symlink_target(const gvlt_sqfs_inode *inode, size_t *length);
/// Reads up to `size` bytes of a file from `offset`: the count read, 0 at the end, < 0 on error.
int32_t gvlt_sqfs_read(gvlt_sqfs *fs, const gvlt_sqfs_inode *inode, uint64_t offset, void *buffer, uint32_t size);
void gvlt_sqfs_free(gvlt_sqfs_inode *inode);

#endif
