import Foundation
import Logging

/// The JSON lines a plugin answers with (`progress`, `log`, then `result` or `error`), whichever
/// way they arrive: an exec plugin's stdout, or the string a dylib plugin returns. Progress and log
/// lines go to the host's display as they are handled.
final class PluginMessages: @unchecked Sendable {
    let plugin: String
    let progress: ProgressReporter?
    let logger: Logger?
    private let lock = NSLock()
    private var result: [String: Any]?
    private var failure: String?
    private var protocolError: String?

    init(plugin: String, progress: ProgressReporter?, logger: Logger?) {
        self.plugin = plugin
        self.progress = progress
        self.logger = logger
    }

    func handle(line: Data) {
        guard !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) else { return }
        guard let object = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any],
            let type = object["type"] as? String
        else {
            lock.withLock {
                if protocolError == nil {
                    protocolError =
                        "wrote a line that is not a \(PluginProtocol.name) message: \(String(decoding: line.prefix(200), as: UTF8.self))"
                }
            }
            return
        }
        switch type {
        case "progress": progress?.note("\(plugin): \(object["message"] as? String ?? "")")
        case "log":
            let message = "\(plugin): \(object["message"] as? String ?? "")"
            switch object["level"] as? String {
            case "debug": logger?.debug("\(message)")
            case "warning": logger?.warning("\(message)")
            case "error": logger?.error("\(message)")
            default: logger?.info("\(message)")
            }
        case "result": lock.withLock { result = object["result"] as? [String: Any] ?? [:] }
        case "error": lock.withLock { failure = object["message"] as? String ?? "(no message)" }
        default: lock.withLock { if protocolError == nil { protocolError = "sent an unknown message type `\(type)`" } }
        }
    }

    /// Whether the request is over: a result, an error, or a line that breaks the protocol.
    var isFinished: Bool { lock.withLock { result != nil || failure != nil || protocolError != nil } }

    func handle(lines data: Data) {
        for line in data.split(separator: 0x0A) { handle(line: Data(line)) }
    }

    /// The result, or the error the plugin's messages amount to. `context` is appended to errors
    /// (the plugin's stderr).
    func outcome(what: String, context: String) throws -> [String: Any]? {
        let (problem, failed, value) = lock.withLock { (protocolError, failure, result) }
        if let problem {
            throw InputError(
                "\(what) \(problem)\(context)",
                hint: "plugins write only \(PluginProtocol.name) JSON lines as their answer; diagnostics go to stderr")
        }
        if let failed { throw InputError("\(what) failed: \(failed)\(context)") }
        return value
    }
}
