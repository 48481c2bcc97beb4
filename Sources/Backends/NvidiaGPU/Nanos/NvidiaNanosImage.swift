import Core
import Foundation

/// `--accel nvidia` for Nanos images: the `gpu_nvidia` klib (from the release's klibs or
/// `--nvidia-klib FILE`) and, with `--nvidia-firmware DIR`, the GSP firmware of the driver version
/// the klib itself names, at /nvidia/<version>/ where the klib reads it. The backend then checks the
/// whole image against that version (firmware present, CUDA libraries matching, root writable).
struct NvidiaNanosImage {
    var settings: NvidiaSettings
    var release: NanosTarget
    var context: BuildContext

    static let klibName = "gpu_nvidia"
    static let firmwareFiles = ["gsp_ga10x.bin", "gsp_tu10x.bin"]

    static func check(_ settings: NvidiaSettings) throws {
        if let flag = settings.linuxOnly.first {
            throw InputError(
                "\(flag) is for Linux VM images; a Nanos image gets the gpu_nvidia klib instead",
                hint: "drop \(flag); --nvidia-klib FILE and --nvidia-firmware DIR are the Nanos settings")
        }
        if let version = settings.version, !NvidiaDriverRelease.isDriverVersion(version) {
            throw InputError(
                "--nvidia-version `\(version)` is not a driver version",
                hint: "write it as NVIDIA does, e.g. 535.113.01")
        }
    }

    func contribution() throws -> AcceleratorContribution {
        try Self.check(settings)
        let klib: String
        if let given = settings.klib {
            klib = given
        } else if let directory = release.klibDirectory {
            klib = directory + "/" + Self.klibName
        } else {
            throw InputError(
                "--accel nvidia needs the gpu_nvidia klib, and the Nanos release has no klib directory",
                hint: "pass --nvidia-klib FILE, or set KlibDir in the manifest")
        }
        guard FileManager.default.fileExists(atPath: klib) else {
            throw InputError(
                "the gpu_nvidia klib \(klib) does not exist",
                hint: "pass --nvidia-klib FILE, or set KlibDir to the directory holding gpu_nvidia")
        }
        guard let version = try NvidiaVersionString.find(inFile: klib) else {
            throw InputError(
                "cannot tell which NVIDIA driver the klib \(klib) was built for: it carries no NVIDIA identification string",
                hint: "use a gpu_nvidia klib built from NVIDIA's open kernel modules (nanovms/gpu-nvidia)")
        }
        if let wanted = settings.version, wanted != version {
            throw InputError("--nvidia-version is \(wanted), but the klib \(klib) is driver \(version)")
        }
        let files = GuestFiles(mtime: .sourceDateEpoch)
        if let directory = settings.firmware {
            // The release layout (DIR/<version>/gsp_*.bin) or the files themselves (DIR/gsp_*.bin).
            let versioned = directory + "/" + version
            let source = FileManager.default.fileExists(atPath: versioned) ? versioned : directory
            for name in Self.firmwareFiles {
                let host = source + "/" + name
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: host, isDirectory: &isDirectory), !isDirectory.boolValue
                else {
                    throw InputError(
                        "--nvidia-firmware \(directory) has no \(name) for driver \(version) (looked for \(versioned)/\(name) and \(directory)/\(name))",
                        hint: "firmware-nvidia-gsp of driver \(version) has it under lib/firmware/nvidia/\(version)/")
                }
                try files.add(host: host, at: "nvidia/\(version)/\(name)")
            }
        }
        context.logger.info("gpu_nvidia klib \(klib) is NVIDIA driver \(version)")
        return AcceleratorContribution(
            files: files.entries, resources: ["gpus": "1"],
            nanos: .init(klibs: [Self.klibName], klibFiles: settings.klib.map { [Self.klibName: $0] } ?? [:]))
    }
}
