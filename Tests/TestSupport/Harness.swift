import Foundation
import XCTest

/// A private directory per test with its own TMPDIR, HOME and cache, so a test can assert that a run
/// created nothing outside it.
public final class Sandbox {
    public let root: String
    public var work: String { root + "/work" }
    public var tmp: String { root + "/tmp" }
    public var home: String { root + "/home" }

    public init() throws {
        root = NSTemporaryDirectory() + "gvlt-test-" + UUID().uuidString
        for dir in [work, tmp, home] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
    }

    public func path(_ relative: String) -> String { work + "/" + relative }

    public func write(_ relative: String, _ data: Data) throws {
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: path(relative)).deletingLastPathComponent().path,
            withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path(relative)))
    }

    /// Writes an executable file (a plugin script) and returns its path.
    @discardableResult
    public func writeExecutable(_ relative: String, _ text: String) throws -> String {
        try write(relative, Data(text.utf8))
        chmod(path(relative), 0o755)
        return path(relative)
    }

    /// Writes plugins.json with `entries` (JSON objects) and returns the environment that makes gvlt read it.
    public func pluginsFile(_ entries: [String]) throws -> [String: String] {
        try write("plugins.json", Data(#"{"schema": 1, "plugins": [\#(entries.joined(separator: ",\n"))]}"#.utf8))
        return ["GVLT_PLUGINS": path("plugins.json")]
    }

    /// Every path under `dir`, relative, sorted.
    public func listing(_ dir: String) -> [String] {
        (FileManager.default.subpaths(atPath: dir) ?? []).sorted()
    }

    public func remove() { try? FileManager.default.removeItem(atPath: root) }

    deinit { remove() }
}

public struct RunResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs the built `gvlt` executable.
public enum GvltBinary {
    /// Whether process `pid` holds a file it created unnamed (O_TMPFILE) in `directory`: how a test
    /// sees that gvlt is writing its output, which has no name until it is whole.
    public static func holdsUnnamedFile(pid: Int32, in directory: String) -> Bool {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return fds.contains { fd in
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) ?? ""
            return target.hasPrefix(directory + "/#")
        }
    }

    public static var path: String {
        // The test bundle sits next to the products in .build/<config>/.
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("gvlt").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        fatalError("gvlt executable not found near \(exe.path); run `swift build` first")
    }

    /// A link to gvlt named `name` (`ops`, `gvltctl`) in the sandbox's `bin/`, for running gvlt under
    /// another tool's name.
    public static func link(named name: String, in sandbox: Sandbox) throws -> String {
        let link = sandbox.path("bin/" + name)
        try FileManager.default.createDirectory(atPath: sandbox.path("bin"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        return link
    }

    /// The address-space bound hostile-input runs get (`prlimit --as`): what gvlt may use on any input.
    public static let hostileMemoryLimit = 1 << 30

    /// Runs gvlt; a run longer than `timeout` seconds is killed and reported as status -1 (a hang is a
    /// failure, not a stuck test suite). With `memoryLimit`, gvlt (and what it starts) runs under
    /// that address-space limit, so runaway memory is a failure too.
    @discardableResult
    public static func run(
        _ arguments: [String], in sandbox: Sandbox, environment extra: [String: String] = [:],
        timeout: Double = 120, memoryLimit: Int? = nil, executable: String? = nil
    ) throws -> RunResult {
        let process = Process()
        let path = executable ?? Self.path
        if let memoryLimit {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            process.arguments = ["--as=\(memoryLimit)", path] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
        }
        process.currentDirectoryURL = URL(fileURLWithPath: sandbox.work)
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = sandbox.tmp
        environment["HOME"] = sandbox.home
        environment["XDG_CACHE_HOME"] = sandbox.home + "/.cache"
        environment["XDG_CONFIG_HOME"] = sandbox.home + "/.config"
        environment["GVLT_PLUGINS"] = nil
        environment["GVLT_CACHE_DIR"] = nil
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let watchdog = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        let killed = process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
        return RunResult(
            status: killed ? -1 : process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// A tar listing made by Python's tarfile, a reader independent of libarchive, one line per member:
/// `path type mode uid:gid [-> target] [sha256=…] [dev=M,m] [xattr:name=hex]`.
public enum TarListing {
    static let script = #"""
        import hashlib, sys, tarfile
        kinds = {tarfile.REGTYPE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink",
                 tarfile.CHRTYPE: "chardev", tarfile.BLKTYPE: "blockdev", tarfile.FIFOTYPE: "fifo"}
        with tarfile.open(sys.argv[1]) as tar:
            for m in tar.getmembers():
                line = f"{m.name} {kinds.get(m.type, m.type)} {m.mode:04o} {m.uid}:{m.gid}"
                if m.issym() or m.islnk():
                    line += f" -> {m.linkname}"
                if m.isreg():
                    line += " sha256=" + hashlib.sha256(tar.extractfile(m).read()).hexdigest()[:16]
                if m.ischr() or m.isblk():
                    line += f" dev={m.devmajor},{m.devminor}"
                for key in sorted(m.pax_headers):
                    if key.startswith("SCHILY.xattr."):
                        line += f" xattr:{key[13:]}={m.pax_headers[key].encode('utf-8', 'surrogateescape').hex()}"
                print(line)
        """#

    public static func of(_ tarPath: String) throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, tarPath]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NSError(domain: "TarListing", code: Int(process.terminationStatus))
        }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// The short content hash used in listings.
    public static func hash(_ text: String) -> String {
        String(TarBuilder.sha256(Data(text.utf8)).dropFirst(7).prefix(16))
    }
}

/// Tars that our own writer cannot produce (out-of-range numeric fields), written by Python's tarfile.
public enum PythonTar {
    /// `data` gzipped by Python's gzip module (no name, mtime 0).
    public static func gzip(_ data: Data) throws -> Data {
        let path = NSTemporaryDirectory() + "gvlt-pygz-\(UUID().uuidString)"
        defer {
            unlink(path)
            unlink(path + ".gz")
        }
        try data.write(to: URL(fileURLWithPath: path))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c",
            "import gzip, sys\ndata = open(sys.argv[1], 'rb').read()\nopen(sys.argv[1] + '.gz', 'wb').write(gzip.compress(data, mtime=0))",
            path
        ]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NSError(domain: "PythonTar", code: Int(process.terminationStatus))
        }
        return try Data(contentsOf: URL(fileURLWithPath: path + ".gz"))
    }

    /// Runs `body` (Python statements with `tar` open for writing, GNU format unless `pax`) and returns
    /// the tar, gzipped when `gzip`.
    public static func make(_ body: String, pax: Bool = false, gzip: Bool = false) throws -> Data {
        let path = NSTemporaryDirectory() + "gvlt-pytar-\(UUID().uuidString).tar"
        defer { unlink(path) }
        let script =
            "import io, sys, tarfile\nwith tarfile.open(sys.argv[1], '\(gzip ? "w:gz" : "w")', format=tarfile.\(pax ? "PAX_FORMAT" : "GNU_FORMAT")) as tar:\n"
            + body.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n") + "\n"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, path]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NSError(domain: "PythonTar", code: Int(process.terminationStatus))
        }
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }
}

/// Disks for tests that only look at the QEMU command line.
public enum FakeDisk {
    /// A zero-filled disk whose MBR has a FAT boot and a Linux root partition, which is all
    /// `gvlt run` checks before QEMU starts.
    public static func firestarterShaped(size: Int = 1 << 20) -> Data {
        var disk = Data(count: size)
        let entries: [(type: UInt8, first: UInt32, count: UInt32)] = [(0x0c, 2048, 64), (0x83, 2112, 64)]
        for (index, entry) in entries.enumerated() {
            let base = 446 + index * 16
            disk[base] = index == 0 ? 0x80 : 0
            disk[base + 4] = entry.type
            for byte in 0..<4 {
                disk[base + 8 + byte] = UInt8(truncatingIfNeeded: entry.first >> (8 * UInt32(byte)))
                disk[base + 12 + byte] = UInt8(truncatingIfNeeded: entry.count >> (8 * UInt32(byte)))
            }
        }
        disk[510] = 0x55
        disk[511] = 0xAA
        return disk
    }
}
