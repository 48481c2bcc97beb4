import Foundation
import Logging

/// swift-log handler for the CLI: `warning: …` lines on stderr, filtered by level.
public struct StderrLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let prefix: String
        switch event.level {
        case .trace, .debug: prefix = "debug"
        case .info, .notice: prefix = "info"
        case .warning: prefix = "warning"
        case .error, .critical: prefix = "error"
        }
        FileHandle.standardError.write("\(prefix): \(event.message)\n".data(using: .utf8)!)
    }

    /// Installs the handler once per process; later calls only matter in tests and are ignored.
    public static func bootstrap(level: Logger.Level) {
        bootstrapOnce(level)
    }

    private static let bootstrapOnce: (Logger.Level) -> Void = {
        var done = false
        let lock = NSLock()
        return { level in
            lock.withLock {
                guard !done else { return }
                done = true
                LoggingSystem.bootstrap { StderrLogHandler(label: $0, level: level) }
            }
        }
    }()
}
