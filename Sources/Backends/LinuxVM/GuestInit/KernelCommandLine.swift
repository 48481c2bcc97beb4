import CInit

/// The kernel command line's module parameters (`module.name=value`). The kernel applies these
/// only to built-in code; for a loadable module it is modprobe's job, and the init is our modprobe.
struct KernelCommandLine {
    /// (module, "name=value") in command line order, module names with `-` folded to `_`.
    var moduleParameters: [(module: String, parameter: String)] = []
    /// `init=`: the init to start on the root (gvlt build --init); nil means gvlt-init itself.
    var initPath: String?
    /// The words after `--`, which belong to that init (gvlt build --init-args).
    var initArguments: [String] = []
    /// `rw` (gvlt build --rw-root): mount the root read-write where the disk allows.
    var readWrite = false

    static let current = KernelCommandLine(System.readFile("/proc/cmdline") ?? [])

    init(_ bytes: [UInt8]) {
        var forInit = false
        for word in Self.words(bytes) {
            // Everything after `--` belongs to init, not to the kernel or its modules.
            if forInit {
                initArguments.append(word)
                continue
            }
            if word == "--" {
                forInit = true
                continue
            }
            if word.hasPrefix("init=") { initPath = String(word.dropFirst("init=".count)) }
            if word == "rw" { readWrite = true }
            if word == "ro" { readWrite = false }
            guard let dot = word.firstIndex(of: "."), let equals = word.firstIndex(of: "="), dot < equals,
                dot > word.startIndex
            else { continue }
            moduleParameters.append((Self.underscored(String(word[..<dot])), String(word[word.index(after: dot)...])))
        }
    }

    func parameters(forModule module: String) -> [String] {
        let name = Self.underscored(module)
        return moduleParameters.filter { $0.module == name }.map { $0.parameter }
    }

    func sets(module: String, parameter: String) -> Bool {
        parameters(forModule: module).contains { $0 == parameter || $0.hasPrefix(parameter + "=") }
    }

    /// `…/kernel/drivers/scsi/scsi_mod.ko` → `scsi_mod`; modules are named with `_` whatever the file says.
    static func moduleName(ofPath path: String) -> String {
        var file = Substring(path.split(separator: "/").last ?? Substring(path))
        if file.hasSuffix(".ko") { file = file.dropLast(3) }
        return underscored(String(file))
    }

    /// Module names treat `-` and `_` alike.
    static func underscored(_ name: String) -> String {
        String(name.map { $0 == "-" ? "_" : $0 })
    }

    /// Splits like the kernel's next_arg: spaces separate words, double quotes group and are dropped.
    static func words(_ bytes: [UInt8]) -> [String] {
        var words: [String] = []
        var current: [UInt8] = []
        var quoted = false
        var inWord = false
        for byte in bytes {
            if byte == UInt8(ascii: "\"") {
                quoted.toggle()
                inWord = true
            } else if !quoted && (byte == 0x20 || byte == 0x0A || byte == 0x09) {
                if inWord { words.append(String(decoding: current, as: UTF8.self)) }
                current = []
                inWord = false
            } else {
                current.append(byte)
                inWord = true
            }
        }
        if inWord { words.append(String(decoding: current, as: UTF8.self)) }
        return words
    }
}
