// gvlt-bench: how fast does gvlt flatten a multi-layer OCI image to a tar, compared with the floor of
// just decompressing its layers? See bench/README.md.
//
//   swift run -c release gvlt-bench [--work DIR] [--mib N] [--layers N] [--runs N] [--jobs N]
//                                   [--breakdown] [--json] [--keep] [--seed N]

import Core
import Foundation

let usage = """
    usage: gvlt-bench [options]
      --work DIR     where the generated OCI layout lives (reused if generated with the same parameters;
                     default: a fresh temporary directory, removed at the end unless --keep)
      --mib N        regular-file content of the image in MiB (default 512)
      --layers N     number of layers (default 6)
      --runs N       measured runs of each kind, interleaved (default 3); the best is reported
      --jobs N       layer workers for the parallel flatten (default: CPUs, as the gvlt CLI)
      --out DIR      where the flatten writes its tar (default: the work directory); e.g. /dev/shm to
                     take the disk (the exporter fsyncs its output) out of the measurement
      --seed N       generator seed (default 42)
      --breakdown    after the runs, time the flatten's steps one by one (single thread)
      --json         print the results as JSON on stdout (progress still goes to stderr)
      --keep         keep the temporary work directory
    """

struct Options {
    var work: String?
    var out: String?
    var mib = 512
    var layers = 6
    var runs = 3
    var jobs = ProcessInfo.processInfo.activeProcessorCount
    var seed: UInt64 = 42
    var breakdown = false
    var json = false
    var keep = false

    init(_ arguments: [String]) {
        var it = arguments.makeIterator()
        func value(_ flag: String) -> String {
            guard let v = it.next() else { fail("\(flag) needs a value") }
            return v
        }
        func number(_ flag: String, min: Int = 1) -> Int {
            let text = value(flag)
            guard let n = Int(text), n >= min else { fail("\(flag): `\(text)` is not a number >= \(min)") }
            return n
        }
        while let arg = it.next() {
            switch arg {
            case "--work": work = value(arg)
            case "--out": out = value(arg)
            case "--mib": mib = number(arg)
            case "--layers": layers = number(arg)
            case "--runs": runs = number(arg)
            case "--jobs": jobs = number(arg)
            case "--seed": seed = UInt64(number(arg, min: 0))
            case "--breakdown": breakdown = true
            case "--json": json = true
            case "--keep": keep = true
            case "-h", "--help": print(usage); exit(0)
            default: fail("unknown argument `\(arg)`\n\(usage)")
            }
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write("gvlt-bench: \(message)\n".data(using: .utf8)!)
    exit(2)
}

func say(_ message: String) {
    FileHandle.standardError.write((message + "\n").data(using: .utf8)!)
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

func cpuModel() -> String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
    for line in text.split(separator: "\n") where line.hasPrefix("model name") {
        if let colon = line.firstIndex(of: ":") {
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }
    return "unknown"
}

/// One kind of measurement over all runs.
struct Series: Codable {
    var name: String
    var jobs: Int?
    var samples: [Sample]
    var best: Sample { samples.min { $0.seconds < $1.seconds }! }
    var median: Sample { samples.sorted { $0.seconds < $1.seconds }[samples.count / 2] }
}

struct Report: Codable {
    struct Figure: Codable {
        var name: String
        var jobs: Int?
        var bestSeconds: Double
        var medianSeconds: Double
        var bestMBps: Double
        var medianMBps: Double
        /// Throughput relative to the floor's (best against best).
        var ratio: Double
        /// The same, median against median.
        var medianRatio: Double
        var samples: [Sample]
    }

    var date: String
    var machine: [String: String]
    var image: GeneratedImage
    var workDirectory: String
    var outputDirectory: String
    var reusedImage: Bool
    /// The byte count every throughput is taken over: the layers' uncompressed tar bytes.
    var uncompressedBytes: Int64
    var runs: Int
    var floor: Figure
    var flatten: [Figure]
    var target: Double
    var pass: Bool
    var breakdown: [Measurements.Step]?
}

// MARK: - Run

// A development aid for tuning the generator: `gvlt-bench --content-sample STYLE BYTES | gzip -6 | wc -c`.
if CommandLine.arguments.count == 4, CommandLine.arguments[1] == "--content-sample",
    let style = ContentStyle(rawValue: CommandLine.arguments[2]), let size = Int(CommandLine.arguments[3])
{
    var synth = ContentSynth(seed: 1)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
    synth.fill(buffer, style: style)
    FileHandle.standardOutput.write(Data(buffer))
    exit(0)
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let target = 0.80

var temporaryWork: String?
let work: String
if let given = options.work {
    work = URL(fileURLWithPath: given).standardizedFileURL.path
} else {
    let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    var template = Array("\(base)/gvlt-bench-XXXXXX".utf8CString)
    guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
        fail("cannot create a temporary directory in \(base)")
    }
    work = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    temporaryWork = work
}

func run() throws {
    let parameters = GeneratedImage.Parameters(
        formatVersion: GeneratedImage.formatVersion, layers: options.layers,
        mib: options.mib, seed: options.seed, gzipLevel: 6)
    let (image, reused) = try Generator.ensure(
        directory: work, parameters: parameters,
        jobs: ProcessInfo.processInfo.activeProcessorCount, say: say)
    let bytes = image.totalUncompressed
    let mb = { (seconds: Double) in Double(bytes) / seconds / 1e6 }
    let fileCount = image.layers.reduce(0) { $0 + $1.files }
    say(
        (reused ? "reusing" : "generated") + " image in \(work)"
            + (reused ? "" : String(format: " (%.1f s)", image.generationSeconds))
            + ": \(image.layers.count) layers, \(fileCount) files, \(megabytes(bytes)) of tar in \(megabytes(image.totalCompressed)) of gzip"
            + String(format: " (%.2fx)", Double(bytes) / Double(image.totalCompressed)))

    let outputDirectory = options.out.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? work
    let measure = Measurements(
        directory: work, image: image, outputPath: "\(outputDirectory)/gvlt-bench-flat-\(getpid()).tar")
    let warmed = try measure.warmUp()
    say("warm-up: read \(megabytes(warmed)) of blobs")

    var floor = Series(name: "floor: inflate to nowhere, 1 thread", jobs: nil, samples: [])
    var jobsList = [options.jobs]
    if options.jobs != 1 { jobsList.append(1) }
    var flattens = jobsList.map { Series(name: "flatten to tar, jobs=\($0)", jobs: $0, samples: []) }
    for r in 1...options.runs {
        let (f, got) = try measure.floor()
        guard got == bytes else { throw BenchError("the floor decompressed \(got) bytes, expected \(bytes)") }
        floor.samples.append(f)
        say(
            String(
                format: "run %d/%d: floor %.3f s (%.1f MB/s; CPU %.2f s of which kernel %.2f s; others' CPU %.2f s)",
                r, options.runs, f.seconds, mb(f.seconds), f.cpuSeconds, f.systemSeconds, f.otherCPUSeconds))
        for i in flattens.indices {
            let (s, report) = try measure.flatten(jobs: flattens[i].jobs!)
            guard report.summary.contentBytes == image.expectedFinalContentBytes,
                report.summary.byKind["file"] == image.expectedFinalFiles
            else {
                throw BenchError(
                    "the flattened tree holds \(report.summary.byKind["file"] ?? 0) files, \(report.summary.contentBytes) bytes; "
                        + "expected \(image.expectedFinalFiles) files, \(image.expectedFinalContentBytes) bytes")
            }
            flattens[i].samples.append(s)
            say(
                String(
                    format:
                        "run %d/%d: flatten jobs=%d %.3f s (%.1f MB/s; load %.3f s, export %.3f s; CPU %.2f s of which kernel %.2f s; others' CPU %.2f s)",
                    r, options.runs, flattens[i].jobs!, s.seconds, mb(s.seconds), s.loadSeconds!, s.exportSeconds!,
                    s.cpuSeconds, s.systemSeconds, s.otherCPUSeconds))
        }
    }

    var steps: [Measurements.Step]?
    if options.breakdown {
        say("breakdown (single thread, one run each, throughput over the \(megabytes(bytes)) of tar):")
        steps = try measure.breakdown(say: say)
    }

    func figure(_ series: Series) -> Report.Figure {
        Report.Figure(
            name: series.name, jobs: series.jobs, bestSeconds: series.best.seconds,
            medianSeconds: series.median.seconds, bestMBps: mb(series.best.seconds),
            medianMBps: mb(series.median.seconds), ratio: floor.best.seconds / series.best.seconds,
            medianRatio: floor.median.seconds / series.median.seconds, samples: series.samples)
    }
    let floorFigure = figure(floor)
    let flattenFigures = flattens.map(figure)
    let pass = flattenFigures[0].ratio >= target

    let formatter = ISO8601DateFormatter()
    let report = Report(
        date: formatter.string(from: Date()),
        machine: [
            "cpus": "\(ProcessInfo.processInfo.activeProcessorCount)", "cpuModel": cpuModel(),
            "memoryGiB": String(format: "%.1f", Double(ProcessInfo.processInfo.physicalMemory) / 1073741824)
        ],
        image: image, workDirectory: work, outputDirectory: outputDirectory, reusedImage: reused,
        uncompressedBytes: bytes, runs: options.runs,
        floor: floorFigure, flatten: flattenFigures, target: target, pass: pass, breakdown: steps)

    if options.json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
        return
    }

    print("")
    print(
        "gvlt-bench \(report.date)  \(report.machine["cpus"]!) CPUs (\(report.machine["cpuModel"]!)), \(report.machine["memoryGiB"]!) GiB"
    )
    print(
        "image: \(image.layers.count) gzip layers, \(fileCount) files, "
            + String(format: "%.1f MiB", Double(image.contentBytesWritten) / 1048576) + " of file content, "
            + "\(megabytes(bytes)) of tar -> \(megabytes(image.totalCompressed)) gzip"
            + String(format: " (%.2fx)", Double(bytes) / Double(image.totalCompressed)))
    print(
        "throughput = \(megabytes(bytes)) of uncompressed tar / wall seconds (MB = 10^6 bytes); best of \(options.runs) runs"
    )
    print("output tar written to \(outputDirectory)/ (the exporter fsyncs it, as gvlt does)")
    print("")
    print(pad("", 38) + "  best s   median s     MB/s   CPU s  others' CPU s   ratio")
    for (series, fig) in [(floor, floorFigure)] + zip(flattens, flattenFigures) {
        print(
            pad(series.name, 38)
                + String(
                    format: " %7.3f    %7.3f  %7.1f  %6.2f         %6.2f   %.2fx",
                    fig.bestSeconds, fig.medianSeconds, fig.bestMBps, series.best.cpuSeconds,
                    series.best.otherCPUSeconds, fig.ratio))
        if let load = series.best.loadSeconds, let export = series.best.exportSeconds {
            print(pad("  of which load (read layers + apply)", 38) + String(format: " %7.3f", load))
            print(pad("  of which export (write tar + fsync)", 38) + String(format: " %7.3f", export))
        }
    }
    print("")
    let ratios = flattenFigures.map { String(format: "ratio (jobs=%d): %.2fx", $0.jobs!, $0.ratio) }.joined(
        separator: "  ")
    let verdicts = flattenFigures.map { "\($0.ratio >= target ? "PASS" : "FAIL") (jobs=\($0.jobs!))" }.joined(
        separator: ", ")
    print(ratios + String(format: "  target >= %.2fx: ", target) + verdicts)
    let isDefault = options.jobs == ProcessInfo.processInfo.activeProcessorCount
    print("result: \(pass ? "PASS" : "FAIL") at jobs=\(options.jobs)\(isDefault ? " (the CLI default)" : "")")
}

do {
    try run()
} catch {
    say("gvlt-bench: error: \(error)")
    if let temporaryWork, !options.keep { try? FileManager.default.removeItem(atPath: temporaryWork) }
    exit(1)
}
if let temporaryWork, !options.keep { try? FileManager.default.removeItem(atPath: temporaryWork) }
