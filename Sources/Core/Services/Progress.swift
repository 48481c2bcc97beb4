import Foundation

/// Progress for long steps, on stderr: a redrawn bar on a terminal, one line per step otherwise,
/// nothing when quiet. It also records each step's duration for `--json` reports.
public final class ProgressReporter: @unchecked Sendable {
    public enum Mode { case bar, lines, quiet }

    public let mode: Mode
    private let lock = NSLock()
    private var step: String?
    private var total: Int64 = 0
    private var current: Int64 = 0
    private var started = Date()
    private var lastDraw = Date.distantPast
    public private(set) var timings: [(step: String, seconds: Double)] = []

    public init(mode: Mode) {
        self.mode = mode
    }

    /// A bar line that a failure interrupted; closed before an error message is printed.
    private static let openLine = NSLock()
    nonisolated(unsafe) private static var lineIsOpen = false

    /// Ends a bar that is still drawn, so that what follows starts on its own line.
    public static func closeOpenLine() {
        openLine.withLock {
            if lineIsOpen { FileHandle.standardError.write("\n".data(using: .utf8)!) }
            lineIsOpen = false
        }
    }

    /// Bars on a TTY, lines otherwise, nothing with `quiet`.
    public static func automatic(quiet: Bool) -> ProgressReporter {
        ProgressReporter(mode: quiet ? .quiet : (isatty(STDERR_FILENO) != 0 ? .bar : .lines))
    }

    public func begin(_ name: String, total: Int64 = 0) {
        lock.withLock {
            step = name
            self.total = total
            current = 0
            started = Date()
            lastDraw = .distantPast
            switch mode {
            case .lines: emit("\(name)…\n")
            case .bar: draw(force: true)
            case .quiet: break
            }
        }
    }

    public func update(_ value: Int64) {
        lock.withLock {
            current = value
            if mode == .bar { draw(force: false) }
        }
    }

    public func end() {
        lock.withLock {
            guard let name = step else { return }
            let seconds = Date().timeIntervalSince(started)
            timings.append((name, seconds))
            switch mode {
            case .bar:
                current = total
                draw(force: true)
                emit(String(format: " %.1fs\n", seconds))
                Self.openLine.withLock { Self.lineIsOpen = false }
            case .lines:
                emit(String(format: "%@ done (%.1fs)\n", name, seconds))
            case .quiet: break
            }
            step = nil
        }
    }

    /// A step timed elsewhere (one that drew its own progress), for the `--json` timings.
    public func record(step name: String, seconds: Double) {
        lock.withLock { timings.append((name, seconds)) }
    }

    /// One message line within the current step (a plugin's progress), unless quiet.
    public func note(_ text: String) {
        lock.withLock {
            switch mode {
            case .quiet: return
            case .bar:
                Self.openLine.withLock { Self.lineIsOpen = false }
                emit("\r\u{1B}[2K" + text + "\n")
                draw(force: true)
            case .lines: emit(text + "\n")
            }
        }
    }

    /// Runs `body` as one step.
    @discardableResult
    public func step<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        begin(name)
        defer { end() }
        return try body()
    }

    private func draw(force: Bool) {
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) > 0.1, let name = step else { return }
        lastDraw = now
        Self.openLine.withLock { Self.lineIsOpen = true }
        var line = "\r\u{1B}[2K" + name
        if total > 0 {
            let fraction = min(1, Double(current) / Double(total))
            let width = 30
            let filled = Int(fraction * Double(width))
            line += " [" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
            line += String(format: " %3d%% %@/%@", Int(fraction * 100), Self.bytes(current), Self.bytes(total))
        }
        emit(line)
    }

    private func emit(_ text: String) {
        FileHandle.standardError.write(text.data(using: .utf8)!)
    }

    public static func bytes(_ count: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }
}
