import Foundation

/// A plugin's stdout cut into protocol lines, none longer than `limit`: the same rule for one-shot and
/// streaming plugins.
struct PluginLineSplitter {
    let limit: Int
    private var buffer = Data()
    /// How much of `buffer` is known to hold no newline, so each chunk is searched once.
    private var scanned = 0

    init(limit: Int = PluginProtocol.outputLimit) { self.limit = limit }

    /// Why the plugin is killed when a line passes the limit.
    var overflowReason: String { "a stdout line longer than \(limit >> 20) MiB" }

    /// The lines `chunk` completes, and whether the unfinished line is now past the limit (it is then
    /// dropped: the plugin is killed for it).
    mutating func append(_ chunk: Data) -> (lines: [Data], overflowed: Bool) {
        buffer.append(chunk)
        var lines: [Data] = []
        while let newline = buffer.firstIndex(of: 0x0A, from: buffer.startIndex + scanned) {
            lines.append(Data(buffer[buffer.startIndex..<newline]))
            buffer.removeSubrange(buffer.startIndex...newline)
            scanned = 0
        }
        scanned = buffer.count
        guard buffer.count > limit else { return (lines, false) }
        buffer = Data()
        scanned = 0
        return (lines, true)
    }

    /// The last line when the output ended without a newline.
    mutating func remainder() -> Data? {
        defer {
            buffer = Data()
            scanned = 0
        }
        return buffer.isEmpty ? nil : buffer
    }
}

/// What a plugin wrote to stderr: the tail an error shows, and the total it is bounded by.
struct PluginStderr {
    let limit: Int
    private(set) var tail = Data()
    private(set) var total = 0

    init(limit: Int = PluginProtocol.outputLimit) { self.limit = limit }

    var overflowReason: String { "more than \(limit >> 20) MiB on stderr" }

    /// Whether the total is now past the limit.
    mutating func append(_ chunk: Data) -> Bool {
        tail.append(chunk)
        total += chunk.count
        // Keep about the last 64 KiB: more than the 20 lines of 300 characters an error shows.
        if tail.count > 1 << 20 { tail = tail.suffix(64 << 10) }
        return total > limit
    }

    var note: String { PluginProtocol.stderrNote(String(decoding: tail, as: UTF8.self)) }
}
