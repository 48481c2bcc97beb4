// The measurements: the floor (decompress only), the flatten (what `gvlt` does for `--container oci:…`
// up to the tar), and an optional breakdown of where the flatten's extra time goes.

import Core
import Dispatch
import Foundation
import Logging

/// Wall and CPU time of one measured run.
struct Sample: Codable {
    var seconds: Double
    /// User + system CPU seconds of the whole process over the run (above `seconds` means parallelism).
    var cpuSeconds: Double
    /// The kernel's share of `cpuSeconds` (page cache copies, page faults, file system).
    var systemSeconds: Double
    /// For the flatten: the two phases inside `seconds`.
    var loadSeconds: Double?
    var exportSeconds: Double?
    /// CPU seconds the rest of the machine (other processes, the kernel's own threads) used meanwhile:
    /// a run on a busy machine shows here. Busy time from /proc/stat minus ours.
    var otherCPUSeconds: Double
}

struct Stopwatch {
    private let wall = DispatchTime.now().uptimeNanoseconds
    private let cpu = Stopwatch.cpuNow()
    private let system = Stopwatch.cpuNow(systemOnly: true)
    private let machine = Stopwatch.machineBusyNow()

    var seconds: Double { Double(DispatchTime.now().uptimeNanoseconds - wall) / 1e9 }
    var cpuSeconds: Double { Stopwatch.cpuNow() - cpu }
    var systemSeconds: Double { Stopwatch.cpuNow(systemOnly: true) - system }
    var otherCPUSeconds: Double { max(0, (Stopwatch.machineBusyNow() - machine) - cpuSeconds) }

    /// Busy CPU seconds of the whole machine since boot: the `cpu` line of /proc/stat less idle and
    /// iowait (in USER_HZ ticks, 100 a second on Linux).
    static func machineBusyNow() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
        else { return 0 }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count >= 5 else { return 0 }
        // user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
        let busy = fields.prefix(8).enumerated().filter { $0.offset != 3 && $0.offset != 4 }.reduce(0) {
            $0 + $1.element
        }
        return busy / 100
    }

    static func cpuNow(systemOnly: Bool = false) -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return systemOnly ? system : system + Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
    }
}

struct Measurements {
    let directory: String
    let image: GeneratedImage
    /// Where the flatten's output tar goes.
    let outputPath: String

    var blobPaths: [String] { image.layers.map { image.blobPath(in: directory, $0) } }

    /// Reads every blob once so that all timed runs read from the page cache.
    func warmUp() throws -> Int64 {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var total: Int64 = 0
        for path in blobPaths {
            let file = try SharedFile.openReadOnly(path)
            var offset: Int64 = 0
            while true {
                let n = try file.read(into: buffer, at: offset)
                if n == 0 { break }
                offset += Int64(n)
            }
            total += offset
        }
        return total
    }

    /// The floor: each blob decompressed by the product's decompressor (libarchive's gzip filter behind
    /// Core's ArchiveReader, fed by FileRangeSource as the flattener feeds it), output discarded.
    /// Sequential, one thread. No hashing, no tar parsing, no writes.
    func floor() throws -> (Sample, bytes: Int64) {
        let clock = Stopwatch()
        var bytes: Int64 = 0
        for (layer, path) in zip(image.layers, blobPaths) {
            let file = try SharedFile.openReadOnly(path)
            let reader = try ArchiveReader(
                format: .raw, filters: [.gzip],
                source: FileRangeSource(file: file, length: layer.compressedBytes),
                label: "floor \(layer.digest.prefix(19))")
            guard try reader.nextHeader() != nil else { throw BenchError("\(path): empty stream") }
            while let (block, _) = try reader.readBlock() { bytes += Int64(block.count) }
        }
        return (
            Sample(
                seconds: clock.seconds, cpuSeconds: clock.cpuSeconds, systemSeconds: clock.systemSeconds,
                otherCPUSeconds: clock.otherCPUSeconds), bytes
        )
    }

    /// The flatten: OCILayoutSource.load (resolve, read layers with `jobs` workers, apply) and
    /// TarExporter.export, as `gvlt` runs them. The output is removed afterwards (not timed).
    func flatten(jobs: Int, output: String? = nil) throws -> (Sample, TarExporter.Report) {
        let out = output ?? outputPath
        let logger = Logger(label: "gvlt-bench")
        let sample: Sample
        let report: TarExporter.Report
        do {
            let scratch = try ScratchDirectory(label: "gvlt-bench")
            let context = SourceContext(
                scratch: scratch, progress: ProgressReporter(mode: .quiet), logger: logger, jobs: jobs)
            let clock = Stopwatch()
            let image = try OCILayoutSource(directory: directory, tag: "bench").load(context)
            let loaded = clock.seconds
            report = try TarExporter().export(image.tree, to: out, force: true)
            let total = clock.seconds
            sample = Sample(
                seconds: total, cpuSeconds: clock.cpuSeconds, systemSeconds: clock.systemSeconds, loadSeconds: loaded,
                exportSeconds: total - loaded,
                otherCPUSeconds: clock.otherCPUSeconds)
        }
        // The tree, its spool files and the scratch directory are gone here.
        unlink(out)
        return (sample, report)
    }

    // MARK: Breakdown

    struct Step: Codable {
        var name: String
        var seconds: Double
        /// Uncompressed bytes / seconds, MB/s.
        var throughput: Double
    }

    /// Single-threaded steps that build up from the floor to what one LayerReader worker does, then
    /// the export alone; each run once, after the main measurements.
    func breakdown(say: (String) -> Void) throws -> [Step] {
        let bytes = image.totalUncompressed
        func step(_ name: String, _ body: () throws -> Void) rethrows -> Step {
            let clock = Stopwatch()
            try body()
            let s = clock.seconds
            let result = Step(name: name, seconds: s, throughput: Double(bytes) / s / 1e6)
            say("  " + pad(name, 58) + String(format: " %7.3f s  %8.1f MB/s", s, result.throughput))
            return result
        }
        var steps: [Step] = []
        let files = try blobPaths.map { try SharedFile.openReadOnly($0) }
        let layers = image.layers

        // SHA-256 alone (Core's FileSink into /dev/null), over as many bytes as the layers hold.
        steps.append(
            try step("SHA-256 of the uncompressed byte count (FileSink)") {
                let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
                defer { close(null) }
                let sink = FileSink(fd: null, displayName: "/dev/null")
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
                defer { buffer.deallocate() }
                for i in 0..<buffer.count { buffer[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
                var left = bytes
                while left > 0 {
                    let n = Int(min(Int64(buffer.count), left))
                    try sink.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                    left -= Int64(n)
                }
                try sink.finish()
                _ = sink.digest()
            })
        steps.append(
            try step("inflate only (the floor)") {
                for (layer, file) in zip(layers, files) {
                    let reader = try ArchiveReader(
                        format: .raw, filters: [.gzip],
                        source: FileRangeSource(file: file, length: layer.compressedBytes), label: "b")
                    _ = try reader.nextHeader()
                    while try reader.readBlock() != nil {}
                }
            })
        steps.append(
            try step("inflate + SHA-256 of blob + SHA-256 of tar") {
                for (layer, file) in zip(layers, files) {
                    let stored = FileRangeSource(file: file, length: layer.compressedBytes, hashing: true)
                    let raw = try ArchiveReader(format: .raw, filters: [.gzip], source: stored, label: "b")
                    let uncompressed = try DecompressedSource(reader: raw)
                    let diffID = try uncompressed.drainAndDigest()
                    guard diffID == layer.diffID, stored.finalizeDigest() == layer.digest else {
                        throw BenchError("breakdown: digest mismatch")
                    }
                }
            })
        steps.append(
            try step("... + tar parsing (file data read and discarded)") {
                for (layer, file) in zip(layers, files) {
                    let stored = FileRangeSource(file: file, length: layer.compressedBytes, hashing: true)
                    let raw = try ArchiveReader(format: .raw, filters: [.gzip], source: stored, label: "b")
                    let uncompressed = try DecompressedSource(reader: raw)
                    let tar = try ArchiveReader(format: .tar, source: uncompressed, label: "b")
                    while let entry = try tar.nextHeader() {
                        _ = try ArchiveEntryCoding.decode(entry)
                        while try tar.readBlock() != nil {}
                    }
                    _ = try uncompressed.drainAndDigest()
                    _ = stored.finalizeDigest()
                }
            })
        let scratch = try ScratchDirectory(label: "gvlt-bench")
        steps.append(
            try step("... + spooling file data (LayerReader.parse, all layers)") {
                for (layer, file) in zip(layers, files) {
                    let blob = LayerBlob(
                        label: "b", file: file, length: layer.compressedBytes,
                        digest: try ContentDigest(layer.digest, context: "digest"),
                        diffID: try ContentDigest(layer.diffID, context: "diff_id"),
                        declaredCompression: nil)
                    _ = try LayerReader.parse(blob, scratchDirectory: scratch.path)
                }
            })
        // The export alone, to the work directory (fsync'd to disk, as the product does) and, where there
        // is a tmpfs, to /dev/shm (fsync is a no-op there), which separates the disk from the CPU cost.
        let logger = Logger(label: "gvlt-bench")
        let context = SourceContext(scratch: scratch, progress: ProgressReporter(mode: .quiet), logger: logger)
        let loaded = try OCILayoutSource(directory: directory, tag: "bench").load(context)
        steps.append(
            try step(
                "export only (tar write + SHA-256 + fsync), to \(URL(fileURLWithPath: outputPath).deletingLastPathComponent().lastPathComponent)/"
            ) {
                _ = try TarExporter().export(loaded.tree, to: outputPath, force: true)
            })
        unlink(outputPath)
        var shm = statvfs()
        if statvfs("/dev/shm", &shm) == 0, Int64(shm.f_bavail) * Int64(shm.f_frsize) > 2 * bytes {
            let path = "/dev/shm/gvlt-bench-\(getpid()).tar"
            steps.append(
                try step("export only, to /dev/shm (tmpfs: no disk)") {
                    _ = try TarExporter().export(loaded.tree, to: path, force: true)
                })
            unlink(path)
        }
        return steps
    }
}
