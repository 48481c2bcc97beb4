import Core
import Foundation

/// The x86 boot protocol header of a kernel image (`bzImage`/`vmlinuz`), read without running or
/// decompressing anything.
public enum BzImage {
    /// The kernel release (`6.1.0-56-amd64`) from the version string the header points at
    /// (boot protocol 2.00+: `HdrS` at 0x202, string pointer at 0x20E, relative to 0x200).
    public static func release(of path: String) throws -> String {
        let file = try SharedFile.openRegular(path, what: "kernel image", followSymlinks: true)
        var header = [UInt8](repeating: 0, count: 0x210)
        let got = try header.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        guard got == header.count, Array(header[0x202..<0x206]) == Array("HdrS".utf8) else {
            throw InputError("\(path) is not an x86 kernel image (no boot protocol header)",
                             hint: "pass a bzImage/vmlinuz built for x86_64")
        }
        let pointer = Int(header[0x20E]) | Int(header[0x20F]) << 8
        var text = [UInt8](repeating: 0, count: 256)
        let read = try text.withUnsafeMutableBytes { try file.read(into: $0, at: Int64(pointer + 0x200)) }
        let version = String(decoding: text.prefix(read).prefix { $0 != 0 }, as: UTF8.self)
        guard pointer > 0, let release = version.split(separator: " ").first, !release.isEmpty else {
            throw InputError("\(path) carries no kernel version string")
        }
        return String(release)
    }
}

/// The `file:` provider: a kernel image given by path, with its modules tree and config.
public enum FileKernelProvider {
    public static func bundle(image: String, modules: String?, config: String?) throws -> KernelBundle {
        guard FileManager.default.fileExists(atPath: image) else {
            throw InputError("kernel image \(image) does not exist", hint: "check the --kernel file:PATH (or --kernel-file) path")
        }
        let release = try BzImage.release(of: image)
        guard let config else {
            throw UnsupportedError("--kernel file:\(image) needs --kernel-config FILE: reading the config embedded in a kernel (IKCONFIG) is not implemented yet",
                                   hint: "pass the kernel's .config, e.g. /boot/config-\(release)")
        }
        if let modules {
            let name = URL(fileURLWithPath: modules).lastPathComponent
            if name != release, FileManager.default.fileExists(atPath: modules + "/" + release) {
                return KernelBundle(release: release, image: image, config: try KernelConfig(path: config),
                                    modulesDirectory: modules + "/" + release, origin: "file \(image)")
            }
        }
        return KernelBundle(release: release, image: image, config: try KernelConfig(path: config), modulesDirectory: modules,
                            origin: "file \(image)")
    }
}
