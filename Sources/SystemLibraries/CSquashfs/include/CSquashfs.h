// The module's headers: the read-only view (gvlt inspect) and the writer (linuxvm builds).
#include "gvlt_squashfs.h"
#include "gvlt_squashfs_writer.h"
