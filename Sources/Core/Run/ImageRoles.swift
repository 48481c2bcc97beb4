/// How sure a role is that an image is of its kind: `certain` from a signature, `possible` when
/// it can hand the file to QEMU but has not recognised its layout (a qcow2 disk, say).
public enum ImageRecognition: Int, Comparable, Sendable {
    case no, possible, certain

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// `gvlt run` for the images of one backend.
public protocol ImageRunning: AnyObject {
    /// The backend whose images these are.
    var name: String { get }
    /// For messages: `Nanos`, `Linux VM`.
    var imageKind: String { get }
    func recognizes(image: String) -> ImageRecognition
    /// Keys of `RunRequest.options` this runner reads (e.g. `volume`); any other is refused.
    var runOptionKeys: [String] { get }
    /// The QEMU command line, without booting (`--print-qemu-command`).
    func qemuCommand(_ request: RunRequest) throws -> [String]
    func run(_ request: RunRequest, context: RunContext) throws -> RunReport
}

/// What `gvlt inspect` shows of an image: text for people, and the same as JSON.
public struct InspectionReport {
    public var text: String
    public var value: any Encodable

    public init(text: String, value: any Encodable) {
        self.text = text
        self.value = value
    }
}

/// `gvlt inspect` for the images of one backend.
public protocol ImageInspecting: AnyObject {
    var name: String { get }
    func recognizes(image: String) -> ImageRecognition
    func inspect(image: String, scratch: ScratchDirectory) throws -> InspectionReport
}

/// `gvlt extract`: one file out of an image, without booting it.
public protocol ImageExtracting: AnyObject {
    var name: String { get }
    func recognizes(image: String) -> ImageRecognition
    /// Writes the file at `path` in the image to `output`, atomically; returns its size.
    func extract(image: String, path: String, to output: String, force: Bool) throws -> Int64
}
