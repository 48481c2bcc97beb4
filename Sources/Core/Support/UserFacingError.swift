/// Every error a user can see carries what went wrong and, where one exists, the way out.
/// The CLI prints `error: <message>` and then `hint: <hint>`, and exits non-zero.
public protocol UserFacingError: Error, CustomStringConvertible {
    var message: String { get }
    var hint: String? { get }
}

extension UserFacingError {
    public var description: String {
        hint.map { "\(message)\n  hint: \($0)" } ?? message
    }
}

/// Input the user gave us is wrong or unusable: a bad flag value, a malformed file, a missing file.
public struct InputError: UserFacingError {
    public let message: String
    public let hint: String?
    public init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }
}

/// An image or archive tried something we refuse for safety: path escapes, write-through symlinks,
/// digests that do not match. The message names the layer and the entry.
public struct HostileInputError: UserFacingError {
    public let message: String
    public let hint: String?
    public init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint =
            hint ?? "the image is malformed or hostile; rebuild it with a standard tool (podman, docker, buildah)"
    }
}

/// A host program the feature needs is not installed.
public struct MissingToolError: UserFacingError {
    public let tool: String
    public let aptPackage: String
    public let purpose: String
    public init(tool: String, aptPackage: String, purpose: String) {
        self.tool = tool
        self.aptPackage = aptPackage
        self.purpose = purpose
    }
    public var message: String { "\(purpose) needs `\(tool)`, which is not installed" }
    public var hint: String? {
        "install it with `apt-get install \(aptPackage)`, or run `gvlt doctor` to see every missing tool"
    }
}

/// A feature that exists in the interface but is not available in this build. Never a silent no-op.
public struct UnsupportedError: UserFacingError {
    public let message: String
    public let hint: String?
    public init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }
}

/// An operating-system call failed.
public struct SystemError: UserFacingError {
    public let message: String
    public let hint: String?
    public init(_ operation: String, path: String? = nil, errno code: Int32, hint: String? = nil) {
        let reason = String(cString: strerror(code))
        self.message = path.map { "\(operation) \($0): \(reason)" } ?? "\(operation): \(reason)"
        self.hint = hint
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
