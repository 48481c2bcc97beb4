/// One partition as `gvlt inspect` reports it, for every backend's images.
public struct PartitionReport: Codable, Sendable {
    public var number: Int
    public var active: Bool
    public var type: String
    public var start: Int64
    public var size: Int64

    public init(number: Int, active: Bool, type: String, start: Int64, size: Int64) {
        self.number = number
        self.active = active
        self.type = type
        self.start = start
        self.size = size
    }
}
