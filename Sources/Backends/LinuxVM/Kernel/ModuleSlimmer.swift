import Core
import Foundation

/// Makes a module cheaper to load at boot by removing its `.BTF` section (type information for BPF
/// tools, which a prover VM has no use for). The kernel validates a module's BTF as it loads it,
/// which under QEMU's TCG costs about 4 ms a module: measured, the 22 modules of Debian's kernel
/// went from 0.41 s to 0.33 s between /init starting and the program's first line.
///
/// Rewriting the ELF drops the module's appended signature. Debian's kernel does not enforce
/// signatures (no MODULE_SIG_FORCE, and lockdown only under UEFI Secure Boot, which a Firestarter
/// disk does not use), so the kernel loads it and notes the taint at log level notice.
enum ModuleSlimmer {
    static let objcopy = HostTool("objcopy", apt: "binutils", purpose: "slimming kernel modules for a faster boot")

    /// The module to put in the initramfs: a slimmed copy in `directory`, or the original when it
    /// has no BTF or objcopy is not installed (then the boot is only slower).
    ///
    /// With `cache`, the copy is kept there by the module's bytes and the objcopy that made it, as
    /// the kernel it comes from is: one objcopy a module costs about 8 ms, the initramfs of Debian's
    /// kernel 0.15-0.3 s of every build before the root can start compressing.
    static func slim(_ path: String, into directory: String, cache: CacheDirectory? = nil, note: (String) -> Void)
        throws -> String
    {
        guard (try? ELFFile(path: path).hasSection(named: ".BTF")) == true else { return path }
        guard let tool = objcopy.locate() else {
            note(
                "objcopy (binutils) is not installed: kernel modules keep their BTF, and the image boots about 0.1 s slower"
            )
            return path
        }
        let strip = { (output: String) in try HostCommand.run(tool, ["--remove-section=.BTF", path, output]) }
        if let cache {
            let key = BuildFileCache.key(
                ["gvlt-slim-module-v1", try SHA256Hex.of(file: path), BuildFileCache.toolPart(tool)])
            // A cache that cannot take it (read-only, full) only costs the objcopy below.
            if let entry = try? cache.entry(cacheArea + "/" + key, produce: { try strip($0 + "/module.ko") }) {
                return entry + "/module.ko"
            }
        }
        let output = directory + "/" + URL(fileURLWithPath: path).lastPathComponent
        try strip(output)
        return output
    }

    /// Where slimmed modules sit among the cache's entries.
    static let cacheArea = "slimmed-modules"
}
