import Foundation

/// Reads a small file a user names (an ops manifest, a task file, a build config, plugins.json)
/// with a bound on its size. These files are a few KiB; a bound keeps a huge or endless one (a
/// device, a FIFO, a mistaken path to an image) from taking the host's memory.
public enum ConfigFile {
    /// Far above any real manifest or task file, far below what hurts.
    public static let sizeLimit = 4 << 20

    /// The bytes of `path`, which is called `what` in errors (e.g. "manifest m.json"); `hint` says
    /// how to name another file.
    public static func read(_ path: String, what: String, hint: String, limit: Int = sizeLimit) throws -> Data {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw InputError(
                "\(what) does not exist or cannot be read (\(String(cString: strerror(errno))))", hint: hint)
        }
        if info.st_mode & S_IFMT == S_IFDIR { throw InputError("\(what) is a directory, not a file", hint: hint) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw InputError("\(what) cannot be read (\(String(cString: strerror(errno))))", hint: hint)
        }
        defer { close(fd) }
        // Read one byte past the bound, so a file that grows or a device without a size is caught too.
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while data.count <= limit {
            let got = Foundation.read(fd, &chunk, min(chunk.count, limit + 1 - data.count))
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else {
                throw InputError("\(what) cannot be read (\(String(cString: strerror(errno))))", hint: hint)
            }
            if got == 0 { return data }
            data.append(contentsOf: chunk[0..<got])
        }
        throw InputError(
            "\(what) is larger than \(limit >> 20) MiB, which no real one is", hint: "check the path; \(hint)")
    }

    /// The same, as UTF-8 text.
    public static func text(_ path: String, what: String, hint: String, limit: Int = sizeLimit) throws -> String {
        let data = try read(path, what: what, hint: hint, limit: limit)
        guard let text = String(data: data, encoding: .utf8) else {
            throw InputError("\(what) is not UTF-8 text", hint: hint)
        }
        return text
    }
}
