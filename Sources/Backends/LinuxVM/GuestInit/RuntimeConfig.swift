import CInit

/// MIA's runtime config, schema 1.1.0, read strictly: unknown keys, wrong types and
/// versions newer than 1.1.0 are errors naming the file and the line.
struct RuntimeConfig {
    struct Mount {
        var source: String
        var target: String
        var fstype: String?
        var flags: UInt64
        var data: String?
    }

    struct DebugExit {
        var iobase: UInt16
        var iosize: UInt16
        var successCode: UInt32
    }

    var version: String
    var command: String?
    var args: [String]?
    var env: [(key: String, value: String)] = []
    var workingDir: String?
    var mounts: [Mount] = []
    var defaultMounts = true
    var kernelModules: [String] = []
    var debugExit: DebugExit?
    var bootcmd: [[String]] = []
    var followConfig: String?

    static let keys = [
        "version", "command", "args", "env", "working-dir", "mounts", "default-mounts", "kernel-modules",
        "debug-exit", "bootcmd", "follow-config"
    ]

    init(node: YAMLNode, file: String) throws(InitError) {
        guard case .mapping(let allFields, _) = node else { throw InitError("\(file): the config must be a mapping") }
        // A null value is the same as an absent key (serde_yaml writes every unset field as null).
        let fields = allFields.filter { if case .null = $0.value { return false } else { return true } }
        for field in fields where !Self.keys.contains(field.key) {
            throw InitError(
                "\(file): line \(field.value.line): unknown key `\(field.key)` (valid: \(Self.keys.joined(separator: ", ")))"
            )
        }
        func value(_ key: String) -> YAMLNode? { fields.first { $0.key == key }?.value }
        func string(_ node: YAMLNode, _ what: String) throws(InitError) -> String {
            guard case .scalar(let text, _) = node else {
                throw InitError("\(file): line \(node.line): \(what) must be text, not \(node.kindName)")
            }
            return text
        }
        func strings(_ node: YAMLNode, _ what: String) throws(InitError) -> [String] {
            guard case .sequence(let items, _) = node else {
                throw InitError("\(file): line \(node.line): \(what) must be a list")
            }
            var out: [String] = []
            for item in items { out.append(try string(item, "an item of \(what)")) }
            return out
        }
        func integer(_ node: YAMLNode, _ what: String, max: UInt64) throws(InitError) -> UInt64 {
            let text = try string(node, what)
            var digits = Substring(text)
            var radix: UInt64 = 10
            if text.hasPrefix("0x") || text.hasPrefix("0X") {
                digits = text.dropFirst(2)
                radix = 16
            }
            var result: UInt64 = 0
            guard !digits.isEmpty else { throw InitError("\(file): line \(node.line): \(what) must be a number") }
            for character in digits.utf8 {
                let digit: UInt64
                switch character {
                case 48...57: digit = UInt64(character - 48)
                case 97...102 where radix == 16: digit = UInt64(character - 87)
                case 65...70 where radix == 16: digit = UInt64(character - 55)
                default: throw InitError("\(file): line \(node.line): \(what) must be a number, not `\(text)`")
                }
                let (product, overflow1) = result.multipliedReportingOverflow(by: radix)
                let (sum, overflow2) = product.addingReportingOverflow(digit)
                guard !overflow1, !overflow2, sum <= max else {
                    throw InitError("\(file): line \(node.line): \(what) is too large")
                }
                result = sum
            }
            return result
        }
        func object(_ node: YAMLNode, _ what: String, allowed: [String]) throws(InitError) -> [(
            key: String, value: YAMLNode
        )] {
            guard case .mapping(let allItems, _) = node else {
                throw InitError("\(file): line \(node.line): \(what) must be a mapping")
            }
            let items = allItems.filter { if case .null = $0.value { return false } else { return true } }
            for item in items where !allowed.contains(item.key) {
                throw InitError(
                    "\(file): line \(item.value.line): unknown key `\(item.key)` in \(what) (valid: \(allowed.joined(separator: ", ")))"
                )
            }
            return items
        }
        func field(_ items: [(key: String, value: YAMLNode)], _ key: String) -> YAMLNode? {
            items.first { $0.key == key }?.value
        }

        guard let versionNode = value("version") else { throw InitError("\(file): missing required key `version`") }
        version = try string(versionNode, "version")
        // `1` and `1.1` mean 1.0.0 and 1.1.0, as MIA reads them.
        let parts = version.split(separator: ".", omittingEmptySubsequences: false)
        var numbers: [Int] = []
        for part in parts {
            guard !part.isEmpty, part.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let number = Int(part) else {
                throw InitError("\(file): version `\(version)` is not MAJOR[.MINOR[.PATCH]]")
            }
            numbers.append(number)
        }
        guard (1...3).contains(numbers.count) else {
            throw InitError("\(file): version `\(version)` is not MAJOR[.MINOR[.PATCH]]")
        }
        while numbers.count < 3 { numbers.append(0) }
        guard numbers[0] == 1 else {
            throw InitError("\(file): config version \(version) is not supported (major version must be 1)")
        }
        guard numbers[1] < 1 || (numbers[1] == 1 && numbers[2] == 0) else {
            throw InitError("\(file): config version \(version) is newer than this init supports (1.1.0)")
        }

        if let node = value("command") { command = try string(node, "command") }
        if let node = value("args") { args = try strings(node, "args") }
        if let node = value("env") {
            guard case .sequence(let items, _) = node else {
                throw InitError("\(file): line \(node.line): env must be a list")
            }
            for item in items {
                let pair = try object(item, "an env entry", allowed: ["key", "value"])
                guard let key = field(pair, "key"), let value = field(pair, "value") else {
                    throw InitError("\(file): line \(item.line): an env entry needs `key` and `value`")
                }
                env.append((try string(key, "env key"), try string(value, "env value")))
            }
        }
        if let node = value("working-dir") { workingDir = try string(node, "working-dir") }
        if let node = value("mounts") {
            guard case .sequence(let items, _) = node else {
                throw InitError("\(file): line \(node.line): mounts must be a list")
            }
            for item in items {
                let mount = try object(item, "a mount", allowed: ["source", "target", "fstype", "flags", "data"])
                guard let source = field(mount, "source"), let target = field(mount, "target") else {
                    throw InitError("\(file): line \(item.line): a mount needs `source` and `target`")
                }
                mounts.append(
                    Mount(
                        source: try string(source, "mount source"), target: try string(target, "mount target"),
                        fstype: try field(mount, "fstype").map { (n) throws(InitError) in try string(n, "fstype") },
                        flags: try field(mount, "flags").map { (n) throws(InitError) in
                            try integer(n, "flags", max: UInt64.max)
                        } ?? 0,
                        data: try field(mount, "data").map { (n) throws(InitError) in try string(n, "data") }))
            }
        }
        if let node = value("default-mounts") {
            switch try string(node, "default-mounts") {
            case "true": defaultMounts = true
            case "false": defaultMounts = false
            default: throw InitError("\(file): line \(node.line): default-mounts must be true or false")
            }
        }
        if let node = value("kernel-modules") { kernelModules = try strings(node, "kernel-modules") }
        if let node = value("debug-exit") {
            let items = try object(node, "debug-exit", allowed: ["arch", "iobase", "iosize", "success-code"])
            guard let arch = field(items, "arch"), let iobase = field(items, "iobase"),
                let iosize = field(items, "iosize"),
                let code = field(items, "success-code")
            else {
                throw InitError("\(file): line \(node.line): debug-exit needs arch, iobase, iosize and success-code")
            }
            guard try string(arch, "debug-exit arch") == "x86" else {
                throw InitError("\(file): line \(arch.line): debug-exit arch must be x86")
            }
            let success = UInt32(try integer(code, "success-code", max: 0xffff_ffff))
            // QEMU exits with (value << 1) | 1: only odd codes above 1 can be produced.
            guard success > 1, success % 2 == 1 else {
                throw InitError("\(file): line \(code.line): debug-exit success-code must be odd and greater than 1")
            }
            debugExit = DebugExit(
                iobase: UInt16(try integer(iobase, "iobase", max: 0xffff)),
                iosize: UInt16(try integer(iosize, "iosize", max: 4)), successCode: success)
        }
        if let node = value("bootcmd") {
            guard case .sequence(let items, _) = node else {
                throw InitError("\(file): line \(node.line): bootcmd must be a list of commands")
            }
            for item in items { bootcmd.append(try strings(item, "a bootcmd command")) }
        }
        if let node = value("follow-config") { followConfig = try string(node, "follow-config") }
    }

    static func load(_ path: String) throws(InitError) -> RuntimeConfig {
        let fd = cinit_open(path, O_RDONLY)
        guard fd >= 0 else { throw InitError("cannot read \(path): \(Console.errnoText())") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
            guard bytes.count < 1 << 20 else { throw InitError("\(path) is larger than 1 MiB") }
        }
        return try RuntimeConfig(node: try YAMLNode.parse(bytes, file: path), file: path)
    }
}
