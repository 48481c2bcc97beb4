/// Hands each option of a build to the backend and accelerators that declare it. A key nobody
/// declares goes to the parties that take any key (plugins that declare no options); with none of
/// those it is an error that says whose option it is, or which key was meant.
struct OptionRouting {
    struct Party {
        /// `the linuxvm backend`, `the nvidia accelerator`.
        var title: String
        var keys: [String]?
    }

    /// Keys of builtins that are not part of this build, for the error that says where a key belongs:
    /// key → (`--accel nvidia`, `the nanos backend`).
    var elsewhere: [String: String] = [:]

    func route(_ options: BuildOptions, to parties: [Party]) throws -> [BuildOptions] {
        var given = parties.map { _ in Set<String>() }
        let open = parties.indices.filter { parties[$0].keys == nil }
        for key in options.keys {
            let owners = parties.indices.filter { parties[$0].keys?.contains(key) == true }
            guard owners.isEmpty else {
                for index in owners { given[index].insert(key) }
                continue
            }
            guard open.isEmpty else {
                for index in open { given[index].insert(key) }
                continue
            }
            throw unknown(key, origin: options.origin(of: key), parties: parties)
        }
        return given.map(options.only)
    }

    func unknown(_ key: String, origin: String, parties: [Party]) -> InputError {
        if let owner = elsewhere[key] {
            if owner.hasPrefix("--accel ") {
                return InputError("\(origin) is for \(owner)", hint: "add \(owner), or drop \(origin)")
            }
            return InputError(
                "\(origin) is for \(owner), not \(parties[0].title)",
                hint:
                    "drop \(origin), or build with \(owner.replacingOccurrences(of: "the ", with: "--backend ").replacingOccurrences(of: " backend", with: ""))"
            )
        }
        let known = parties.flatMap { $0.keys ?? [] }.sorted()
        let titles = parties.map(\.title)
        let whose = titles.count == 1 ? titles[0] : titles.dropLast().joined(separator: ", ") + " and " + titles.last!
        let close = Suggestions.closest(to: key, in: known).map { "did you mean `\($0)`? " } ?? ""
        return InputError(
            "\(origin): \(whose) \(titles.count == 1 ? "has" : "have") no option `\(key)`",
            hint: "\(close)options: \(known.isEmpty ? "none" : known.joined(separator: ", "))")
    }
}
