import CHost
import Foundation

/// The driver version NVIDIA's kernel code carries in its identification string, which it logs when
/// it loads (`NVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  535.113.01  Release Build …`).
/// It is compiled into the Linux modules and into Nanos' gpu_nvidia klib alike, so it tells which
/// driver a klib was built for without running it.
public enum NvidiaVersionString {
    static let markers = ["Kernel Module for x86_64", "Kernel Module for aarch64"]

    /// The version following the identification string in `bytes`, or nil when there is none.
    public static func find(in bytes: [UInt8]) -> String? {
        for marker in markers {
            var searchFrom = 0
            let needle = Array(marker.utf8)
            while searchFrom < bytes.count, let start = offset(of: needle, in: bytes, from: searchFrom) {
                let end = start + needle.count
                var index = end
                while index < bytes.count, bytes[index] == 0x20 { index += 1 }
                var version: [UInt8] = []
                while index < bytes.count, (0x30...0x39).contains(bytes[index]) || bytes[index] == 0x2E {
                    version.append(bytes[index])
                    index += 1
                }
                let text = String(decoding: version, as: UTF8.self)
                let parts = text.split(separator: ".", omittingEmptySubsequences: false)
                if parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) { return text }
                searchFrom = end
            }
        }
        return nil
    }

    /// memmem from `from`: klibs are tens of megabytes.
    static func offset(of needle: [UInt8], in bytes: [UInt8], from: Int) -> Int? {
        bytes.withUnsafeBytes { h in
            needle.withUnsafeBytes { n in
                guard let found = memmem(h.baseAddress! + from, h.count - from, n.baseAddress, n.count) else {
                    return nil
                }
                return h.baseAddress!.distance(to: UnsafeRawPointer(found))
            }
        }
    }

    /// The driver version in the file name of one of CUDA's user-space driver libraries
    /// (`libcuda.so.535.261.03`, `libnvidia-ml.so.535.261.03`); nil for any other name, and for the
    /// soname links (`libcuda.so.1`), which carry none.
    public static func driverLibraryVersion(fileName name: String) -> String? {
        for prefix in ["libcuda.so.", "libnvidia-ml.so."] where name.hasPrefix(prefix) {
            let version = name.dropFirst(prefix.count)
            let parts = version.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) {
                return String(version)
            }
        }
        return nil
    }

    public static func find(inFile path: String) throws -> String? {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SystemError("cannot read", path: path, errno: errno)
        }
        return find(in: [UInt8](data))
    }
}
