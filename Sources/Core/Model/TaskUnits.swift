import Foundation

/// The quantities of a Gevulot task's `resources`, read as gevulot-rs reads them (its
/// `serialization_helpers.rs`), so a task file means the same locally as on the network:
/// - cpus/gpus: a bare number is cores; strings take `cpu(s)`, `gpu(s)`, `core(s)` or their
///   milli- forms (`500mcpu`);
/// - memory: a bare number is megabytes (10^6 bytes); strings take byte units, decimal (`kb`, `mb`,
///   `gb`, …) or binary (`kib`, `mib`, `gib`, …), case-insensitive;
/// - time: a bare number is seconds; strings are durations such as `90s`, `30m`, `1h`, `1 hr`,
///   `1h 30m`.
public enum TaskUnits {
    public static func millicores(_ value: JSONValue, at location: String) throws -> Int {
        switch value {
        case .number(let number) where number >= 0:
            return Int((number * 1000).rounded(.up))
        case .string(let text):
            let digits = text.prefix { $0.isASCII && $0.isNumber }
            let unit = text.dropFirst(digits.count).lowercased().replacingOccurrences(of: " ", with: "")
            guard let count = Int(digits) else { break }
            switch unit {
            case "", "cpu", "cpus", "gpu", "gpus", "core", "cores": return count * 1000
            case "mcpu", "mcpus", "millicpu", "millicpus", "mgpu", "mgpus", "milligpu", "milligpus",
                "mcore", "mcores", "millicore", "millicores":
                return count
            default: break
            }
        default: break
        }
        throw InputError(
            "\(location): `\(value.text)` is not a core count",
            hint: "write cores (2, \"2cpu\") or millicores (\"500mcpu\")")
    }

    public static func bytes(_ value: JSONValue, at location: String) throws -> UInt64 {
        switch value {
        case .number(let number) where number >= 0 && number * 1_000_000 < 18_446_744_073_709_551_615:
            return UInt64((number * 1_000_000).rounded(.up))
        case .string(let text):
            if let bytes = ByteSize.parse(text, ByteSize.gevulot) { return bytes }
        default: break
        }
        throw InputError(
            "\(location): `\(value.text)` is not a size",
            hint: "write megabytes (512) or a size with its unit (\"512MiB\", \"4GB\")")
    }

    public static func seconds(_ value: JSONValue, at location: String) throws -> Double {
        switch value {
        case .number(let number) where number >= 0:
            return number
        case .string(let text):
            if let total = duration(text) { return total }
        default: break
        }
        throw InputError(
            "\(location): `\(value.text)` is not a duration",
            hint: "write seconds (600) or a duration (\"10m\", \"1h 30m\")")
    }

    /// humantime's syntax: one or more NUMBER UNIT terms, spaces optional.
    static func duration(_ text: String) -> Double? {
        let units: [String: Double] = [
            "ms": 0.001, "msec": 0.001, "millis": 0.001, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
            "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600,
            "hour": 3600, "hours": 3600,
            "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800
        ]
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        var total = 0.0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard let count = Double(digits) else { return nil }
            rest = rest.dropFirst(digits.count).drop { $0 == " " }
            let unit = rest.prefix { $0.isLetter }
            guard let factor = units[unit.lowercased()] else { return nil }
            total += count * factor
            rest = rest.dropFirst(unit.count).drop { $0 == " " }
        }
        return total
    }
}

extension JSONValue {
    /// The value as written, for messages.
    var text: String {
        switch self {
        case .string(let text): return text
        case .number(let number): return number.jsonText
        case .bool(let flag): return String(flag)
        default: return typeName
        }
    }
}
