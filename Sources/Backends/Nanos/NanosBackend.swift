import Core
import Foundation

/// Nanos unikernel images from ops manifests, written natively: the program's
/// libraries are found by reading ELF files, the TFS and disk layout are written by gvlt, and the
/// same inputs give the same bytes. No ops binary and no network.
public final class NanosBackend: ImageBackend {
    public let name = "nanos"
    public let description = "Nanos unikernel images from an ops manifest (ops build compatible), written natively"
    public let capabilities = BackendCapabilities(
        inputs: ["elf-program"], outputs: ["raw-disk"], accelerators: ["nvidia"],
        reproducible: true, buildsImages: true)

    public init() {}

    public static func register(into registry: PluginRegistry) {
        registry.register(backend: NanosBackend())
        let runner = NanosRunner()
        registry.register(runner: runner)
        registry.register(inspector: runner)
        registry.register(extractor: runner)
    }

    public var targetKind: TargetKind { .nanosRelease }

    /// The settings of a build, from flags or the build config file's `options`, with ops build's
    /// names where it has them.
    public struct Settings: BuildSettings {
        var manifest: OpsManifest
        var release: NanosRelease.Choice
        var localRun: Bool
        var label: String
        /// `-i/--imagename`, taken as given (a manifest's ImageName or the program loses its extension).
        var explicitName: String?
        /// Whether the image goes where ops puts it, `~/.ops/images/NAME`, without `-o`.
        var opsImages: Bool

        public enum CodingKeys: String, CodingKey, CaseIterable {
            case manifest, args, imagename, nightly, boot, kernel, label, envs
            case nanosDirectory = "nanos-dir", nanosVersion = "nanos-version", localRun = "local-run"
            case opsImages = "ops-images", targetRoot = "target-root"
        }

        public init(from decoder: Decoder) throws {
            let options = try decoder.container(keyedBy: CodingKeys.self)
            manifest =
                try options.decodeIfPresent(String.self, forKey: .manifest).map(OpsManifest.init(path:))
                ?? OpsManifest()
            // ops build's -a replaces the manifest's Args, -e adds to its Env, -r replaces its
            // TargetRoot (relative to the working directory, as a flag is), and -i names the image.
            if let args = try options.decodeIfPresent([String].self, forKey: .args) { manifest.args = args }
            for item in try options.decodeIfPresent([String].self, forKey: .envs) ?? [] {
                guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                    throw InputError("--envs `\(item)` is not NAME=VALUE", hint: "e.g. -e RUST_LOG=debug")
                }
                let name = String(item[..<equals]), value = String(item[item.index(after: equals)...])
                manifest.env.removeAll { $0.0 == name }
                manifest.env.append((name, value))
            }
            if let root = try options.decodeIfPresent(String.self, forKey: .targetRoot) {
                manifest.targetRoot =
                    root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
            }
            opsImages = try options.decodeIfPresent(Bool.self, forKey: .opsImages) ?? false
            if let name = try options.decodeIfPresent(String.self, forKey: .imagename) {
                guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                    throw InputError(
                        "--imagename `\(name)` is not an image name",
                        hint: "give a file name without `/`, e.g. -i myprover")
                }
                manifest.imageName = name
                explicitName = name
            }
            if try options.decodeIfPresent(Bool.self, forKey: .nightly) == true {
                throw InputError(
                    "--nightly needs the network: gvlt does not download Nanos nightly builds",
                    hint:
                        "unpack a nightly release (boot.img, kernel.img, klibs/) into a directory and pass --nanos-dir DIR"
                )
            }
            let directory = try options.decodeIfPresent(String.self, forKey: .nanosDirectory)
            let version = try options.decodeIfPresent(String.self, forKey: .nanosVersion)
            if directory != nil && version != nil {
                throw InputError(
                    "--nanos-dir and --nanos-version both name a release; pass one",
                    hint: "--nanos-dir wins in ops terms; drop the other")
            }
            release = NanosRelease.Choice(
                nanosDirectory: directory, nanosVersion: version,
                boot: try options.decodeIfPresent(String.self, forKey: .boot),
                kernel: try options.decodeIfPresent(String.self, forKey: .kernel))
            localRun = try options.decodeIfPresent(Bool.self, forKey: .localRun) ?? false
            label = try options.decodeIfPresent(String.self, forKey: .label) ?? ""
        }

        /// The PROGRAM argument, else the manifest's Program: a host file next to the manifest.
        func program(_ input: BuildInput) throws -> String {
            if let program = input.program { return program }
            guard let named = manifest.program else {
                throw InputError(
                    "the nanos backend needs a program: pass PROGRAM, or set Program in the manifest",
                    hint: "gvlt build --backend nanos ./my_prover -c manifest.json")
            }
            return named.hasPrefix("/") ? (manifest.targetRootPath ?? "") + named : manifest.directory + "/" + named
        }

        /// ops names images after the program, up to the first dot of its base name; the config's
        /// RunConfig.ImageName is its `-i`.
        func imageName(program: String) -> String {
            if let explicitName { return explicitName }
            let base = URL(fileURLWithPath: manifest.run.imageName ?? manifest.imageName ?? manifest.program ?? program)
                .lastPathComponent
            return String(base.split(separator: ".", maxSplits: 1).first ?? Substring(base))
        }

        /// Where ops writes the image: with `-i`, RunConfig.ImageName, or `--ops-images` (what the
        /// `ops` command line implies).
        var writesToOpsImages: Bool { explicitName != nil || manifest.run.imageName != nil || opsImages }
    }

    /// What `prepare` found, so that `build` does not look again.
    public struct Prepared {
        var program: String
        var release: NanosRelease
    }

    public func validate(_ settings: Settings, input: BuildInput) throws {
        _ = try settings.program(input)
    }

    /// `./NAME.img`; with ops' `-i/--imagename NAME` (or the manifest's RunConfig.ImageName), where
    /// ops puts it: `~/.ops/images/NAME`.
    public func defaultOutput(_ settings: Settings, input: BuildInput) throws -> String? {
        let name = settings.imageName(program: try settings.program(input))
        guard settings.writesToOpsImages else { return "./" + name + ".img" }
        let directory = NanosRelease.opsHome() + "/images"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw InputError(
                "cannot create \(directory): \(error.localizedDescription)",
                hint: "pass -o FILE to write the image elsewhere")
        }
        return directory + "/" + name
    }

    /// Checks the program and finds the release, so that accelerators know where its klibs are.
    public func prepare(_ settings: Settings, input: BuildInput, context: BuildContext) throws -> Preparation<Prepared>
    {
        let program = try settings.program(input)
        // The program is the user's own input: check it before looking for a release.
        _ = try ELFProgram.check(program)
        let release = try NanosRelease.locate(settings.release, manifest: settings.manifest)
        return Preparation(
            target: .nanosRelease(NanosTarget(klibDirectory: release.klibDirectory)),
            state: Prepared(program: program, release: release))
    }

    func layout(
        _ settings: Settings, prepared: Prepared, scratch: String, contributions: [NamedContribution] = [],
        dryRun: Bool = false
    ) throws -> NanosLayout {
        var options = NanosLayout.Options(
            program: prepared.program, localRun: settings.localRun,
            imageName: settings.imageName(program: prepared.program))
        options.dryRun = dryRun
        for item in contributions {
            let (accelerator, contribution) = (item.accelerator, item.contribution)
            // Nanos has no loadable Linux modules and takes no kernel command line.
            if let module = contribution.linux.kernelModules.first {
                throw UnsupportedError(
                    "accelerator `\(accelerator)` asks for Linux kernel module \(module), and a Nanos image cannot load Linux modules",
                    hint: "use the accelerator with --backend linuxvm, or give Nanos a klib instead")
            }
            if let word = contribution.linux.kernelCommandLine.first {
                throw UnsupportedError(
                    "accelerator `\(accelerator)` adds `\(word)` to the kernel command line, and Nanos takes none",
                    hint: "use the accelerator with --backend linuxvm")
            }
            options.extraKlibs += contribution.nanos.klibs.map { ($0, contribution.nanos.klibFiles[$0]) }
            options.extraFiles += contribution.files
            options.extraEnv += contribution.env.map { ($0.key, $0.value) }
        }
        return try NanosLayout(
            manifest: settings.manifest, release: prepared.release, options: options, scratch: scratch)
    }

    public func notes(_ settings: Settings) -> [String] { settings.manifest.notes }

    public func preview(_ settings: Settings, input: BuildInput, kind: PreviewKind, scratch: ScratchDirectory) throws
        -> String?
    {
        let program = try settings.program(input)
        switch kind {
        case .dependencies:
            // Only the program is needed to list its libraries: no release is looked up.
            let path =
                "/"
                + OpsManifest.imagePath(ofProgram: settings.manifest.programName(host: program)).joined(separator: "/")
            let closure = try settings.manifest.libraryResolver().closure(program: program, guestPath: path)
            var lines: [String] = []
            if let interpreter = closure.interpreter { lines.append("interpreter \(interpreter)") }
            for library in closure.libraries {
                lines.append(
                    "\(library.name) => \(library.guestPath) (from \(library.hostPath); needed by \(library.neededBy))")
            }
            for placement in closure.placements where placement.symlinkTarget != nil {
                lines.append("link \(placement.guestPath) -> \(placement.symlinkTarget!)")
            }
            return lines.isEmpty
                ? "\(program) is static: it needs no libraries\n" : lines.joined(separator: "\n") + "\n"
        case .manifest:
            _ = try ELFProgram.check(program)
            // The manifest needs no kernel: without a release, its parts are named as missing.
            var unresolved: String?
            let release: NanosRelease
            do {
                release = try NanosRelease.locate(settings.release, manifest: settings.manifest)
            } catch let error as InputError {
                unresolved = error.message
                let klibDir = settings.manifest.klibDir.map {
                    $0.hasPrefix("/") ? $0 : settings.manifest.directory + "/" + $0
                }
                release = NanosRelease(
                    boot: "", kernel: "", klibDirectory: klibDir,
                    version: settings.release.nanosVersion ?? settings.manifest.nanosVersion)
            }
            var layout = try self.layout(
                settings, prepared: Prepared(program: program, release: release), scratch: scratch.path, dryRun: true)
            if let unresolved { layout.unresolved.insert("the Nanos release: \(unresolved)", at: 0) }
            return try layout.manifestText()
        }
    }

    public func build(_ job: BackendJob<Settings, Prepared>, context: BuildContext) throws -> BuildReport {
        let settings = job.settings
        let layout = try context.progress.step("reading the program, its libraries and the manifest") {
            try self.layout(
                settings, prepared: job.prepared, scratch: context.scratch.path, contributions: job.contributions)
        }
        let release = job.prepared.release
        for warning in layout.warnings { context.logger.warning("\(warning)") }
        let bootImage = try NanosBootImage(path: release.boot)
        let result = try context.progress.step("writing \(URL(fileURLWithPath: job.output).lastPathComponent)") {
            try NanosImageWriter.write(
                layout, bootImage: bootImage, label: settings.label, minimumSize: settings.manifest.baseVolumeSize,
                to: job.output, force: job.force)
        }
        return BuildReport(
            backend: name, output: URL(fileURLWithPath: job.output).standardizedFileURL.path, sha256: result.sha256,
            bytes: result.bytes, steps: context.steps)
    }
}
