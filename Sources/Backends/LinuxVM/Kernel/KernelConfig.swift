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
        for line in text.split(separator: "\n") {
            guard line.hasPrefix("CONFIG_"), let eq = line.firstIndex(of: "=") else { continue }
            let name = String(line[..<eq])
            let value = line[line.index(after: eq)...]
            switch value {
            case "y": options[name] = .builtIn
            case "m": options[name] = .module
            default: options[name] = .other(String(value))
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
