import Core

/// One NVIDIA driver release as Debian packages it: the driver version (535.261.03) and the Debian
/// version of its packages (535.261.03-1). Every part an image gets (modules, firmware, libraries)
/// is taken at exactly this Debian version, so the parts match by construction.
struct NvidiaDriverRelease: Equatable, Sendable {
    var version: String
    var debianVersion: String

    /// The package the open kernel modules come from; it fixes the version of everything else.
    static let moduleSourcePackage = "nvidia-open-kernel-source"

    /// `535.261.03`: three dot-separated numbers.
    static func isDriverVersion(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 3 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }

    /// `535.261.03-1` or `535.309.01-0+deb12u1` → `535.261.03`.
    static func driverVersion(ofDebianVersion debian: String) -> String? {
        let upstream = debian.split(separator: ":").last.map(String.init) ?? debian
        let version = String(upstream.prefix { $0.isNumber || $0 == "." })
        return isDriverVersion(version) ? version : nil
    }

    /// The release apt offers for `package` (the open module source by default), or the one with
    /// driver version `wanted`.
    static func resolve(wanted: String?, package: String = moduleSourcePackage) throws -> NvidiaDriverRelease {
        let missingHint =
            "add Debian's contrib, non-free and non-free-firmware components (scripts/setup writes /etc/apt/sources.list.d/gvlt-non-free.sources) and run `apt-get update`"
        let versions = try DebianPackage.versions(of: package)
        guard !versions.isEmpty else {
            throw InputError("apt knows no \(package), which --accel nvidia takes the driver from", hint: missingHint)
        }
        for debian in versions {
            guard let version = driverVersion(ofDebianVersion: debian) else { continue }
            if wanted == nil || wanted == version {
                return NvidiaDriverRelease(version: version, debianVersion: debian)
            }
        }
        throw InputError(
            "apt has no \(package) for NVIDIA driver \(wanted!); it has \(versions.joined(separator: ", "))",
            hint: "use a driver apt has (--nvidia-version), or give the matching parts yourself")
    }
}
