import Core
import Foundation

/// ops' `types.Config` and the rules by which Go's `encoding/json` (with `DisallowUnknownFields`, as
/// `ops build -c` reads it) fills it. What ops accepts is accepted with the same result; what is only
/// accepted because Go is lenient (a key in the wrong case, a key given twice, text after the object)
/// also gets a note naming the line, which ops does not give.
enum OpsConfigDecoder {
    /// The Go types of ops' fields. Structs are named, not nested, so that no schema lives in global
    /// storage (the schemas below are built on use).
    enum GoType {
        case string, bool, int
        case stringList
        /// `map[string]string`.
        case stringMap
        /// `map[string]interface{}`.
        case anyMap
        case structure(StructName)
        case structList(StructName)
        /// `*bool`.
        case optionalBool

        var goName: String {
            switch self {
            case .string: return "string"
            case .bool, .optionalBool: return "bool"
            case .int: return "int"
            case .stringList: return "[]string"
            case .stringMap: return "map[string]string"
            case .anyMap: return "map[string]interface {}"
            case .structure(let type): return "types.\(type.rawValue)"
            case .structList(let type): return "[]types.\(type.rawValue)"
            }
        }
    }

    enum StructName: String {
        case config = "Config", runConfig = "RunConfig", providerConfig = "ProviderConfig"
        case cloudVolume = "CloudVolume", tag = "Tag", tagAttribute = "TagAttribute", nic = "Nic"

        var schema: GoStruct {
            switch self {
            case .config: return OpsConfigDecoder.config
            case .runConfig: return OpsConfigDecoder.runConfig
            case .providerConfig: return OpsConfigDecoder.providerConfig
            case .cloudVolume: return OpsConfigDecoder.cloudVolume
            case .tag: return OpsConfigDecoder.tag
            case .tagAttribute: return OpsConfigDecoder.tagAttribute
            case .nic: return OpsConfigDecoder.nic
            }
        }
    }

    struct GoStruct {
        var name: String
        /// JSON names (the field name, or its `json:` tag) in declaration order.
        var fields: [(String, GoType)]
    }

    /// One finding in a manifest that ops reads without a word.
    struct Note: Equatable {
        var line: Int
        var text: String
    }

    struct Decoded {
        var fields: [String: JSONValue]
        /// Where each top-level field's winning value was written.
        var positions: [String: (line: Int, column: Int)]
        var notes: [Note]
    }

    static var tagAttribute: GoStruct {
        GoStruct(
            name: "TagAttribute",
            fields: [
                ("image_label", .optionalBool), ("instance_label", .optionalBool), ("instance_network", .optionalBool),
                ("instance_metadata", .optionalBool)
            ])
    }
    static var tag: GoStruct {
        GoStruct(
            name: "Tag", fields: [("key", .string), ("value", .string), ("attribute", .structure(.tagAttribute))])
    }
    static var cloudVolume: GoStruct {
        GoStruct(
            name: "CloudVolume",
            fields: [("name", .string), ("iops", .int), ("size", .int), ("throughput", .int), ("typeof", .string)])
    }
    static var providerConfig: GoStruct {
        GoStruct(
            name: "ProviderConfig",
            fields: [
                ("BucketName", .string), ("BucketNamespace", .string), ("ConfidentialVM", .bool),
                ("DedicatedHostID", .string), ("DomainName", .string), ("StaticIP", .string), ("EnableIPv6", .bool),
                ("Flavor", .string), ("ImageType", .string), ("ImageName", .string), ("InstanceProfile", .string),
                ("KMS", .string), ("Platform", .string), ("ProjectID", .string),
                ("RootVolume", .structure(.cloudVolume)),
                ("SecurityGroup", .string), ("SkipImportVerify", .bool), ("Spot", .bool), ("Subnet", .string),
                ("Tags", .structList(.tag)), ("UserData", .string), ("VPC", .string), ("Zone", .string)
            ])
    }
    static var nic: GoStruct {
        GoStruct(
            name: "Nic",
            fields: [
                ("IPAddress", .string), ("IPv6Address", .string), ("NetMask", .string), ("Gateway", .string),
                ("BridgeName", .string)
            ])
    }
    static var runConfig: GoStruct {
        GoStruct(
            name: "RunConfig",
            fields: [
                ("Accel", .bool), ("AtExit", .string), ("Bridged", .bool), ("BridgeIPAddress", .string),
                ("BridgeName", .string), ("CanIPForward", .bool), ("CPUs", .int), ("GPUs", .int), ("GPUType", .string),
                ("Debug", .bool), ("Gateway", .string), ("GdbPort", .int), ("ImageName", .string),
                ("InstanceGroup", .string), ("InstanceName", .string), ("IPAddress", .string), ("IPv6Address", .string),
                ("Kernel", .string), ("Memory", .string), ("Mgmt", .string), ("Vga", .bool), ("Mounts", .stringList),
                ("AttachVolumeOnInstanceCreate", .bool), ("NetMask", .string), ("Nics", .structList(.nic)),
                ("Background", .bool), ("Ports", .stringList), ("QMP", .bool), ("ShowDebug", .bool),
                ("ShowErrors", .bool), ("ShowWarnings", .bool), ("JSON", .bool), ("TapName", .string),
                ("UDPPorts", .stringList), ("Verbose", .bool), ("VolumeSizeInGb", .int), ("ThreadsPerCore", .int)
            ])
    }
    static var config: GoStruct {
        GoStruct(
            name: "Config",
            fields: [
                ("Args", .stringList), ("DisableArgsCopy", .bool), ("BaseVolumeSz", .string), ("Boot", .string),
                ("UefiBoot", .string), ("Uefi", .bool), ("BuildDir", .string),
                ("CloudConfig", .structure(.providerConfig)),
                ("TargetConfig", .stringMap), ("Debugflags", .stringList), ("Dirs", .stringList), ("Env", .stringMap),
                ("Files", .stringList), ("Force", .bool), ("home", .string), ("Kernel", .string), ("KlibDir", .string),
                ("Klibs", .stringList), ("MapDirs", .stringMap), ("Mounts", .stringMap), ("NameServers", .stringList),
                ("NanosVersion", .string), ("NightlyBuild", .bool), ("NoTrace", .stringList),
                ("ManifestPassthrough", .anyMap), ("Program", .string), ("ProgramPath", .string),
                ("RebootOnExit", .bool), ("RunConfig", .structure(.runConfig)), ("LocalFilesParentDirectory", .string),
                ("TargetRoot", .string), ("TFSv4", .bool), ("Version", .string), ("Language", .string),
                ("Description", .string), ("VolumesDir", .string), ("PackageBaseURL", .string),
                ("PackageManifestURL", .string)
            ])
    }

    /// Decodes `data` into ops' Config. `where` names the file in errors ("manifest m.json").
    static func decode(_ data: Data, where label: String) throws -> Decoded {
        let document: GoJSON.Document
        do {
            document = try GoJSON.parse(data)
        } catch {
            throw InputError(
                "\(label) (line \(error.line), column \(error.column)): \(error.message)",
                hint:
                    "ops reads configs with Go's JSON parser, which allows no trailing commas and no comments; fix the JSON there"
            )
        }
        guard case .object(let members) = document.value else {
            throw InputError(
                "\(label): expected a JSON object at the top, found a \(document.value.goKind)",
                hint: "an ops config is {\"Program\": …}")
        }
        var decoder = Run(label: label)
        let fields = try decoder.structure(members, as: config, into: [:], path: "", top: true)
        if let trailing = document.trailing {
            decoder.notes.append(
                Note(
                    line: trailing.line,
                    text:
                        "\(label) (line \(trailing.line), column \(trailing.column)): the text after the JSON object is ignored, as ops ignores it; remove it"
                ))
        }
        return Decoded(fields: fields, positions: decoder.positions, notes: decoder.notes)
    }

    /// Go's key folding (`foldName`): ASCII letters and the few other letters whose simple case folding
    /// lands on ASCII (Kelvin sign, long s, dotted and dotless I).
    static func fold(_ key: String) -> String {
        String(
            String.UnicodeScalarView(
                key.unicodeScalars.map { scalar -> Unicode.Scalar in
                    switch scalar.value {
                    case 0x41...0x5A: return Unicode.Scalar(scalar.value + 0x20)!
                    case 0x212A: return "k"
                    case 0x017F: return "s"
                    case 0x0130, 0x0131: return "i"
                    default: return scalar
                    }
                }))
    }

    private struct Run {
        let label: String
        var notes: [Note] = []
        var positions: [String: (line: Int, column: Int)] = [:]

        init(label: String) { self.label = label }

        func at(_ member: GoJSON.Member) -> String { "\(label) (line \(member.line), column \(member.column))" }

        /// A struct: fields matched exactly, else ignoring case; a later key overwrites an earlier one
        /// and a nested struct is filled field by field, as Go does it.
        mutating func structure(
            _ members: [GoJSON.Member], as type: GoStruct, into existing: [String: JSONValue], path: String,
            top: Bool = false
        ) throws -> [String: JSONValue] {
            var result = existing
            var seen: [String: Int] = [:]
            for member in members {
                // Bytes, not Swift's canonical equivalence: Go's exact match is byte for byte (the
                // Kelvin sign is not K until folded).
                let field =
                    type.fields.first { $0.0.utf8.elementsEqual(member.key.utf8) }
                    ?? type.fields.first { OpsConfigDecoder.fold($0.0) == OpsConfigDecoder.fold(member.key) }
                guard let (name, fieldType) = field else {
                    let names = type.fields.map(\.0)
                    let suggestion =
                        Suggestions.closest(to: member.key, in: names).map { "did you mean `\($0)`? " } ?? ""
                    throw InputError(
                        "\(at(member)): unknown key `\(path)\(member.key)` (ops: json: unknown field \"\(member.key)\")",
                        hint:
                            "\(suggestion)valid keys\(path.isEmpty ? "" : " in " + path.dropLast()): \(names.joined(separator: ", "))"
                    )
                }
                if !name.utf8.elementsEqual(member.key.utf8) {
                    notes.append(
                        Note(
                            line: member.line,
                            text:
                                "\(at(member)): `\(path)\(member.key)` is read as `\(path)\(name)` because ops ignores case in keys; write `\(name)`"
                        ))
                }
                if let first = seen[name] {
                    notes.append(
                        Note(
                            line: member.line,
                            text:
                                "\(at(member)): `\(path)\(name)` is given again (first on line \(first)); the last one counts, as in ops"
                        ))
                }
                seen[name] = member.line
                if top { positions[name] = (member.line, member.column) }
                let value = try decode(member, as: fieldType, into: result[name], path: "\(path)\(name)")
                result[name] = value
            }
            return result
        }

        /// A note when a map key comes again: Go keeps the last value.
        mutating func noteRepeat(_ entry: GoJSON.Member, path: String, seen: inout [String: Int]) {
            if let first = seen[entry.key] {
                notes.append(
                    Note(
                        line: entry.line,
                        text:
                            "\(at(entry)): `\(path)` is given again (first on line \(first)); the last one counts, as in ops"
                    ))
            }
            seen[entry.key] = entry.line
        }

        /// A Go map: decoded into the map already there (Go reuses it), the last of a repeated key winning.
        mutating func merge(
            _ entries: [GoJSON.Member], into existing: JSONValue?, path: String,
            _ element: (GoJSON.Member) throws -> JSONValue
        ) throws -> JSONValue {
            var map: [String: JSONValue] = [:]
            if case .object(let earlier)? = existing { map = earlier }
            var seen: [String: Int] = [:]
            for entry in entries {
                noteRepeat(entry, path: "\(path).\(entry.key)", seen: &seen)
                map[entry.key] = try element(entry)
            }
            return .object(map)
        }

        /// One value into a field of `type`. nil removes the field (null into a list or a map); null
        /// into anything else leaves what was there.
        mutating func decode(_ member: GoJSON.Member, as type: GoType, into existing: JSONValue?, path: String) throws
            -> JSONValue?
        {
            let value = member.value
            func mismatch(_ found: GoJSON.Value) -> Error {
                InputError(
                    "\(at(member)): `\(path)` must be \(Self.describe(type)), not a \(found.goKind) (ops: json: cannot unmarshal \(found.goKind) into Go struct field \(path) of type \(type.goName))"
                )
            }
            if case .null = value {
                switch type {
                case .stringList, .stringMap, .anyMap, .structList, .optionalBool: return nil
                default: return existing
                }
            }
            switch (type, value) {
            case (.string, .string(let text)): return .string(text)
            case (.bool, .bool(let flag)), (.optionalBool, .bool(let flag)): return .bool(flag)
            case (.int, .number(let literal)):
                guard let number = Int64(literal) else {
                    throw InputError(
                        "\(at(member)): `\(path)` must be a whole number, not \(literal) (ops: json: cannot unmarshal number \(literal) into Go struct field \(path) of type int)"
                    )
                }
                return .number(Double(number))
            case (.stringList, .array(let items)):
                return .array(
                    try items.enumerated().map { index, item in
                        switch item {
                        case .string(let text): return .string(text)
                        case .null: return .string("")
                        default:
                            throw InputError(
                                "\(at(member)): `\(path)[\(index)]` must be a string, not a \(item.goKind) (ops: json: cannot unmarshal \(item.goKind) into Go struct field \(path) of type string)"
                            )
                        }
                    })
            case (.stringMap, .object(let entries)):
                let label = self.label  // the closure must not capture self, which merge mutates
                return try merge(entries, into: existing, path: path) { entry in
                    switch entry.value {
                    case .string(let text): return .string(text)
                    case .null: return .string("")
                    default:
                        throw InputError(
                            "\(label) (line \(entry.line), column \(entry.column)): `\(path).\(entry.key)` must be a string, not a \(entry.value.goKind) (ops: json: cannot unmarshal \(entry.value.goKind) into Go struct field \(path) of type string)",
                            hint: "quote it: \"\(entry.key)\": \"…\"")
                    }
                }
            case (.anyMap, .object(let entries)):
                return try merge(entries, into: existing, path: path) { Self.plain($0.value) }
            case (.structure(let inner), .object(let entries)):
                var earlier: [String: JSONValue] = [:]
                if case .object(let fields)? = existing { earlier = fields }
                return .object(try structure(entries, as: inner.schema, into: earlier, path: path + "."))
            case (.structList(let inner), .array(let items)):
                return .array(
                    try items.enumerated().map { index, item in
                        let element = GoJSON.Member(key: "", value: item, line: member.line, column: member.column)
                        switch item {
                        case .object(let entries):
                            return .object(
                                try structure(entries, as: inner.schema, into: [:], path: "\(path)[\(index)]."))
                        case .null: return .object([:])
                        default: throw mismatch(element.value)
                        }
                    })
            default:
                throw mismatch(value)
            }
        }

        /// `interface{}`: objects become maps (the last duplicate wins), numbers float64.
        static func plain(_ value: GoJSON.Value) -> JSONValue {
            switch value {
            case .null: return .null
            case .bool(let flag): return .bool(flag)
            case .number(let literal): return .number(Double(literal) ?? .infinity)
            case .string(let text): return .string(text)
            case .array(let items): return .array(items.map(plain))
            case .object(let members):
                var map: [String: JSONValue] = [:]
                for member in members { map[member.key] = plain(member.value) }
                return .object(map)
            }
        }

        static func describe(_ type: GoType) -> String {
            switch type {
            case .string: return "a string"
            case .bool, .optionalBool: return "true or false"
            case .int: return "a whole number"
            case .stringList: return "a list of strings"
            case .stringMap: return "an object of strings"
            case .anyMap, .structure: return "an object"
            case .structList: return "a list of objects"
            }
        }
    }
}
