import Core
import Foundation

/// Nanos unikernel images from ops manifests, written natively: the program's
/// libraries are found by reading ELF files, the TFS and disk layout are written by gvlt, and the
/// same inputs give the same bytes. No ops binary and no network.
public final class NanosBackend: ImageBackend, ImagePreviewing {
    public let name = "nanos"
    public let description = "Nanos unikernel images from an ops manifest (ops build compatible), written natively"
    public let capabilities = BackendCapabilities(inputs: ["elf-program"], outputs: ["raw-disk"], accelerators: ["nvidia"],
                                                  reproducible: true, buildsImages: true)

    public init() {}

    public static func register(into registry: PluginRegistry) {
        registry.register(backend: NanosBackend())
    }

    /// The settings of a build, from flags or the build config file's `options`.
    struct Settings {
        var manifest: OpsManifest
        var program: String
        var release: NanosRelease.Choice
        var localRun: Bool
        var label: String
        /// `-i/--imagename`, taken as given (a manifest's ImageName or the program loses its extension).
        var explicitName: String?

        init(_ plan: BuildPlan) throws {
            let options = plan.options
            manifest = try options["manifest"].map(OpsManifest.init(path:)) ?? OpsManifest()
            // ops build's -a replaces the manifest's Args, and -i names the image.
            if let args = options["args"] { manifest.args = args.isEmpty ? [] : args.components(separatedBy: "\n") }
            if let name = options["imagename"] {
                guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                    throw InputError("--imagename `\(name)` is not an image name", hint: "give a file name without `/`, e.g. -i myprover")
                }
                manifest.imageName = name
                explicitName = name
            }
            if options["nightly"] == "true" {
                throw InputError("--nightly needs the network: gvlt does not download Nanos nightly builds",
                                 hint: "unpack a nightly release (boot.img, kernel.img, klibs/) into a directory and pass --nanos-dir DIR")
            }
            if let program = plan.program {
                self.program = program
            } else if let named = manifest.program {
                // Without a PROGRAM argument the manifest's Program is the host file, next to the manifest.
                if named.hasPrefix("/") {
                    self.program = (manifest.targetRootPath ?? "") + named
                } else {
                    self.program = manifest.directory + "/" + named
                }
            } else {
                throw InputError("the nanos backend needs a program: pass PROGRAM, or set Program in the manifest",
                                 hint: "gvlt build --backend nanos ./my_prover -c manifest.json")
            }
            if options["nanos-dir"] != nil && options["nanos-version"] != nil {
                throw InputError("--nanos-dir and --nanos-version both name a release; pass one", hint: "--nanos-dir wins in ops terms; drop the other")
            }
            release = NanosRelease.Choice(nanosDirectory: options["nanos-dir"], nanosVersion: options["nanos-version"],
                                          boot: options["boot"], kernel: options["kernel"])
            localRun = options["local-run"] == "true"
            label = options["label"] ?? ""
        }

        /// ops names images after the program, up to the first dot of its base name.
        var imageName: String {
            if let explicitName { return explicitName }
            let base = URL(fileURLWithPath: manifest.imageName ?? manifest.program ?? program).lastPathComponent
            return String(base.split(separator: ".", maxSplits: 1).first ?? Substring(base))
        }
    }

    public func validate(_ plan: BuildPlan) throws {
        _ = try Settings(plan)
    }

    /// `./NAME.img`; with ops' `-i/--imagename NAME`, where ops puts it: `~/.ops/images/NAME`.
    public func defaultOutput(for plan: BuildPlan) throws -> String? {
        let settings = try Settings(plan)
        guard plan.options["imagename"] != nil else { return "./" + settings.imageName + ".img" }
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        let directory = home + "/.ops/images"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw InputError("cannot create \(directory): \(error.localizedDescription)", hint: "pass -o FILE to write the image elsewhere")
        }
        return directory + "/" + settings.imageName
    }

    /// Finds the release, so that accelerators know where its klibs are.
    public func prepare(_ plan: BuildPlan, context: BuildContext) throws -> BuildTarget {
        let settings = try Settings(plan)
        _ = try ELFProgram.check(settings.program)
        let release = try NanosRelease.locate(settings.release, manifest: settings.manifest)
        return BuildTarget(klibDirectory: release.klibDirectory, backendState: release)
    }

    func layout(_ settings: Settings, scratch: String, contributions: [(String, AcceleratorContribution)] = []) throws -> (NanosLayout, NanosRelease) {
        // The program is the user's own input: check it before looking for a release.
        _ = try ELFProgram.check(settings.program)
        let release = try NanosRelease.locate(settings.release, manifest: settings.manifest)
        var options = NanosLayout.Options(program: settings.program, localRun: settings.localRun, imageName: settings.imageName)
        for (accelerator, contribution) in contributions {
            // Nanos has no loadable Linux modules and takes no kernel command line.
            if let module = contribution.kernelModules.first {
                throw UnsupportedError("accelerator `\(accelerator)` asks for Linux kernel module \(module), and a Nanos image cannot load Linux modules",
                                       hint: "use the accelerator with --backend linuxvm, or give Nanos a klib instead")
            }
            if let word = contribution.kernelCommandLine.first {
                throw UnsupportedError("accelerator `\(accelerator)` adds `\(word)` to the kernel command line, and Nanos takes none",
                                       hint: "use the accelerator with --backend linuxvm")
            }
            options.extraKlibs += contribution.klibs.map { ($0, contribution.klibFiles[$0]) }
            options.extraFiles += contribution.files
            options.extraEnv += contribution.env.map { ($0.key, $0.value) }
        }
        let layout = try NanosLayout(manifest: settings.manifest, release: release, options: options, scratch: scratch)
        return (layout, release)
    }

    public func preview(_ plan: BuildPlan, kind: PreviewKind, scratch: ScratchDirectory) throws -> String {
        let settings = try Settings(plan)
        switch kind {
        case .dependencies:
            // Only the program is needed to list its libraries: no release is looked up.
            let path = "/" + OpsManifest.imagePath(ofProgram: settings.manifest.programName(host: settings.program)).joined(separator: "/")
            let closure = try settings.manifest.libraryResolver().closure(program: settings.program, guestPath: path)
            var lines: [String] = []
            if let interpreter = closure.interpreter { lines.append("interpreter \(interpreter)") }
            for library in closure.libraries {
                lines.append("\(library.name) => \(library.guestPath) (from \(library.hostPath); needed by \(library.neededBy))")
            }
            for placement in closure.placements where placement.symlinkTarget != nil {
                lines.append("link \(placement.guestPath) -> \(placement.symlinkTarget!)")
            }
            return lines.isEmpty ? "\(settings.program) is static: it needs no libraries\n" : lines.joined(separator: "\n") + "\n"
        case .manifest:
            let (layout, _) = try self.layout(settings, scratch: scratch.path)
            return layout.manifestText()
        }
    }

    public func build(_ plan: BuildPlan, context: BuildContext) throws -> BuildReport {
        let settings = try Settings(plan)
        let (layout, release) = try context.progress.step("reading the program, its libraries and the manifest") {
            try self.layout(settings, scratch: context.scratch.path,
                            contributions: plan.contributions.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        }
        for warning in layout.warnings { context.logger.warning("\(warning)") }
        let bootImage = try NanosBootImage(path: release.boot)
        let result = try context.progress.step("writing \(URL(fileURLWithPath: plan.output).lastPathComponent)") {
            try NanosImageWriter.write(layout, bootImage: bootImage, label: settings.label, minimumSize: settings.manifest.baseVolumeSize,
                                       to: plan.output, force: plan.force)
        }
        return BuildReport(backend: name, output: URL(fileURLWithPath: plan.output).standardizedFileURL.path, sha256: result.sha256,
                           bytes: result.bytes, steps: context.progress.timings.map { BuildReport.Step(name: $0.step, seconds: $0.seconds) })
    }
}
