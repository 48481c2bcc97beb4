import Foundation

/// Refuses early, before any work, an output that exists without --force or sits in a missing directory.
public enum OutputPrecheck {
    public static func check(_ path: String, force: Bool) throws {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        let directory = url.deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw InputError(
                "output directory \(directory) does not exist", hint: "create it first, or choose another -o path")
        }
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            if isDirectory.boolValue {
                throw InputError("output \(url.path) is a directory", hint: "give a file path with -o")
            }
            if !force { throw InputError("output \(url.path) already exists", hint: "pass --force to overwrite it") }
        }
    }
}
