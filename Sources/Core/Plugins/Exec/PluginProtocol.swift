import Foundation

/// The `gvlt-plugin` protocol (docs/plugins.md): one JSON request on a plugin's stdin, JSON lines
/// back on its stdout (`progress` and `log` messages as they happen, then one `result` or `error`).
public enum PluginProtocol {
    public static let name = "gvlt-plugin"
    /// What this host speaks. A plugin's major must be equal and its minor not newer.
    public static let major = 1
    public static let minor = 1
    public static var version: String { "\(name)/\(major).\(minor)" }

    /// Set for every plugin the host starts. Plugins refuse to run without it, so that nobody runs
    /// one by hand by mistake and takes its silence for a result.
    public static let cookieVariable = "GVLT_PLUGIN_COOKIE"
    public static let cookieValue = "d0c1e5b2-gvlt-plugin-host"

    /// The most a plugin may write as one stdout line, or to stderr in all, before it is killed:
    /// enough for any result (files travel as paths), not enough to exhaust the host's memory.
    public static let outputLimit = 64 << 20

    /// One request, as the JSON line (without its terminator) every transport sends.
    static func request(_ method: String, params: [String: Any]) throws -> Data {
        try JSONSerialization.data(
            withJSONObject: ["protocol": version, "method": method, "params": params], options: [.sortedKeys])
    }

    /// The last 20 lines of a plugin's stderr, as appended to an error about it ("" when it wrote nothing).
    /// The last 20 lines of a plugin's stderr for an error, each cut to 300 characters: enough to
    /// see what went wrong, never a screenful of one runaway line.
    static func stderrNote(_ text: String) -> String {
        let shown = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(20).map {
            $0.count > 300 ? "…" + $0.suffix(300) : $0
        }.joined(separator: "\n")
        return shown.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? "" : "\nits stderr:\n\(shown)"
    }

    /// `gvlt-plugin/1.2` → (1, 2); `gvlt-plugin/1` means 1.0.
    public static func parse(_ text: String) -> (major: Int, minor: Int)? {
        guard text.hasPrefix(name + "/") else { return nil }
        let numbers = text.dropFirst(name.count + 1).split(separator: ".", omittingEmptySubsequences: false).map {
            Int($0)
        }
        guard (1...2).contains(numbers.count), numbers.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        return (numbers[0]!, numbers.count == 2 ? numbers[1]! : 0)
    }

    /// Checks a version a plugin declared (in plugins.json or in `describe`).
    public static func check(_ declared: String, plugin: String) throws {
        guard let (pluginMajor, pluginMinor) = parse(declared) else {
            throw InputError(
                "plugin `\(plugin)` speaks `\(declared)`, which is not a \(name) protocol version",
                hint: "it must say \(version)")
        }
        guard pluginMajor == major else {
            throw UnsupportedError(
                "plugin `\(plugin)` speaks \(declared), and this gvlt speaks \(version): the major versions differ",
                hint: pluginMajor > major ? "upgrade gvlt" : "upgrade the plugin to \(name)/\(major).x")
        }
        guard pluginMinor <= minor else {
            throw UnsupportedError(
                "plugin `\(plugin)` speaks \(declared), newer than this gvlt's \(version)",
                hint: "upgrade gvlt to use it")
        }
    }
}
