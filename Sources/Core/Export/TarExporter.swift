import Foundation

/// Writes a tree as a POSIX pax tar with exact metadata, atomically.
public struct TarExporter {
    public struct Report: Codable, Sendable {
        public var output: String
        public var sha256: String
        public var bytes: Int64
        public var summary: TreeSummary
        /// Sockets cannot be represented in tar; they are counted here, not written.
        public var skippedSockets: [String]
    }

    public init() {}

    /// Streams the tree as a pax tar into `fd` (a pipe to another tool); returns the bytes written.
    /// Sockets are left out, as in `export`.
    @discardableResult
    public func stream(_ tree: FileTree, to fd: Int32, label: String) throws -> Int64 {
        let sink = FileSink(fd: fd, displayName: label)
        let writer = try ArchiveWriter(format: .pax, sink: sink, label: label)
        var skipped = Set<String>()
        for entry in tree.entries() {
            if case .socket = entry.kind {
                skipped.insert(entry.path)
                continue
            }
            if case .hardlink(let target) = entry.kind, skipped.contains(target) { continue }
            try writer.write(entry)
        }
        try writer.finish()
        return sink.byteCount
    }

    public func export(_ tree: FileTree, to path: String, force: Bool, progress: ProgressReporter? = nil) throws -> Report {
        let output = try AtomicOutput(path: path, force: force)
        var committed = false
        defer { if !committed { output.abandon() } }
        let entries = tree.entries()
        var summary = TreeSummary()
        var skipped: [String] = []
        let total = entries.reduce(Int64(0)) { sum, entry in
            if case .regularFile(let content) = entry.kind { return sum + content.size }
            return sum
        }
        let sink = FileSink(fd: output.fd, displayName: output.temporaryPath, direct: true)
        progress?.begin("writing \(URL(fileURLWithPath: path).lastPathComponent)", total: total)
        let writer = try ArchiveWriter(format: .pax, sink: sink, label: path)
        var written: Int64 = 0
        var skippedSet = Set<String>()
        for entry in entries {
            if case .socket = entry.kind {
                skipped.append(entry.path)
                skippedSet.insert(entry.path)
                continue
            }
            // Further names of a skipped socket would be links to nothing.
            if case .hardlink(let target) = entry.kind, skippedSet.contains(target) {
                skipped.append(entry.path)
                continue
            }
            summary.entries += 1
            summary.byKind[entry.kind.name, default: 0] += 1
            try writer.writeHeader(entry)
            if case .regularFile(let content) = entry.kind {
                summary.contentBytes += content.size
                try content.stream { chunk in
                    try writer.writeData(chunk)
                    written += Int64(chunk.count)
                    progress?.update(written)
                }
            }
        }
        try writer.finish()
        progress?.end()
        try output.commit()
        committed = true
        return Report(output: output.path, sha256: sink.digest(), bytes: sink.byteCount, summary: summary, skippedSockets: skipped)
    }
}

/// What an export wrote: entries by kind, and the bytes of regular file content (each inode once).
public struct TreeSummary: Codable, Equatable, Sendable {
    public var entries = 0
    public var byKind: [String: Int] = [:]
    public var contentBytes: Int64 = 0
    public init() {}

    /// Streams the tree as a pax tar into `fd` (a pipe to another tool); returns the bytes written.
    /// Sockets are left out, as in `export`.
    @discardableResult
    public func stream(_ tree: FileTree, to fd: Int32, label: String) throws -> Int64 {
        let sink = FileSink(fd: fd, displayName: label)
        let writer = try ArchiveWriter(format: .pax, sink: sink, label: label)
        var skipped = Set<String>()
        for entry in tree.entries() {
            if case .socket = entry.kind {
                skipped.insert(entry.path)
                continue
            }
            if case .hardlink(let target) = entry.kind, skipped.contains(target) { continue }
            try writer.write(entry)
        }
        try writer.finish()
        return sink.byteCount
    }
}
