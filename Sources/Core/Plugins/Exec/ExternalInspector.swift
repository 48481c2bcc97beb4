import Foundation

/// `gvlt inspect` for the images of a backend plugin that lists `inspect` in describe's `roles`
/// (gvlt-plugin/1.1). The host asks `recognize` first, with the image's absolute path, and sends
/// `inspect` only to the plugin most sure of it; the plugin reads the image and never writes it.
public final class ExternalInspector: ImageInspecting {
    public let plugin: ExternalPlugin
    public var name: String { plugin.name }

    /// nil when the plugin does not offer `inspect`.
    public init?(plugin: ExternalPlugin) {
        guard plugin.roles.contains("inspect") else { return nil }
        self.plugin = plugin
    }

    /// A plugin that cannot answer is not sure of anything; its error goes to stderr so that a
    /// broken plugin does not pass unnoticed, without stopping the builtins from answering.
    public func recognizes(image: String) -> ImageRecognition {
        do {
            let result = try plugin.request("recognize", params: ["image": Self.absolute(image)])
            guard let text = result["recognition"] as? String, let recognition = Self.recognitions[text] else {
                throw InputError(
                    "plugin `\(name)`'s recognize result has no `recognition` of certain, possible or no")
            }
            return recognition
        } catch {
            FileHandle.standardError.write(Data("warning: \(error)\n".utf8))
            return .no
        }
    }

    public func inspect(image: String, scratch: ScratchDirectory) throws -> InspectionReport {
        let result = try plugin.request("inspect", params: ["image": Self.absolute(image), "scratch": scratch.path])
        guard let text = result["text"] as? String else {
            throw InputError(
                "plugin `\(name)`'s inspect result has no `text`",
                hint: "inspect answers {\"text\": \"…\", \"report\": {…}}")
        }
        let report =
            try result["report"].map {
                try JSONDecoder().decode(
                    JSONValue.self, from: JSONSerialization.data(withJSONObject: $0, options: [.fragmentsAllowed]))
            } ?? .object([:])
        return InspectionReport(text: text.hasSuffix("\n") || text.isEmpty ? text : text + "\n", value: report)
    }

    static let recognitions: [String: ImageRecognition] = ["certain": .certain, "possible": .possible, "no": .no]

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
