import Core
import Foundation
import XCTest

/// `gvlt run --gpu PCI`'s checks against a made-up sysfs (this machine has no GPU): each way a
/// device can be unusable for VFIO gives its own error with the fix, and a usable one passes.
final class VFIOPassthroughTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "gvlt-vfio-" + UUID().uuidString
        let fm = FileManager.default
        for dir in [
            "sys/bus/pci/drivers/nouveau", "sys/bus/pci/drivers/vfio-pci", "sys/bus/pci/drivers/snd_hda_intel",
            "sys/kernel/iommu_groups/12/devices", "dev/vfio"
        ] {
            try fm.createDirectory(atPath: "\(root)/\(dir)", withIntermediateDirectories: true)
        }
        for (device, vendor, pciClass) in [
            ("0000:01:00.0", "0x10de", "0x030000"), ("0000:01:00.1", "0x10de", "0x040300")
        ] {
            let path = "\(root)/sys/bus/pci/devices/\(device)"
            try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
            try Data((vendor + "\n").utf8).write(to: URL(fileURLWithPath: path + "/vendor"))
            try Data((pciClass + "\n").utf8).write(to: URL(fileURLWithPath: path + "/class"))
            try fm.createSymbolicLink(
                atPath: path + "/iommu_group", withDestinationPath: "../../../../kernel/iommu_groups/12")
            try fm.createDirectory(
                atPath: "\(root)/sys/kernel/iommu_groups/12/devices/\(device)", withIntermediateDirectories: true)
        }
        try bind("0000:01:00.0", to: "nouveau")
        try bind("0000:01:00.1", to: "snd_hda_intel")
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func bind(_ device: String, to driver: String) throws {
        let link = "\(root)/sys/bus/pci/devices/\(device)/driver"
        try? FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(
            atPath: link, withDestinationPath: "../../../../bus/pci/drivers/\(driver)")
        if driver == "vfio-pci" {
            try FileManager.default.createDirectory(
                atPath: "\(root)/sys/bus/pci/drivers/vfio-pci/\(device)", withIntermediateDirectories: true)
        }
    }

    func error(_ address: String) -> String {
        do {
            _ = try VFIOPassthrough(sysfs: root + "/sys", dev: root + "/dev").check(address)
            return "(no error)"
        } catch let error as UserFacingError {
            return error.message + " | " + (error.hint ?? "")
        } catch {
            return "\(error)"
        }
    }

    func testEachProblemIsNamedWithItsFixAndAUsableDevicePasses() throws {
        XCTAssertTrue(error("gpu0").contains("is not a PCI address"))
        XCTAssertTrue(error("02:00.0").contains("0000:02:00.0: this machine has no such PCI device"))
        let unbound = error("01:00.0")
        XCTAssertTrue(unbound.contains("bound to nouveau, not to vfio-pci"), unbound)
        XCTAssertTrue(unbound.contains("echo vfio-pci > /sys/bus/pci/devices/0000:01:00.0/driver_override"), unbound)

        try bind("0000:01:00.0", to: "vfio-pci")
        let group = error("01:00.0")
        XCTAssertTrue(group.contains("shares IOMMU group 12 with 0000:01:00.1, which is bound to snd_hda_intel"), group)

        try bind("0000:01:00.1", to: "vfio-pci")
        XCTAssertTrue(error("01:00.0").contains("/dev/vfio/12 does not exist"), error("01:00.0"))

        try Data().write(to: URL(fileURLWithPath: root + "/dev/vfio/12"))
        XCTAssertEqual(try VFIOPassthrough(sysfs: root + "/sys", dev: root + "/dev").check("01:00.0"), "0000:01:00.0")
        // RunConfig.GPUs picks bound NVIDIA display devices, not their audio functions.
        XCTAssertEqual(VFIOPassthrough(sysfs: root + "/sys", dev: root + "/dev").boundNVIDIAGPUs(), ["0000:01:00.0"])

        try FileManager.default.removeItem(atPath: "\(root)/sys/bus/pci/devices/0000:01:00.0/iommu_group")
        XCTAssertTrue(error("01:00.0").contains("is in no IOMMU group"), error("01:00.0"))
    }
}
