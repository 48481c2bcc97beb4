import Foundation

/// Cuts the program's own output out of a Firestarter guest's console. The console carries the
/// firmware, the boot loader, the kernel, gvlt-init and the program; the init marks its lines with
/// `gvlt-init: ` and says `starting CMD` just before the program starts and `exit-…` when it ended,
/// and the kernel stamps its lines (`[    1.234567] …`). What is left between the two init lines is
/// the program's: its stdout and stderr, which share the one console on a worker too. Carriage
/// returns the serial line adds before newlines are dropped.
public final class ProgramOutput {
    private enum State { case booting, running, ended }
    private var state = State.booting
    private var pending = Data()
    private let emit: (Data) -> Void

    public init(emit: @escaping (Data) -> Void) {
        self.emit = emit
    }

    public func consume(_ chunk: Data) {
        pending.append(chunk)
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = pending[pending.startIndex..<newline]
            pending.removeSubrange(pending.startIndex...newline)
            take(line, complete: true)
        }
    }

    /// The last line, when the console ended without a newline.
    public func finish() {
        if !pending.isEmpty { take(pending, complete: false) }
        pending = Data()
    }

    private static let marker = Data(InitConsole.marker.utf8)

    private func take(_ raw: Data, complete: Bool) {
        var line = raw
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        switch state {
        case .booting:
            if let range = line.range(of: Self.marker), line[range.upperBound...].starts(with: Data("starting ".utf8)) {
                state = .running
            }
        case .running:
            guard let range = line.range(of: Self.marker) else {
                if !Self.isKernelLine(line) { emit(line + (complete ? Data([0x0A]) : Data())) }
                return
            }
            // A program line without its newline, then the init's line.
            if range.lowerBound > line.startIndex { emit(Data(line[line.startIndex..<range.lowerBound])) }
            if line[range.upperBound...].starts(with: Data("exit-".utf8)) { state = .ended }
        case .ended:
            break
        }
    }

    /// `[ 12.345678] …`: printk's timestamp.
    public static func isKernelLine(_ line: Data) -> Bool {
        guard line.first == UInt8(ascii: "[") else { return false }
        var sawDigit = false
        var sawDot = false
        for byte in line.dropFirst() {
            switch byte {
            case UInt8(ascii: " ") where !sawDigit: continue
            case UInt8(ascii: "0")...UInt8(ascii: "9"): sawDigit = true
            case UInt8(ascii: ".") where sawDigit && !sawDot: sawDot = true
            case UInt8(ascii: "]"): return sawDigit && sawDot
            default: return false
            }
        }
        return false
    }
}

/// The init's console conventions (Sources/Backends/LinuxVM/GuestInit/Console.swift), for the host side.
enum InitConsole {
    static let marker = "gvlt-init: "
}
