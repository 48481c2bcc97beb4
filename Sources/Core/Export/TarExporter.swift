import Foundation

/// Writes a tree as a POSIX pax tar with exact metadata: atomically to a file (`export`), or into a
/// pipe to another tool (`stream`).
public struct TarExporter {
    public struct Report: Codable, Sendable {
        public var output: String
        public var sha256: String
        public var bytes: Int64
        public var summary: TreeSummary
        /// Sockets cannot be represented in tar; they (and their further names) are listed here, not written.
        public var skippedSockets: [String]
    }

    public init() {}

    /// Streams the tree as a pax tar into `fd` (a pipe to another tool); returns the bytes written.
    @discardableResult
    public func stream(_ tree: FileTree, to fd: Int32, label: String) throws -> Int64 {
        let sink = FileSink(fd: fd, displayName: label)
        _ = try write(tree.entries(), into: sink, label: label, onData: { _ in })
        return sink.byteCount
    }

    public func export(_ tree: FileTree, to path: String, force: Bool, progress: ProgressReporter? = nil) throws
        -> Report
    {
        let output = try AtomicOutput(path: path, force: force)
        var committed = false
        defer { if !committed { output.abandon() } }
        let entries = tree.entries()
        let total = entries.reduce(Int64(0)) { sum, entry in
            if case .regularFile(let content) = entry.kind { return sum + content.size }
            return sum
        }
        let sink = FileSink(fd: output.fd, displayName: output.path, direct: true)
        progress?.begin("writing \(URL(fileURLWithPath: path).lastPathComponent)", total: total)
        var written: Int64 = 0
        let (summary, skipped) = try write(entries, into: sink, label: path) { count in
            written += Int64(count)
            progress?.update(written)
        }
        progress?.end()
        try output.commit()
        committed = true
        return Report(
            output: output.path, sha256: sink.digest(), bytes: sink.byteCount, summary: summary, skippedSockets: skipped
        )
    }

    /// Writes every entry but sockets, which tar cannot hold, and further names of a socket, which would
    /// be links to nothing.
    private func write(
        _ entries: [FileEntry], into sink: FileSink, label: String,
        onData: (Int) -> Void
    ) throws -> (TreeSummary, [String]) {
        let writer = try ArchiveWriter(format: .pax, sink: sink, label: label)
        var summary = TreeSummary()
        var skipped: [String] = []
        var skippedSockets = Set<String>()
        for entry in entries {
            if case .socket = entry.kind {
                skipped.append(entry.path)
                skippedSockets.insert(entry.path)
                continue
            }
            if case .hardlink(let target) = entry.kind, skippedSockets.contains(target) {
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
                    onData(chunk.count)
                }
            }
        }
        try writer.finish()
        return (summary, skipped)
    }
}

/// What an export wrote: entries by kind, and the bytes of regular file content (each inode once).
public struct TreeSummary: Codable, Equatable, Sendable {
    public var entries = 0
    public var byKind: [String: Int] = [:]
    public var contentBytes: Int64 = 0
    public init() {}
}
