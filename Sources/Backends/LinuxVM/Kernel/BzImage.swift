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
            throw InputError(
                "\(path) is not an x86 kernel image (no boot protocol header)",
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

/// The `file:` provider: a kernel image given by path, with its modules tree, and its config given
/// or read from the kernel itself (IKCONFIG).
public enum FileKernelProvider {
    public static func bundle(image: String, modules: String?, config: String?) throws -> KernelBundle {
        guard FileManager.default.fileExists(atPath: image) else {
            throw InputError(
                "kernel image \(image) does not exist", hint: "check the --kernel file:PATH (or --kernel-file) path")
        }
        let release = try BzImage.release(of: image)
        var modulesDirectory = modules
        if let modules, URL(fileURLWithPath: modules).lastPathComponent != release,
            FileManager.default.fileExists(atPath: modules + "/" + release)
        {
            modulesDirectory = modules + "/" + release
        }
        let kernelConfig: KernelConfig
        var origin = "file \(image)"
        if let config {
            kernelConfig = try KernelConfig(path: config)
        } else if let embedded = try embeddedConfig(image: image, modules: modulesDirectory) {
            kernelConfig = KernelConfig(text: embedded.text)
            origin += " (config read from \(embedded.from))"
        } else {
            throw InputError(
                "kernel \(image) carries no config of its own (it was built without CONFIG_IKCONFIG)\(modulesDirectory == nil ? "" : ", and its modules tree has no configs.ko"), so gvlt cannot check what it supports",
                hint: "pass the kernel's .config with --kernel-config FILE, e.g. /boot/config-\(release)")
        }
        return KernelBundle(
            release: release, image: image, config: kernelConfig, modulesDirectory: modulesDirectory, origin: origin)
    }

    /// IKCONFIG=y puts the config in the image; IKCONFIG=m in `kernel/kernel/configs.ko`.
    static func embeddedConfig(image: String, modules: String?) throws -> (text: String, from: String)? {
        if let text = try EmbeddedKernelConfig.read(bzImage: image) { return (text, "the image") }
        if let modules {
            let module = modules + "/kernel/kernel/configs.ko"
            if FileManager.default.fileExists(atPath: module), let text = try EmbeddedKernelConfig.read(module: module)
            {
                return (text, "configs.ko")
            }
        }
        return nil
    }
}
