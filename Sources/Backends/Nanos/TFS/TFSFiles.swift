import Core
import Foundation

/// Reading entries of a TFS volume by path: what `gvlt extract` and the round-trip tests use.
extension TFSVolume {
    public enum EntryKind: Equatable {
        case directory, file, symlink(String), other
    }

    /// The entry tuple at an absolute path (symlinks are not followed), or nil.
    public func entry(at path: String) -> TFSTuple? {
        var node = root
        for part in path.split(separator: "/") where !part.isEmpty {
            guard let children = node.tuple("children"), let child = children.tuple(String(part)) else { return nil }
            node = child
        }
        return node
    }

    public static func kind(of entry: TFSTuple) -> EntryKind {
        if entry["children"] != nil { return .directory }
        if let target = entry.text("linktarget") { return .symlink(target) }
        if entry["extents"] != nil || entry["filelength"] != nil { return .file }
        return .other
    }

    /// Streams a regular file's bytes: its extents in file order, zeros for holes and `uninited`
    /// extents, cut at `filelength`.
    public func read(_ entry: TFSTuple, path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let zeros = [UInt8](repeating: 0, count: 1 << 16)
        try chunks(entry, path: path, data: body) { count in
            var left = count
            while left > 0 {
                // checked: at most zeros.count
                let step = Int(min(UInt64(zeros.count), left))
                try zeros.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<step])) }
                left -= UInt64(step)
            }
        }
    }

    /// A regular file as data and holes, in file order. Every number is the image's, so each is
    /// bounded (by the volume for extents) before it is multiplied or converted.
    func chunks(
        _ entry: TFSTuple, path: String, data body: (UnsafeRawBufferPointer) throws -> Void,
        hole: (UInt64) throws -> Void
    ) throws {
        guard Self.kind(of: entry) == .file else {
            throw InputError(
                "\(path) is not a regular file in the image", hint: "gvlt inspect IMAGE lists what the image holds")
        }
        guard let length = entry["filelength"]?.unsigned, length <= UInt64(Int64.max) else {
            throw InputError("\(path) has no valid filelength in the image", hint: "the image is corrupt")
        }
        let sector: UInt64 = 512
        let volumeSectors = UInt64(max(0, self.length)) / sector
        var extents: [(start: UInt64, offset: UInt64, length: UInt64, zero: Bool)] = []
        for (key, value) in entry.tuple("extents")?.sortedPairs ?? [] {
            let name = String(decoding: key, as: UTF8.self)
            guard let fileSector = UInt64(name), case .tuple(let extent) = value,
                let offset = extent["offset"]?.unsigned, let count = extent["length"]?.unsigned
            else {
                throw InputError("\(path) has a malformed extent `\(name)`", hint: "the image is corrupt")
            }
            let zero = extent["uninited"] != nil
            // Data must lie in the volume; an uninited extent reads as zeros and needs no disk.
            guard count <= volumeSectors, zero || offset <= volumeSectors - count,
                fileSector <= UInt64(Int64.max) / sector
            else {
                throw InputError(
                    "\(path): extent `\(name)` (\(count) sectors at sector \(offset)) lies beyond the end of the volume",
                    hint: "the image is truncated or corrupt")
            }
            extents.append((fileSector * sector, offset, count, zero))
        }
        extents.sort { $0.start < $1.start }
        var position: UInt64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for extent in extents {
            guard extent.start < length else { break }
            if extent.start > position {
                try hole(extent.start - position)
                position = extent.start
            }
            // start < length ≤ Int64.max and length·512 ≤ the volume: the sum cannot overflow.
            let end = min(length, extent.start + extent.length * sector)
            guard end > position else { continue }
            if extent.zero {
                try hole(end - position)
                position = end
                continue
            }
            // checked: chunks() refused extents that reach past the volume; the counts below are buffer sizes
            var diskOffset = offset + Int64(extent.offset * sector) + Int64(position - extent.start)
            while position < end {
                let count = Int(min(UInt64(buffer.count), end - position))
                let got = try buffer.withUnsafeMutableBytes {
                    try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<count]), at: diskOffset)
                }
                guard got == count else {
                    throw InputError("\(path): the image ends inside the file's data", hint: "the image is truncated")
                }
                try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                position += UInt64(count)
                // checked: a buffer's count, Int to Int64
                diskOffset += Int64(count)
            }
        }
        if position < length { try hole(length - position) }
    }
}

extension TFSVolume {
    /// Writes a regular file's bytes to `fd` from offset 0, as they stream (files can be gigabytes);
    /// returns the byte count. Holes stay holes (the file is extended, never filled with zeros), so
    /// a file the image claims is a terabyte of nothing costs no disk.
    public func write(_ entry: TFSTuple, path: String, to fd: Int32, displayName: String) throws -> Int64 {
        var offset: Int64 = 0
        try chunks(entry, path: path) { chunk in
            var done = 0
            while done < chunk.count {
                let wrote = pwrite(fd, chunk.baseAddress! + done, chunk.count - done, off_t(offset))
                if wrote < 0 && errno == EINTR { continue }
                guard wrote > 0 else { throw SystemError("cannot write", path: displayName, errno: errno) }
                done += wrote
                // checked: byte counts of one write, Int to Int64
                offset += Int64(wrote)
            }
        } hole: { count in
            // checked: byte counts of one write, Int to Int64
            offset += Int64(count)
        }
        guard ftruncate(fd, off_t(offset)) == 0 else {
            throw SystemError("cannot set the size of", path: displayName, errno: errno)
        }
        return offset
    }
}
