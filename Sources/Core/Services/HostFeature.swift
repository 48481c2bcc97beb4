import Foundation

/// A feature and the host programs it runs. Each backend lists its own; `gvlt doctor` checks them,
/// and the .deb's `Depends:`/`Recommends:` are printed from the same list (`gvlt doctor
/// --debian-relationships`), so the package can never ask for less than doctor does.
public struct HostFeature: Sendable {
    public enum Need: String, Sendable, Encodable {
        /// A builtin backend cannot build or run its images without it: a `Depends:` of the package.
        case required
        /// Only some inputs or options use it: a `Recommends:`.
        case optional
    }

    public var name: String
    public var need: Need
    /// Each inner list is alternatives; the feature needs one tool of every list.
    public var tools: [[HostTool]]

    public init(_ name: String, _ need: Need, tools: [[HostTool]]) {
        self.name = name
        self.need = need
        self.tools = tools
    }

    /// Debian relationship fields for features of this need: `a, b | c`, in first-seen order, each
    /// alternative group once.
    public static func debianRelationship(_ features: [HostFeature], need: Need, excluding: Set<String> = []) -> String
    {
        var groups: [String] = []
        for feature in features where feature.need == need {
            for alternatives in feature.tools {
                var packages: [String] = []
                for tool in alternatives where !packages.contains(tool.aptPackage) { packages.append(tool.aptPackage) }
                let group = packages.joined(separator: " | ")
                if !groups.contains(group) && packages.allSatisfy({ !excluding.contains($0) }) { groups.append(group) }
            }
        }
        return groups.joined(separator: ", ")
    }
}

extension HostFeature {
    /// What the sources and `gvlt run` need, whatever the backend.
    public static let common: [HostFeature] = [
        HostFeature("export/build from OCI layouts, docker archives, rootfs dirs", .required, tools: []),
        HostFeature("--container containers-storage:REF", .optional, tools: [[.skopeo]]),
        HostFeature("--containerfile", .optional, tools: [[.podman, .buildah]]),
        HostFeature(
            "registry pulls and task downloads over HTTPS (the system's CAs)", .optional,
            tools: [
                [HostTool("/etc/ssl/certs/ca-certificates.crt", apt: "ca-certificates", purpose: "HTTPS downloads")]
            ]),
        HostFeature("gvlt run", .required, tools: [[QEMUProbe.qemu]])
    ]
}
