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
    let outcome = OverlapOutcome<Background>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        outcome.value = Result { try background() }
        done.signal()
    }
    // The default 512 KiB is tight for the Swift code the background runs (tree and archive writers).
    thread.stackSize = 8 << 20
    thread.start()
    let front = Result { try foreground() }
    done.wait()
    return (try front.get(), try outcome.value!.get())
}

private final class OverlapOutcome<Value>: @unchecked Sendable {
    var value: Result<Value, Error>?
}
