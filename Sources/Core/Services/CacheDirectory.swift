import CHost
import Foundation

/// gvlt's cache: `--cache-dir`, else `$GVLT_CACHE_DIR`, else `$XDG_CACHE_HOME/gvlt`, else `~/.cache/gvlt`.
///
/// Entries are directories published by rename once complete, under a per-key lock, so concurrent
/// builds never see a half-written entry and never build the same entry twice.
public struct CacheDirectory: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    public static func resolve(
        override: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> CacheDirectory {
        resolveWithOrigin(override: override, environment: environment).0
    }

    /// The cache and which rule chose it, for `gvlt doctor`.
    public static func resolveWithOrigin(
        override: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> (CacheDirectory, String) {
        if let override, !override.isEmpty { return (CacheDirectory(root: override), "--cache-dir") }
        if let explicit = environment["GVLT_CACHE_DIR"], !explicit.isEmpty {
            return (CacheDirectory(root: explicit), "$GVLT_CACHE_DIR")
        }
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return (CacheDirectory(root: xdg + "/gvlt"), "$XDG_CACHE_HOME/gvlt")
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (CacheDirectory(root: home + "/.cache/gvlt"), "~/.cache/gvlt, the default")
    }

    /// `text` as one part of a key: characters a key cannot hold (`+`, `:`, `~` in Debian versions)
    /// become `_`.
    public static func keyComponent(_ text: String) -> String {
        String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") ? $0 : "_" })
    }

    /// Keys are namespaced file names: letters, digits, `.`, `_`, `-`, and `/` between parts.
    public func entryPath(_ key: String) throws -> String {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard !parts.isEmpty,
            parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && $0.allSatisfy(allowed.contains) })
        else {
            throw InputError("invalid cache key `\(key)`")
        }
        return root + "/entries/" + key
    }

    /// Runs `body` holding the lock for `key`.
    public func withLock<T>(_ key: String, _ body: () throws -> T) throws -> T {
        let lockPath = try entryPath(key).replacingOccurrences(of: root + "/entries/", with: root + "/locks/") + ".lock"
        try createDirectory(URL(fileURLWithPath: lockPath).deletingLastPathComponent().path)
        let lock = try FileLock(path: lockPath)
        defer { withExtendedLifetime(lock) {} }
        return try body()
    }

    /// The entry for `key`, produced by `produce(directory)` if it is not there yet. `produce` fills a
    /// fresh temp directory that becomes the entry only if it returns without error.
    @discardableResult
    public func entry(_ key: String, produce: (String) throws -> Void) throws -> String {
        let final = try entryPath(key)
        return try withLock(key) {
            if FileManager.default.fileExists(atPath: final) { return final }
            try createDirectory(root + "/tmp")
            try createDirectory(URL(fileURLWithPath: final).deletingLastPathComponent().path)
            var template = Array("\(root)/tmp/entry-XXXXXX".utf8CString)
            guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
                throw SystemError("cannot create a directory in", path: root + "/tmp", errno: errno)
            }
            let staging = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let token = Cleanup.shared.register(path: staging)
            defer { Cleanup.shared.remove(token) }
            try produce(staging)
            guard rename(staging, final) == 0 else {
                throw SystemError("cannot publish cache entry", path: final, errno: errno)
            }
            return final
        }
    }

    /// A small record beside the entries (a resolved package version, a pulled tag, a URL's
    /// validator), or nil when it is missing, unreadable or not a `T`: a record is only ever a hint.
    public static func readRecord<T: Decodable>(_ type: T.Type, at path: String) -> T? {
        guard let data = try? ConfigFile.read(path, what: "cache record \(path)", hint: "", limit: 64 << 10) else {
            return nil
        }
        return try? JSONDecoder().decode(type, from: data)
    }

    /// Writes a record whole and renames it into place, so a concurrent reader never sees half of
    /// one. Best effort: a record that cannot be written only means a miss next time.
    public static func writeRecord<T: Encodable>(_ value: T, to path: String) {
        guard let data = try? JSONEncoder().encode(value) else { return }
        try? FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        let temporary = path + ".\(getpid()).tmp"
        if FileManager.default.createFile(atPath: temporary, contents: data), rename(temporary, path) == 0 { return }
        unlink(temporary)
    }

    private func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw InputError(
                "cannot create cache directory \(path): \(error.localizedDescription)",
                hint: "set --cache-dir or GVLT_CACHE_DIR to a writable directory")
        }
    }
}
