import Core
import Foundation

extension LocalRun {
    public struct Outcome {
        public var result: Result
        public var accel: String
        public var copiedOutputs: [String]
        public var missingOutputs: [String]
    }

    /// Runs the image: prepares the shares, starts QEMU, streams the console to `console` as it comes,
    /// enforces the timeout and copies the outputs. Temp directories are removed, also on Ctrl-C.
    public func run(scratch: ScratchDirectory, progress: ProgressReporter, console: @escaping (Data) -> Void,
                    note: (String) -> Void) throws -> Outcome {
        let qemu = try QEMUProbe.qemu.require()
        guard FileManager.default.fileExists(atPath: image) else {
            throw InputError("image \(image) does not exist", hint: "build one with `gvlt build --backend linuxvm … -o \(image)`")
        }
        let sector = try SharedFile.openRegular(image, what: "image", followSymlinks: true)
        var first = [UInt8](repeating: 0, count: 512)
        _ = try first.withUnsafeMutableBytes { try sector.read(into: $0, at: 0) }
        // A qcow2 disk's sectors are behind its cluster tables; QEMU itself reads those.
        guard diskFormat != "raw" || (try? MBR.decode(first))?.partitions.count == 2 else {
            throw InputError("\(image) is not a Firestarter image (no MBR with a boot and a root partition)",
                             hint: "gvlt run boots images made by `gvlt build --backend linuxvm`")
        }

        let shares = scratch.path + "/shares"
        for share in ["input", "output", "rt-config"] {
            try FileManager.default.createDirectory(atPath: shares + "/" + share, withIntermediateDirectories: true)
        }
        try Data(workerConfig.yaml().utf8).write(to: URL(fileURLWithPath: shares + "/rt-config/config.yaml"))
        for input in inputs {
            guard case .success(let parts) = TreePath.components(input.destination), !parts.isEmpty else {
                throw InputError("--input \(input.source):\(input.destination): the destination must be a relative path inside /mnt/gevulot/input")
            }
            guard FileManager.default.fileExists(atPath: input.source) else {
                throw InputError("--input \(input.source): no such file or directory")
            }
            let target = shares + "/input/" + TreePath.join(parts)
            try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: target).deletingLastPathComponent().path,
                                                    withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: input.source, toPath: target)
        }

        let resolvedAccel: String
        switch accel {
        case .tcg: resolvedAccel = "tcg"
        case .kvm: resolvedAccel = "kvm"
        case .auto:
            let verdict = try QEMUProbe.kvmVerdict(qemuPath: qemu, scratch: scratch.path)
            resolvedAccel = verdict.usable ? "kvm" : "tcg"
            if !verdict.usable { note("KVM is not usable here (\(verdict.reason)); running with software emulation (tcg)") }
        }

        final class Reported: @unchecked Sendable {
            let lock = NSLock()
            var result: Result?
        }
        let reported = Reported()
        let finished = try QEMUProcess.run(qemu, qemuArguments(accel: resolvedAccel, shares: shares), timeout: timeout, console: console) { line in
            if let result = LocalRun.result(fromConsoleLine: line) { reported.lock.withLock { reported.result = result } }
        }

        // The init's line says what happened; QEMU's status, set by the init through debug-exit, must
        // agree, so a program that prints a fake line (then crashes the guest) is not believed.
        let result: Result
        let qemuStatus = finished.status
        let success = Int32(workerConfig.debugExit?.successCode ?? 3)
        if finished.timedOut {
            result = .timedOut(timeout!)
        } else if let reported = reported.lock.withLock({ reported.result }) {
            switch reported {
            case .exited(0):
                result = qemuStatus == success ? reported : .noResult(qemuStatus: qemuStatus)
            default:
                result = qemuStatus == success || qemuStatus == 0 ? .noResult(qemuStatus: qemuStatus) : reported
            }
        } else {
            result = .noResult(qemuStatus: qemuStatus)
        }

        // Outputs: the requested paths, or everything the program wrote when none were requested.
        var copied: [String] = []
        var missing: [String] = []
        let produced = shares + "/output"
        let wanted = outputs.isEmpty ? ((try? FileManager.default.contentsOfDirectory(atPath: produced))?.sorted() ?? []) : outputs
        if !wanted.isEmpty {
            try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        }
        for name in wanted {
            guard case .success(let parts) = TreePath.components(name), !parts.isEmpty else {
                throw InputError("--output \(name): must be a relative path inside /mnt/gevulot/output")
            }
            let relative = TreePath.join(parts)
            let source = produced + "/" + relative
            guard FileManager.default.fileExists(atPath: source) else {
                missing.append(relative)
                continue
            }
            let destination = outputDirectory + "/" + relative
            try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: destination).deletingLastPathComponent().path,
                                                    withIntermediateDirectories: true)
            if FileManager.default.fileExists(atPath: destination) { try FileManager.default.removeItem(atPath: destination) }
            try FileManager.default.copyItem(atPath: source, toPath: destination)
            copied.append(destination)
        }
        return Outcome(result: result, accel: resolvedAccel, copiedOutputs: copied, missingOutputs: missing)
    }
}
