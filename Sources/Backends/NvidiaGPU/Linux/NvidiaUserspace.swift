import Core
import Foundation

/// The driver's parts that are not kernel modules, at exactly the driver's Debian version: the GSP
/// firmware (`firmware-nvidia-gsp`) and the user-space libraries CUDA programs load. Downloaded and
/// unpacked once per driver into the cache.
struct NvidiaUserspace {
    var driver: NvidiaDriverRelease
    var cache: CacheDirectory
    var progress: ProgressReporter

    static let firmwarePackage = "firmware-nvidia-gsp"
    /// libcuda and NVML, and the libraries libcuda dlopens for PTX JIT and NVVM.
    static let libraryPackages = ["libcuda1", "libnvidia-ml1", "libnvidia-ptxjitcompiler1", "libnvidia-nvvm4"]
    static let cacheNamespace = "nvidia/userspace"
    /// Where Debian's packages put the libraries (update-alternatives links them into the system).
    static let packageLibraryDirectory = "usr/lib/x86_64-linux-gnu/nvidia/current"

    struct Parts {
        /// `lib/firmware/nvidia/<version>/…` files: (path in the image, host path).
        var firmware: [(path: String, host: String)]
        /// Library files and their soname links, by file name.
        var libraries: [(name: String, host: String)]
        var libraryLinks: [(name: String, target: String)]
    }

    func fetch() throws -> Parts {
        let directory = try cache.entry("\(Self.cacheNamespace)/\(CacheDirectory.keyComponent(driver.debianVersion))") {
            staging in
            try progress.step("downloading the NVIDIA \(driver.version) firmware and libraries") {
                for package in [Self.firmwarePackage] + Self.libraryPackages {
                    let deb = try DebianPackage.download(
                        package, version: driver.debianVersion, into: staging + "/download/" + package)
                    try DebianPackage.extract(deb, into: staging + "/root") {
                        $0.hasPrefix("lib/firmware/nvidia/") || $0.hasPrefix(Self.packageLibraryDirectory + "/")
                    }
                }
                try FileManager.default.removeItem(atPath: staging + "/download")
            }
        }
        let root = directory + "/root"
        let firmwareDirectory = "lib/firmware/nvidia/\(driver.version)"
        let firmwareNames =
            ((try? FileManager.default.contentsOfDirectory(atPath: root + "/" + firmwareDirectory)) ?? []).sorted()
        for required in ["gsp_ga10x.bin", "gsp_tu10x.bin"] where !firmwareNames.contains(required) {
            throw InputError(
                "\(Self.firmwarePackage) \(driver.debianVersion) has no \(firmwareDirectory)/\(required)",
                hint:
                    "the firmware package does not match the driver; remove \(directory) from the cache and build again"
            )
        }
        var parts = Parts(
            firmware: firmwareNames.map { (firmwareDirectory + "/" + $0, root + "/" + firmwareDirectory + "/" + $0) },
            libraries: [], libraryLinks: [])
        let libraryDirectory = root + "/" + Self.packageLibraryDirectory
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: libraryDirectory)) ?? []).sorted() {
            let path = libraryDirectory + "/" + name
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                parts.libraryLinks.append((name, target))
            } else {
                parts.libraries.append((name, path))
            }
        }
        for soname in ["libcuda.so.1", "libnvidia-ml.so.1"]
        where !parts.libraryLinks.contains(where: { $0.name == soname }) {
            throw InputError(
                "the NVIDIA \(driver.debianVersion) packages have no \(soname)",
                hint: "remove \(directory) from the cache and build again")
        }
        return parts
    }

    /// The newest CUDA version each driver series supports (NVIDIA's CUDA toolkit release notes,
    /// table 3: the minimum driver of each toolkit).
    static let newestCUDA: [(driverMajor: Int, cuda: (Int, Int))] = [
        (450, (11, 0)), (455, (11, 1)), (460, (11, 2)), (465, (11, 3)), (470, (11, 4)), (495, (11, 5)), (510, (11, 6)),
        (515, (11, 7)), (520, (11, 8)), (525, (12, 0)), (530, (12, 1)), (535, (12, 2)), (545, (12, 3)), (550, (12, 4)),
        (555, (12, 5)), (560, (12, 6)), (570, (12, 8)), (575, (12, 9)), (580, (13, 0))
    ]

    static func newestCUDA(forDriver version: String) -> (Int, Int)? {
        guard let major = Int(version.split(separator: ".").first ?? "") else { return nil }
        return newestCUDA.last(where: { $0.driverMajor <= major })?.cuda
    }
}
