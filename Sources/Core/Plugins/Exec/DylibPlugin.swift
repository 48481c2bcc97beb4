import CFFI
import Foundation
import Logging

/// A `dylib` plugin: a shared library loaded into gvlt with dlopen, whose two entry points are
/// declared in plugins.json as C declarations and called through libffi, so a plugin in C, Rust,
/// Zig or Swift (`@_cdecl`) needs no gvlt headers. The data is the exec protocol's: `call` gets the
/// request line and returns the answer lines as one NUL-terminated string, which `free` releases.
/// It runs in gvlt's process: a crash in it crashes gvlt, and it cannot be stopped on a timeout.
/// Prefer exec plugins.
final class DylibPlugin: PluginTransport, @unchecked Sendable {
    let entry: PluginEntry
    private let handle: UnsafeMutableRawPointer
    private let call: UnsafeMutableRawPointer
    private let free: UnsafeMutableRawPointer
    private let lock = NSLock()

    init(entry: PluginEntry) throws {
        self.entry = entry
        guard let path = entry.path, let symbols = entry.symbols, let callText = symbols["call"],
            let freeText = symbols["free"]
        else {
            throw InputError(
                "dylib plugin `\(entry.name)` (from \(entry.origin)) needs `path` and `symbols` {call, free}")
        }
        let where_ = "dylib plugin `\(entry.name)` (from \(entry.origin))"
        let callDeclaration = try CDeclaration(callText, what: "\(where_): symbols.call")
        let freeDeclaration = try CDeclaration(freeText, what: "\(where_): symbols.free")
        // gvlt-plugin's contract: char *call(const char *request); void free(char *answer).
        guard callDeclaration.parameters.count == 1, callDeclaration.parameters[0].isPointer,
            callDeclaration.returnType.isPointer
        else {
            throw InputError(
                "\(where_): `call` is declared as `\(callText)`, taking \(callDeclaration.parameters.count) argument\(callDeclaration.parameters.count == 1 ? "" : "s"); gvlt-plugin calls it with one string and expects a string back",
                hint: "declare it as \"char *NAME(const char *)\"")
        }
        guard freeDeclaration.parameters.count == 1, freeDeclaration.parameters[0].isPointer,
            freeDeclaration.returnType == .void
        else {
            throw InputError(
                "\(where_): `free` is declared as `\(freeText)`, taking \(freeDeclaration.parameters.count) argument\(freeDeclaration.parameters.count == 1 ? "" : "s"); gvlt-plugin calls it with the string `call` returned",
                hint: "declare it as \"void NAME(char *)\"")
        }
        try entry.verifyDigest()
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw InputError(
                "\(where_): cannot load \(path): \(String(cString: dlerror()))",
                hint: "check `path`, and that the library is built for this machine")
        }
        self.handle = handle
        func resolve(_ declaration: CDeclaration) throws -> UnsafeMutableRawPointer {
            guard let address = dlsym(handle, declaration.name) else {
                throw InputError(
                    "\(where_): \(path) has no symbol `\(declaration.name)`",
                    hint: "check the declaration in `symbols` against the library's exports (nm -D \(path))")
            }
            return address
        }
        do {
            call = try resolve(callDeclaration)
            free = try resolve(freeDeclaration)
        } catch {
            dlclose(handle)
            throw error
        }
    }

    deinit { dlclose(handle) }

    func call(_ method: String, params: [String: Any], progress: ProgressReporter?, logger: Logger?) throws -> [String:
        Any]
    {
        var request = try PluginProtocol.request(method, params: params)
        request.append(0)
        let answer: Data = try lock.withLock {
            let pointer = request.withUnsafeBytes { bytes -> UnsafeMutableRawPointer? in
                var argument: UnsafeRawPointer? = bytes.baseAddress
                var result: UnsafeMutableRawPointer?
                Self.invoke(call, returns: gvlt_ffi_type_pointer(), result: &result, argument: &argument)
                return result
            }
            guard let pointer else {
                throw InputError("plugin `\(entry.name)` (\(method)) returned no answer (NULL)")
            }
            let text = Data(bytes: pointer, count: strlen(pointer.assumingMemoryBound(to: CChar.self)))
            var argument: UnsafeRawPointer? = UnsafeRawPointer(pointer)
            var nothing: UInt64 = 0
            Self.invoke(free, returns: gvlt_ffi_type_void(), result: &nothing, argument: &argument)
            return text
        }
        let messages = PluginMessages(plugin: entry.name, progress: progress, logger: logger)
        messages.handle(lines: answer)
        let what = "plugin `\(entry.name)` (\(method))"
        guard let result = try messages.outcome(what: what, context: "") else {
            throw InputError(
                "\(what) answered without a result", hint: "the answer ends with a `result` or `error` line")
        }
        return result
    }

    /// One call of a one-pointer-argument function through libffi.
    static func invoke<R>(
        _ function: UnsafeMutableRawPointer, returns type: UnsafeMutablePointer<ffi_type>, result: inout R,
        argument: inout UnsafeRawPointer?
    ) {
        var cif = ffi_cif()
        var argumentTypes: [UnsafeMutablePointer<ffi_type>?] = [gvlt_ffi_type_pointer()]
        let status = argumentTypes.withUnsafeMutableBufferPointer { types in
            ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, type, types.baseAddress)
        }
        precondition(status == FFI_OK, "ffi_prep_cif failed for a one-pointer signature")
        withUnsafeMutablePointer(to: &argument) { argumentPointer in
            var values: [UnsafeMutableRawPointer?] = [UnsafeMutableRawPointer(argumentPointer)]
            withUnsafeMutablePointer(to: &result) { resultPointer in
                values.withUnsafeMutableBufferPointer { buffer in
                    ffi_call(
                        &cif, unsafeBitCast(function, to: (@convention(c) () -> Void).self),
                        UnsafeMutableRawPointer(resultPointer), buffer.baseAddress)
                }
            }
        }
    }
}

/// A C function declaration as plugins.json gives it: `char *name(const char *)`.
struct CDeclaration: Equatable {
    enum CType: Equatable {
        case void, pointer, integer
        var isPointer: Bool { self == .pointer }
    }

    let name: String
    let returnType: CType
    let parameters: [CType]

    init(_ text: String, what: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let open = trimmed.firstIndex(of: "("), trimmed.hasSuffix(")") else {
            throw InputError(
                "\(what): `\(text)` is not a C function declaration", hint: "write it like \"char *name(const char *)\""
            )
        }
        let head = trimmed[..<open].trimmingCharacters(in: .whitespaces)
        let nameStart =
            head.lastIndex { !($0.isLetter || $0.isNumber || $0 == "_") }.map { head.index(after: $0) }
            ?? head.startIndex
        name = String(head[nameStart...])
        guard !name.isEmpty, !(name.first!.isNumber) else {
            throw InputError("\(what): `\(text)` names no function", hint: "write it like \"char *name(const char *)\"")
        }
        returnType = try Self.type(String(head[..<nameStart]), in: text, what: what)
        let inside = trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)].trimmingCharacters(
            in: .whitespaces)
        if inside.isEmpty || inside == "void" {
            parameters = []
        } else {
            parameters = try inside.split(separator: ",").map { try Self.type(String($0), in: text, what: what) }
        }
    }

    static func type(_ text: String, in declaration: String, what: String) throws -> CType {
        let words = text.replacingOccurrences(of: "*", with: " * ").split(separator: " ").map(String.init)
        if words.contains("*") { return .pointer }
        let kept = words.filter { $0 != "const" && $0 != "unsigned" && $0 != "signed" }
        switch kept.first {
        case "void": return .void
        case "int", "long", "short", "char", "size_t", "int32_t", "int64_t", "uint32_t", "uint64_t": return .integer
        default:
            throw InputError(
                "\(what): cannot read the type `\(text.trimmingCharacters(in: .whitespaces))` in `\(declaration)`",
                hint: "use C's basic types and pointers, e.g. \"char *name(const char *)\"")
        }
    }
}
