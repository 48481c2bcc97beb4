/// The one parser for the sizes gvlt reads: NUMBER[UNIT]. What differs between inputs is the
/// dialect, each the reading of the tool gvlt replaces there: what a bare number means, which units
/// exist and what they weigh, and whether fractions or a space before the unit are allowed.
public enum ByteSize {
    public struct Dialect: Sendable {
        /// Bytes per unit of a bare number.
        public var bare: UInt64
        /// Lower-cased unit → bytes.
        public var units: [String: UInt64]
        /// `1.5GB`: fractional numbers, rounded up to a whole byte.
        public var fractions = false
        /// `512 MiB`: blanks between the number and its unit.
        public var spaceBeforeUnit = false
        public var allowsZero = true

        public init(
            bare: UInt64, units: [String: UInt64], fractions: Bool = false, spaceBeforeUnit: Bool = false,
            allowsZero: Bool = true
        ) {
            self.bare = bare
            self.units = units
            self.fractions = fractions
            self.spaceBeforeUnit = spaceBeforeUnit
            self.allowsZero = allowsZero
        }
    }

    static let kibi: UInt64 = 1 << 10, mebi: UInt64 = 1 << 20, gibi: UInt64 = 1 << 30, tebi: UInt64 = 1 << 40

    /// ops' manifest sizes (`BaseVolumeSz`, `RunConfig.Memory`): bytes, or k/m/g/t (also kb…tb) in
    /// binary multiples. A lone `b` is not a unit there (`512b` fails in ops too).
    public static let ops = Dialect(
        bare: 1,
        units: [
            "k": kibi, "kb": kibi, "m": mebi, "mb": mebi, "g": gibi, "gb": gibi, "t": tebi, "tb": tebi
        ])

    /// gvltctl's `--size`: bytes or binary units, written k, kb or kib alike.
    public static let disk = Dialect(
        bare: 1,
        units: [
            "b": 1, "k": kibi, "kb": kibi, "kib": kibi, "m": mebi, "mb": mebi, "mib": mebi,
            "g": gibi, "gb": gibi, "gib": gibi, "t": tebi, "tb": tebi, "tib": tebi
        ], allowsZero: false)

    /// QEMU's `-m` as `gvlt run --mem` takes it: MiB bare, or M/G.
    public static let memory = Dialect(
        bare: mebi,
        units: [
            "m": mebi, "mb": mebi, "mib": mebi, "g": gibi, "gb": gibi, "gib": gibi
        ], allowsZero: false)

    /// Gevulot task resources, as gevulot-rs reads them: megabytes (10^6) bare, SI and IEC units,
    /// fractions.
    public static let gevulot = Dialect(
        bare: 1_000_000,
        units: [
            "b": 1, "k": 1_000, "kb": 1_000, "m": 1_000_000, "mb": 1_000_000, "g": 1_000_000_000, "gb": 1_000_000_000,
            "t": 1_000_000_000_000, "tb": 1_000_000_000_000, "p": 1_000_000_000_000_000, "pb": 1_000_000_000_000_000,
            "ki": kibi, "kib": kibi, "mi": mebi, "mib": mebi, "gi": gibi, "gib": gibi,
            "ti": tebi, "tib": tebi, "pi": tebi << 10, "pib": tebi << 10
        ], fractions: true, spaceBeforeUnit: true)

    /// The size in bytes, or nil when `text` is not one in `dialect` (or does not fit in 64 bits).
    public static func parse(_ text: String, _ dialect: Dialect) -> UInt64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let number = trimmed.prefix { ($0.isASCII && $0.isNumber) || (dialect.fractions && $0 == ".") }
        var unit = Substring(trimmed.dropFirst(number.count))
        if dialect.spaceBeforeUnit { unit = unit.drop { $0 == " " || $0 == "\t" } }
        guard !number.isEmpty, let factor = unit.isEmpty ? dialect.bare : dialect.units[unit.lowercased()] else {
            return nil
        }
        let bytes: UInt64
        if number.allSatisfy({ $0 != "." }) {
            guard let count = UInt64(number) else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: factor)
            guard !overflow else { return nil }
            bytes = product
        } else {
            guard let count = Double(number) else { return nil }
            let product = (count * Double(factor)).rounded(.up)
            guard product < 18_446_744_073_709_551_615 else { return nil }
            bytes = UInt64(product)
        }
        guard bytes > 0 || dialect.allowsZero else { return nil }
        return bytes
    }

    /// `bytes` for people: `512 B`, `3.4 MiB`, `1.2 GiB`.
    public static func describe(_ bytes: Int64) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB"]
        guard bytes >= 1024 else { return "\(bytes) B" }
        var value = Double(bytes) / 1024
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return String(format: "%.1f %@", value, units[unit])
    }
}
