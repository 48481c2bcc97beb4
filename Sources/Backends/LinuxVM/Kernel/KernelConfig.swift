import Core
import Foundation

/// A kernel `.config`: `CONFIG_X=y|m|value` lines and `# CONFIG_X is not set`.
public struct KernelConfig: Sendable {
    public enum Value: Equatable, Sendable {
        case builtIn
        case module
        case other(String)
    }

    public private(set) var options: [String: Value] = [:]

    public init(text: String) {
        // Split on bytes: Character-wise splitting of a 280 KB config took a build 0.06 s.
        let prefix = Array("CONFIG_".utf8)
        for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
            guard line.starts(with: prefix), let eq = line.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let name = String(decoding: line[..<eq], as: UTF8.self)
            let value = line[line.index(after: eq)...]
            if value.elementsEqual([UInt8(ascii: "y")]) {
                options[name] = .builtIn
            } else if value.elementsEqual([UInt8(ascii: "m")]) {
                options[name] = .module
            } else {
                options[name] = .other(String(decoding: value, as: UTF8.self))
            }
        }
    }

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InputError(
                "cannot read kernel config \(path)", hint: "pass the kernel's .config with --kernel-config FILE")
        }
        self.init(text: String(decoding: data, as: UTF8.self))
    }

    public subscript(name: String) -> Value? { options[name] }
}
