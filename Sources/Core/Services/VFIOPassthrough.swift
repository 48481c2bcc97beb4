import Foundation

/// Checks that a host PCI device can be given to a guest with `-device vfio-pci,host=…` (the worker's
/// way of passing GPUs), before QEMU starts and fails with a less helpful message: the device is
/// bound to vfio-pci, its IOMMU group exists, every device of the group is bound to vfio-pci (or to
/// nothing, or is a bridge), and /dev/vfio/<group> is usable. Errors say what to bind and how.
public struct VFIOPassthrough {
    /// `/sys` and `/dev`, replaceable so the checks can be tested against a made-up tree.
    public var sysfs: String
    public var dev: String

    public init(sysfs: String = "/sys", dev: String = "/dev") {
        self.sysfs = sysfs
        self.dev = dev
    }

    /// `01:00.0` → `0000:01:00.0`; nil when it is not a PCI address.
    public static func normalize(_ address: String) -> String? {
        let full = address.split(separator: ":").count == 2 ? "0000:" + address : address
        let parts = full.split(separator: ":")
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2 else { return nil }
        let slot = parts[2].split(separator: ".")
        guard slot.count == 2, slot[0].count == 2, slot[1].count == 1 else { return nil }
        let hex = Set("0123456789abcdefABCDEF")
        guard (parts[0] + parts[1] + slot[0] + slot[1]).allSatisfy(hex.contains) else { return nil }
        return full.lowercased()
    }

    /// Checks `address` and returns it normalized.
    public func check(_ address: String) throws -> String {
        guard let pci = Self.normalize(address) else {
            throw InputError(
                "--gpu `\(address)` is not a PCI address",
                hint: "write it as lspci -D shows it, e.g. 0000:01:00.0 or 01:00.0")
        }
        let device = "\(sysfs)/bus/pci/devices/\(pci)"
        guard FileManager.default.fileExists(atPath: device) else {
            throw InputError(
                "--gpu \(pci): this machine has no such PCI device", hint: "list the GPUs with `lspci -D -d 10de:`")
        }
        let howToBind = """
            bind it to vfio-pci as root: `modprobe vfio-pci; echo \(pci) > /sys/bus/pci/devices/\(pci)/driver/unbind; \
            echo vfio-pci > /sys/bus/pci/devices/\(pci)/driver_override; echo \(pci) > /sys/bus/pci/drivers_probe`
            """
        let driver = driverName(device)
        guard driver == "vfio-pci" else {
            throw InputError(
                "--gpu \(pci) is \(driver.map { "bound to \($0)" } ?? "bound to no driver"), not to vfio-pci, so QEMU cannot pass it to the guest",
                hint: howToBind)
        }
        guard let groupLink = try? FileManager.default.destinationOfSymbolicLink(atPath: device + "/iommu_group") else {
            throw InputError(
                "--gpu \(pci) is in no IOMMU group: the IOMMU is off",
                hint:
                    "enable VT-d/AMD-Vi in the firmware and boot the host with intel_iommu=on (or amd_iommu=on) iommu=pt"
            )
        }
        let group = URL(fileURLWithPath: groupLink).lastPathComponent
        let members =
            ((try? FileManager.default.contentsOfDirectory(atPath: "\(sysfs)/kernel/iommu_groups/\(group)/devices"))
            ?? []).sorted()
        for member in members where member != pci {
            let path = "\(sysfs)/bus/pci/devices/\(member)"
            let memberDriver = driverName(path)
            // Bridges stay with their driver; everything else in the group must be free for VFIO.
            if memberDriver == nil || memberDriver == "vfio-pci" || memberDriver == "pcieport" || isBridge(path) {
                continue
            }
            throw InputError(
                "--gpu \(pci) shares IOMMU group \(group) with \(member), which is bound to \(memberDriver!); VFIO needs the whole group",
                hint:
                    "bind \(member) to vfio-pci as well (it is usually the GPU's audio function), the same way as the GPU"
            )
        }
        let node = "\(dev)/vfio/\(group)"
        guard FileManager.default.fileExists(atPath: node) else {
            throw InputError(
                "--gpu \(pci): \(node) does not exist although the device is bound to vfio-pci",
                hint: "load vfio-pci and vfio_iommu_type1 (`modprobe vfio-pci`)")
        }
        guard access(node, R_OK | W_OK) == 0 else {
            throw InputError(
                "--gpu \(pci): \(node) is not readable and writable by this user",
                hint: "run as root, or give your user the device (e.g. chown $USER \(node))")
        }
        return pci
    }

    /// NVIDIA devices (vendor 0x10de, display class) bound to vfio-pci, for RunConfig.GPUs.
    public func boundNVIDIAGPUs() -> [String] {
        let directory = "\(sysfs)/bus/pci/drivers/vfio-pci"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).compactMap(Self.normalize)
            .sorted()
        return names.filter { name in
            let device = "\(sysfs)/bus/pci/devices/\(name)"
            return read(device + "/vendor") == "0x10de" && (read(device + "/class")?.hasPrefix("0x03") ?? false)
        }
    }

    func driverName(_ device: String) -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: device + "/driver")).map {
            URL(fileURLWithPath: $0).lastPathComponent
        }
    }

    func isBridge(_ device: String) -> Bool { read(device + "/class")?.hasPrefix("0x0604") ?? false }

    func read(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
