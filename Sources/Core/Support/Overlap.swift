import Foundation

/// Runs `background` on a thread of its own while `foreground` runs on the caller's, and returns
/// both results. Both always finish before this returns, even when one throws: the caller's
/// cleanups (a scratch directory both write into) must not run under a job still going. The
/// foreground's error wins when both fail.
///
/// For build steps that do not depend on each other, such as the boot partition while the root
/// compresses: on two cores the serial tools would otherwise add their whole time to the build.
public func overlapping<Foreground, Background>(
    _ background: @escaping () throws -> Background, while foreground: () throws -> Foreground
) throws -> (Foreground, Background) {
    // The default 512 KiB is tight for the Swift code the background runs (tree and archive writers).
    let join = startThread(stackSize: 8 << 20, background)
    let front = Result { try foreground() }
    let back = Result { try join() }
    return (try front.get(), try back.get())
}

/// Work started on a thread of its own, to be waited for before what depends on it: `wait` may be
/// called any number of times, and returns once the work is done.
public final class BackgroundWork: @unchecked Sendable {
    private let join: () throws -> Void
    private let lock = NSLock()
    private var finished = false

    public init(_ body: @escaping () -> Void) {
        join = startThread(stackSize: 8 << 20, body)
    }

    public func wait() {
        lock.withLock {
            guard !finished else { return }
            try? join()
            finished = true
        }
    }
}

/// Starts `body` on a new thread with a stack of `stackSize` bytes; the returned function waits
/// for it and gives its result.
func startThread<T>(stackSize: Int, _ body: @escaping () throws -> T) -> () throws -> T {
    let box = ThreadResult<T>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        box.value = Result { try body() }
        done.signal()
    }
    thread.stackSize = stackSize
    thread.start()
    return {
        done.wait()
        return try box.value!.get()
    }
}

private final class ThreadResult<Value>: @unchecked Sendable {
    var value: Result<Value, Error>?
}
