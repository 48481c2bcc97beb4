import Core
import Foundation

/// Source changes gvlt makes to NVIDIA's open kernel modules before building them, each detected
/// by the driver's own conftest mechanism so the same source builds on older and newer kernels.
///
/// `pci_resize_resource` gained a fourth argument, `exclude_bars`, upstream (v6.18) and in stable
/// backports such as Debian's 6.1.0-56 (6.1.192); driver 535 calls it with three and fails with
/// "too few arguments". Conftest's "functions" tests are inverted (a snippet that fails to compile
/// defines the macro), so the test calls the three-argument form: it fails exactly when the kernel
/// wants four. Passing 0 excludes no BARs, which is what the three-argument form did.
enum NvidiaCompatPatch {
    struct Edit {
        var file: String
        var anchor: String
        /// The anchor is replaced by this; it must contain the anchor if the anchor is to stay.
        var replacement: String
    }

    static let conftestBlock = """
                pci_resize_resource_has_exclude_bars_arg)
                    #
                    # Whether pci_resize_resource() takes a fourth argument, exclude_bars
                    # (v6.18, backported to stable kernels). Added by gvlt. Functions tests
                    # are inverted: this three-argument call fails to compile exactly when
                    # the fourth argument exists, which defines the macro.
                    #
                    CODE="
                    #include <linux/pci.h>
                    int conftest_pci_resize_resource_has_exclude_bars_arg(void) {
                        return pci_resize_resource(NULL, 0, 0);
                    }"

                    compile_check_conftest "$CODE" "NV_PCI_RESIZE_RESOURCE_HAS_EXCLUDE_BARS_ARG" "" "functions"
                ;;


        """

    static let edits: [Edit] = [
        Edit(
            file: "conftest.sh", anchor: "        pci_rebar_get_possible_sizes)\n",
            replacement: conftestBlock + "        pci_rebar_get_possible_sizes)\n"),
        Edit(
            file: "nvidia/nvidia.Kbuild",
            anchor: "NV_CONFTEST_FUNCTION_COMPILE_TESTS += pci_rebar_get_possible_sizes\n",
            replacement:
                "NV_CONFTEST_FUNCTION_COMPILE_TESTS += pci_rebar_get_possible_sizes\nNV_CONFTEST_FUNCTION_COMPILE_TESTS += pci_resize_resource_has_exclude_bars_arg\n"
        ),
        Edit(
            file: "nvidia/nv-pci.c", anchor: "    r = pci_resize_resource(pci_dev, NV_GPU_BAR1, requested_size);\n",
            replacement: """
                #if defined(NV_PCI_RESIZE_RESOURCE_HAS_EXCLUDE_BARS_ARG)
                    r = pci_resize_resource(pci_dev, NV_GPU_BAR1, requested_size, 0);
                #else
                    r = pci_resize_resource(pci_dev, NV_GPU_BAR1, requested_size);
                #endif

                """)
    ]

    /// Applies every edit to the source tree at `directory`. A source whose anchors are missing or
    /// repeated is another driver version than the patch was made for: that is an error naming it,
    /// not a silent build of unpatched code.
    static func apply(to directory: String, driver: String) throws {
        for edit in edits {
            let path = directory + "/" + edit.file
            guard let data = FileManager.default.contents(atPath: path) else {
                throw UnsupportedError(
                    "NVIDIA driver \(driver)'s source has no \(edit.file); gvlt's compatibility patch does not fit it",
                    hint: "use prebuilt modules with --nvidia-modules dir:PATH")
            }
            let text = String(decoding: data, as: UTF8.self)
            let count = text.components(separatedBy: edit.anchor).count - 1
            guard count == 1 else {
                throw UnsupportedError(
                    "NVIDIA driver \(driver)'s \(edit.file) has \(count) places for gvlt's pci_resize_resource compatibility patch instead of 1",
                    hint: "use prebuilt modules with --nvidia-modules dir:PATH")
            }
            try Data(text.replacingOccurrences(of: edit.anchor, with: edit.replacement).utf8).write(
                to: URL(fileURLWithPath: path))
        }
    }
}
