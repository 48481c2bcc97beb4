/// Nanos' text syntax for metadata, exactly as its `dump` tool prints it (tools/dump.c and
/// `print_value` in src/runtime/extra_prints.c): keys sorted by bytes, nested values indented under
/// their key, directories showing `..:<visited>` (the parent link the kernel adds in memory).
public enum TFSDump {
    /// `Label: …`, `UUID: …`, `metadata`, then the root.
    public static func dump(_ volume: TFSVolume) -> String {
        "Label: \(volume.label)\nUUID: \(volume.uuidText)\nmetadata\n" + text(of: .tuple(volume.root)) + "\n"
    }

    public static func text(of value: TFSValue) -> String {
        var out: [UInt8] = []
        print(value, indent: 0, into: &out, directoryParent: true)
        return String(decoding: out, as: UTF8.self)
    }

    static let parentKey: [UInt8] = [0x2E, 0x2E]

    static func print(_ value: TFSValue, indent: Int, into out: inout [UInt8], directoryParent: Bool) {
        func newline(_ count: Int) {
            out.append(0x0A)
            out.append(contentsOf: [UInt8](repeating: 0x20, count: count))
        }
        switch value {
        case .tuple(let tuple):
            out.append(UInt8(ascii: "("))
            let inner = indent + 1
            var pairs: [(key: [UInt8], value: TFSValue?)] = tuple.sortedPairs.map { ($0.key, $0.value) }
            if directoryParent, tuple["children"] != nil {
                // The parent is always being printed already, so it shows as visited.
                let at = pairs.firstIndex { !$0.key.lexicographicallyPrecedes(parentKey) } ?? pairs.count
                pairs.insert((parentKey, nil), at: at)
            }
            for (index, pair) in pairs.enumerated() {
                if index > 0 { newline(inner) }
                out.append(contentsOf: pair.key)
                out.append(UInt8(ascii: ":"))
                if let item = pair.value {
                    print(item, indent: inner + pair.key.count + 1, into: &out, directoryParent: directoryParent)
                } else {
                    out.append(contentsOf: Array("<visited>".utf8))
                }
            }
            out.append(UInt8(ascii: ")"))
        case .vector(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { newline(indent + 1) }
                print(item, indent: indent + 1, into: &out, directoryParent: directoryParent)
            }
            out.append(UInt8(ascii: "]"))
        case .string(let bytes):
            out.append(contentsOf: bytes)
        case .integer(let number):
            out.append(contentsOf: Array(String(number).utf8))
        case .buffer(let bytes):
            if bytes == [0] {
                out.append(contentsOf: Array("<null>".utf8))
            } else if bytes.contains(where: { $0 < 0x20 || $0 > 0x7E }) {
                out.append(contentsOf: Array("{binary, length \(bytes.count)}".utf8))
            } else {
                out.append(contentsOf: bytes)
            }
        }
    }
}
