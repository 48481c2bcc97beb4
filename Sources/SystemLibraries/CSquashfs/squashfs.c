#include "gvlt_squashfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqfs/compressor.h>
#include <sqfs/data_reader.h>
#include <sqfs/dir.h>
#include <sqfs/dir_reader.h>
#include <sqfs/error.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/super.h>

// A window of a host file: the root partition of a disk image. Reads past its end fail, so a
// table offset in a hostile super block cannot reach the rest of the disk.
typedef struct {
    sqfs_file_t base;
    int fd;
    uint64_t offset;
    uint64_t length;
} window_file;

static int window_read(sqfs_file_t *file, sqfs_u64 offset, void *buffer, size_t size) {
    window_file *w = (window_file *)file;
    if (offset > w->length || size > w->length - offset) return SQFS_ERROR_OUT_OF_BOUNDS;
    char *out = buffer;
    while (size > 0) {
        ssize_t got = pread(w->fd, out, size, (off_t)(w->offset + offset));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return SQFS_ERROR_IO;
        out += got;
        offset += (sqfs_u64)got;
        size -= (size_t)got;
    }
    return 0;
}

static int window_write(sqfs_file_t *file, sqfs_u64 offset, const void *buffer, size_t size) {
    (void)file; (void)offset; (void)buffer; (void)size;
    return SQFS_ERROR_UNSUPPORTED;
}

static sqfs_u64 window_size(const sqfs_file_t *file) { return ((const window_file *)file)->length; }

static int window_truncate(sqfs_file_t *file, sqfs_u64 size) {
    (void)file; (void)size;
    return SQFS_ERROR_UNSUPPORTED;
}

static void window_destroy(sqfs_object_t *object) { free(object); }

struct gvlt_sqfs {
    window_file *file;
    sqfs_super_t super;
    sqfs_compressor_t *compressor;
    sqfs_dir_reader_t *dirs;
    sqfs_data_reader_t *data;
};

void gvlt_sqfs_close(gvlt_sqfs *fs) {
    if (!fs) return;
    sqfs_destroy(fs->data);
    sqfs_destroy(fs->dirs);
    sqfs_destroy(fs->compressor);
    sqfs_destroy(fs->file);
    free(fs);
}

gvlt_sqfs *gvlt_sqfs_open(int fd, uint64_t offset, uint64_t length, int *error, const char **what) {
    gvlt_sqfs *fs = calloc(1, sizeof(*fs));
    window_file *file = calloc(1, sizeof(*file));
    if (!fs || !file) {
        free(fs);
        free(file);
        *error = SQFS_ERROR_ALLOC;
        *what = "memory";
        return NULL;
    }
    file->base.base.destroy = window_destroy;
    file->base.read_at = window_read;
    file->base.write_at = window_write;
    file->base.get_size = window_size;
    file->base.truncate = window_truncate;
    file->fd = fd;
    file->offset = offset;
    file->length = length;
    fs->file = file;

    int status = sqfs_super_read(&fs->super, &file->base);
    if (status != 0) {
        *what = "super block";
        goto fail;
    }
    sqfs_compressor_config_t config;
    status = sqfs_compressor_config_init(
        &config, (SQFS_COMPRESSOR)fs->super.compression_id, fs->super.block_size, SQFS_COMP_FLAG_UNCOMPRESS);
    if (status == 0) status = sqfs_compressor_create(&config, &fs->compressor);
    if (status != 0) {
        *what = "compressor";
        goto fail;
    }
    fs->dirs = sqfs_dir_reader_create(&fs->super, fs->compressor, &file->base, 0);
    fs->data = sqfs_data_reader_create(&file->base, fs->super.block_size, fs->compressor, 0);
    if (!fs->dirs || !fs->data) {
        status = SQFS_ERROR_ALLOC;
        *what = "readers";
        goto fail;
    }
    status = sqfs_data_reader_load_fragment_table(fs->data, &fs->super);
    if (status != 0) {
        *what = "fragment table";
        goto fail;
    }
    return fs;
fail:
    *error = status;
    gvlt_sqfs_close(fs);
    return NULL;
}

const char *gvlt_sqfs_compressor(const gvlt_sqfs *fs) {
    const char *name = sqfs_compressor_name_from_id((SQFS_COMPRESSOR)fs->super.compression_id);
    return name ? name : "unknown";
}

uint64_t gvlt_sqfs_bytes_used(const gvlt_sqfs *fs) { return fs->super.bytes_used; }

int gvlt_sqfs_root(gvlt_sqfs *fs, gvlt_sqfs_inode **out) { return sqfs_dir_reader_get_root_inode(fs->dirs, out); }

int gvlt_sqfs_lookup(gvlt_sqfs *fs, const gvlt_sqfs_inode *dir, const char *name, gvlt_sqfs_inode **out) {
    int status = sqfs_dir_reader_open_dir(fs->dirs, dir, 0);
    if (status != 0) return status;
    status = sqfs_dir_reader_find(fs->dirs, name);
    if (status == SQFS_ERROR_NO_ENTRY) return 1;
    if (status != 0) return status;
    return sqfs_dir_reader_get_inode(fs->dirs, out);
}

int gvlt_sqfs_open_dir(gvlt_sqfs *fs, const gvlt_sqfs_inode *dir) { return sqfs_dir_reader_open_dir(fs->dirs, dir, 0); }

int gvlt_sqfs_next(gvlt_sqfs *fs, char *name, size_t capacity, gvlt_sqfs_inode **out) {
    sqfs_dir_entry_t *entry = NULL;
    int status = sqfs_dir_reader_read(fs->dirs, &entry);
    if (status != 0) return status;
    size_t length = (size_t)entry->size + 1;
    if (capacity > 0) {
        size_t copied = length < capacity ? length : capacity - 1;
        memcpy(name, entry->name, copied);
        name[copied] = 0;
    }
    sqfs_free(entry);
    return sqfs_dir_reader_get_inode(fs->dirs, out);
}

int gvlt_sqfs_kind(const gvlt_sqfs_inode *inode) {
    switch (inode->base.type) {
    case SQFS_INODE_DIR:
    case SQFS_INODE_EXT_DIR: return GVLT_SQFS_DIR;
    case SQFS_INODE_FILE:
    case SQFS_INODE_EXT_FILE: return GVLT_SQFS_FILE;
    case SQFS_INODE_SLINK:
    case SQFS_INODE_EXT_SLINK: return GVLT_SQFS_SYMLINK;
    default: return GVLT_SQFS_OTHER;
    }
}

uint16_t gvlt_sqfs_mode(const gvlt_sqfs_inode *inode) { return inode->base.mode; }

uint64_t gvlt_sqfs_file_size(const gvlt_sqfs_inode *inode) {
    sqfs_u64 size = 0;
    if (sqfs_inode_get_file_size(inode, &size) != 0) return 0;
    return size;
}

const char *gvlt_sqfs_symlink_target(const gvlt_sqfs_inode *inode, size_t *length) {
    sqfs_u32 size;
    switch (inode->base.type) {
    case SQFS_INODE_SLINK: size = inode->data.slink.target_size; break;
    case SQFS_INODE_EXT_SLINK: size = inode->data.slink_ext.target_size; break;
    default: return NULL;
    }
    // The reader allocated the payload from the on-disk size; never trust one over the other.
    if (size > inode->payload_bytes_used) return NULL;
    *length = size;
    return (const char *)inode->extra;
}

int32_t gvlt_sqfs_read(gvlt_sqfs *fs, const gvlt_sqfs_inode *inode, uint64_t offset, void *buffer, uint32_t size) {
    return sqfs_data_reader_read(fs->data, inode, offset, buffer, size);
}

void gvlt_sqfs_free(gvlt_sqfs_inode *inode) { sqfs_free(inode); }
