import Core
import Foundation
@testable import gvlt
import LinuxVM
import Nanos
import NvidiaGPU
import XCTest

/// The builtins as the CLI registers them, and the plugins.json shipped with them.
final class BuiltinRegistryTests: XCTestCase {
    func parse(_ text: String) throws -> [PluginEntry] {
        try PluginsFile.parse(Data(text.utf8), origin: "plugins.json")
    }

    func registry() -> PluginRegistry {
        let registry = PluginRegistry()
        NanosBackend.register(into: registry)
        LinuxVMBackend.register(into: registry)
        NvidiaAccelerator.register(into: registry)
        return registry
    }

    func testBuiltinsRegisterUnderTheirNames() throws {
        let registry = registry()
        XCTAssertEqual(try registry.backend(named: "nanos").name, "nanos")
        XCTAssertEqual(try registry.backend(named: "linuxvm").name, "linuxvm")
        XCTAssertEqual(try registry.accelerator(named: "nvidia").supportedBackends, ["linuxvm", "nanos"])
        XCTAssertThrowsError(try registry.backend(named: "nvidia"))  // an accelerator, not a backend
    }

    func testShippedPluginsFileListsTheBuiltins() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../plugins.json")
        let entries = try PluginsFile.parse(try Data(contentsOf: url), origin: "plugins.json")
        XCTAssertEqual(
            Set(entries.map { "\($0.name):\($0.kind.rawValue):\($0.role.rawValue)" }),
            ["nanos:builtin:backend", "linuxvm:builtin:backend", "nvidia:builtin:accelerator"])
        XCTAssertNoThrow(try registry().merge(entries))
    }

    func testLaterFilesOverrideAndExternalEntriesAreStartedFromTheirPaths() throws {
        let registry = registry()
        try registry.merge(
            try parse(#"{"schema": 1, "plugins": [{"name": "fc", "kind": "exec", "role": "backend", "path": "/a"}]}"#))
        try registry.merge(
            try parse(#"{"schema": 1, "plugins": [{"name": "fc", "kind": "exec", "role": "backend", "path": "/b"}]}"#))
        XCTAssertEqual(registry.entries["fc"]?.path, "/b")
        XCTAssertThrowsError(try registry.backend(named: "fc")) { error in
            XCTAssertTrue("\(error)".contains("cannot start plugin `fc` (/b)"), "\(error)")
        }
        try registry.merge(
            try parse(
                #"{"schema": 1, "plugins": [{"name": "gl", "kind": "dylib", "role": "backend", "path": "/l.so", "symbols": {"call": "char *c(const char *)", "free": "void f(char *)"}}, {"name": "tpu", "kind": "exec", "role": "accelerator", "path": "/t"}]}"#
            ))
        XCTAssertThrowsError(try registry.backend(named: "gl")) { error in
            XCTAssertTrue("\(error)".contains("cannot load /l.so"), "\(error)")
        }
        XCTAssertThrowsError(
            try parse(
                #"{"schema": 1, "plugins": [{"name": "gl", "kind": "dylib", "role": "backend", "path": "/l.so"}]}"#)
        ) { error in
            XCTAssertTrue("\(error)".contains("a dylib plugin needs `symbols`"), "\(error)")
        }
        XCTAssertThrowsError(try registry.accelerator(named: "tpu")) { error in
            XCTAssertTrue("\(error)".contains("cannot start plugin `tpu` (/t)"), "\(error)")
        }
        XCTAssertThrowsError(
            try registry.merge(
                try parse(#"{"schema": 1, "plugins": [{"name": "qemu", "kind": "builtin", "role": "backend"}]}"#))
        ) { error in
            XCTAssertTrue("\(error)".contains("`qemu` is not a builtin backend"), "\(error)")
        }
    }
}
