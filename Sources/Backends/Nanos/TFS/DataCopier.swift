import Core
import Crypto
import Foundation

/// Copies file contents into the volume and hashes them for the UUID, with the hashing on a second
/// thread: reading and writing are memory copies in the kernel, hashing is the other big cost, and
/// on two cores they overlap. Buffers rotate through a small pool, so nothing is copied twice, and
/// the hash sees the chunks in the order they were written, so the digest is deterministic.
final class DataCopier {
    static let bufferSize = 1 << 20
    static let bufferCount = 4

    private let buffers: [UnsafeMutableRawBufferPointer]
    private let free = DispatchSemaphore(value: DataCopier.bufferCount)
    private let filled = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var queue: [(index: Int, count: Int)] = []
    private var next = 0
    private var hasher = SHA256()
    private let done = DispatchSemaphore(value: 0)
    private var finished = false

    init() {
        buffers = (0..<Self.bufferCount).map { _ in .allocate(byteCount: Self.bufferSize, alignment: 4096) }
        let thread = Thread { [unowned self] in self.hashLoop() }
        thread.stackSize = 1 << 20
        thread.start()
    }

    deinit {
        if !finished { _ = finish() }
        for buffer in buffers { buffer.deallocate() }
    }

    private func hashLoop() {
        while true {
            filled.wait()
            let item = lock.withLock { queue.removeFirst() }
            if item.index < 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffers[item.index][0..<item.count]))
            free.signal()
        }
        done.signal()
    }

    // The buffer being filled and how full it is. Small files share a buffer, so the hash thread is
    // woken once per MiB, not once per file.
    private var current = -1
    private var fill = 0

    private func acquire() {
        free.wait()
        current = next
        next = (next + 1) % Self.bufferCount
        fill = 0
    }

    private func submit() {
        guard current >= 0, fill > 0 else { return }
        let item = (current, fill)
        lock.withLock { queue.append(item) }
        filled.signal()
        current = -1
    }

    /// Copies `content` to `file` at byte `offset`; returns the bytes copied.
    func copy(_ content: FileContent, to file: SharedFile, at offset: Int64, path: String) throws -> Int64 {
        guard let source = try content.openRange() else { return 0 }
        var copied: Int64 = 0
        while copied < source.length {
            if current < 0 || fill == Self.bufferSize {
                submit()
                acquire()
            }
            let want = Int(min(Int64(Self.bufferSize - fill), source.length - copied))
            let slice = UnsafeMutableRawBufferPointer(rebasing: buffers[current][fill..<fill + want])
            let got = try source.file.read(into: slice, at: source.offset + copied)
            guard got == want else {
                throw InputError(
                    "\(path) shrank while the image was being written", hint: "build again once it no longer changes")
            }
            try file.write(UnsafeRawBufferPointer(slice), at: offset + copied)
            fill += got
            copied += Int64(got)
        }
        return copied
    }

    /// Waits for the hash thread and returns the digest of everything copied.
    func finish() -> [UInt8] {
        finished = true
        submit()
        lock.withLock { queue.append((-1, 0)) }
        filled.signal()
        done.wait()
        return Array(hasher.finalize())
    }
}
