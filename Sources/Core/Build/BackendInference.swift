import Foundation

/// The backend a build means when `--backend` is not given, where that is unambiguous: an ELF program is
/// a Nanos unikernel (`ops build PROGRAM`), a container, Containerfile or root directory is a Linux VM
/// (`gvltctl build`). Anything else asks for `--backend`.
public enum BackendInference {
    public struct Choice: Equatable, Sendable {
        public var backend: String
        /// For the one line the build prints and its JSON report: "an ELF program", "--container".
        public var reason: String
    }

    /// `sourceFlags`: the source flags given (`--container`, …); `program`: the PROGRAM argument.
    public static func infer(sourceFlags: [String], program: String?) throws -> Choice {
        let hint = "pass --backend nanos or --backend linuxvm (see `gvlt backends`), or set `backend` in --config"
        if let program {
            guard sourceFlags.isEmpty else {
                throw InputError(
                    "no backend chosen, and both a program (\(program)) and \(sourceFlags.joined(separator: ", ")) are given",
                    hint: hint)
            }
            guard FileManager.default.fileExists(atPath: program) else {
                throw InputError(
                    "program \(program) does not exist", hint: "give the path of the ELF program to package")
            }
            guard ELFFile.hasMagic(program) else {
                throw InputError(
                    "no backend chosen, and \(program) is not an ELF program, which would mean nanos", hint: hint)
            }
            return Choice(backend: "nanos", reason: "an ELF program")
        }
        if let flag = sourceFlags.first { return Choice(backend: "linuxvm", reason: flag) }
        throw InputError("no backend chosen", hint: hint + "; an ELF program means nanos, --container linuxvm")
    }
}
