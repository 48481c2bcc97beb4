import Core
import Foundation

/// Partition 2 of a Firestarter disk: the root tree as SquashFS. The tree is streamed as a tar straight
/// into `tar2sqfs` (squashfs-tools-ng), or `mksquashfs -tar` (squashfs-tools) when that is what is
/// installed: nothing is ever extracted onto the host, and owners, devices and setuid bits come from
/// the tar, not from the build user.
public struct SquashfsImage {
    public var compressor: RootFilesystem.SquashfsCompressor
    public var jobs: Int

    public static let tar2sqfs = HostTool("tar2sqfs", apt: "squashfs-tools-ng", purpose: "SquashFS root file systems")
    public static let mksquashfs = HostTool("mksquashfs", apt: "squashfs-tools", purpose: "SquashFS root file systems")

    public init(compressor: RootFilesystem.SquashfsCompressor, jobs: Int = ProcessInfo.processInfo.activeProcessorCount)
    {
        self.compressor = compressor
        self.jobs = max(1, jobs)
    }

    public func build(_ tree: FileTree, to output: String) throws {
        let (tool, arguments): (String, [String])
        if let tar2sqfs = Self.tar2sqfs.locate() {
            // -s: a tar record it cannot store is an error, never a silent skip.
            tool = tar2sqfs
            arguments = ["-q", "-f", "-s", "-c", compressor.rawValue, "-j", String(jobs), output]
        } else if let mksquashfs = Self.mksquashfs.locate() {
            tool = mksquashfs
            arguments = [
                "-", output, "-tar", "-noappend", "-quiet", "-no-progress", "-comp", compressor.rawValue,
                "-processors", String(jobs), "-mkfs-time", "0"
            ]
        } else {
            throw MissingToolError(
                tool: "tar2sqfs", aptPackage: "squashfs-tools-ng", purpose: "SquashFS root file systems")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let input = Pipe()
        let messages = Pipe()
        process.standardInput = input
        process.standardOutput = messages
        process.standardError = messages
        // A 1 MiB pipe (Linux's default is 64 KiB) lets the tar writer and tar2sqfs run in larger steps.
        _ = fcntl(input.fileHandleForWriting.fileDescriptor, 1031 /* F_SETPIPE_SZ */, 1 << 20)
        let waitForExit = try process.runReturningWaiter()
        let token = Cleanup.shared.register(child: process.processIdentifier)
        defer { Cleanup.shared.unregister(token) }
        // The tool's messages are drained on another thread so it can never block on a full pipe.
        final class Box: @unchecked Sendable { var data = Data() }
        let collected = Box()
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            collected.data = messages.fileHandleForReading.readDataToEndOfFile()
            drained.signal()
        }
        var streamError: Error?
        do {
            try TarExporter().stream(
                tree, to: input.fileHandleForWriting.fileDescriptor, label: "the root tree for \(tool)")
        } catch {
            streamError = error
        }
        try? input.fileHandleForWriting.close()
        waitForExit()
        drained.wait()
        let text = String(decoding: collected.data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw HostCommand.Failed(
                command: [URL(fileURLWithPath: tool).lastPathComponent] + arguments, status: process.terminationStatus,
                output: text, hint: "the root tree could not be packed as SquashFS")
        }
        if let streamError { throw streamError }
    }
}
