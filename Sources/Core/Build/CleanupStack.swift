/// The undo work of a pipeline's steps (Packer's multistep): each step that leaves something behind
/// pushes how to remove it, and `unwind` runs them newest first, on success and failure alike.
/// SIGINT/SIGTERM are covered separately by `Cleanup.shared`, since no `defer` runs then.
public final class CleanupStack {
    private var actions: [(step: String, action: () -> Void)] = []

    public init() {}

    public func push(_ step: String, _ action: @escaping () -> Void) {
        actions.append((step, action))
    }

    /// The steps whose cleanups are still to run, oldest first.
    public var pending: [String] { actions.map(\.step) }

    public func unwind() {
        while let last = actions.popLast() { last.action() }
    }
}
