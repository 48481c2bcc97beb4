import Core
import Foundation

/// An ext4 root read in place through debugfs, for `gvlt inspect`. debugfs resolves paths inside
/// the file system (a symlink on the way is followed there, never on the host), and each file's
/// type and size are checked before anything is read.
struct Ext4View {
    let label: String
    private let debugfs: String
    /// `PATH?offset=N`, how e2fsprogs names a file system that starts inside a disk image. PATH is a
    /// link in scratch to the image, so a `?` in the user's path cannot be misread.
    private let device: String
    private let scratch: String

    init(image: String, offset: Int64, scratch: String) throws {
        label = "\(image) (root partition)"
        debugfs = try Ext4Image.debugfs.require()
        let link = scratch + "/ext4-root"
        try? FileManager.default.removeItem(atPath: link)
        let absolute = image.hasPrefix("/") ? image : FileManager.default.currentDirectoryPath + "/" + image
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: absolute)
        device = "\(link)?offset=\(offset)"
        self.scratch = scratch
    }

    private func request(_ command: String) throws -> String {
        try HostCommand.run(debugfs, ["-R", command, device], check: false).output
    }

    /// The file system's size: its block count times its block size.
    func bytes() throws -> Int64? {
        let stats = try request("stats")
        func field(_ name: String) -> Int64? {
            stats.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                // checked: Int64(String) is nil when the text does not fit
                .flatMap { Int64($0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)) }
        }
        guard let blocks = field("Block count"), let size = field("Block size") else { return nil }
        let (product, overflow) = blocks.multipliedReportingOverflow(by: size)
        return overflow ? nil : product
    }

    /// A regular file's size, nil when `path` is missing; an error when it is something else.
    private func regularFileSize(_ path: String) throws -> Int64? {
        let stat = try request("stat \"\(path)\"")
        let lines = stat.split(separator: "\n")
        guard let typeLine = lines.first(where: { $0.contains("Type: ") }) else { return nil }
        guard typeLine.contains("Type: regular") else {
            throw InputError("\(label): \(path) is not a regular file")
        }
        // "User:     0   Group:     0   Project:     0   Size: 1234"
        guard let sizeLine = lines.first(where: { $0.contains("Size: ") }),
            let size = sizeLine.components(separatedBy: "Size: ").last.flatMap({
                // checked: Int64(String) is nil when the text does not fit
                Int64($0.trimmingCharacters(in: .whitespaces))
            })
        else { throw InputError("\(label): debugfs gave no size for \(path)") }
        return size
    }

    /// The bytes of the regular file at `path`, nil when there is none; larger than `limit` is an error.
    func contents(_ path: String, limit: Int) throws -> [UInt8]? {
        guard !path.contains("\""), !path.contains("\n") else { return nil }
        guard let size = try regularFileSize(path) else { return nil }
        // checked: Int to Int64 widens
        guard size <= Int64(limit) else {
            throw InputError("\(label): \(path) is \(size) bytes, more than the \(limit) inspect reads")
        }
        // debugfs writes the copy where we say, in scratch: the image names nothing on the host.
        let copy = scratch + "/ext4-file"
        try? FileManager.default.removeItem(atPath: copy)
        defer { try? FileManager.default.removeItem(atPath: copy) }
        _ = try request("dump \"\(path)\" \"\(copy)\"")
        guard let data = FileManager.default.contents(atPath: copy), data.count == size else {
            throw InputError("\(label): \(path) could not be read back whole")
        }
        return [UInt8](data)
    }
}
