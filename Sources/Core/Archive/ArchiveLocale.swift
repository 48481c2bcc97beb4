import Foundation

/// libarchive converts names between UTF-8 and the C library's current character set. Under the
/// default "C" locale, any non-ASCII name fails to convert (and some libarchive paths then crash), so
/// every reader and writer makes sure LC_CTYPE is UTF-8 first. Once per process.
enum ArchiveLocale {
    static let ensureUTF8: Void = {
        let current = setlocale(LC_CTYPE, nil).map { String(cString: $0) } ?? "C"
        if !current.uppercased().contains("UTF-8") && !current.uppercased().contains("UTF8") {
            setlocale(LC_CTYPE, "C.UTF-8")
        }
    }()
}
