import CArchive
import CElf
import CFFI

/// The C libraries gvlt links, each checked by a real call, for `gvlt doctor`.
public enum LibraryVersions {
    public static var all: [String: String] {
        var result = ["libarchive": String(cString: archive_version_details())]
        // elf_version must be called before any other libelf function; it returns EV_NONE when the
        // library cannot handle the current ELF version.
        result["libelf"] =
            elf_version(UInt32(EV_CURRENT)) == UInt32(EV_NONE)
            ? "unusable (EV_CURRENT unsupported)" : "ELF version \(EV_CURRENT)"
        // A call interface for `int f(void)` exercises libffi's type tables for this platform.
        var cif = ffi_cif()
        let status = ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 0, &ffi_type_sint32, nil)
        result["libffi"] =
            status == FFI_OK
            ? "call interfaces work (default ABI)" : "unusable (ffi_prep_cif failed: \(status.rawValue))"
        return result
    }
}
