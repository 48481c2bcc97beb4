import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Reads a child's pipe on a thread of its own with poll(2) and read(2), handing each chunk to
/// `each` as it comes.
///
/// Not Foundation's `readabilityHandler`: its libdispatch read sources, set up and torn down by
/// commands on two threads at once (a build runs the boot partition's tools while the root
/// compresses), lose output and crash libdispatch's event loop on Linux (`HostCommandTests`
/// reproduces both with the handler). A blocking read never registers the pipe with libdispatch.
public final class PipeReader: @unchecked Sendable {
    private let fd: Int32
    private let each: (Data) -> Void
    private let keep: Bool
    private let lock = NSLock()
    private var stopAfter: Int?
    private var join: (() throws -> Data)?
    private var result: Data?

    /// Starts reading `fd`, which stays owned by the caller and open until the reader is done.
    /// Without `keep`, chunks go to `each` alone and `finish` returns nothing: a plugin's output
    /// is consumed as it comes and need not be held twice.
    public init(_ fd: Int32, keep: Bool = true, each: @escaping (Data) -> Void = { _ in }) {
        self.fd = fd
        self.keep = keep
        self.each = each
        join = startThread(stackSize: 256 << 10) { [self] in loop() }
    }

    /// Waits for the end of the stream (every writer closed it) and returns all that was read (when kept).
    public func finish() -> Data {
        if let result = lock.withLock({ result }) { return result }
        let data = (try? join?()) ?? Data()
        lock.withLock { result = data }
        return data
    }

    /// Stops without waiting for the end of the stream, which a grandchild left running may hold open
    /// for ever: what the pipe holds now is still read, up to `limit` bytes more.
    public func stop(draining limit: Int) -> Data {
        lock.withLock { stopAfter = stopAfter ?? limit }
        return finish()
    }

    private func loop() -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var drained = 0
        while true {
            let limit = lock.withLock { stopAfter }
            if let limit, drained >= limit { return data }
            // While running, wake up now and then to see a stop; once stopping, take only what is there.
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, limit == nil ? 100 : 0)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 {
                if limit != nil { return data }
                continue
            }
            guard ready > 0 else { return data }
            let want = limit.map { min(buffer.count, $0 - drained) } ?? buffer.count
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, want) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { return data }
            let chunk = Data(buffer[0..<got])
            if keep { data.append(chunk) }
            if limit != nil { drained += got }
            each(chunk)
        }
    }
}
