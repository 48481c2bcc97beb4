// Seeded, realistically compressible file content for the generated image.
//
// Nothing here is random in the run-to-run sense: every byte follows from the seed, so two runs with
// the same parameters produce byte-identical layers (and the same digests).

/// xoshiro256** seeded through splitmix64.
struct Rng {
    private var s0, s1, s2, s3: UInt64

    init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(); s1 = splitmix(); s2 = splitmix(); s3 = splitmix()
    }

    @inline(__always)
    mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in 0..<bound (bound > 0); the tiny modulo bias does not matter here.
    @inline(__always)
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// Uniform in [0, 1).
    @inline(__always)
    mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    mutating func chance(_ p: Double) -> Bool { unit() < p }

    /// Log-uniform integer in [low, high].
    mutating func logUniform(_ low: Int, _ high: Int) -> Int {
        let a = log(Double(low)), b = log(Double(high))
        return min(high, max(low, Int(exp(a + (b - a) * unit()))))
    }
}

import Foundation

/// What a file's bytes look like.
enum ContentStyle: String, Codable, CaseIterable {
    /// Source code, docs, config: words from a skewed vocabulary, lines, some numbers and punctuation.
    case text
    /// Object code and tables: little-endian records with small deltas, a few hot opcodes, zero padding.
    case binary
    /// Already-compressed data (images, archives): incompressible.
    case random
    /// A file made of segments of the other three (an executable with embedded resources).
    case mixed
}

/// Fills buffers with content of a style. One per worker (it owns its RNG).
struct ContentSynth {
    var rng: Rng
    /// The vocabulary, packed: word i is bytes[offsets[i]..<offsets[i+1]].
    private let vocabBytes: [UInt8]
    private let vocabOffsets: [Int]
    /// Common "opcodes" for the binary style.
    private let opcodes: [UInt32]

    init(seed: UInt64) {
        // The vocabulary is the same for every worker and layer (one language across the image); only the
        // choice of words differs.
        var vocabRng = Rng(seed: 0x5EED_0F_70CAB)
        var bytes: [UInt8] = []
        var offsets: [Int] = [0]
        let letters = Array("etaoinshrdlcumwfgypbvkjxqz".utf8)
        let keywords = [
            "func", "return", "let", "var", "if", "else", "for", "in", "struct", "import", "the", "of",
            "and", "to", "self", "true", "false", "nil", "int", "string", "error", "value", "path",
            "config", "buffer", "size", "index", "data", "file", "name"
        ]
        for word in keywords {
            bytes += Array(word.utf8)
            offsets.append(bytes.count)
        }
        while offsets.count <= 4096 {
            let length = 2 + vocabRng.below(9)
            for _ in 0..<length {
                // Skewed toward the frequent letters, like natural text.
                let u = vocabRng.unit()
                bytes.append(letters[Int(u * u * Double(letters.count))])
            }
            offsets.append(bytes.count)
        }
        vocabBytes = bytes
        vocabOffsets = offsets
        opcodes = (0..<48).map { _ in UInt32(truncatingIfNeeded: vocabRng.next()) }
        rng = Rng(seed: seed)
    }

    /// Fills `buffer` entirely with content of `style`.
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer, style: ContentStyle) {
        let p = buffer.bindMemory(to: UInt8.self)
        switch style {
        case .text: text(p, 0, p.count)
        case .binary: binary(p, 0, p.count)
        case .random: random(p, 0, p.count)
        case .mixed:
            var at = 0
            while at < p.count {
                let n = min(p.count - at, rng.logUniform(4 << 10, 256 << 10))
                switch rng.below(10) {
                case 0..<4: text(p, at, n)
                case 4..<9: binary(p, at, n)
                default: random(p, at, n)
                }
                at += n
            }
        }
    }

    private mutating func text(_ p: UnsafeMutableBufferPointer<UInt8>, _ start: Int, _ count: Int) {
        let end = start + count
        var at = start
        var wordsOnLine = 0
        var lineLength = 6 + rng.below(12)
        var indent = 0
        let vocabCount = vocabOffsets.count - 1
        // Start offsets of the last lines (a ring), for repeated lines.
        var recent = [Int](repeating: start, count: 16)
        var lineCount = 1
        vocabBytes.withUnsafeBufferPointer { vb in
            vocabOffsets.withUnsafeBufferPointer { vo in
                while at < end {
                    let r = rng.next()
                    let u = Double(r >> 11) * 0x1p-53
                    if r & 0x3f == 0 {
                        // A number now and then.
                        var n = Int((r >> 8) & 0xffff)
                        repeat {
                            if at < end { p[at] = UInt8(48 + n % 10); at += 1 }
                            n /= 10
                        } while n > 0
                    } else {
                        // Zipf-ish: a uniform draw to the fifth power makes low indexes (and the keywords) frequent.
                        let index = Int(u * u * u * u * u * Double(vocabCount))
                        let ws = vo[index], we = vo[index + 1]
                        var i = ws
                        while i < we && at < end { p[at] = vb[i]; at += 1; i += 1 }
                    }
                    wordsOnLine += 1
                    if at >= end { break }
                    if wordsOnLine >= lineLength {
                        if (r >> 20) & 7 == 0 { p[at] = 59; at += 1; if at >= end { break } }  // ';'
                        p[at] = 10; at += 1
                        // Code and docs repeat themselves: now and then the next line copies a recent one.
                        if (r >> 44) & 3 == 0, lineCount > 1 {
                            let back = 1 + Int((r >> 48) % UInt64(min(lineCount - 1, recent.count)))
                            let from = recent[(lineCount - back) % recent.count]
                            let to = recent[(lineCount - back + 1) % recent.count]
                            var i = from
                            while i < to && at < end { p[at] = p[i]; at += 1; i += 1 }
                        }
                        recent[lineCount % recent.count] = at
                        lineCount += 1
                        wordsOnLine = 0
                        lineLength = 4 + Int((r >> 24) % 14)
                        indent = Int((r >> 32) % 4) * 4
                        var k = 0
                        while k < indent && at < end { p[at] = 32; at += 1; k += 1 }
                    } else {
                        switch (r >> 40) & 15 {
                        case 0: p[at] = 40  // '('
                        case 1: p[at] = 44  // ','
                        case 2: p[at] = 46  // '.'
                        case 3: p[at] = 95  // '_'
                        default: p[at] = 32  // ' '
                        }
                        at += 1
                    }
                }
            }
        }
    }

    private mutating func binary(_ p: UnsafeMutableBufferPointer<UInt8>, _ start: Int, _ count: Int) {
        let end = start + count
        var at = start
        var address = UInt32(truncatingIfNeeded: rng.next()) & 0x00ff_fff0
        while at < end {
            let r = rng.next()
            if r & 0xff == 0 {
                // Alignment padding.
                let n = min(end - at, 64 + Int((r >> 12) % 2048))
                for k in 0..<n { p[at + k] = 0 }
                at += n
                continue
            }
            // A 16-byte record: address (small increments), a hot opcode, two small operands, flags.
            address &+= UInt32(4 + (r >> 9) % 28)
            // Three records in four use one of eight hot opcodes.
            let op = opcodes[Int((r >> 16) % (((r >> 22) & 3) != 0 ? 8 : UInt64(opcodes.count)))]
            let a = UInt32((r >> 28) & 0x1f)
            let b = UInt32((r >> 36) & 0x0f)
            let flags = UInt32((r >> 40) & 0x3) << 8
            var record: (UInt32, UInt32, UInt32, UInt32) = (address, op, a | b << 16, flags)
            withUnsafeBytes(of: &record) { raw in
                var k = 0
                while k < 16 && at < end { p[at] = raw[k]; at += 1; k += 1 }
            }
        }
    }

    private mutating func random(_ p: UnsafeMutableBufferPointer<UInt8>, _ start: Int, _ count: Int) {
        var at = start
        let end = start + count
        while at + 8 <= end {
            var v = rng.next()
            withUnsafeBytes(of: &v) { raw in
                UnsafeMutableRawPointer(p.baseAddress! + at).copyMemory(from: raw.baseAddress!, byteCount: 8)
            }
            at += 8
        }
        while at < end { p[at] = UInt8(truncatingIfNeeded: rng.next()); at += 1 }
    }
}
