import Foundation

/// `gvlt run` for the images of a backend plugin that lists `run` in describe's `roles`
/// (gvlt-plugin/1.1). The plugin does not boot anything itself: its `run` answer names a disk laid
/// out as a Firestarter image (the image itself, or one it converted into the host's scratch
/// directory), and the host boots that disk with its own Firestarter runner, so inputs, outputs,
/// the timeout and the exit code behave exactly as the worker's.
public final class ExternalRunner: ImageRunning {
    public let plugin: ExternalPlugin
    let disks: any ImageRunning
    public var name: String { plugin.name }
    public var imageKind: String { "\(plugin.name) (booted as a \(disks.imageKind) disk)" }
    public var runOptionKeys: [String] { disks.runOptionKeys }

    /// nil when the plugin does not offer `run`.
    public init?(plugin: ExternalPlugin, disks: any ImageRunning) {
        guard plugin.roles.contains("run") else { return nil }
        self.plugin = plugin
        self.disks = disks
    }

    public func recognizes(image: String) -> ImageRecognition {
        ExternalRecognition.ask(plugin, image: image)
    }

    public func qemuCommand(_ request: RunRequest) throws -> [String] {
        let scratch = try ScratchDirectory(label: "gvlt-run")
        defer { scratch.remove() }
        let (disk, _) = try bootDisk(request.image, scratch: scratch)
        guard disk == Self.resolved(request.image) else {
            throw UnsupportedError(
                "plugin `\(name)` boots \(request.image) from a converted disk, which is removed when gvlt exits",
                hint: "drop --print-qemu-command and run it; the plugin's note says what it converts")
        }
        return try disks.qemuCommand(request)
    }

    public func run(_ request: RunRequest, context: RunContext) throws -> RunReport {
        let (disk, note) = try bootDisk(request.image, scratch: context.scratch)
        if let note { context.note("\(name): \(note)") }
        var booted = request
        booted.image = disk
        return try disks.run(booted, context: context)
    }

    /// The plugin's `run` answer, checked: a regular file that is the image or lies in `scratch`.
    func bootDisk(_ image: String, scratch: ScratchDirectory) throws -> (String, String?) {
        let result = try plugin.request(
            "run", params: ["image": ExternalInspector.absolute(image), "scratch": scratch.path])
        guard let named = result["disk"] as? String else {
            throw InputError(
                "plugin `\(name)`'s run result has no `disk`",
                hint: "run answers {\"disk\": PATH}: the image itself or a file in `scratch`")
        }
        let disk = Self.resolved(named)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: disk, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw InputError("plugin `\(name)`'s run result names \(named), which is not a file")
        }
        guard disk == Self.resolved(image) || disk.hasPrefix(Self.resolved(scratch.path) + "/") else {
            throw InputError(
                "plugin `\(name)`'s run result names \(named), outside the image and the scratch directory",
                hint: "a plugin boots its image or a disk it wrote into `scratch`")
        }
        return (disk, result["note"] as? String)
    }

    static func resolved(_ path: String) -> String {
        URL(fileURLWithPath: ExternalInspector.absolute(path)).resolvingSymlinksInPath().path
    }
}

/// describe's `recognize`, shared by the inspect and run roles.
enum ExternalRecognition {
    static let values: [String: ImageRecognition] = ["certain": .certain, "possible": .possible, "no": .no]

    /// A plugin that cannot answer is not sure of anything; its error goes to stderr so that a
    /// broken plugin does not pass unnoticed, without stopping the builtins from answering.
    static func ask(_ plugin: ExternalPlugin, image: String) -> ImageRecognition {
        do {
            let result = try plugin.request("recognize", params: ["image": ExternalInspector.absolute(image)])
            guard let text = result["recognition"] as? String, let recognition = values[text] else {
                throw InputError(
                    "plugin `\(plugin.name)`'s recognize result has no `recognition` of certain, possible or no")
            }
            return recognition
        } catch {
            FileHandle.standardError.write(Data("warning: \(error)\n".utf8))
            return .no
        }
    }
}
