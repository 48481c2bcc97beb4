import ArgumentParser
import Core

/// Options of the nvidia accelerator; each also has a build-config key of the same name under `options`.
struct NvidiaFlags: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Where the kernel modules come from: debian (default: built from Debian's nvidia-open-kernel-source against the image's kernel, cached) or dir:PATH (prebuilt .ko files).",
            valueName: "source"))
    var nvidiaModules: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The driver's modules to load, comma-separated (default nvidia,nvidia-uvm; also nvidia-modeset, nvidia-drm, nvidia-peermem).",
            valueName: "list"))
    var nvidiaKernelModules: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "install (default: add the driver's libcuda/libnvidia-ml, refusing an image with other versions) or keep (leave the image's own).",
            valueName: "mode"))
    var nvidiaUserspace: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The NVIDIA driver version to use (default: the one apt offers), e.g. 535.261.03.", valueName: "version"))
    var nvidiaVersion: String?

    @Flag(name: .long, help: "Fail the run when no NVIDIA GPU is present (default: say so and run the program anyway).")
    var requireGpu = false

    @Option(
        name: .long,
        help: ArgumentHelp("Nanos: the gpu_nvidia klib (default: KlibDir's or the release's).", valueName: "file"))
    var nvidiaKlib: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Nanos: GSP firmware of the klib's driver, as DIR/<version>/gsp_*.bin or DIR/gsp_*.bin.", valueName: "dir"))
    var nvidiaFirmware: String?

    /// Their values under the build option keys, as the backend's settings decode them.
    func collect(into options: inout BuildOptions) {
        options.flag("nvidia-modules", nvidiaModules)
        options.flag("nvidia-kernel-modules", nvidiaKernelModules)
        options.flag("nvidia-userspace", nvidiaUserspace)
        options.flag("nvidia-version", nvidiaVersion)
        options.flag("require-gpu", requireGpu)
        options.flag("nvidia-klib", nvidiaKlib)
        options.flag("nvidia-firmware", nvidiaFirmware)
    }
}
