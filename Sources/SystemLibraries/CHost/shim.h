/* glibc functions that Swift's Glibc module hides (they need _GNU_SOURCE or headers it does not
   include). Declared here with their exact glibc prototypes. */
#include <sys/types.h>

extern int mkostemp(char *template_, int flags);
extern ssize_t llistxattr(const char *path, char *list, size_t size);
extern ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size);

extern int ioctl(int fd, unsigned long request, ...);

/* ioctl is variadic, which Swift cannot call; this fixes the third argument to a pointer or an int. */
static inline int chost_ioctl_pointer(int fd, unsigned long request, void *argument) {
    return ioctl(fd, request, argument);
}
static inline int chost_ioctl_int(int fd, unsigned long request, unsigned long argument) {
    return ioctl(fd, request, argument);
}

/* Starts writeback of a file range without waiting (SYNC_FILE_RANGE_WRITE = 2). */
extern int sync_file_range(int fd, long long offset, long long nbytes, unsigned int flags);

/* rename that fails with EEXIST instead of replacing (flag RENAME_NOREPLACE = 1); glibc >= 2.28. */
extern int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);

/* Byte-string search (a GNU extension). */
extern void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen);
