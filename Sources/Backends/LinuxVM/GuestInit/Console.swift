import CInit

/// The init's own console lines, prefixed so they stand apart from the program's output, which goes to
/// the console unchanged. Values of environment variables are never printed.
enum Console {
    static let prefix = "gvlt-init: "

    static func say(_ text: String) {
        var line = prefix + text + "\n"
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }

    static func errnoText() -> String {
        String(cString: strerror(cinit_errno()))
    }
}

/// Everything that stops the boot. The message goes to the console; the exit is reported like a
/// failed program (never as success).
struct InitError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
