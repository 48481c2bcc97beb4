/* The release binary links the Swift runtime statically, and the toolchain's runtime was built
   against glibc 2.36, whose arc4random and arc4random_buf it calls for random numbers. Defined here,
   in the executable, they are bound before glibc's, so the binary starts on glibc 2.35 hosts
   (Ubuntu 22.04) as well. Both draw from getrandom(2), as glibc's own do. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>

void arc4random_buf(void *buffer, size_t length) {
    unsigned char *bytes = buffer;
    while (length > 0) {
        ssize_t got = getrandom(bytes, length, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            /* No entropy source at all: nothing safe to return, as glibc aborts too. */
            abort();
        }
        bytes += got;
        length -= (size_t)got;
    }
}

uint32_t arc4random(void) {
    uint32_t value;
    arc4random_buf(&value, sizeof value);
    return value;
}
