import ArgumentParser
import Core

/// -c and -i, whose meaning depends on the backend.
struct ShortFlags: ParsableArguments {
    @Option(
        name: .customShort("c"),
        help: ArgumentHelp(
            "Depends on the backend, as in the tool each one replaces: with linuxvm the container (--container, gvltctl build -c), with nanos the Ops manifest (--manifest, ops build -c).",
            valueName: "container|manifest"))
    var shortC: String?

    @Option(
        name: .customShort("i"),
        help: ArgumentHelp(
            "Depends on the backend: with linuxvm the init program in the image (--init, gvltctl build -i), with nanos the image name (--imagename, ops build -i).",
            valueName: "init|name"))
    var shortI: String?

    /// -c and -i mean what they mean to the tool the backend replaces: gvltctl's for Linux VMs,
    /// ops's for backends that package a program.
    func apply(
        takesProgram: Bool, source: inout SourceOptions, linuxvm: inout LinuxVMFlags, nanos: inout NanosFlags
    ) throws {
        if let value = shortC {
            if takesProgram {
                guard nanos.manifest == nil else {
                    throw InputError("-c and --manifest both name the manifest", hint: "pass one")
                }
                nanos.manifest = value
            } else {
                guard source.container == nil else {
                    throw InputError("-c and --container both name the container", hint: "pass one")
                }
                source.container = value
            }
        }
        if let value = shortI {
            if takesProgram {
                guard nanos.imagename == nil else {
                    throw InputError("-i and --imagename both name the image", hint: "pass one")
                }
                nanos.imagename = value
            } else {
                guard linuxvm.`init` == nil else {
                    throw InputError("-i and --init both name the init", hint: "pass one")
                }
                linuxvm.`init` = value
            }
        }
    }
}
