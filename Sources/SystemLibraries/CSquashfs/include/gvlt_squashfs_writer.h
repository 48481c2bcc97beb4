// Writing a SquashFS file system in-process through libsquashfs: the data blocks go through
// libsquashfs' block processor (parallel compression, fragment packing, deduplication), and its
// compressor can be wrapped so that a cache of compressed blocks answers before the compressor runs.
// The tree itself is given as flat arrays, since Swift cannot build libsquashfs' inodes (unions with
// flexible array members).
#ifndef GVLT_SQUASHFS_WRITER_H
#define GVLT_SQUASHFS_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct gvlt_sqfs_writer gvlt_sqfs_writer;

/// A cache of compressed blocks, asked from the block processor's worker threads (so every
/// function must be thread-safe). `lookup` fills `key` (32 bytes) with the block's key; on a hit it
/// copies the stored result into `out` (at most `outsize` bytes), sets `*result` to what the
/// compressor returned for that block (its compressed size, or 0 for "does not shrink") and returns
/// 1. On a miss it returns 0 and the compressor runs. Either way `produced` then gets the block's key,
/// its input, the result in `out` (below 0 when the compressor failed) and whether it was a hit, and
/// `written` gets every block as it goes to the file: `user`
/// is the file's inode index + 1 for a file's data blocks (0 for fragment blocks), `flags` the
/// libsquashfs block flags, `data` the bytes written.
typedef struct {
    void *context;
    int (*lookup)(void *context, const uint8_t *in, uint32_t size, uint8_t *key, uint8_t *out, uint32_t outsize,
                  int32_t *result);
    void (*produced)(void *context, const uint8_t *key, const uint8_t *in, uint32_t size, const uint8_t *out,
                     int32_t result, int hit);
    void (*written)(void *context, uint32_t user, uint32_t flags, const uint8_t *data, uint32_t size);
} gvlt_sqfs_block_cache;

/// The 32-byte `sqfs_compressor_config_t` libsquashfs uses for `compressor` at `block_size`, with
/// its defaults (the ones tar2sqfs uses): part of every cache key. Returns a libsquashfs error
/// code (< 0) for an unknown or unsupported compressor.
int gvlt_sqfs_compressor_config(const char *compressor, uint32_t block_size, uint8_t out[32]);

/// Creates `path` (replacing a file there) and starts a file system of `node_count` inodes. With
/// `image_fd` >= 0, every write is also made into that file at `image_offset` (the disk image's
/// root partition); `path` may then be NULL, for a root written into the image only.
/// `workers` threads compress; `cache` may be NULL. On failure returns a libsquashfs error code
/// (< 0) and sets `*what` to the step that failed.
int gvlt_sqfs_writer_create(const char *path, int image_fd, uint64_t image_offset, const char *compressor,
                            uint32_t block_size, uint32_t mtime,
                            uint32_t workers, uint32_t node_count, const gvlt_sqfs_block_cache *cache,
                            gvlt_sqfs_writer **out, const char **what);
void gvlt_sqfs_writer_destroy(gvlt_sqfs_writer *writer);

/// The file system's size so far; after `gvlt_sqfs_writer_finish`, the whole root's, padded to 4 KiB.
uint64_t gvlt_sqfs_writer_size(const gvlt_sqfs_writer *writer);

/// Data, one regular file at a time: `inode` is the file's index in the node array that
/// `gvlt_sqfs_writer_finish` gets. `own_tail` keeps the file's last partial block out of the shared
/// fragment blocks.
int gvlt_sqfs_writer_begin_file(gvlt_sqfs_writer *writer, uint32_t inode, int own_tail);
int gvlt_sqfs_writer_append(gvlt_sqfs_writer *writer, const void *data, size_t size);
int gvlt_sqfs_writer_end_file(gvlt_sqfs_writer *writer);

/// One inode. Nodes are numbered by their position (inode number = index + 1) and given in an
/// order where every directory comes after everything it lists; the root is the last one.
typedef struct {
    uint16_t mode;          // file type and permission bits, as st_mode
    uint32_t uid, gid;
    uint32_t mtime;
    uint32_t nlink;
    uint32_t parent;        // directories: the parent directory's index (the root: its own)
    uint32_t first_entry;   // directories: their entries, sorted by name, in the entry array
    uint32_t entry_count;
    uint32_t first_xattr;   // extended attributes, in the xattr array
    uint32_t xattr_count;
    uint32_t devno;         // devices: the encoded device number
    const char *target;     // symlinks: the target, `target_size` bytes
    uint32_t target_size;
} gvlt_sqfs_node;

typedef struct {
    const char *name;  // NUL-terminated
    uint32_t inode;    // index in the node array
} gvlt_sqfs_entry;

typedef struct {
    const char *key;  // NUL-terminated, with its namespace (`user.`, `trusted.`, `security.`)
    const void *value;
    uint32_t size;
} gvlt_sqfs_xattr;

/// Waits for the data blocks still being compressed. After it, `gvlt_sqfs_writer_file_blocks` and
/// `gvlt_sqfs_writer_fragment` say where the data went. (`gvlt_sqfs_writer_finish` calls it if needed.)
int gvlt_sqfs_writer_finish_data(gvlt_sqfs_writer *writer);

/// A regular file's first block's position and its blocks' on-disk size words (size, with bit 24 set
/// for a block stored uncompressed; 0 for a sparse block), after `gvlt_sqfs_writer_finish_data`.
/// `*count` is the number of blocks; `sizes` may be NULL to ask only for it. Returns 0, or < 0 when
/// `inode` is not a written file.
int gvlt_sqfs_writer_file_blocks(gvlt_sqfs_writer *writer, uint32_t inode, uint64_t *start, uint32_t *sizes,
                                 uint32_t *count);

/// Fragment block `index`'s position and on-disk size word.
int gvlt_sqfs_writer_fragment(gvlt_sqfs_writer *writer, uint32_t index, uint64_t *start, uint32_t *size);

/// Waits for the data blocks, then writes the inodes, directories and tables and the super block.
/// On failure returns a libsquashfs error code, sets `*what` to the step and `*node` to the index
/// of the node it was writing (or UINT32_MAX).
int gvlt_sqfs_writer_finish(gvlt_sqfs_writer *writer, const gvlt_sqfs_node *nodes, uint32_t count,
                            const gvlt_sqfs_entry *entries, const gvlt_sqfs_xattr *xattrs, const char **what,
                            uint32_t *node);

/// Blocks the cache answered and blocks the compressor produced, so far.
void gvlt_sqfs_writer_cache_counts(const gvlt_sqfs_writer *writer, uint64_t *hits, uint64_t *misses);

#endif
