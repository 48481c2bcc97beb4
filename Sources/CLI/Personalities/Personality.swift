import Foundation

/// Which command line gvlt speaks: its own, or that of a tool it replaces, chosen by the name it was
/// started under (a symlink or hard link named `ops` or `gvltctl`), as busybox chooses its applets.
enum Personality: Equatable {
    case gvlt, ops, gvltctl

    init(invokedAs argument0: String) {
        switch URL(fileURLWithPath: argument0).lastPathComponent {
        case "ops": self = .ops
        case "gvltctl": self = .gvltctl
        default: self = .gvlt
        }
    }

    /// The subcommand a personality's argument list names: its first word that is not a flag (the
    /// tools' global flags come before it, and none of them takes a value).
    static func subcommand(_ arguments: [String]) -> [String] {
        Array(arguments.drop { $0.hasPrefix("-") && $0 != "--help" && $0 != "-h" }.prefix(2))
    }
}
