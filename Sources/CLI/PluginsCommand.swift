import ArgumentParser
import Core
import Foundation

/// Where registry entries come from, for the help of the commands that show them.
let registrySources = """
    The registry is the builtins plus every plugins.json found, lowest precedence first: the copy \
    shipped with gvlt, $XDG_CONFIG_HOME/gvlt/plugins.json, ./plugins.json, then each path in \
    $GVLT_PLUGINS. Later files override earlier entries by name.
    """

struct PluginsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract:
            "Show the plugin registry: every backend and accelerator, where its entry came from, and what it reports.",
        discussion: registrySources + """
             docs/plugins.md tells how to write a plugin.

            Examples:
              gvlt plugins list
              gvlt plugins list --json
              gvlt plugins describe qcow2
            """,
        subcommands: [List.self, Describe.self],
        defaultSubcommand: List.self)

    struct EntryRow: Encodable {
        var name: String
        var role: String
        var kind: String
        var origin: String
        var path: String?
        var command: [String]?
        var `protocol`: String?
        var sha256: String?
        var status: String
        var description: String?

        init(_ entry: PluginEntry, registry: PluginRegistry) {
            name = entry.name
            role = entry.role.rawValue
            kind = entry.kind.rawValue
            origin = entry.origin
            path = entry.path
            command = entry.command
            self.protocol = entry.protocol
            sha256 = entry.sha256
            status = PluginRegistry.status(of: entry)
            description =
                entry.description ?? registry.builtinBackends[entry.name]?.description
                ?? registry.builtinAccelerators[entry.name]?.description
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List every registered backend and accelerator, with the file its entry came from.")

        @Flag(help: "Print the registry and the files consulted as JSON.")
        var json = false

        struct Report: Encodable {
            struct File: Encodable {
                var path: String
                var found: Bool
            }
            var files: [File]
            var plugins: [EntryRow]
        }

        func run() throws {
            let registry = try loadRegistry()
            let rows = (registry.entries(role: .backend) + registry.entries(role: .accelerator)).map {
                EntryRow($0, registry: registry)
            }
            let files = PluginsFile.searchPath().map {
                Report.File(path: $0, found: FileManager.default.fileExists(atPath: $0))
            }
            if json {
                try printJSON(Report(files: files, plugins: rows))
                return
            }
            print("plugins.json files, lowest precedence first:")
            for file in files { print("  \(file.found ? "found  " : "absent ") \(file.path)") }
            for role in ["backend", "accelerator"] {
                print(role == "backend" ? "\nBackends:" : "\nAccelerators:")
                for row in rows where row.role == role {
                    print("  \(row.name)  [\(row.kind)]  from \(row.origin)")
                    if let description = row.description { print("      \(description)") }
                    if let command = row.command ?? row.path.map({ [$0] }) {
                        print("      runs: \(command.joined(separator: " "))")
                    }
                    if let declared = row.protocol { print("      protocol: \(declared)") }
                    print("      status: \(row.status)")
                }
            }
        }
    }

    struct Describe: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "describe",
            abstract:
                "Show what a backend or accelerator reports about itself; an external plugin is asked (its `describe` request)."
        )

        @Argument(help: ArgumentHelp("The plugin's name (see `gvlt plugins list`).", valueName: "name"))
        var name: String

        @Flag(help: "Print the entry and the plugin's own description as JSON.")
        var json = false

        func run() throws {
            let registry = try loadRegistry()
            guard let entry = registry.entries[name] else {
                let names = registry.entries.keys.sorted()
                let close = Suggestions.closest(to: name, in: names).map { "did you mean `\($0)`? " } ?? ""
                throw InputError(
                    "no plugin named `\(name)`", hint: "\(close)registered: \(names.joined(separator: ", "))")
            }
            let row = EntryRow(entry, registry: registry)
            var report: [String: Any] = ["entry": try Self.object(row)]
            if entry.kind != .builtin {
                report["described"] = try ExternalPlugin(entry: entry).described
            } else if let backend = registry.builtinBackends[name] {
                report["described"] = [
                    "name": backend.name, "role": "backend", "description": backend.description,
                    "capabilities": try Self.object(backend.capabilities)
                ]
                if name == "linuxvm", let provider = registry.componentProvider {
                    report["components_for_plugins"] = provider.componentDescriptions
                }
            } else if let accelerator = registry.builtinAccelerators[name] {
                report["described"] = [
                    "name": accelerator.name, "role": "accelerator", "description": accelerator.description,
                    "capabilities": ["backends": accelerator.supportedBackends]
                ]
            }
            if json {
                let data = try JSONSerialization.data(
                    withJSONObject: report, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                FileHandle.standardOutput.write(data + Data("\n".utf8))
                return
            }
            print("\(row.name): \(row.kind) \(row.role), from \(row.origin)")
            if let command = row.command ?? row.path.map({ [$0] }) {
                print("  runs: \(command.joined(separator: " "))")
            }
            if let sha256 = row.sha256 { print("  sha256: \(sha256) (checked before each use)") }
            print("  status: \(row.status)")
            guard let described = report["described"] as? [String: Any] else { return }
            if let text = described["description"] as? String { print("  description: \(text)") }
            for key in ["version", "protocol"] {
                if let value = described[key] as? String { print("  \(key): \(value)") }
            }
            if let capabilities = described["capabilities"] as? [String: Any] {
                for key in capabilities.keys.sorted() { print("  \(key): \(Self.text(capabilities[key]!))") }
            }
            if let components = described["components"] as? [String], !components.isEmpty {
                print("  host components: \(components.joined(separator: ", "))")
            }
            if let options = described["options"] as? [[String: Any]], !options.isEmpty {
                print("  options (--option KEY=VALUE, or `options` in the build config file):")
                for option in options {
                    let name = option["name"] as? String ?? "?"
                    let type = option["type"] as? String ?? "string"
                    let fallback = option["default"].map { ", default \(Self.text($0))" } ?? ""
                    print(
                        "    \(name) (\(type)\(fallback))\((option["description"] as? String).map { ": " + $0 } ?? "")")
                }
            }
            if let components = report["components_for_plugins"] as? [String: String] {
                print("  offers plugin backends these host components:")
                for key in components.keys.sorted() { print("    \(key): \(components[key]!)") }
            }
        }

        static func object<T: Encodable>(_ value: T) throws -> Any {
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(value))
        }

        static func text(_ value: Any) -> String {
            if let list = value as? [Any] {
                return list.isEmpty ? "none" : list.map { text($0) }.joined(separator: ", ")
            }
            if let flag = value as? Bool { return flag ? "yes" : "no" }
            return "\(value)"
        }
    }
}
