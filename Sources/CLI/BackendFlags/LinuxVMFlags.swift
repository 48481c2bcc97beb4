import ArgumentParser
import Core

/// Options of the linuxvm backend; each also has a build-config key of the same name under `options`.
struct LinuxVMFlags: ParsableArguments {
    @Option(
        name: [.customShort("k"), .long],
        help: ArgumentHelp(
            "Kernel provider: debian (default, Debian's linux-image-amd64 via apt), debian:VERSION, file:PATH or source:DIR. gvltctl's -k VERSION maps onto them: a tag such as v6.10 is checked out from --kernel-url and built as source:; latest is Debian's current kernel (or, with --kernel-url, that repository's default branch).",
            valueName: "provider"))
    var kernel: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "gvltctl's: the git repository a -k VERSION comes from (default: torvalds/linux on GitHub, which needs the network; a local path works offline).",
            valueName: "url"))
    var kernelUrl: String?

    @Option(name: .long, help: ArgumentHelp("Same as --kernel file:PATH (gvltctl's name).", valueName: "path"))
    var kernelFile: String?

    @Option(
        name: .long,
        help: ArgumentHelp("The modules tree (lib/modules/RELEASE) of a --kernel file: kernel.", valueName: "dir"))
    var kernelModules: String?

    @Option(name: .long, help: ArgumentHelp("The .config of a --kernel file: kernel.", valueName: "file"))
    var kernelConfig: String?

    @Option(name: .long, help: ArgumentHelp("Root file system: squashfs (default) or ext4.", valueName: "type"))
    var rootFs: String?

    @Option(name: .long, help: ArgumentHelp("Same as --root-fs (gvltctl's name).", valueName: "type"))
    var rootFsType: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A kernel module the init loads before the program (repeatable); it goes into the image with what it depends on.",
            valueName: "name"))
    var kernelModule: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A mount the init makes after the gevulot shares (repeatable), as gvltctl's: SOURCE:/TARGET[:FSTYPE[:OPTIONS]]. FSTYPE defaults to 9p, and only 9p gets the 9p options by default. The target directory is created in the image.",
            valueName: "spec"))
    var mount: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "SquashFS compressor: zstd (default), gzip, xz, lz4 or lzo; the kernel must support it.", valueName: "name")
    )
    var squashfsCompressor: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "How the SquashFS root is written: native (in-process through libsquashfs, with the build caches; the default) or tool (a tar streamed into tar2sqfs or mksquashfs, no cache). lzo needs tool.",
            valueName: "writer"))
    var squashfsWriter: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "gvltctl's: a program in the image that the kernel starts instead of gvlt-init (init=PATH); -i with --backend linuxvm. gvlt-init's options (--kernel-module, --mount, …) do not go with it.",
            valueName: "path"))
    var `init`: String?

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            "gvltctl's: arguments for --init's program, after `--` on the kernel command line.", valueName: "args"))
    var initArgs: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The gvlt-init binary to install (default: gvlt-init next to gvlt, or $GVLT_INIT).", valueName: "path"))
    var initBinary: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "gvltctl's: file:PATH installs that MIA-compatible init binary (as --init-binary); latest is gvlt's own init. Other versions are not downloaded.",
            valueName: "version"))
    var miaVersion: String?

    @Flag(
        help:
            "Debug only (gvltctl's): no gevulot shares and no worker config, so the image ignores the worker's and cannot run on the network."
    )
    var noGevulotRuntime = false

    @Flag(help: "gvltctl's: gvlt-init mounts no /proc, /sys, /dev, /run or /tmp.")
    var noDefaultMounts = false

    @Flag(
        help:
            "Debug only (gvltctl's): mount an ext4 root read-write. Workers (and gvlt run) attach the disk read-only, so there it stays read-only."
    )
    var rwRoot = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "gvltctl's: MBR boot code to use instead of SYSLINUX's mbr.bin (at most 440 bytes).", valueName: "file"))
    var mbrFile: String?

    @Option(
        name: [.customShort("s"), .long],
        help: ArgumentHelp(
            "gvltctl's: the whole disk's size, e.g. 10G or 1024M (default: as small as the content); the room after the root file system is a hole in the file.",
            valueName: "size"))
    var size: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The kernel command line's base words (default: console=ttyS0 panic=-1 quiet); gvlt adds root=, init= and the accelerators' words after them.",
            valueName: "words"))
    var kernelCmdline: String?

    /// Their values under the build option keys, as the backend's settings decode them.
    func collect(into options: inout BuildOptions) {
        options.flag("kernel", kernel)
        options.flag("kernel-url", kernelUrl)
        options.flag("kernel-file", kernelFile)
        options.flag("kernel-modules", kernelModules)
        options.flag("kernel-config", kernelConfig)
        options.flag("root-fs", rootFs)
        options.flag("root-fs-type", rootFsType)
        options.flag("kernel-module", kernelModule)
        options.flag("mount", mount)
        options.flag("squashfs-compressor", squashfsCompressor)
        options.flag("squashfs-writer", squashfsWriter)
        options.flag("init", `init`)
        options.flag("init-args", initArgs)
        options.flag("init-binary", initBinary)
        options.flag("mia-version", miaVersion)
        options.flag("no-gevulot-runtime", noGevulotRuntime)
        options.flag("no-default-mounts", noDefaultMounts)
        options.flag("rw-root", rwRoot)
        options.flag("mbr-file", mbrFile)
        options.flag("size", size)
        options.flag("kernel-cmdline", kernelCmdline)
    }
}
