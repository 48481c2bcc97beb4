import Foundation

/// How much an image's layers may expand to, shared by the layers read in parallel. A layer that
/// inflates without end (concatenated gzip members, a sparse entry claiming a terabyte) is stopped
/// while it is read, before it fills the scratch disk or the image.
///
/// - The total: every decompressed byte plus the holes of sparse files counts, up to 4× the layers'
///   stored size plus 1 GiB (real images expand 2–5×), or `--max-expanded-size`.
/// - Each layer: past 100× its stored size (and past 256 MiB) it is refused, unless the user set
///   `--max-expanded-size`, which then is the only bound.
public final class ExpansionBudget: @unchecked Sendable {
    public static let layerRatio: Int64 = 100
    public static let layerFloor: Int64 = 256 << 20

    public let limit: Int64
    /// Set by the user: the per-layer ratio no longer applies.
    public let explicit: Bool
    private let lock = NSLock()
    private var used: Int64 = 0

    /// `maximum` is the user's bound; nil means the default for layers stored in `storedBytes`.
    public init(storedBytes: Int64, maximum: Int64?) {
        explicit = maximum != nil
        let (scaled, overflow) = storedBytes.multipliedReportingOverflow(by: 4)
        limit = maximum ?? (overflow ? .max : scaled.addingReportingOverflow(1 << 30).partialValue)
    }

    /// Counts `bytes` more for `layer`, which has expanded to `layerTotal` from `stored` bytes.
    public func charge(_ bytes: Int64, layer: String, layerTotal: Int64, stored: Int64) throws {
        try lock.withLock {
            let (sum, overflow) = used.addingReportingOverflow(bytes)
            guard !overflow, sum <= limit else {
                throw HostileInputError(
                    "\(layer): the image's layers expand to more than \(ProgressReporter.bytes(limit))\(explicit ? " (--max-expanded-size)" : ", 4× their stored size plus 1 GiB")",
                    hint: explicit
                        ? "raise --max-expanded-size if the image really is this large"
                        : "if the image really is this large, raise the bound with --max-expanded-size SIZE (e.g. 64g)")
            }
            used = sum
        }
        if !explicit, layerTotal > Self.layerFloor, layerTotal / max(stored, 1) >= Self.layerRatio {
            throw HostileInputError(
                "\(layer): expands more than \(Self.layerRatio)× (\(ProgressReporter.bytes(stored)) stored, over \(ProgressReporter.bytes(layerTotal)) read so far): a decompression bomb",
                hint: "if the layer really holds that much repetitive data, set --max-expanded-size SIZE to allow it")
        }
    }
}
