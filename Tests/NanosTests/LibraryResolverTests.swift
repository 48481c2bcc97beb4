import Core
import Foundation
@testable import Nanos
import XCTest

/// Dependency closures from real Debian binaries built in the test, read from their ELF headers only.
final class LibraryResolverTests: XCTestCase {
    var work: String!

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "gvlt-ldd-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: work + "/app/lib", withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    func sh(_ script: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = URL(fileURLWithPath: work)
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, script)
    }

    func testDynamicProgramClosureHasTheLoaderAtItsPathAndLibcByItsSoname() throws {
        try Data(
            "#include <math.h>\n#include <stdio.h>\nint main(int c, char **v) { printf(\"%f\\n\", cos(c)); return 0; }\n"
                .utf8
        )
        .write(to: URL(fileURLWithPath: work + "/m.c"))
        try sh("gcc -O1 -o m m.c -lm")
        let closure = try LibraryResolver().closure(program: work + "/m", guestPath: "/m")
        XCTAssertEqual(closure.interpreter, "/lib64/ld-linux-x86-64.so.2")
        XCTAssertEqual(Set(closure.libraries.map(\.name)), ["libc.so.6", "libm.so.6"])
        let libc = try XCTUnwrap(closure.libraries.first { $0.name == "libc.so.6" })
        XCTAssertEqual(libc.guestPath, "/lib/x86_64-linux-gnu/libc.so.6")
        XCTAssertEqual(libc.neededBy, "/m")
        // The loader is a real file at exactly its PT_INTERP path, read through the host's links.
        let loader = try XCTUnwrap(closure.placements.first { $0.guestPath == "/lib64/ld-linux-x86-64.so.2" })
        XCTAssertNil(loader.symlinkTarget)
        XCTAssertEqual(try ELFFile(path: loader.hostPath!).dynamic?.soname, "ld-linux-x86-64.so.2")
        XCTAssertEqual(closure.placements.map(\.guestPath), closure.placements.map(\.guestPath).sorted())
    }

    func testOriginRunpathLibraryAndSymlinkedSonameAreKept() throws {
        try Data("int helper(int x) { return x * 2; }\n".utf8).write(to: URL(fileURLWithPath: work + "/h.c"))
        try Data("int helper(int);\nint main(int c, char **v) { return helper(c) - 2; }\n".utf8).write(
            to: URL(fileURLWithPath: work + "/p.c"))
        try sh(
            "gcc -shared -fPIC -Wl,-soname,libhelper.so.1 -o app/lib/libhelper.so.1.0.0 h.c && ln -s libhelper.so.1.0.0 app/lib/libhelper.so.1"
        )
        // Linked against the soname through the symlink, as real builds do.
        try sh("gcc -o app/prover p.c app/lib/libhelper.so.1 -Wl,--enable-new-dtags,-rpath,'$ORIGIN/lib'")
        let closure = try LibraryResolver().closure(program: work + "/app/prover", guestPath: "/prover")
        let helper = try XCTUnwrap(closure.libraries.first { $0.name == "libhelper.so.1" })
        // $ORIGIN is the program's directory: the host's app/ here, `/` in the image.
        XCTAssertEqual(helper.guestPath, "/lib/libhelper.so.1")
        XCTAssertEqual(helper.hostPath, work + "/app/lib/libhelper.so.1")
        let link = try XCTUnwrap(closure.placements.first { $0.guestPath == "/lib/libhelper.so.1" })
        XCTAssertEqual(link.symlinkTarget, "libhelper.so.1.0.0")
        let real = try XCTUnwrap(closure.placements.first { $0.guestPath == "/lib/libhelper.so.1.0.0" })
        XCTAssertEqual(real.hostPath, work + "/app/lib/libhelper.so.1.0.0")
    }

    func testMissingLibrariesAreListedTogetherWithWhereTheyWereSought() throws {
        try Data("int a(void); int b(void);\nint main(void) { return a() + b(); }\n".utf8).write(
            to: URL(fileURLWithPath: work + "/p.c"))
        try Data("int a(void) { return 0; }\n".utf8).write(to: URL(fileURLWithPath: work + "/a.c"))
        try Data("int b(void) { return 0; }\n".utf8).write(to: URL(fileURLWithPath: work + "/b.c"))
        try sh(
            "gcc -shared -fPIC -Wl,-soname,libgonea.so -o libgonea.so a.c && gcc -shared -fPIC -Wl,-soname,libgoneb.so -o libgoneb.so b.c && gcc -o p p.c -L. -lgonea -lgoneb && rm libgonea.so libgoneb.so"
        )
        XCTAssertThrowsError(
            try LibraryResolver(libraryPath: ["/opt/prover/lib"]).closure(program: work + "/p", guestPath: "/p")
        ) { error in
            let text = "\(error)"
            XCTAssertTrue(
                text.contains("libgonea.so (needed by /p)") && text.contains("libgoneb.so (needed by /p)"), text)
            XCTAssertTrue(
                text.contains("/opt/prover/lib (LD_LIBRARY_PATH)")
                    && text.contains("/usr/lib/x86_64-linux-gnu (default)"), text)
            XCTAssertNotNil((error as? UserFacingError)?.hint)
        }
    }

    func testNonX86ProgramsScriptsAndTruncatedFilesAreRefused() throws {
        try sh("printf '#include <stdio.h>\\nint main(void){puts(\"x\");return 0;}\\n' > s.c && gcc -o s s.c")
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: work + "/s")))
        // e_machine = EM_AARCH64 (183): a real ELF for another architecture as far as any reader can tell.
        var arm = bytes
        arm[18] = 183; arm[19] = 0
        XCTAssertTrue(FileManager.default.createFile(atPath: work + "/arm", contents: Data(arm)))
        XCTAssertThrowsError(try ELFProgram.check(work + "/arm")) {
            XCTAssertTrue("\($0)".contains("AArch64"), "\($0)")
        }

        XCTAssertTrue(
            FileManager.default.createFile(atPath: work + "/script", contents: Data("#!/bin/sh\necho hi\n".utf8)))
        XCTAssertThrowsError(try ELFProgram.check(work + "/script")) {
            XCTAssertTrue("\($0)".contains("is a script"), "\($0)")
        }

        bytes.removeLast(bytes.count - 600)
        XCTAssertTrue(FileManager.default.createFile(atPath: work + "/truncated", contents: Data(bytes)))
        XCTAssertThrowsError(try ELFProgram.check(work + "/truncated")) {
            XCTAssertTrue("\($0)".contains("truncated"), "\($0)")
        }

        XCTAssertTrue(FileManager.default.createFile(atPath: work + "/text", contents: Data("hello".utf8)))
        XCTAssertThrowsError(try ELFProgram.check(work + "/text")) {
            XCTAssertTrue("\($0)".contains("not an ELF"), "\($0)")
        }
        XCTAssertThrowsError(try ELFProgram.check(work + "/missing")) {
            XCTAssertTrue("\($0)".contains("does not exist"), "\($0)")
        }

        try sh("gcc -shared -fPIC -o libx.so s.c")
        XCTAssertThrowsError(try ELFProgram.check(work + "/libx.so")) {
            XCTAssertTrue("\($0)".contains("shared library"), "\($0)")
        }
    }

    func testLdSoCacheOfThisMachineMapsLibcToItsMultiarchPath() throws {
        let cache = try LdSoCache(path: "/etc/ld.so.cache")
        XCTAssertEqual(cache.entries["libc.so.6"], "/lib/x86_64-linux-gnu/libc.so.6")
        XCTAssertThrowsError(try LdSoCache(bytes: Array("glibc-ld.so.cache1.1".utf8) + [1, 0, 0, 0], path: "c"))
        XCTAssertThrowsError(try LdSoCache(bytes: Array("nonsense".utf8), path: "c"))
    }
}
