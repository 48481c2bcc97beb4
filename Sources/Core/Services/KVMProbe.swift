import CHost
import Foundation

/// Whether KVM really runs guest code. `/dev/kvm` existing proves nothing: on some hosts the device
/// is there but creating or running a VM hangs or fails. This boots a 5-byte real-mode guest
/// (`mov al, 42; out 0x10, al; hlt`) and checks that it reaches the `out`.
///
/// Run it in a child process with a timeout (`gvlt doctor` does), since a broken KVM may hang.
public enum KVMProbe {
    public enum Outcome: Equatable {
        case works
        case unavailable(String)
    }

    // ioctl numbers from <linux/kvm.h> (x86_64).
    static let getAPIVersion: UInt = 0xAE00
    static let createVM: UInt = 0xAE01
    static let getVCPUMmapSize: UInt = 0xAE04
    static let createVCPU: UInt = 0xAE41
    static let setUserMemoryRegion: UInt = 0x4020_AE46
    static let run: UInt = 0xAE80
    static let getRegs: UInt = 0x8090_AE81
    static let setRegs: UInt = 0x4090_AE82
    static let getSregs: UInt = 0x8138_AE83
    static let setSregs: UInt = 0x4138_AE84
    static let exitIO: UInt32 = 2

    public static func run(device: String = "/dev/kvm") -> Outcome {
        let kvm = open(device, O_RDWR | O_CLOEXEC)
        guard kvm >= 0 else { return .unavailable("cannot open \(device): \(String(cString: strerror(errno)))") }
        defer { close(kvm) }
        guard chost_ioctl_int(kvm, getAPIVersion, 0) == 12 else { return .unavailable("unexpected KVM API version") }
        let vm = chost_ioctl_int(kvm, createVM, 0)
        guard vm >= 0 else { return .unavailable("KVM_CREATE_VM failed: \(String(cString: strerror(errno)))") }
        defer { close(vm) }

        let memorySize = 0x1000
        guard let memory = mmap(nil, memorySize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0),
            memory != MAP_FAILED
        else { return .unavailable("cannot map guest memory") }
        defer { munmap(memory, memorySize) }
        let code: [UInt8] = [0xB0, 0x2A, 0xE6, 0x10, 0xF4]
        code.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: code.count) }

        // struct kvm_userspace_memory_region { u32 slot, flags; u64 guest_phys_addr, memory_size, userspace_addr; }
        var region = [UInt64](repeating: 0, count: 4)
        region[1] = 0
        region[2] = UInt64(memorySize)
        region[3] = UInt64(UInt(bitPattern: memory))
        guard region.withUnsafeMutableBytes({ chost_ioctl_pointer(vm, setUserMemoryRegion, $0.baseAddress) }) == 0
        else {
            return .unavailable("KVM_SET_USER_MEMORY_REGION failed: \(String(cString: strerror(errno)))")
        }
        let vcpu = chost_ioctl_int(vm, createVCPU, 0)
        guard vcpu >= 0 else { return .unavailable("KVM_CREATE_VCPU failed: \(String(cString: strerror(errno)))") }
        defer { close(vcpu) }
        let runSize = Int(chost_ioctl_int(kvm, getVCPUMmapSize, 0))
        guard runSize > 0, let runArea = mmap(nil, runSize, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0),
            runArea != MAP_FAILED
        else { return .unavailable("cannot map the vcpu run area") }
        defer { munmap(runArea, runSize) }

        // Real mode at address 0: code segment base 0, selector 0.
        var sregs = [UInt8](repeating: 0, count: 0x138)
        guard sregs.withUnsafeMutableBytes({ chost_ioctl_pointer(vcpu, getSregs, $0.baseAddress) }) == 0 else {
            return .unavailable("KVM_GET_SREGS failed")
        }
        sregs.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: UInt64(0), toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: UInt16(0), toByteOffset: 12, as: UInt16.self)
        }
        guard sregs.withUnsafeMutableBytes({ chost_ioctl_pointer(vcpu, setSregs, $0.baseAddress) }) == 0 else {
            return .unavailable("KVM_SET_SREGS failed")
        }
        // struct kvm_regs: 18 u64; rip is the 17th, rflags the 18th.
        var regs = [UInt64](repeating: 0, count: 18)
        regs[16] = 0
        regs[17] = 0x2
        guard regs.withUnsafeMutableBytes({ chost_ioctl_pointer(vcpu, setRegs, $0.baseAddress) }) == 0 else {
            return .unavailable("KVM_SET_REGS failed")
        }
        guard chost_ioctl_int(vcpu, run, 0) == 0 else {
            return .unavailable("KVM_RUN failed: \(String(cString: strerror(errno)))")
        }
        let exitReason = runArea.load(fromByteOffset: 8, as: UInt32.self)
        guard exitReason == exitIO else {
            return .unavailable("the test guest stopped with exit reason \(exitReason), not an I/O exit")
        }
        let port = runArea.load(fromByteOffset: 34, as: UInt16.self)
        let dataOffset = runArea.load(fromByteOffset: 40, as: UInt64.self)
        let value = runArea.load(fromByteOffset: Int(dataOffset), as: UInt8.self)
        guard port == 0x10, value == 42 else {
            return .unavailable("the test guest wrote \(value) to port \(port), expected 42 to 0x10")
        }
        return .works
    }
}
