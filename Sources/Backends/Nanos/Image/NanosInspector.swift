import Core
import Foundation

/// What `gvlt inspect` shows of a Nanos image: partitions, the boot filesystem's files, and the root
/// tuple in Nanos' text syntax with file contents summarised.
public struct NanosImageReport: Codable, Sendable {
    public typealias Partition = PartitionReport

    public struct BootFile: Codable, Sendable {
        public var path: String
        public var bytes: UInt64
    }

    public var image: String
    public var sha256: String
    public var bytes: Int64
    public var stage2Bytes: UInt64?
    public var partitions: [Partition]
    public var bootFiles: [BootFile]
    public var rootLabel: String
    public var rootUUID: String
    public var rootLogExtensions: Int
    public var program: String?
    public var root: String
}

public enum NanosInspector {
    /// Whether `path` looks like a Nanos disk: stage1's region record (type 12) and a TFS in the first
    /// Linux-type partition.
    public static func isNanosImage(_ path: String) -> Bool {
        guard let file = try? SharedFile.openRegular(path, what: "image", followSymlinks: true) else { return false }
        var sector = [UInt8](repeating: 0, count: 512)
        guard (try? sector.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }) == 512,
            let table = NanosPartitionTable(sector: sector), table.stage2Length != nil,
            let first = table.entries.first(where: { $0.type == 0x83 })
        else { return false }
        var magic = [UInt8](repeating: 0, count: 6)
        // checked: UInt32 sector number times 512
        _ = try? magic.withUnsafeMutableBytes { try file.read(into: $0, at: Int64(first.firstSector) * 512) }
        return magic == TFSEncoding.magic
    }

    public static func inspect(_ path: String) throws -> NanosImageReport {
        let image = try NanosImageReader.open(path)
        var bootFiles: [NanosImageReport.BootFile] = []
        func collect(_ tuple: TFSTuple, prefix: String) {
            for (key, value) in tuple.tuple("children")?.sortedPairs ?? [] {
                guard case .tuple(let child) = value else { continue }
                let name = prefix + "/" + String(decoding: key, as: UTF8.self)
                if TFSVolume.kind(of: child) == .directory {
                    collect(child, prefix: name)
                } else {
                    bootFiles.append(.init(path: name, bytes: child["filelength"]?.unsigned ?? 0))
                }
            }
        }
        collect(image.boot.root, prefix: "")
        let partitions = image.partitions.enumerated().map { index, entry in
            NanosImageReport.Partition(
                number: index + 1, active: entry.active,
                type: entry.type == 0x83 ? "Linux (TFS)" : String(format: "0x%02x", entry.type),
                // checked: UInt32 sector numbers times 512
                start: Int64(entry.firstSector) * 512, size: Int64(entry.sectorCount) * 512)
        }
        return NanosImageReport(
            image: URL(fileURLWithPath: path).standardizedFileURL.path, sha256: try SHA256Hex.of(file: path),
            bytes: image.file.size, stage2Bytes: image.stage2Length, partitions: partitions, bootFiles: bootFiles,
            rootLabel: image.root.label, rootUUID: image.root.uuidText,
            rootLogExtensions: image.root.logExtensions.count,
            program: image.root.root.text("program"), root: TFSDump.text(of: .tuple(summarised(image.root.root))))
    }

    /// A copy of the tree whose files read `<file, N bytes>` instead of their extents.
    static func summarised(_ tuple: TFSTuple) -> TFSTuple {
        let copy = TFSTuple()
        for (key, value) in tuple.sortedPairs {
            if key == Array("children".utf8), case .tuple(let children) = value {
                let list = TFSTuple()
                for (name, child) in children.sortedPairs {
                    guard case .tuple(let entry) = child else { list[name] = child; continue }
                    if TFSVolume.kind(of: entry) == .file {
                        let extents = entry.tuple("extents")?.count ?? 0
                        list[name] = .string(
                            "<file, \(entry["filelength"]?.unsigned ?? 0) bytes, \(extents) extent\(extents == 1 ? "" : "s")>"
                        )
                    } else {
                        list[name] = .tuple(summarised(entry))
                    }
                }
                copy[key] = .tuple(list)
            } else {
                copy[key] = value
            }
        }
        return copy
    }
}
