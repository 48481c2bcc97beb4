import Core
import Foundation

/// Progress of parallel downloads: on a terminal, one line per transfer with its bytes and rate and
/// a total line, redrawn in place; otherwise one line as each transfer ends and the total at the end;
/// nothing when quiet.
public final class TransferProgress: @unchecked Sendable {
    private struct Transfer {
        var label: String
        var total: Int64?
        var bytes: Int64 = 0
        var started: Date?
        var finished: Date?
        var cached = false
    }

    private let mode: ProgressReporter.Mode
    private let title: String
    private let lock = NSLock()
    private var transfers: [Transfer] = []
    private var drawnLines = 0
    private var lastDraw = Date.distantPast
    private let started = Date()

    public init(mode: ProgressReporter.Mode, title: String) {
        self.mode = mode
        self.title = title
    }

    /// A transfer to show; `cached` ones are listed as such and cost nothing.
    @discardableResult
    public func add(_ label: String, total: Int64?, cached: Bool = false) -> Int {
        lock.withLock {
            transfers.append(Transfer(label: label, total: total, cached: cached))
            return transfers.count - 1
        }
    }

    public func update(_ index: Int, bytes: Int64) {
        lock.withLock {
            if transfers[index].started == nil { transfers[index].started = Date() }
            transfers[index].bytes = bytes
            if mode == .bar { draw(force: false) }
        }
    }

    public func finish(_ index: Int) {
        lock.withLock {
            transfers[index].finished = Date()
            switch mode {
            case .bar: draw(force: true)
            case .lines: emit("  " + line(transfers[index]) + "\n")
            case .quiet: break
            }
        }
    }

    /// The first drawing (before any byte), so the user sees what will be fetched.
    public func start() {
        lock.withLock {
            switch mode {
            case .bar: draw(force: true)
            case .lines: emit("\(title)…\n")
            case .quiet: break
            }
        }
    }

    /// A message line above the transfers (a retry), which stay drawn below it.
    public func message(_ text: String) {
        lock.withLock {
            switch mode {
            case .bar:
                let up = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
                emit(up + "\r\u{1B}[2K" + text + "\n")
                drawnLines = 0
                draw(force: true)
            case .lines: emit(text + "\n")
            case .quiet: break
            }
        }
    }

    /// The total line, last.
    public func end() {
        lock.withLock {
            switch mode {
            case .bar: draw(force: true)
            case .lines: emit("  " + totalLine() + "\n")
            case .quiet: break
            }
        }
    }

    public var downloadedBytes: Int64 { lock.withLock { transfers.filter { !$0.cached }.reduce(0) { $0 + $1.bytes } } }

    private func line(_ transfer: Transfer) -> String {
        if transfer.cached {
            return "\(transfer.label)  \(transfer.total.map(ProgressReporter.bytes) ?? "")  cached"
        }
        let size =
            transfer.total.map { "\(ProgressReporter.bytes(transfer.bytes)) / \(ProgressReporter.bytes($0))" }
            ?? ProgressReporter.bytes(transfer.bytes)
        guard let begun = transfer.started else { return "\(transfer.label)  \(size)  waiting" }
        let seconds = max(0.001, (transfer.finished ?? Date()).timeIntervalSince(begun))
        let rate = "\(ProgressReporter.bytes(Int64(Double(transfer.bytes) / seconds)))/s"
        return transfer.finished != nil
            ? "\(transfer.label)  \(size)  done in \(String(format: "%.1f", seconds)) s (\(rate))"
            : "\(transfer.label)  \(size)  \(rate)"
    }

    private func totalLine() -> String {
        let fetched = transfers.filter { !$0.cached }
        let bytes = fetched.reduce(0) { $0 + $1.bytes }
        let total = fetched.reduce(Int64(0)) { $0 + ($1.total ?? $1.bytes) }
        let seconds = max(0.001, Date().timeIntervalSince(started))
        let cached = transfers.count - fetched.count
        return
            "total: \(fetched.count) downloaded, \(cached) cached  \(ProgressReporter.bytes(bytes)) / \(ProgressReporter.bytes(total))  \(ProgressReporter.bytes(Int64(Double(bytes) / seconds)))/s"
    }

    private func draw(force: Bool) {
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = now
        var text = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
        let lines = [title] + transfers.map { "  " + line($0) } + ["  " + totalLine()]
        for line in lines { text += "\r\u{1B}[2K" + line + "\n" }
        drawnLines = lines.count
        emit(text)
    }

    private func emit(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
