import ArgumentParser
import Core
import Foundation

struct BackendsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backends",
        abstract: "List the registered backends and accelerators.",
        discussion: registrySources + """


            Examples:
              gvlt backends
              gvlt backends --json
            """)

    @Flag(help: "Print the registry as JSON.")
    var json = false

    struct Row: Encodable {
        var name: String
        var role: String
        var kind: String
        var origin: String
        var status: String
        var description: String?
        var capabilities: BackendCapabilities?
        var supportedBackends: [String]?
    }

    func run() throws {
        let registry = try loadRegistry()
        let rows = (registry.entries(role: .backend) + registry.entries(role: .accelerator)).map { entry -> Row in
            let backend = entry.kind == .builtin ? registry.builtinBackends[entry.name] : nil
            let accelerator = entry.kind == .builtin ? registry.builtinAccelerators[entry.name] : nil
            var status = PluginRegistry.status(of: entry)
            if let backend, !backend.capabilities.buildsImages {
                status = "registered; image writing not implemented yet"
            }
            return Row(
                name: entry.name, role: entry.role.rawValue, kind: entry.kind.rawValue, origin: entry.origin,
                status: status, description: entry.description ?? backend?.description ?? accelerator?.description,
                capabilities: backend?.capabilities, supportedBackends: accelerator?.supportedBackends)
        }
        if json {
            try printJSON(rows)
            return
        }
        for role in ["backend", "accelerator"] {
            print(role == "backend" ? "Backends:" : "\nAccelerators:")
            for row in rows where row.role == role {
                print("  \(row.name)  [\(row.kind), \(row.origin)]")
                if let description = row.description { print("      \(description)") }
                if let capabilities = row.capabilities {
                    print(
                        "      inputs: \(capabilities.inputs.joined(separator: ", "))  outputs: \(capabilities.outputs.joined(separator: ", "))  accelerators: \(capabilities.accelerators.joined(separator: ", "))  reproducible: \(capabilities.reproducible ? "yes" : "no")"
                    )
                }
                if let supported = row.supportedBackends {
                    print("      backends: \(supported.joined(separator: ", "))")
                }
                print("      status: \(row.status)")
            }
        }
    }
}
