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
    static func slim(_ path: String, into directory: String, note: (String) -> Void) throws -> String {
        guard (try? ELFFile(path: path).hasSection(named: ".BTF")) == true else { return path }
        guard let tool = objcopy.locate() else {
            note(
                "objcopy (binutils) is not installed: kernel modules keep their BTF, and the image boots about 0.1 s slower"
            )
            return path
        }
        let output = directory + "/" + URL(fileURLWithPath: path).lastPathComponent
        try HostCommand.run(tool, ["--remove-section=.BTF", path, output])
        return output
    }
}
