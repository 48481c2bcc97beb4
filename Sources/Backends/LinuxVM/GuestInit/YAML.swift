import CInit

/// A YAML document as a tree, parsed with libyaml's event API.
enum YAMLNode {
    case scalar(String, line: Int)
    /// `null`, `~` or an empty plain scalar: serde_yaml writes unset fields this way.
    case null(line: Int)
    case sequence([YAMLNode], line: Int)
    case mapping([(key: String, value: YAMLNode)], line: Int)

    var line: Int {
        switch self {
        case .scalar(_, let line), .null(let line), .sequence(_, let line), .mapping(_, let line): return line
        }
    }

    var kindName: String {
        switch self {
        case .scalar: return "a scalar"
        case .null: return "null"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }

    static func parse(_ bytes: [UInt8], file: String) throws(InitError) -> YAMLNode {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) != 0 else {
            throw InitError("\(file): cannot initialize the YAML parser")
        }
        defer { yaml_parser_delete(&parser) }
        var input = bytes
        return try input.withUnsafeMutableBufferPointer { (buffer) throws(InitError) -> YAMLNode in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var stack: [(isMapping: Bool, items: [YAMLNode], keys: [String], pendingKey: String?, line: Int)] = []
            var root: YAMLNode?
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) != 0 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
                    throw InitError("\(file): line \(parser.problem_mark.line + 1): \(problem)")
                }
                defer { yaml_event_delete(&event) }
                let line = Int(cinit_event_line(&event))
                var finished: YAMLNode?
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return root ?? .mapping([], line: 1)
                case YAML_SCALAR_EVENT:
                    var length = 0
                    let pointer = cinit_event_scalar(&event, &length)
                    let text =
                        pointer.map {
                            String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self)
                        } ?? ""
                    let plain = cinit_event_scalar_plain(&event) != 0
                    if plain && ["", "~", "null", "Null", "NULL"].contains(text) {
                        finished = .null(line: line)
                    } else {
                        finished = .scalar(text, line: line)
                    }
                case YAML_SEQUENCE_START_EVENT:
                    stack.append((false, [], [], nil, line))
                case YAML_MAPPING_START_EVENT:
                    stack.append((true, [], [], nil, line))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    let top = stack.removeLast()
                    finished =
                        top.isMapping
                        ? .mapping(Array(zip(top.keys, top.items)).map { (key: $0.0, value: $0.1) }, line: top.line)
                        : .sequence(top.items, line: top.line)
                case YAML_ALIAS_EVENT:
                    throw InitError("\(file): line \(line): YAML aliases are not supported in runtime configs")
                default:
                    continue
                }
                guard let node = finished else { continue }
                if stack.isEmpty {
                    root = node
                    continue
                }
                if stack[stack.count - 1].isMapping {
                    if let key = stack[stack.count - 1].pendingKey {
                        stack[stack.count - 1].keys.append(key)
                        stack[stack.count - 1].items.append(node)
                        stack[stack.count - 1].pendingKey = nil
                    } else {
                        guard case .scalar(let key, _) = node else {
                            throw InitError("\(file): line \(line): mapping keys must be plain text")
                        }
                        stack[stack.count - 1].pendingKey = key
                    }
                } else {
                    stack[stack.count - 1].items.append(node)
                }
            }
        }
    }
}
