#ifndef GVLT_BUILD_INFO_H
#define GVLT_BUILD_INFO_H

/// The release number from Package.swift.
const char *gvlt_build_version(void);
/// The git commit the binary was built from, or "unknown" for a plain `swift build`.
const char *gvlt_build_source_commit(void);

#endif
