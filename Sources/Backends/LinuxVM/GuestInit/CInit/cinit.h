/* The C side of gvlt-init: libc, libyaml and the few things Swift cannot express (variadic calls,
   macros, port I/O). Everything is static inline so the init links statically against glibc. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

static inline int cinit_errno(void) { return errno; }
static inline bool cinit_fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static inline int cinit_open(const char *path, int flags) { return open(path, flags | O_CLOEXEC); }

static inline int cinit_finit_module(int fd, const char *params) { return (int)syscall(SYS_finit_module, fd, params, 0); }

/* Writes `value` to an x86 I/O port range (isa-debug-exit); needs ioperm first. */
static inline int cinit_debug_exit(unsigned short port, unsigned short size, unsigned int value) {
    if (ioperm(port, size, 1) != 0) return -1;
    if (size >= 4) outl(value, port); else if (size == 2) outw((unsigned short)value, port); else outb((unsigned char)value, port);
    return 0;
}

static inline int cinit_wifexited(int status) { return WIFEXITED(status); }
static inline int cinit_wexitstatus(int status) { return WEXITSTATUS(status); }
static inline int cinit_wifsignaled(int status) { return WIFSIGNALED(status); }
static inline int cinit_wtermsig(int status) { return WTERMSIG(status); }

/* The signals PID 1 handles itself: they are blocked and collected with sigtimedwait. */
static inline int cinit_block_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    return sigprocmask(SIG_BLOCK, set, NULL);
}
static inline int cinit_unblock_signals(const sigset_t *set) { return sigprocmask(SIG_UNBLOCK, set, NULL); }
static inline int cinit_wait_signal(const sigset_t *set, int milliseconds) {
    struct timespec timeout = { milliseconds / 1000, (milliseconds % 1000) * 1000000L };
    return sigtimedwait(set, NULL, &timeout);
}

static inline bool cinit_is_block_device(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISBLK(st.st_mode);
}
static inline bool cinit_is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
static inline bool cinit_is_real_directory(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
/* Waits until the console has sent everything: debug-exit ends QEMU at once. */
static inline void cinit_drain_console(void) { tcdrain(1); tcdrain(2); }
static inline bool cinit_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}
static inline int cinit_mknod_block(const char *path, unsigned int major, unsigned int minor) {
    return mknod(path, S_IFBLK | 0600, makedev(major, minor));
}
static inline int cinit_mknod_char(const char *path, unsigned int major, unsigned int minor, unsigned int mode) {
    return mknod(path, S_IFCHR | mode, makedev(major, minor));
}
static inline const char *cinit_dirent_name(struct dirent *entry) { return entry->d_name; }
/* scripts/build-init defines the version from Package.swift; `gvlt doctor` finds this string in the
   binary without running it. */
#ifndef GVLT_INIT_VERSION
#define GVLT_INIT_VERSION "unknown"
#endif
static inline const char *cinit_version(void) { return "gvlt-init version " GVLT_INIT_VERSION; }
static inline const char *cinit_release(void) {
    static struct utsname name;
    return uname(&name) == 0 ? name.release : "";
}

/* libyaml event accessors (unions are awkward from Swift). */
static inline const char *cinit_event_scalar(yaml_event_t *event, size_t *length) {
    *length = event->data.scalar.length;
    return (const char *)event->data.scalar.value;
}
static inline int cinit_event_scalar_plain(yaml_event_t *event) { return event->data.scalar.plain_implicit; }
static inline size_t cinit_event_line(yaml_event_t *event) { return event->start_mark.line + 1; }
