import ArgumentParser
import Core
import Foundation
import Nanos

/// gvlt started as `ops`: ops' command line for what can be done on this machine (build and run
/// Nanos images, list them), each turned into the gvlt command that does it, so that a script or a
/// Containerfile line written for ops runs unchanged. What needs ops' cloud providers, its package
/// registry or the network says so.
struct OpsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "gvlt speaking ops' command line: build and run Nanos unikernel images, offline.",
        discussion: """
            This is gvlt, started under the name ops. `ops build` and `ops run` take ops' flags and write \
            ops' image (~/.ops/images/NAME, or $OPS_HOME/images) with gvlt's native Nanos backend: no ops \
            binary, no network, and the same bytes as `gvlt build --backend nanos` of the same inputs. \
            Nanos releases are read from ~/.ops/VERSION as ops keeps them (--nanos-version, the \
            manifest's NanosVersion, or ~/.ops/latest.txt); gvlt downloads none.

            Commands that need a cloud provider, ops' package registry or the network (instance, \
            volume, deploy, pkg, update, profile, env) are refused with the gvlt way to do the job.

            Examples:
              ops build deviceQuery --nanos-version 0.1.51 -c deviceQuery.manifest
              ops run ./prover -c config.json --smp 2
              ops image list
            """,
        version: Installation.versionLine + " (as ops)",
        subcommands: [OpsBuild.self, OpsRun.self, OpsImage.self, OpsVersion.self])

    /// ops commands with no offline meaning are refused before parsing, so that their own flags do
    /// not turn into "unknown option" errors.
    static func prepare(_ arguments: [String]) throws -> [String] {
        if let refusal = refusal(arguments) { throw refusal }
        return arguments
    }

    static func refusal(_ arguments: [String]) -> UserFacingError? {
        let words = Personality.subcommand(arguments)
        guard let command = words.first else { return nil }
        let build = "build the image with `ops build PROGRAM -c config.json` and run it with `ops run` or `gvlt run`"
        switch command {
        case "instance", "deploy", "volume", "network", "compose", "env":
            return UnsupportedError(
                "ops \(command) manages cloud or ops-managed resources, which gvlt does not keep",
                hint: command == "volume"
                    ? "give gvlt run a directory instead: gvlt run IMAGE --volume DIR (it is volume %1)" : build)
        case "pkg", "package":
            return UnsupportedError(
                "ops \(command) works with ops' package registry, which needs the network, and gvlt keeps no package store",
                hint: "put the program and its files in the manifest (Program, Files, Dirs) and " + build)
        case "update", "profile":
            return UnsupportedError(
                "ops \(command) talks to ops' release server, which needs the network",
                hint:
                    "unpack a Nanos release into ~/.ops/VERSION (boot.img, kernel.img, klibs/) and pass --nanos-version VERSION"
            )
        case "image" where words.count > 1 && !["list", "ls", "-h", "--help"].contains(words[1]):
            return UnsupportedError(
                "ops image \(words[1]) is not available here: gvlt speaks only `ops image list` offline",
                hint: "look inside an image with gvlt inspect IMAGE; build one with ops build")
        default: return nil
        }
    }
}

/// ops' flags for how much it prints, accepted by every command.
struct OpsGlobalFlags: ParsableArguments {
    @Flag(name: .customLong("show-warnings"), help: "Accepted for ops; gvlt always shows warnings.")
    var showWarnings = false

    @Flag(name: .customLong("show-errors"), help: "Accepted for ops; gvlt always shows errors.")
    var showErrors = false

    @Flag(name: .customLong("show-debug"), help: "Print gvlt's debug messages.")
    var showDebug = false

    @Flag(name: [.customShort("j"), .long], help: "Print gvlt's JSON build report instead of ops' line.")
    var json = false
}

/// The flags ops' build and run share (ops' PersistBuildImageCommandFlags, config, nightly and
/// nanos-version flags).
struct OpsImageFlags: ParsableArguments {
    @Argument(help: ArgumentHelp("The ELF program.", valueName: "elf"))
    var program: String

    @Option(name: [.customShort("c"), .long], help: ArgumentHelp("The ops config file (JSON).", valueName: "file"))
    var config: String?

    @Option(
        name: .customLong("nanos-version"),
        help: ArgumentHelp("Use the Nanos release in ~/.ops/VERSION.", valueName: "version"))
    var nanosVersion: String?

    @Flag(name: [.customShort("n"), .long], help: "Nightly Nanos: refused, gvlt downloads no releases.")
    var nightly = false

    @Option(
        name: [.customShort("i"), .long],
        help: ArgumentHelp("The image name (default: the program's name up to its first dot).", valueName: "name"))
    var imagename: String?

    @Option(
        name: [.customShort("a"), .long], parsing: .unconditionalSingleValue,
        help: ArgumentHelp("A program argument (repeatable); replaces the config's Args.", valueName: "arg"))
    var args: [String] = []

    @Option(
        name: [.customShort("e"), .long], parsing: .unconditionalSingleValue,
        help: ArgumentHelp("An environment variable (repeatable), added to the config's Env.", valueName: "name=value"))
    var envs: [String] = []

    @Option(
        name: [.customShort("r"), .customLong("target-root")],
        help: ArgumentHelp("Where the program's libraries come from instead of /.", valueName: "dir"))
    var targetRoot: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Image type of a cloud provider; a local image has one type.", valueName: "type"))
    var type: String?

    @Option(name: .long, help: ArgumentHelp("ops volumes: refused, see gvlt run --volume.", valueName: "id:path"))
    var mounts: [String] = []

    @Option(name: .customLong("ip-address"), help: ArgumentHelp("Static IP: refused.", valueName: "ip"))
    var ipAddress: String?

    @Option(name: .customLong("ipv6-address"), help: ArgumentHelp("Static IPv6: refused.", valueName: "ip"))
    var ipv6Address: String?

    @Option(name: .long, help: ArgumentHelp("Static gateway: refused.", valueName: "ip"))
    var gateway: String?

    @Option(name: .long, help: ArgumentHelp("Static netmask: refused.", valueName: "mask"))
    var netmask: String?

    @Option(
        name: [.customShort("t"), .customLong("target-cloud")],
        help: ArgumentHelp("Only onprem, ops' default: gvlt builds local images.", valueName: "provider"))
    var targetCloud = "onprem"

    /// The `gvlt build` arguments that build what ops would: ops' image place, overwritten as ops
    /// overwrites it.
    func buildArguments(global: OpsGlobalFlags, localRun: Bool = false) throws -> [String] {
        var arguments = ["--backend", "nanos", program, "--force"] + (try nanosArguments(localRun: localRun))
        if global.showDebug { arguments.append("--verbose") }
        if global.json { arguments.append("--json") }
        return arguments
    }

    /// The nanos backend's flags (`NanosFlags`) that say what ops' flags say.
    func nanosArguments(localRun: Bool) throws -> [String] {
        guard targetCloud == "onprem" else {
            throw UnsupportedError(
                "-t \(targetCloud): building for a cloud provider needs its API; gvlt builds local images",
                hint: "drop -t; upload the image with the provider's own tools")
        }
        guard mounts.isEmpty else {
            throw UnsupportedError(
                "--mounts attaches ops volumes (~/.ops/volumes), which gvlt does not keep",
                hint: "keep Mounts in the config and give the directory at run time: gvlt run IMAGE --volume DIR")
        }
        let network = [
            ("--ip-address", ipAddress), ("--ipv6-address", ipv6Address), ("--gateway", gateway), ("--netmask", netmask)
        ]
        if let flag = network.first(where: { $0.1 != nil })?.0 {
            throw UnsupportedError(
                "\(flag): gvlt's Nanos images get no static network setup (Gevulot workers give the guest no network)",
                hint:
                    "set Nanos' own keys in the config's ManifestPassthrough (ipaddr, netmask, gateway) if you need them"
            )
        }
        var arguments = ["--ops-images"]
        if let config { arguments += ["--manifest", config] }
        if let nanosVersion { arguments += ["--nanos-version", nanosVersion] }
        if nightly { arguments.append("--nightly") }
        if let imagename {
            // ops takes the base name up to its first dot: `-i out/prover.v2.img` is `prover`.
            let name = String(URL(fileURLWithPath: imagename).lastPathComponent.split(separator: ".").first ?? "")
            guard !name.isEmpty else {
                throw InputError(
                    "-i `\(imagename)` leaves no image name (ops keeps the base name up to its first dot)",
                    hint: "e.g. -i myprover")
            }
            arguments += ["--imagename", name]
        }
        for argument in args { arguments += ["--args", argument] }
        for item in envs { arguments += ["--envs", item] }
        if let targetRoot { arguments += ["--target-root", targetRoot] }
        if localRun { arguments.append("--local-run") }
        return arguments
    }

    /// Where these flags put the image: the nanos backend's own default output for them.
    func imagePath(localRun: Bool) throws -> String {
        var options = BuildOptions()
        try NanosFlags.parse(try nanosArguments(localRun: localRun)).collect(into: &options)
        let backend = NanosBackend()
        guard let path = try backend.defaultOutput(try backend.settings(from: options), input: .program(program))
        else { throw InputError("the nanos backend names no image for \(program)") }
        return path
    }

    func noteType() {
        guard let type else { return }
        StreamFlags.note(quiet: false)(
            "--type \(type) is a cloud provider's image type; the local image has one format")
    }
}

struct OpsBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build an image from ELF (ops build), natively.",
        discussion: """
            Writes ~/.ops/images/NAME and prints `Bootable image file:PATH`, as ops does; NAME is -i, the \
            config's RunConfig.ImageName or the program's name, up to its first dot. An existing image of \
            that name is replaced. The same as `gvlt build --backend nanos PROGRAM -c FILE --ops-images --force`.
            """)

    @OptionGroup var image: OpsImageFlags
    @OptionGroup var global: OpsGlobalFlags

    func run() throws {
        image.noteType()
        var build = try BuildCommand.parse(try image.buildArguments(global: global))
        try build.run()
    }
}

struct OpsRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Build an ELF into an image and boot it in QEMU (ops run).",
        discussion: """
            Builds as `ops build` does (with debug_exit, so that the program's exit code comes back), then \
            boots the image with `gvlt run`: the config's RunConfig CPUs, Memory and GPUs, and --smp. gvlt \
            exits with the program's status. Networking (ports, bridges, taps) and debuggers are refused: \
            a Gevulot worker gives the guest no network.
            """)

    @OptionGroup var image: OpsImageFlags
    @OptionGroup var global: OpsGlobalFlags

    @Option(name: [.customShort("p"), .long], help: ArgumentHelp("Port forwarding: refused.", valueName: "port"))
    var port: [String] = []

    @Flag(name: [.customShort("f"), .long], help: "Accepted for ops: gvlt rebuilds the image on every run.")
    var force = false

    @Flag(name: [.customShort("d"), .long], help: "The interactive debugger: refused.")
    var debug = false

    @Flag(help: "Nanos' tracing flags: refused.")
    var trace = false

    @Option(name: [.customShort("g"), .long], help: ArgumentHelp("A GDB port: refused.", valueName: "port"))
    var gdbport: Int?

    @Option(name: .customLong("no-trace"), help: ArgumentHelp("Accepted with --trace only.", valueName: "syscall"))
    var noTrace: [String] = []

    @Flag(name: [.customShort("v"), .long], help: "Print gvlt's debug messages.")
    var verbose = false

    @Flag(name: [.customShort("b"), .long], help: "Bridged networking: refused.")
    var bridged = false

    @Option(name: .long, help: ArgumentHelp("A bridge: refused.", valueName: "name"))
    var bridgename: String?

    @Option(name: .long, help: ArgumentHelp("A tap device: refused.", valueName: "name"))
    var tapname: String?

    @Flag(name: [.customShort("s"), .long], help: "Boot the image already in ~/.ops/images without building it.")
    var skipbuild = false

    @Option(
        name: .long,
        help: ArgumentHelp("Use KVM (default true); --accel=false runs under TCG.", valueName: "true|false"))
    var accel: String = "true"

    @Option(
        name: .long, help: ArgumentHelp("Virtual CPUs (default: the config's RunConfig.CPUs, else 1).", valueName: "n"))
    var smp: Int?

    @Flag(name: .customLong("syscall-summary"), help: "Nanos' syscall summary: refused.")
    var syscallSummary = false

    func run() throws {
        let refused: [(Bool, String)] = [
            (!port.isEmpty, "-p/--port"), (debug, "-d/--debug"), (trace || !noTrace.isEmpty, "--trace"),
            (gdbport != nil, "--gdbport"), (bridged, "-b/--bridged"), (bridgename != nil, "--bridgename"),
            (tapname != nil, "-t/--tapname"), (syscallSummary, "--syscall-summary")
        ]
        if let flag = refused.first(where: { $0.0 })?.1 {
            throw UnsupportedError(
                "ops run \(flag) is not available: gvlt boots the image as a Gevulot worker does, without network or debugger",
                hint: "drop \(flag); the program's console and exit status come back as they are")
        }
        guard ["true", "false"].contains(accel) else {
            throw InputError("--accel `\(accel)` is not true or false", hint: "e.g. --accel=false for TCG")
        }
        image.noteType()
        let output = try image.imagePath(localRun: true)
        if !skipbuild {
            var build = try BuildCommand.parse(try image.buildArguments(global: global, localRun: true) + ["--quiet"])
            try build.run()
        } else if !FileManager.default.fileExists(atPath: output) {
            throw InputError("--skipbuild: \(output) does not exist", hint: "run once without -s to build it")
        }
        var run = [output, "--accel", accel == "true" ? "auto" : "tcg"]
        if let config = image.config { run += ["-c", config] }
        if let smp { run += ["--smp", String(smp)] }
        if verbose || global.showDebug { run.append("--verbose") }
        var command = try RunCommand.parse(run)
        try command.run()
    }
}

struct OpsImage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image", abstract: "Images in ~/.ops/images (ops image).", subcommands: [OpsImageList.self],
        defaultSubcommand: OpsImageList.self)
}

struct OpsImageList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the images in ~/.ops/images, as ops image list does.", aliases: ["ls"])

    @OptionGroup var global: OpsGlobalFlags

    func run() throws {
        let directory = NanosRelease.opsHome() + "/images"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter {
            !$0.hasPrefix(".")
        }.sorted()
        var rows: [[String]] = []
        for name in names {
            let path = directory + "/" + name
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                attributes[.type] as? FileAttributeType == .typeRegular
            else { continue }
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
            let modified = (attributes[.modificationDate] as? Date) ?? Date(timeIntervalSince1970: 0)
            rows.append([
                URL(fileURLWithPath: name).deletingPathExtension().lastPathComponent, path,
                ByteCountFormatter.string(fromByteCount: size, countStyle: .binary),
                Self.relative(modified)
            ])
        }
        if global.json {
            let objects = rows.map { ["name": $0[0], "path": $0[1], "size": $0[2], "createdAt": $0[3]] }
            try printJSON(objects)
            return
        }
        print(Self.table(header: ["NAME", "PATH", "SIZE", "CREATEDAT"], rows: rows), terminator: "")
    }

    static func relative(_ date: Date, now: Date = Date()) -> String {
        let seconds = max(0, Int(now.timeIntervalSince(date)))
        switch seconds {
        case ..<60: return "\(seconds) seconds ago"
        case ..<3600: return "\(seconds / 60) minutes ago"
        case ..<86400: return "\(seconds / 3600) hours ago"
        default: return "\(seconds / 86400) days ago"
        }
    }

    /// A plain text table, columns padded to their widest cell.
    static func table(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }
}

struct OpsVersion: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "Print the version (ops version).")

    func run() throws {
        print("Ops version: \(Installation.versionLine) (gvlt, speaking ops' command line)")
        let latest = NanosRelease.opsHome() + "/latest.txt"
        let nanos = (try? String(contentsOfFile: latest, encoding: .utf8))?.trimmingCharacters(
            in: .whitespacesAndNewlines)
        print("Nanos version: \(nanos.flatMap { $0.isEmpty ? nil : $0 } ?? "none (no ~/.ops/latest.txt)")")
    }
}
