#include "gvlt_build_info.h"

const char *gvlt_build_version(void) { return GVLT_VERSION; }
const char *gvlt_build_source_commit(void) { return GVLT_SOURCE_COMMIT; }
