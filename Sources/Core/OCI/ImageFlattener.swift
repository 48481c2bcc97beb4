import Dispatch
import Foundation
import Logging

/// Flattens an image's layers into one tree. Layers are read in parallel (each is an independent
/// decompress + hash + parse) and applied strictly in order.
public struct ImageFlattener {
    public var jobs: Int
    public var scratchDirectory: String
    public var logger: Logger?
    public var progress: ProgressReporter?
    /// The user's bound on what the layers expand to; nil for the default (see ExpansionBudget).
    public var maximumExpandedSize: Int64?

    public init(
        jobs: Int = ProcessInfo.processInfo.activeProcessorCount, scratchDirectory: String,
        logger: Logger? = nil, progress: ProgressReporter? = nil, maximumExpandedSize: Int64? = nil
    ) {
        self.maximumExpandedSize = maximumExpandedSize
        self.jobs = max(1, jobs)
        self.scratchDirectory = scratchDirectory
        self.logger = logger
        self.progress = progress
    }

    public func flatten(_ layers: [LayerBlob], into tree: FileTree = FileTree()) throws -> FileTree {
        let total = layers.reduce(Int64(0)) { $0 + $1.length }
        progress?.begin("reading \(layers.count) layer\(layers.count == 1 ? "" : "s")", total: total)
        var results = [Result<ParsedLayer, Error>?](repeating: nil, count: layers.count)
        var done = [Int64](repeating: 0, count: layers.count)
        var next = 0
        let lock = NSLock()
        let cancel = CancellationFlag()
        let budget = ExpansionBudget(storedBytes: total, maximum: maximumExpandedSize)
        let workers = min(jobs, layers.count)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let index: Int? = lock.withLock {
                    guard next < layers.count, !cancel.isCancelled else { return nil }
                    defer { next += 1 }
                    return next
                }
                guard let index else { return }
                let result = Result {
                    try LayerReader.parse(
                        layers[index], scratchDirectory: scratchDirectory, cancel: cancel,
                        budget: budget, logger: logger
                    ) { bytes in
                        let sum: Int64 = lock.withLock {
                            done[index] = bytes
                            return done.reduce(0, +)
                        }
                        progress?.update(sum)
                    }
                }
                if case .failure = result { cancel.cancel() }
                lock.withLock { results[index] = result }
            }
        }
        // The lowest failing layer's error is the one to report; later ones may only be cancellations.
        for result in results {
            if case .failure(let error)? = result, !(error is BuildCancelled) { throw error }
        }
        progress?.end()
        let flattener = LayerFlattener(tree: tree)
        for result in results {
            guard case .success(let layer)? = result else { throw BuildCancelled() }
            try flattener.apply(layer)
        }
        return tree
    }
}
