import Core
import Foundation
import Nanos

// gvlt-bench-tfs: the time to write the root TFS of a 10,000-file / 200 MB tree against a floor
// measured in the same run: copying the same bytes, read the same way, into one preallocated file.
// Usage: swift run -c release gvlt-bench-tfs [--files N] [--mib M] [--runs R] [--work DIR]

var files = 10_000
var mib = 200
var runs = 5
var work = NSTemporaryDirectory() + "gvlt-bench-tfs"
var arguments = Array(CommandLine.arguments.dropFirst())
while !arguments.isEmpty {
    let flag = arguments.removeFirst()
    guard let value = arguments.first else { fatalError("\(flag) needs a value") }
    arguments.removeFirst()
    switch flag {
    case "--files": files = Int(value)!
    case "--mib": mib = Int(value)!
    case "--runs": runs = Int(value)!
    case "--work": work = value
    default: fatalError("unknown option \(flag)")
    }
}

let tree = work + "/tree"
let marker = tree + "/.complete-\(files)-\(mib)"
if !FileManager.default.fileExists(atPath: marker) {
    try? FileManager.default.removeItem(atPath: tree)
    // Sizes vary (log-uniform-ish, 0 bytes to a few MiB) but add up to the target exactly.
    var state: UInt64 = 0x9E3779B97F4A7C15
    func next() -> UInt64 { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state }
    var sizes = (0..<files).map { _ in Int(next() % 1000) * Int(next() % 1000) / 10 }
    let scale = Double(mib << 20) / Double(sizes.reduce(0, +))
    sizes = sizes.map { Int(Double($0) * scale) }
    sizes[0] += (mib << 20) - sizes.reduce(0, +)
    var block = [UInt8](repeating: 0, count: 1 << 20)
    for index in 0..<files {
        let directory = tree + "/d\(index % 20)/e\(index % 7)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fd = open(directory + "/file-\(index)", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var left = sizes[index]
        while left > 0 {
            for i in stride(from: 0, to: block.count, by: 8) {
                withUnsafeBytes(of: next()) { block.replaceSubrange(i..<i + 8, with: $0) }
            }
            let count = min(left, block.count)
            _ = block.withUnsafeBytes { write(fd, $0.baseAddress, count) }
            left -= count
        }
        close(fd)
    }
    _ = FileManager.default.createFile(atPath: marker, contents: nil)
}

func scan() throws -> (TFSNode, [FileContent]) {
    let root = TFSNode.directory()
    var list: [FileContent] = []
    func walk(_ host: String, _ image: [String]) throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: host).sorted() where !name.hasPrefix(".") {
            let path = host + "/" + name
            var st = stat()
            _ = lstat(path, &st)
            if st.st_mode & S_IFMT == S_IFDIR {
                try walk(path, image + [name])
            } else {
                let content = FileContent.hostFile(path: path, size: Int64(st.st_size), identity: FileIdentity(st))
                try root.set(image + [name], TFSNode(.file(content)), what: "bench")
                list.append(content)
            }
        }
    }
    try walk(tree, [])
    return (root, list)
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

let output = work + "/out.img"
var floors: [Double] = []
var writes: [Double] = []
var volumeBytes: Int64 = 0
for run in 0...runs {
    unlink(output)
    let floor = try seconds {
        let (_, list) = try scan()
        let total = list.reduce(Int64(0)) { $0 + ($1.size + 511) / 512 * 512 }
        let fd = open(output, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        _ = posix_fallocate(fd, 0, off_t(total))
        let file = SharedFile(fd: fd, displayName: output)
        var offset: Int64 = 0
        for content in list {
            try content.stream { chunk in
                try file.write(chunk, at: offset); offset += Int64(chunk.count)
            }
            offset = (offset + 511) / 512 * 512
        }
        _ = fsync(fd)
    }
    unlink(output)
    let ours = try seconds {
        let (root, _) = try scan()
        let fd = open(output, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        let file = SharedFile(fd: fd, displayName: output)
        let result = try TFSWriter(rootKeys: [("program", .string("/bench"))]).write(root, to: file, at: 0)
        try file.truncate(to: result.size)
        _ = fsync(fd)
        volumeBytes = result.size
    }
    // The first round warms the page cache for both and is not counted.
    if run > 0 {
        floors.append(floor)
        writes.append(ours)
    }
}
let best = (floor: floors.min()!, tfs: writes.min()!)
print(String(format: "tree: %d files, %d MiB; volume %.1f MiB", files, mib, Double(volumeBytes) / 1048576))
print(
    String(
        format: "floor (copy into one preallocated file): best %.3f s of %@", best.floor,
        floors.map { String(format: "%.3f", $0) }.joined(separator: " ")))
print(
    String(
        format: "TFS write:                               best %.3f s of %@", best.tfs,
        writes.map { String(format: "%.3f", $0) }.joined(separator: " ")))
print(String(format: "ratio %.2fx (target <= 1.3x)", best.tfs / best.floor))
unlink(output)
if ProcessInfo.processInfo.environment["GVLT_BENCH_BREAKDOWN"] != nil {
    let scanTime = try seconds { _ = try scan() }
    let (root, _) = try scan()
    let empty = TFSNode.directory()
    func strip(_ node: TFSNode, _ into: TFSNode, _ path: [String]) throws {
        for (name, child) in node.children {
            if child.isDirectory {
                try into.set(path + [name], TFSNode.directory(), what: "b"); try strip(child, into, path + [name])
            } else {
                try into.set(path + [name], TFSNode(.file(.empty)), what: "b")
            }
        }
    }
    try strip(root, empty, [])
    unlink(output)
    let metaTime = try seconds {
        let fd = open(output, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        let file = SharedFile(fd: fd, displayName: output)
        _ = try TFSWriter().write(empty, to: file, at: 0)
    }
    print(String(format: "breakdown: scan %.3f s, metadata-only write %.3f s", scanTime, metaTime))
    unlink(output)
}
