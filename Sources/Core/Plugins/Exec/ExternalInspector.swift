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

    public func recognizes(image: String) -> ImageRecognition {
        ExternalRecognition.ask(plugin, image: image)
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

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
