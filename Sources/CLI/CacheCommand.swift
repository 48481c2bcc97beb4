import ArgumentParser
import Core
import Foundation

struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Show and bound what gvlt's cache holds.",
        discussion: """
            The build caches make rebuilds cheap: whole SquashFS roots (and boot partitions) by the \
            digest of every input, and the compressed blocks inside those roots by content, so a rebuild \
            after one program changed compresses only that program's blocks. They are kept within a size bound ($GVLT_CACHE_MAX_SIZE, default 10G) \
            by evicting the least recently used entries after every build that stored something. \
            Kernels, drivers and pulled blobs are downloads and are only removed by `prune --all`. \
            `gvlt build --no-cache` neither reads nor writes the build caches.
            """,
        subcommands: [Usage.self, Prune.self])

    struct Usage: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "du", abstract: "What each area of the cache holds on disk.")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print the usage as JSON.")
        var json = false

        func run() throws {
            let cache = CacheDirectory.resolve(override: global.cacheDir)
            let usage = CachePruning(cache: cache).usage()
            if json { return try printJSON(usage) }
            print("cache: \(cache.root)")
            for area in usage {
                print(
                    "  \(area.area.padding(toLength: 16, withPad: " ", startingAt: 0)) \(ByteSize.describe(area.bytes).padding(toLength: 10, withPad: " ", startingAt: 0)) \(area.entries) entries  (\(area.summary))"
                )
            }
            let total = usage.reduce(Int64(0)) { $0 + $1.bytes }
            print("  total            \(ByteSize.describe(total))")
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prune",
            abstract: "Evict the build caches' least recently used entries down to a size.")

        @OptionGroup var global: GlobalOptions

        @Option(
            help: ArgumentHelp(
                "What the build caches may keep, e.g. 2G or 0 (default: $GVLT_CACHE_MAX_SIZE, else 10G).",
                valueName: "size"))
        var maxSize: String?

        @Flag(help: "Empty the build caches, and remove kernels, drivers and pulled blobs too.")
        var all = false

        @Flag(help: "Print the outcome as JSON.")
        var json = false

        func run() throws {
            let limit: Int64
            if all {
                limit = 0
            } else if let maxSize {
                guard let bytes = ByteSize.parse(maxSize, CachePruning.sizeDialect).flatMap({ Int64(exactly: $0) })
                else {
                    throw InputError("--max-size `\(maxSize)` is not a size", hint: "e.g. --max-size 2G, or 0 to empty")
                }
                limit = bytes
            } else {
                limit = try CachePruning.defaultLimit()
            }
            let cache = CacheDirectory.resolve(override: global.cacheDir)
            let outcome = CachePruning(cache: cache).prune(to: limit, everything: all)
            if json { return try printJSON(outcome) }
            if !global.quiet {
                print(
                    "removed \(outcome.removedEntries) entries (\(ByteSize.describe(outcome.freedBytes))); the build caches hold \(ByteSize.describe(outcome.remainingBytes)) of \(ByteSize.describe(outcome.limitBytes)) in \(cache.root)"
                )
            }
        }
    }
}
