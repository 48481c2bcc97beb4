import Foundation

/// Debug builds only: `GVLT_TEST_TRAP_AT=STEP` makes gvlt trap (a crash, no cleanup runs) when it
/// reaches STEP, so tests can check that a crash at any step leaves no output and no scratch behind.
/// Steps: `source` (the tree is read), `prepare`, `build` (before the backend writes), `commit`
/// (the output is written in full, not yet named); `pull-blob` (a layer downloaded and verified, not
/// yet in the cache), `pull-layout` (`gvlt pull -o`'s layout written, not yet named) and
/// `cache-store-squashfs-roots` and `cache-store-boot-partitions` (a build cache entry staged, not
/// yet published).
public enum TestTrap {
    @inline(__always)
    public static func reach(_ step: String) {
        #if DEBUG
            if ProcessInfo.processInfo.environment["GVLT_TEST_TRAP_AT"] == step {
                fatalError("GVLT_TEST_TRAP_AT=\(step)")
            }
        #endif
    }
}
