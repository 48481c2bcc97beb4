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
        guard Self.kind(of: entry) == .file else {
            throw InputError(
                "\(path) is not a regular file in the image", hint: "gvlt inspect IMAGE lists what the image holds")
        }
        guard let length = entry["filelength"]?.unsigned else {
            throw InputError("\(path) has no valid filelength in the image", hint: "the image is corrupt")
        }
        var extents: [(fileSector: UInt64, offset: UInt64, length: UInt64, zero: Bool)] = []
        for (key, value) in entry.tuple("extents")?.sortedPairs ?? [] {
            guard let fileSector = UInt64(String(decoding: key, as: UTF8.self)), case .tuple(let extent) = value,
                let offset = extent["offset"]?.unsigned, let count = extent["length"]?.unsigned
            else {
                throw InputError(
                    "\(path) has a malformed extent `\(String(decoding: key, as: UTF8.self))`",
                    hint: "the image is corrupt")
            }
            extents.append((fileSector, offset, count, extent["uninited"] != nil))
        }
        extents.sort { $0.fileSector < $1.fileSector }
        let sector: UInt64 = 512
        var position: UInt64 = 0
        let zeros = [UInt8](repeating: 0, count: 1 << 16)
        func emitZeros(upTo end: UInt64) throws {
            while position < end {
                let count = Int(min(UInt64(zeros.count), end - position))
                try zeros.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                position += UInt64(count)
            }
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for extent in extents {
            let start = extent.fileSector * sector
            guard start < length else { break }
            try emitZeros(upTo: start)
            let end = min(length, start + extent.length * sector)
            if extent.zero {
                try emitZeros(upTo: end)
                continue
            }
            var diskOffset = offset + Int64(extent.offset * sector) + Int64(position - start)
            guard Int64(extent.offset + extent.length) * 512 <= self.length else {
                throw InputError(
                    "\(path): an extent lies beyond the end of the volume", hint: "the image is truncated or corrupt")
            }
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
                diskOffset += Int64(count)
            }
        }
        try emitZeros(upTo: length)
    }
}

extension TFSVolume {
    /// Writes a regular file's bytes to `fd` from offset 0, as they stream (files can be gigabytes);
    /// returns the byte count.
    public func write(_ entry: TFSTuple, path: String, to fd: Int32, displayName: String) throws -> Int64 {
        var offset: Int64 = 0
        try read(entry, path: path) { chunk in
            var done = 0
            while done < chunk.count {
                let wrote = pwrite(fd, chunk.baseAddress! + done, chunk.count - done, off_t(offset))
                if wrote < 0 && errno == EINTR { continue }
                guard wrote > 0 else { throw SystemError("cannot write", path: displayName, errno: errno) }
                done += wrote
                offset += Int64(wrote)
            }
        }
        return offset
    }
}
