import Core
import Foundation
import Nanos

// Entry points for the libFuzzer drivers scripts/fuzz builds: each takes raw bytes and must return,
// whatever they are. Errors thrown are the expected answer to bad input; a trap, a crash, a hang or
// runaway memory is a finding.

/// One unnamed scratch file, rewritten for each input, for readers that take a file.
private let scratch: SharedFile = {
    guard let file = try? SharedFile.anonymous(in: NSTemporaryDirectory()) else { fatalError("no scratch file") }
    return file
}()

private func withFile(_ data: UnsafePointer<UInt8>?, _ size: Int, _ body: (SharedFile) throws -> Void) {
    ftruncate(scratch.fd, 0)
    if size > 0, let data { _ = pwrite(scratch.fd, data, size, 0) }
    try? body(scratch)
}

private func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Data {
    data.map { Data(bytes: $0, count: size) } ?? Data()
}

/// A Nanos TFS volume, as `gvlt inspect` and `gvlt extract` read it: the log, the tree, then every
/// regular file's extents (read into nothing).
@_cdecl("gvlt_fuzz_tfs")
public func fuzzTFS(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    withFile(data, size) { file in
        let volume = try TFSReader.read(file: file, what: "fuzz")
        var pending = [("", volume.root)]
        var visited = 0
        while let (path, node) = pending.popLast(), visited < 10_000 {
            visited += 1
            for (name, value) in node.tuple("children")?.sortedPairs ?? [] {
                guard case .tuple(let child) = value else { continue }
                let childPath = path + "/" + String(decoding: name, as: UTF8.self)
                switch TFSVolume.kind(of: child) {
                case .directory: pending.append((childPath, child))
                case .file: try? volume.read(child, path: childPath) { _ in }
                default: break
                }
            }
        }
    }
    return 0
}

/// OCI documents: an index, a manifest and an image config, as the image sources decode them.
@_cdecl("gvlt_fuzz_oci")
public func fuzzOCI(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let json = bytes(data, size)
    let decoder = JSONDecoder()
    _ = try? decoder.decode(ImageIndex.self, from: json)
    _ = try? decoder.decode(ImageManifest.self, from: json)
    _ = try? decoder.decode(ImageConfig.self, from: json)
    return 0
}

/// A layer blob (tar, gzip or zstd, sniffed), parsed as `export`/`build` parse layers, with the
/// expansion bound of a 1 KiB-per-byte image.
@_cdecl("gvlt_fuzz_layer")
public func fuzzLayer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    withFile(data, size) { file in
        let blob = LayerBlob(
            label: "fuzz layer", file: file, length: Int64(size), digest: nil, diffID: nil, declaredCompression: nil)
        let layer = try LayerReader.parse(
            blob, scratchDirectory: NSTemporaryDirectory(),
            budget: ExpansionBudget(storedBytes: Int64(size), maximum: 64 << 20))
        try LayerFlattener().apply(layer)
    }
    return 0
}

/// An ops manifest (config.json), as the nanos backend reads `-c`.
@_cdecl("gvlt_fuzz_ops_manifest")
public func fuzzOpsManifest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    _ = try? OpsManifest(data: bytes(data, size), path: "fuzz.json")
    return 0
}

/// An ELF program or library, as the nanos backend reads its dependencies.
@_cdecl("gvlt_fuzz_elf")
public func fuzzELF(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    withFile(data, size) { file in
        let elf = try ELFFile(path: "/proc/self/fd/\(file.fd)")
        _ = try? elf.identity
        _ = try? elf.interpreter
        _ = try? elf.dynamic
        _ = try? elf.section(named: ".modinfo")
    }
    return 0
}

/// What a registry pull reads before any blob: the input split at its first NUL byte into a
/// registries.conf (TOML) and a line-separated list of image references and `WWW-Authenticate`
/// headers; each reference is also run through the conf's pull sources.
@_cdecl("gvlt_fuzz_registry")
public func fuzzRegistry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    let split = input.firstIndex(of: 0) ?? input.endIndex
    let conf =
        (try? RegistriesConf.parse(String(decoding: input[..<split], as: UTF8.self), file: "fuzz.conf"))
        ?? RegistriesConf()
    let rest = split < input.endIndex ? input[(split + 1)...] : Data()
    for line in String(decoding: rest, as: UTF8.self).split(separator: "\n").prefix(64) {
        _ = AuthChallenge.parse(String(line))
        if let reference = try? ImageReference(parsing: String(line)) { _ = try? conf.pullSources(for: reference) }
    }
    return 0
}
