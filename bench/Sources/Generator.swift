// Generates the benchmark's input: an OCI image layout whose layers are gzip'd pax tars written by
// Core's own ArchiveWriter, with the shape of a real image (a big base layer and smaller ones on top,
// many small files and a few big ones, directories, overwrites, whiteouts, links).

import Core
import Dispatch
import Foundation

/// What was generated; saved as `bench-params.json` so a later run with the same parameters reuses it.
struct GeneratedImage: Codable {
    struct Layer: Codable {
        var digest: String
        var diffID: String
        /// Bytes of the gzip blob.
        var compressedBytes: Int64
        /// Bytes of the tar inside it (headers and padding included): what "uncompressed" means in
        /// every throughput figure.
        var uncompressedBytes: Int64
        /// Regular-file content bytes written in this layer.
        var contentBytes: Int64
        var entries: Int
        var files: Int
        var whiteouts: Int
        var overwrites: Int
    }

    struct Parameters: Codable, Equatable {
        var formatVersion: Int
        var layers: Int
        var mib: Int
        var seed: UInt64
        var gzipLevel: Int
    }

    var parameters: Parameters
    var layers: [Layer]
    /// Regular-file content over all layers, overwritten and deleted files included.
    var contentBytesWritten: Int64
    /// What the flattened tree must hold: content bytes of the surviving files (each inode once).
    var expectedFinalContentBytes: Int64
    var expectedFinalFiles: Int
    var generationSeconds: Double

    var totalCompressed: Int64 { layers.reduce(0) { $0 + $1.compressedBytes } }
    var totalUncompressed: Int64 { layers.reduce(0) { $0 + $1.uncompressedBytes } }

    static let stampName = "bench-params.json"
    static let formatVersion = 2

    func blobPath(in directory: String, _ layer: Layer) -> String {
        "\(directory)/blobs/sha256/\(layer.digest.dropFirst("sha256:".count))"
    }
}

// MARK: - Planning

/// One tar member of a planned layer. File content is synthesized later from the layer's seed.
enum PlannedEntry {
    case directory(path: String, permissions: UInt16, uid: UInt32)
    case file(path: String, size: Int, style: ContentStyle, permissions: UInt16, uid: UInt32)
    case symlink(path: String, target: String)
    case hardlink(path: String, target: String)
    case whiteout(path: String)
}

struct LayerPlan {
    var entries: [PlannedEntry]
    var seed: UInt64
    var contentBytes: Int64
    var files = 0
    var whiteouts = 0
    var overwrites = 0
}

/// Decides every layer's entries, and tracks the overlay result so the flattened tree can be checked.
struct Planner {
    let layerCount: Int
    let totalBytes: Int64
    var rng: Rng
    private let words: [String]

    // The overlay model: path -> (size, inode). Arrays keep picks deterministic (Dictionary order is not).
    private var model: [String: (size: Int64, inode: Int)] = [:]
    private var liveFiles: [String] = []
    private var pinned: Set<String> = []
    private var nextInode = 0
    private var nameCounter = 0
    private var layerZeroPackages: [String] = []

    init(layers: Int, totalBytes: Int64, seed: UInt64) {
        layerCount = layers
        self.totalBytes = totalBytes
        rng = Rng(seed: seed)
        var wordRng = Rng(seed: seed ^ 0xA11CE)
        let syllables = [
            "ka", "lo", "mi", "ne", "pu", "ra", "si", "to", "vu", "ze", "bar", "dex", "gim", "hol", "jun",
            "qua", "wex", "yor", "core", "util", "net", "io", "fs", "db", "ui", "math", "xml", "ssl"
        ]
        words = (0..<512).map { _ in
            (0..<(1 + wordRng.below(3))).map { _ in syllables[wordRng.below(syllables.count)] }.joined()
        }
    }

    /// Share of the content in layer `i`: ∝ 1/(i+2), a big base and a tail of smaller layers.
    func weight(_ i: Int) -> Double {
        let all = (0..<layerCount).reduce(0.0) { $0 + 1.0 / Double($1 + 2) }
        return (1.0 / Double(i + 2)) / all
    }

    private mutating func word() -> String { words[rng.below(words.count)] }

    private mutating func fileSize() -> Int {
        rng.chance(0.85) ? rng.logUniform(1 << 10, 64 << 10) : rng.logUniform(64 << 10, 8 << 20)
    }

    private mutating func style(forSize size: Int) -> ContentStyle {
        let u = rng.unit()
        if size < 64 << 10 {
            return u < 0.80 ? .text : u < 0.95 ? .binary : .random
        }
        return u < 0.42 ? .text : u < 0.80 ? .binary : u < 0.87 ? .random : .mixed
    }

    private static func fileExtension(_ style: ContentStyle, _ pick: Int) -> String {
        switch style {
        case .text: return [".py", ".txt", ".h", ".json", ".md", ".c", ".js", ".yaml"][pick % 8]
        case .binary: return [".so", ".o", ".bin", ".a"][pick % 4]
        case .random: return [".gz", ".png", ".jar", ".whl"][pick % 4]
        case .mixed: return ["", ".so.1", ".node"][pick % 3]
        }
    }

    private static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    private static func base(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    private static func addWithAncestors(_ directory: String, to set: inout Set<String>) {
        var d = directory
        while !d.isEmpty, set.insert(d).inserted {
            d = parent(d)
        }
    }

    /// A random live file from lower layers that nothing else in this layer touches yet.
    private mutating func pickLive(excluding taken: Set<String>) -> String? {
        for _ in 0..<64 where !liveFiles.isEmpty {
            let i = rng.below(liveFiles.count)
            let path = liveFiles[i]
            if model[path] == nil {
                // Dead (whited out): drop it from the pick list.
                liveFiles.swapAt(i, liveFiles.count - 1)
                liveFiles.removeLast()
                continue
            }
            if pinned.contains(path) || taken.contains(path) { continue }
            return path
        }
        return nil
    }

    mutating func planLayer(_ index: Int, alreadyPlanned: Int64) -> LayerPlan {
        let budget =
            index == layerCount - 1
            ? max(0, totalBytes - alreadyPlanned)
            : Int64(Double(totalBytes) * weight(index))
        var plan = LayerPlan(entries: [], seed: rng.next(), contentBytes: 0)
        var directories: Set<String> = []
        var body: [PlannedEntry] = []
        var whiteouts: [PlannedEntry] = []
        var taken: Set<String> = []
        var removedPrefixes: [String] = []
        var removedPaths: [String] = []

        // Changes to lower layers.
        if index > 0 {
            let lowerCount = liveFiles.count
            for _ in 0..<max(3, lowerCount / 250) {
                guard let path = pickLive(excluding: taken) else { break }
                taken.insert(path)
                let wh = Self.parent(path) + "/.wh." + Self.base(path)
                Self.addWithAncestors(Self.parent(path), to: &directories)
                whiteouts.append(.whiteout(path: wh))
                removedPaths.append(path)
                plan.whiteouts += 1
            }
            if index == layerCount - 1, layerCount >= 3 {
                // An opaque directory: everything the base layer put in one package is hidden.
                for candidate in layerZeroPackages where !pinned.contains(where: { $0.hasPrefix(candidate + "/") }) {
                    Self.addWithAncestors(candidate, to: &directories)
                    whiteouts.append(.whiteout(path: candidate + "/.wh..wh..opq"))
                    removedPrefixes.append(candidate + "/")
                    plan.whiteouts += 1
                    break
                }
            }
            for _ in 0..<max(3, lowerCount / 100) {
                guard let path = pickLive(excluding: taken) else { break }
                taken.insert(path)
                let size = fileSize()
                let style = style(forSize: size)
                Self.addWithAncestors(Self.parent(path), to: &directories)
                body.append(
                    .file(
                        path: path, size: size, style: style,
                        permissions: style == .binary || style == .mixed ? 0o755 : 0o644, uid: 0))
                plan.contentBytes += Int64(size)
                plan.files += 1
                plan.overwrites += 1
            }
        }

        // New packages.
        let roots = ["usr/lib", "usr/share", "opt", "usr/lib/python3/dist-packages", "usr/local/lib", "var/lib"]
        let packageCount = max(3, Int(budget / (6 << 20)))
        var packageDirs: [[String]] = []
        for k in 0..<packageCount {
            let root = roots[rng.below(roots.count)] + "/l\(index)p\(k)-" + word()
            var dirs = [root]
            for s in 0..<(1 + rng.below(4)) {
                let sub = rng.chance(0.3) && dirs.count > 1 ? dirs[1 + rng.below(dirs.count - 1)] : root
                dirs.append(sub + "/" + word() + "\(s)")
            }
            packageDirs.append(dirs)
            for d in dirs { Self.addWithAncestors(d, to: &directories) }
            if index == 0 { layerZeroPackages.append(root) }
        }
        var newFilesThisLayer: [String] = []
        while plan.contentBytes < budget {
            let dirs = packageDirs[rng.below(packageDirs.count)]
            let dir = dirs[rng.below(dirs.count)]
            let size = fileSize()
            let style = style(forSize: size)
            nameCounter += 1
            let path = dir + "/" + word() + "\(nameCounter)" + Self.fileExtension(style, rng.below(8))
            let executable = style == .binary || style == .mixed
            body.append(
                .file(
                    path: path, size: size, style: style, permissions: executable ? 0o755 : 0o644,
                    uid: rng.chance(0.1) ? 1000 : 0))
            newFilesThisLayer.append(path)
            plan.contentBytes += Int64(size)
            plan.files += 1
        }
        // A few symlinks (one per package) and hard links (to files earlier in this layer).
        for dirs in packageDirs {
            nameCounter += 1
            body.append(.symlink(path: dirs[0] + "/lib\(nameCounter).so", target: word() + ".so.1"))
        }
        for _ in 0..<min(3, newFilesThisLayer.count) {
            let target = newFilesThisLayer[rng.below(newFilesThisLayer.count)]
            let link = target + ".hl"
            guard !pinned.contains(link) else { continue }
            body.append(.hardlink(path: link, target: target))
            pinned.insert(target)
            pinned.insert(link)
        }

        // Directories first (parents before children: a prefix sorts first), then whiteouts, then the rest.
        for d in directories.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            plan.entries.append(.directory(path: d, permissions: 0o755, uid: 0))
        }
        plan.entries += whiteouts
        plan.entries += body

        // The overlay model, as LayerFlattener applies it: whiteouts first, then additions in order.
        for path in removedPaths { model[path] = nil }
        for prefix in removedPrefixes {
            for path in model.keys where path.hasPrefix(prefix) { model[path] = nil }
        }
        for entry in plan.entries {
            switch entry {
            case .file(let path, let size, _, _, _):
                if model[path] == nil { liveFiles.append(path) }
                model[path] = (Int64(size), nextInode)
                nextInode += 1
            case .hardlink(let path, let target):
                model[path] = model[target]
            default:
                break
            }
        }
        return plan
    }

    /// Content bytes and file count of the flattened tree, each inode once.
    var expectedFinal: (bytes: Int64, files: Int) {
        var seen: Set<Int> = []
        var bytes: Int64 = 0
        for (_, value) in model where seen.insert(value.inode).inserted { bytes += value.size }
        return (bytes, seen.count)
    }
}

// MARK: - Writing

enum Generator {
    static let mtime = Timestamp(seconds: 1_700_000_000)

    /// Makes sure `directory` holds the image for `parameters`, generating it if needed.
    static func ensure(
        directory: String, parameters: GeneratedImage.Parameters, jobs: Int,
        say: (String) -> Void
    ) throws -> (GeneratedImage, reused: Bool) {
        let fm = FileManager.default
        let stampPath = "\(directory)/\(GeneratedImage.stampName)"
        if let data = fm.contents(atPath: stampPath),
            let existing = try? JSONDecoder().decode(GeneratedImage.self, from: data),
            existing.parameters == parameters,
            existing.layers.allSatisfy({ fileSize(existing.blobPath(in: directory, $0)) == $0.compressedBytes }),
            fm.fileExists(atPath: "\(directory)/index.json")
        {
            return (existing, true)
        }

        // Only ever clear a directory this program made (it has the stamp) or an empty one.
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let contents = try fm.contentsOfDirectory(atPath: directory)
        if !contents.isEmpty && !fm.fileExists(atPath: stampPath) {
            throw BenchError(
                "\(directory) is not empty and was not made by gvlt-bench; give an empty or new --work directory")
        }
        for name in [GeneratedImage.stampName, "index.json", "oci-layout", "blobs"] {
            try? fm.removeItem(atPath: "\(directory)/\(name)")
        }
        try fm.createDirectory(atPath: "\(directory)/blobs/sha256", withIntermediateDirectories: true)

        let started = DispatchTime.now().uptimeNanoseconds
        var planner = Planner(layers: parameters.layers, totalBytes: Int64(parameters.mib) << 20, seed: parameters.seed)
        var plans: [LayerPlan] = []
        var planned: Int64 = 0
        for i in 0..<parameters.layers {
            let plan = planner.planLayer(i, alreadyPlanned: planned)
            planned += plan.contentBytes
            plans.append(plan)
        }
        say("generating \(parameters.layers) layers, \(planned >> 20) MiB of file content, in \(directory) …")

        // Layers are independent once planned: synthesize and compress them in parallel.
        var results = [Result<GeneratedImage.Layer, Error>?](repeating: nil, count: plans.count)
        let lock = NSLock()
        var next = 0
        DispatchQueue.concurrentPerform(iterations: max(1, min(jobs, plans.count))) { _ in
            while true {
                let index: Int? = lock.withLock {
                    guard next < plans.count else { return nil }
                    defer { next += 1 }
                    return next
                }
                guard let index else { return }
                let result = Result {
                    try writeLayer(
                        plans[index], index: index, directory: directory,
                        gzipLevel: parameters.gzipLevel)
                }
                lock.withLock { results[index] = result }
                if case .success(let layer) = result {
                    say(
                        "  layer \(index + 1): \(layer.files) files, \(layer.whiteouts) whiteouts, "
                            + "\(megabytes(layer.uncompressedBytes)) -> \(megabytes(layer.compressedBytes)) "
                            + "(gzip ratio "
                            + String(format: "%.2f", Double(layer.uncompressedBytes) / Double(layer.compressedBytes))
                            + "x)")
                }
            }
        }
        let layers = try results.map { try $0!.get() }

        // Config, manifest, index, oci-layout (shapes as in examples/make-hello-oci.py).
        let config: [String: Any] = [
            "architecture": "amd64", "os": "linux",
            "config": ["Entrypoint": ["/bin/sh"], "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "WorkingDir": "/"],
            "rootfs": ["type": "layers", "diff_ids": layers.map(\.diffID)]
        ]
        let (configDigest, configSize) = try writeJSONBlob(config, directory: directory)
        let manifest: [String: Any] = [
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": [
                "mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": configSize
            ],
            "layers": layers.map {
                [
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": $0.digest,
                    "size": $0.compressedBytes
                ] as [String: Any]
            }
        ]
        let (manifestDigest, manifestSize) = try writeJSONBlob(manifest, directory: directory)
        let index: [String: Any] = [
            "schemaVersion": 2,
            "manifests": [
                [
                    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest,
                    "size": manifestSize, "annotations": ["org.opencontainers.image.ref.name": "bench"]
                ] as [String: Any]
            ]
        ]
        try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys])
            .write(to: URL(fileURLWithPath: "\(directory)/index.json"))
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: "\(directory)/oci-layout"))

        let expected = planner.expectedFinal
        let image = GeneratedImage(
            parameters: parameters, layers: layers, contentBytesWritten: planned,
            expectedFinalContentBytes: expected.bytes, expectedFinalFiles: expected.files,
            generationSeconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
        // The stamp goes last: a run interrupted before this point regenerates everything.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(image).write(to: URL(fileURLWithPath: stampPath))
        return (image, false)
    }

    /// Synthesizes one layer's content into an anonymous spool, then writes the layer twice through
    /// Core's ArchiveWriter: gzip'd into the blob (its digest), and plain into /dev/null (its diff_id).
    static func writeLayer(_ plan: LayerPlan, index: Int, directory: String, gzipLevel: Int) throws
        -> GeneratedImage.Layer
    {
        let spool = try SharedFile.anonymous(in: directory)
        var synth = ContentSynth(seed: plan.seed)
        let largest = plan.entries.reduce(1) {
            if case .file(_, let size, _, _, _) = $1 { return max($0, size) }; return $0
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: largest, alignment: 16)
        defer { buffer.deallocate() }
        var entries: [FileEntry] = []
        var spoolEnd: Int64 = 0
        for planned in plan.entries {
            switch planned {
            case .directory(let path, let permissions, let uid):
                entries.append(
                    FileEntry(
                        path: path, kind: .directory,
                        metadata: FileMetadata(permissions: permissions, uid: uid, gid: uid, mtime: mtime)))
            case .file(let path, let size, let style, let permissions, let uid):
                let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size])
                synth.fill(slice, style: style)
                try spool.write(UnsafeRawBufferPointer(slice), at: spoolEnd)
                entries.append(
                    FileEntry(
                        path: path, kind: .regularFile(.blobRange(file: spool, offset: spoolEnd, length: Int64(size))),
                        metadata: FileMetadata(permissions: permissions, uid: uid, gid: uid, mtime: mtime)))
                spoolEnd += Int64(size)
            case .symlink(let path, let target):
                entries.append(
                    FileEntry(
                        path: path, kind: .symlink(target: target),
                        metadata: FileMetadata(permissions: 0o777, mtime: mtime)))
            case .hardlink(let path, let target):
                entries.append(
                    FileEntry(
                        path: path, kind: .hardlink(target: target),
                        metadata: FileMetadata(permissions: 0o644, mtime: mtime)))
            case .whiteout(let path):
                entries.append(
                    FileEntry(
                        path: path, kind: .regularFile(.empty),
                        metadata: FileMetadata(permissions: 0o644, mtime: mtime)))
            }
        }

        let temporary = "\(directory)/blobs/sha256/.layer-\(index).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BenchError("cannot create \(temporary): errno \(errno)") }
        let packed = FileSink(fd: fd, displayName: temporary)
        do {
            let writer = try ArchiveWriter(
                format: .pax, filter: .gzip(level: gzipLevel), sink: packed, label: temporary)
            for entry in entries { try writer.write(entry) }
            try writer.finish()
        } catch {
            close(fd)
            throw error
        }
        close(fd)

        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        guard null >= 0 else { throw BenchError("cannot open /dev/null: errno \(errno)") }
        defer { close(null) }
        let plain = FileSink(fd: null, displayName: "/dev/null")
        let plainWriter = try ArchiveWriter(
            format: .pax, filter: .none, sink: plain, label: "diff_id of layer \(index + 1)")
        for entry in entries { try plainWriter.write(entry) }
        try plainWriter.finish()

        let digest = packed.digest()
        let final = "\(directory)/blobs/sha256/\(digest.dropFirst("sha256:".count))"
        guard rename(temporary, final) == 0 else { throw BenchError("cannot rename \(temporary): errno \(errno)") }
        return GeneratedImage.Layer(
            digest: digest, diffID: plain.digest(), compressedBytes: packed.byteCount,
            uncompressedBytes: plain.byteCount,
            contentBytes: plan.contentBytes, entries: entries.count, files: plan.files, whiteouts: plan.whiteouts,
            overwrites: plan.overwrites)
    }

    /// Writes a JSON document as a blob, named by its SHA-256 (taken by Core's FileSink on the way).
    static func writeJSONBlob(_ object: [String: Any], directory: String) throws -> (String, Int64) {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        let temporary = "\(directory)/blobs/sha256/.json.tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BenchError("cannot create \(temporary): errno \(errno)") }
        let sink = FileSink(fd: fd, displayName: temporary)
        do {
            try data.withUnsafeBytes { try sink.write($0) }
            try sink.finish()
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        let digest = sink.digest()
        guard rename(temporary, "\(directory)/blobs/sha256/\(digest.dropFirst("sha256:".count))") == 0 else {
            throw BenchError("cannot rename \(temporary): errno \(errno)")
        }
        return (digest, sink.byteCount)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Size of a file, nil if it does not exist.
func fileSize(_ path: String) -> Int64? {
    var st = stat()
    return stat(path, &st) == 0 ? Int64(st.st_size) : nil
}

func megabytes(_ bytes: Int64) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }
