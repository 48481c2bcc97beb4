// sync_file_range
#define _GNU_SOURCE
#include "gvlt_squashfs_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqfs/block.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_writer.h>
#include <sqfs/super.h>
#include <sqfs/xattr_writer.h>

typedef struct {
    _Atomic uint64_t hits;
    _Atomic uint64_t misses;
} cache_counts;

// A compressor that asks the block cache first. The block processor copies it once per worker
// thread; the copies share the cache and the counts.
typedef struct {
    sqfs_compressor_t base;
    sqfs_compressor_t *inner;
    const gvlt_sqfs_block_cache *cache;
    cache_counts *counts;
} caching_compressor;

static void caching_destroy(sqfs_object_t *object) {
    caching_compressor *c = (caching_compressor *)object;
    sqfs_destroy(c->inner);
    free(c);
}

static sqfs_object_t *caching_copy(const sqfs_object_t *object) {
    const caching_compressor *c = (const caching_compressor *)object;
    caching_compressor *copy = malloc(sizeof(*copy));
    if (copy == NULL) return NULL;
    *copy = *c;
    copy->inner = sqfs_copy(c->inner);
    if (copy->inner == NULL) {
        free(copy);
        return NULL;
    }
    return (sqfs_object_t *)copy;
}

static void caching_get_configuration(const sqfs_compressor_t *base, sqfs_compressor_config_t *cfg) {
    const caching_compressor *c = (const caching_compressor *)base;
    c->inner->get_configuration(c->inner, cfg);
}

static int caching_write_options(sqfs_compressor_t *base, sqfs_file_t *file) {
    caching_compressor *c = (caching_compressor *)base;
    return c->inner->write_options(c->inner, file);
}

static int caching_read_options(sqfs_compressor_t *base, sqfs_file_t *file) {
    caching_compressor *c = (caching_compressor *)base;
    return c->inner->read_options(c->inner, file);
}

static sqfs_s32 caching_do_block(sqfs_compressor_t *base, const sqfs_u8 *in, sqfs_u32 size, sqfs_u8 *out,
                                 sqfs_u32 outsize) {
    caching_compressor *c = (caching_compressor *)base;
    uint8_t key[32];
    int32_t result = 0;
    int hit = c->cache->lookup(c->cache->context, in, size, key, out, outsize, &result) == 1 && result >= 0 &&
              (uint32_t)result <= outsize;
    if (hit) {
        atomic_fetch_add(&c->counts->hits, 1);
    } else {
        result = c->inner->do_block(c->inner, in, size, out, outsize);
        if (result >= 0) atomic_fetch_add(&c->counts->misses, 1);
    }
    // Also on failure: the cache may have threads waiting for this block.
    c->cache->produced(c->cache->context, key, in, size, out, result, hit);
    return result;
}

// A block writer that tells the cache what goes to the file, then writes it as libsquashfs' own does.
typedef struct {
    sqfs_block_writer_t base;
    sqfs_block_writer_t *inner;
    const gvlt_sqfs_block_cache *cache;
} recording_writer;

static void recording_destroy(sqfs_object_t *object) {
    recording_writer *r = (recording_writer *)object;
    sqfs_destroy(r->inner);
    free(r);
}

static int recording_write(sqfs_block_writer_t *base, void *user, sqfs_u32 size, sqfs_u32 checksum, sqfs_u32 flags,
                           const sqfs_u8 *data, sqfs_u64 *location) {
    recording_writer *r = (recording_writer *)base;
    int ret = r->inner->write_data_block(r->inner, user, size, checksum, flags, data, location);
    if (ret == 0 && size > 0) r->cache->written(r->cache->context, (uint32_t)(uintptr_t)user, flags, data, size);
    return ret;
}

static sqfs_u64 recording_count(const sqfs_block_writer_t *base) {
    const recording_writer *r = (const recording_writer *)base;
    return r->inner->get_block_count(r->inner);
}

// The root's file, with every write made into the disk image too, at the root partition's offset:
// the disk gets its root while it compresses instead of a copy of it afterwards, and the writes
// are handed to writeback as they go, so the disk's final flush has little left to wait for.
// Without a file of its own (`inner` NULL) the root lives in the disk image only, and is read
// back from there (libsquashfs compares fragment blocks it suspects to be duplicates).
typedef struct {
    sqfs_file_t base;
    sqfs_file_t *inner;
    int image_fd;
    uint64_t offset;
    uint64_t size;    // the root's size, kept here when there is no inner file
    uint64_t handed;  // root bytes given to writeback so far
} tee_file;

static const uint64_t tee_writeback_step = 8u << 20;

static void tee_destroy(sqfs_object_t *object) {
    tee_file *t = (tee_file *)object;
    if (t->inner != NULL) sqfs_destroy(t->inner);
    free(t);
}

static int tee_read_at(sqfs_file_t *base, sqfs_u64 offset, void *buffer, size_t size) {
    tee_file *t = (tee_file *)base;
    if (t->inner != NULL) return t->inner->read_at(t->inner, offset, buffer, size);
    if (offset > t->size || size > t->size - offset) return SQFS_ERROR_OUT_OF_BOUNDS;
    uint8_t *bytes = buffer;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread(t->image_fd, bytes + done, size - done, (off_t)(t->offset + offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return SQFS_ERROR_IO;
        if (n == 0) return SQFS_ERROR_OUT_OF_BOUNDS;
        done += (size_t)n;
    }
    return 0;
}

static int tee_write_at(sqfs_file_t *base, sqfs_u64 offset, const void *buffer, size_t size) {
    tee_file *t = (tee_file *)base;
    if (t->inner != NULL) {
        int ret = t->inner->write_at(t->inner, offset, buffer, size);
        if (ret != 0) return ret;
    }
    if (offset > UINT64_MAX - t->offset - size || t->offset + offset + size > (uint64_t)INT64_MAX) {
        return SQFS_ERROR_OUT_OF_BOUNDS;
    }
    const uint8_t *bytes = buffer;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(t->image_fd, bytes + done, size - done, (off_t)(t->offset + offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return SQFS_ERROR_IO;
        }
        done += (size_t)n;
    }
    uint64_t end = offset + size;
    if (end > t->size) t->size = end;
    if (end >= t->handed + tee_writeback_step) {
        uint64_t upto = end / tee_writeback_step * tee_writeback_step;
        // Only a hint (SYNC_FILE_RANGE_WRITE): a later write over the range is still fine.
        (void)sync_file_range(t->image_fd, (off_t)(t->offset + t->handed), (off_t)(upto - t->handed),
                              SYNC_FILE_RANGE_WRITE);
        t->handed = upto;
    }
    return 0;
}

static sqfs_u64 tee_get_size(const sqfs_file_t *base) {
    const tee_file *t = (const tee_file *)base;
    return t->inner != NULL ? t->inner->get_size(t->inner) : t->size;
}

static int tee_truncate(sqfs_file_t *base, sqfs_u64 size) {
    tee_file *t = (tee_file *)base;
    if (t->inner != NULL) {
        int ret = t->inner->truncate(t->inner, size);
        if (ret != 0) return ret;
    }
    if (size > (uint64_t)INT64_MAX - t->offset) return SQFS_ERROR_OUT_OF_BOUNDS;
    if (ftruncate(t->image_fd, (off_t)(t->offset + size)) != 0) return SQFS_ERROR_IO;
    t->size = size;
    if (t->handed > size) t->handed = size / tee_writeback_step * tee_writeback_step;
    return 0;
}

static sqfs_file_t *tee_open(sqfs_file_t *inner, int image_fd, uint64_t offset) {
    tee_file *t = calloc(1, sizeof(*t));
    if (t == NULL) return NULL;
    t->base.base.destroy = tee_destroy;
    t->base.read_at = tee_read_at;
    t->base.write_at = tee_write_at;
    t->base.get_size = tee_get_size;
    t->base.truncate = tee_truncate;
    t->inner = inner;
    t->image_fd = image_fd;
    t->offset = offset;
    return &t->base;
}

struct gvlt_sqfs_writer {
    sqfs_file_t *file;
    sqfs_compressor_t *cmp;       // metadata and tables
    sqfs_compressor_t *data_cmp;  // the block processor's: the caching wrapper, or a copy of cmp
    sqfs_compressor_t *uncmp;     // reads fragment blocks back to confirm a duplicate
    sqfs_block_writer_t *blocks;
    sqfs_frag_table_t *fragments;
    sqfs_block_processor_t *processor;
    sqfs_super_t super;
    gvlt_sqfs_block_cache cache;
    cache_counts counts;
    uint32_t node_count;
    int data_finished;
    // The block processor keeps a pointer to each file's slot and fills it as blocks are written,
    // so the array is allocated once, at its final size.
    sqfs_inode_generic_t **inodes;
};

static int config_for(const char *compressor, uint32_t block_size, sqfs_compressor_config_t *cfg) {
    int id = sqfs_compressor_id_from_name(compressor);
    if (id < 0) return id;
    memset(cfg, 0, sizeof(*cfg));
    return sqfs_compressor_config_init(cfg, (SQFS_COMPRESSOR)id, block_size, 0);
}

int gvlt_sqfs_compressor_config(const char *compressor, uint32_t block_size, uint8_t out[32]) {
    _Static_assert(sizeof(sqfs_compressor_config_t) == 32, "the cache key takes the configuration as 32 bytes");
    sqfs_compressor_config_t cfg;
    int ret = config_for(compressor, block_size, &cfg);
    if (ret != 0) return ret;
    memcpy(out, &cfg, sizeof(cfg));
    return 0;
}

void gvlt_sqfs_writer_destroy(gvlt_sqfs_writer *w) {
    if (w == NULL) return;
    if (w->processor != NULL) sqfs_destroy(w->processor);
    if (w->fragments != NULL) sqfs_destroy(w->fragments);
    if (w->blocks != NULL) sqfs_destroy(w->blocks);
    if (w->data_cmp != NULL) sqfs_destroy(w->data_cmp);
    if (w->uncmp != NULL) sqfs_destroy(w->uncmp);
    if (w->cmp != NULL) sqfs_destroy(w->cmp);
    if (w->file != NULL) sqfs_destroy(w->file);
    if (w->inodes != NULL) {
        for (uint32_t i = 0; i < w->node_count; i++) sqfs_free(w->inodes[i]);
        free(w->inodes);
    }
    free(w);
}

int gvlt_sqfs_writer_create(const char *path, int image_fd, uint64_t image_offset, const char *compressor,
                            uint32_t block_size, uint32_t mtime,
                            uint32_t workers, uint32_t node_count, const gvlt_sqfs_block_cache *cache,
                            gvlt_sqfs_writer **out, const char **what) {
    *out = NULL;
    gvlt_sqfs_writer *w = calloc(1, sizeof(*w));
    if (w == NULL) return SQFS_ERROR_ALLOC;
    int ret;
    sqfs_compressor_config_t cfg;
    *what = "configuring the compressor";
    if ((ret = config_for(compressor, block_size, &cfg)) != 0) goto fail;
    *what = "creating the compressor";
    if ((ret = sqfs_compressor_create(&cfg, &w->cmp)) != 0) goto fail;
    cfg.flags |= SQFS_COMP_FLAG_UNCOMPRESS;
    if ((ret = sqfs_compressor_create(&cfg, &w->uncmp)) != 0) goto fail;
    ret = SQFS_ERROR_ALLOC;
    if (cache != NULL) {
        w->cache = *cache;
        caching_compressor *c = calloc(1, sizeof(*c));
        if (c == NULL) goto fail;
        c->inner = sqfs_copy(w->cmp);
        if (c->inner == NULL) {
            free(c);
            goto fail;
        }
        c->base.base.destroy = caching_destroy;
        c->base.base.copy = caching_copy;
        c->base.get_configuration = caching_get_configuration;
        c->base.write_options = caching_write_options;
        c->base.read_options = caching_read_options;
        c->base.do_block = caching_do_block;
        c->cache = &w->cache;
        c->counts = &w->counts;
        w->data_cmp = &c->base;
    } else {
        w->data_cmp = sqfs_copy(w->cmp);
        if (w->data_cmp == NULL) goto fail;
    }
    w->node_count = node_count;
    w->inodes = calloc(node_count ? node_count : 1, sizeof(*w->inodes));
    if (w->inodes == NULL) goto fail;

    *what = "creating the file";
    if (path == NULL && image_fd < 0) {
        ret = SQFS_ERROR_ARG_INVALID;
        goto fail;
    }
    sqfs_file_t *own = NULL;
    if (path != NULL) {
        own = sqfs_open_file(path, SQFS_FILE_OPEN_OVERWRITE);
        if (own == NULL) {
            ret = SQFS_ERROR_IO;
            goto fail;
        }
    }
    w->file = own;
    if (image_fd >= 0) {
        sqfs_file_t *tee = tee_open(own, image_fd, image_offset);
        if (tee == NULL) {
            ret = SQFS_ERROR_ALLOC;
            goto fail;
        }
        w->file = tee;
    }
    *what = "writing the super block";
    if ((ret = sqfs_super_init(&w->super, block_size, mtime, (SQFS_COMPRESSOR)cfg.id)) != 0) goto fail;
    if ((ret = sqfs_super_write(&w->super, w->file)) != 0) goto fail;
    *what = "writing the compressor options";
    ret = w->cmp->write_options(w->cmp, w->file);
    if (ret < 0) goto fail;
    if (ret > 0) w->super.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;

    *what = "creating the block processor";
    ret = SQFS_ERROR_ALLOC;
    w->blocks = sqfs_block_writer_create(w->file, SQFS_DEVBLK_SIZE, 0);
    if (w->blocks == NULL) goto fail;
    if (cache != NULL) {
        recording_writer *r = calloc(1, sizeof(*r));
        if (r == NULL) goto fail;
        r->inner = w->blocks;
        r->cache = &w->cache;
        r->base.base.destroy = recording_destroy;
        r->base.write_data_block = recording_write;
        r->base.get_block_count = recording_count;
        w->blocks = &r->base;
    }
    w->fragments = sqfs_frag_table_create(0);
    if (w->fragments == NULL) goto fail;
    sqfs_block_processor_desc_t desc;
    memset(&desc, 0, sizeof(desc));
    desc.size = sizeof(desc);
    desc.max_block_size = block_size;
    desc.num_workers = workers ? workers : 1;
    // The backlog counts blocks, not bytes, and every small file costs one or two (its tail, and
    // the marker that ends it): at tar2sqfs' 10 per worker, a run of small files (a Debian root's
    // /usr/share) filled the queue with tails while the workers waited, and a build used 1.86 of 2
    // cores; at 64 it used 1.96. Each slot is a block-sized buffer: 8 MiB per worker at 128 KiB.
    desc.max_backlog = 64 * desc.num_workers;
    desc.cmp = w->data_cmp;
    desc.wr = w->blocks;
    desc.tbl = w->fragments;
    desc.file = w->file;
    desc.uncmp = w->uncmp;
    if ((ret = sqfs_block_processor_create_ex(&desc, &w->processor)) != 0) goto fail;
    *out = w;
    return 0;
fail:
    gvlt_sqfs_writer_destroy(w);
    return ret;
}

int gvlt_sqfs_writer_begin_file(gvlt_sqfs_writer *w, uint32_t inode, int own_tail) {
    if (inode >= w->node_count || w->inodes[inode] != NULL) return SQFS_ERROR_ARG_INVALID;
    return sqfs_block_processor_begin_file(w->processor, &w->inodes[inode], (void *)(uintptr_t)(inode + 1),
                                           own_tail ? SQFS_BLK_DONT_FRAGMENT : 0);
}

int gvlt_sqfs_writer_append(gvlt_sqfs_writer *w, const void *data, size_t size) {
    return sqfs_block_processor_append(w->processor, data, size);
}

int gvlt_sqfs_writer_end_file(gvlt_sqfs_writer *w) { return sqfs_block_processor_end_file(w->processor); }

uint64_t gvlt_sqfs_writer_size(const gvlt_sqfs_writer *w) { return w->file->get_size(w->file); }

void gvlt_sqfs_writer_cache_counts(const gvlt_sqfs_writer *w, uint64_t *hits, uint64_t *misses) {
    *hits = atomic_load(&((gvlt_sqfs_writer *)w)->counts.hits);
    *misses = atomic_load(&((gvlt_sqfs_writer *)w)->counts.misses);
}

// The inode of a node that holds no data: a symlink, device, FIFO or socket.
static sqfs_inode_generic_t *plain_inode(const gvlt_sqfs_node *node) {
    size_t extra = (node->mode & S_IFMT) == S_IFLNK ? node->target_size : 0;
    sqfs_inode_generic_t *inode = calloc(1, sizeof(*inode) + extra);
    if (inode == NULL) return NULL;
    switch (node->mode & S_IFMT) {
    case S_IFLNK:
        inode->base.type = SQFS_INODE_SLINK;
        inode->data.slink.nlink = node->nlink;
        inode->data.slink.target_size = node->target_size;
        memcpy(inode->extra, node->target, extra);
        break;
    case S_IFBLK:
    case S_IFCHR:
        inode->base.type = (node->mode & S_IFMT) == S_IFBLK ? SQFS_INODE_BDEV : SQFS_INODE_CDEV;
        inode->data.dev.nlink = node->nlink;
        inode->data.dev.devno = node->devno;
        break;
    case S_IFIFO:
    case S_IFSOCK:
        inode->base.type = (node->mode & S_IFMT) == S_IFIFO ? SQFS_INODE_FIFO : SQFS_INODE_SOCKET;
        inode->data.ipc.nlink = node->nlink;
        break;
    default:
        free(inode);
        return NULL;
    }
    return inode;
}

static int pad_to_device_block(sqfs_file_t *file) {
    sqfs_u64 size = file->get_size(file);
    size_t pad = size % SQFS_DEVBLK_SIZE;
    if (pad == 0) return 0;
    static const uint8_t zeros[SQFS_DEVBLK_SIZE];
    return file->write_at(file, size, zeros, SQFS_DEVBLK_SIZE - pad);
}

int gvlt_sqfs_writer_finish_data(gvlt_sqfs_writer *w) {
    if (w->data_finished) return 0;
    int ret = sqfs_block_processor_finish(w->processor);
    if (ret == 0) w->data_finished = 1;
    return ret;
}

int gvlt_sqfs_writer_file_blocks(gvlt_sqfs_writer *w, uint32_t inode, uint64_t *start, uint32_t *sizes,
                                 uint32_t *count) {
    if (!w->data_finished || inode >= w->node_count || w->inodes[inode] == NULL) return SQFS_ERROR_ARG_INVALID;
    const sqfs_inode_generic_t *file = w->inodes[inode];
    sqfs_u64 location = 0;
    int ret = sqfs_inode_get_file_block_start(file, &location);
    if (ret != 0) return ret;
    *start = location;
    size_t blocks = sqfs_inode_get_file_block_count(file);
    *count = (uint32_t)blocks;
    if (sizes != NULL) memcpy(sizes, file->extra, blocks * sizeof(sqfs_u32));
    return 0;
}

int gvlt_sqfs_writer_fragment(gvlt_sqfs_writer *w, uint32_t index, uint64_t *start, uint32_t *size) {
    sqfs_fragment_t fragment;
    int ret = sqfs_frag_table_lookup(w->fragments, index, &fragment);
    if (ret != 0) return ret;
    *start = fragment.start_offset;
    *size = fragment.size;
    return 0;
}

int gvlt_sqfs_writer_finish(gvlt_sqfs_writer *w, const gvlt_sqfs_node *nodes, uint32_t count,
                            const gvlt_sqfs_entry *entries, const gvlt_sqfs_xattr *xattrs, const char **what,
                            uint32_t *failed) {
    *failed = UINT32_MAX;
    int ret;
    *what = "writing the data blocks";
    if ((ret = gvlt_sqfs_writer_finish_data(w)) != 0) return ret;
    *what = "writing the inodes";
    if (count == 0 || count != w->node_count) return SQFS_ERROR_ARG_INVALID;

    sqfs_id_table_t *ids = sqfs_id_table_create(0);
    sqfs_xattr_writer_t *xwr = sqfs_xattr_writer_create(0);
    sqfs_meta_writer_t *im = sqfs_meta_writer_create(w->file, w->cmp, 0);
    sqfs_meta_writer_t *dm = sqfs_meta_writer_create(w->file, w->cmp, SQFS_META_WRITER_KEEP_IN_MEMORY);
    sqfs_dir_writer_t *dirs = dm ? sqfs_dir_writer_create(dm, 0) : NULL;
    sqfs_u64 *refs = calloc(count, sizeof(*refs));
    ret = SQFS_ERROR_ALLOC;
    if (ids == NULL || xwr == NULL || im == NULL || dm == NULL || dirs == NULL || refs == NULL) goto out;

    w->super.inode_table_start = w->file->get_size(w->file);
    for (uint32_t i = 0; i < count; i++) {
        const gvlt_sqfs_node *node = &nodes[i];
        *failed = i;
        sqfs_u32 xattr_index = 0xFFFFFFFF;
        if (node->xattr_count > 0) {
            *what = "storing the extended attributes";
            if ((ret = sqfs_xattr_writer_begin(xwr, 0)) != 0) goto out;
            for (uint32_t x = node->first_xattr; x < node->first_xattr + node->xattr_count; x++) {
                if ((ret = sqfs_xattr_writer_add(xwr, xattrs[x].key, xattrs[x].value, xattrs[x].size)) != 0)
                    goto out;
            }
            if ((ret = sqfs_xattr_writer_end(xwr, &xattr_index)) != 0) goto out;
        }
        sqfs_inode_generic_t *inode = NULL;
        switch (node->mode & S_IFMT) {
        case S_IFDIR:
            *what = "writing a directory";
            if ((ret = sqfs_dir_writer_begin(dirs, 0)) != 0) goto out;
            for (uint32_t e = node->first_entry; e < node->first_entry + node->entry_count; e++) {
                uint32_t child = entries[e].inode;
                // Children are written first: an entry needs its inode's position.
                if (child >= i) {
                    ret = SQFS_ERROR_ARG_INVALID;
                    goto out;
                }
                ret = sqfs_dir_writer_add_entry(dirs, entries[e].name, child + 1, refs[child], nodes[child].mode);
                if (ret != 0) goto out;
            }
            if ((ret = sqfs_dir_writer_end(dirs)) != 0) goto out;
            inode = sqfs_dir_writer_create_inode(dirs, 0, xattr_index, node->parent == i ? 0 : node->parent + 1);
            if (inode == NULL) {
                ret = SQFS_ERROR_ALLOC;
                goto out;
            }
            if (inode->base.type == SQFS_INODE_DIR)
                inode->data.dir.nlink = node->nlink;
            else
                inode->data.dir_ext.nlink = node->nlink;
            break;
        case S_IFREG:
            *what = "writing a file's inode";
            inode = w->inodes[i];
            w->inodes[i] = NULL;
            if (inode == NULL) {
                ret = SQFS_ERROR_ARG_INVALID;
                goto out;
            }
            if (node->nlink > 1 || inode->base.type == SQFS_INODE_EXT_FILE) {
                if ((ret = sqfs_inode_make_extended(inode)) != 0) {
                    sqfs_free(inode);
                    goto out;
                }
                inode->data.file_ext.nlink = node->nlink;
            }
            break;
        default:
            *what = "writing an inode";
            inode = plain_inode(node);
            if (inode == NULL) {
                ret = SQFS_ERROR_ARG_INVALID;
                goto out;
            }
            break;
        }
        inode->base.mode = node->mode;
        inode->base.mod_time = node->mtime;
        inode->base.inode_number = i + 1;
        ret = sqfs_inode_set_xattr_index(inode, xattr_index);
        if (ret == 0 && xattr_index == 0xFFFFFFFF && (node->mode & S_IFMT) != S_IFDIR)
            ret = sqfs_inode_make_basic(inode);
        if (ret == 0) ret = sqfs_id_table_id_to_index(ids, node->uid, &inode->base.uid_idx);
        if (ret == 0) ret = sqfs_id_table_id_to_index(ids, node->gid, &inode->base.gid_idx);
        if (ret == 0) {
            sqfs_u64 block;
            sqfs_u32 offset;
            sqfs_meta_writer_get_position(im, &block, &offset);
            refs[i] = (block << 16) | offset;
            ret = sqfs_meta_writer_write_inode(im, inode);
        }
        sqfs_free(inode);
        if (ret != 0) goto out;
    }
    *failed = UINT32_MAX;
    *what = "writing the directory table";
    if ((ret = sqfs_meta_writer_flush(im)) != 0) goto out;
    if ((ret = sqfs_meta_writer_flush(dm)) != 0) goto out;
    w->super.root_inode_ref = refs[count - 1];
    w->super.directory_table_start = w->file->get_size(w->file);
    if ((ret = sqfs_meta_write_write_to_file(dm)) != 0) goto out;
    w->super.inode_count = count;
    *what = "writing the fragment table";
    if ((ret = sqfs_frag_table_write(w->fragments, w->file, &w->super, w->cmp)) != 0) goto out;
    *what = "writing the ID table";
    if ((ret = sqfs_id_table_write(ids, w->file, &w->super, w->cmp)) != 0) goto out;
    *what = "writing the extended attribute table";
    if ((ret = sqfs_xattr_writer_flush(xwr, w->file, &w->super, w->cmp)) != 0) goto out;
    *what = "writing the super block";
    w->super.bytes_used = w->file->get_size(w->file);
    if ((ret = sqfs_super_write(&w->super, w->file)) != 0) goto out;
    ret = pad_to_device_block(w->file);
out:
    free(refs);
    if (dirs != NULL) sqfs_destroy(dirs);
    if (dm != NULL) sqfs_destroy(dm);
    if (im != NULL) sqfs_destroy(im);
    if (xwr != NULL) sqfs_destroy(xwr);
    if (ids != NULL) sqfs_destroy(ids);
    return ret;
}
