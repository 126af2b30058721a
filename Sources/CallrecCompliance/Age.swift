import Crypto
import Foundation

/// An age X25519 recipient (`age1…`, Bech32 with HRP "age" of a 32-byte Curve25519 public key),
/// to which a sealed export is encrypted (c2sp.org/age).
public struct AgeRecipient: Sendable, CustomStringConvertible {
    public let publicKey: Curve25519.KeyAgreement.PublicKey
    public let description: String

    /// Parses `age1…`; anything else (another recipient type, a bad checksum) is an error
    /// naming why.
    public init(_ text: String) throws {
        let s = text.trimmingCharacters(in: .whitespaces)
        guard s.lowercased() == s || s.uppercased() == s else { throw AgeError("an age recipient is all lowercase: \(s)") }
        guard let (hrp, data) = Bech32.decode(s.lowercased()) else { throw AgeError("not a Bech32 age recipient (age1…): \(s)") }
        guard hrp == "age" else { throw AgeError("not an age X25519 recipient (age1…): \(s)") }
        guard data.count == 32 else { throw AgeError("an age X25519 recipient holds 32 bytes, not \(data.count)") }
        do { publicKey = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: data) } catch {
            throw AgeError("not an X25519 public key: \(s)")
        }
        description = s.lowercased()
    }
}

public struct AgeError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ d: String) { description = d }
}

/// Writes an age v1 file (c2sp.org/age) through `sink`: the header with one X25519 stanza and its
/// HMAC, then the payload — a 16-byte nonce and the plaintext in 64 KiB chunks sealed with
/// ChaCha20-Poly1305 (STREAM: an 11-byte big-endian counter and a last-chunk flag as the nonce).
/// Streaming: memory holds one chunk. `age -d -i IDENTITY` opens it.
final class AgeWriter {
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private let payloadKey: SymmetricKey
    private var chunk: [UInt8] = []
    private var counter: UInt64 = 0
    private var finished = false
    static let chunkSize = 1 << 16

    init(recipient: AgeRecipient, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        self.sink = sink
        let fileKey = SymmetricKey(size: .bits128)
        let ephemeral = Curve25519.KeyAgreement.PrivateKey()
        let share = [UInt8](ephemeral.publicKey.rawRepresentation)
        let shared = try ephemeral.sharedSecretFromKeyAgreement(with: recipient.publicKey)
        guard shared.withUnsafeBytes({ $0.contains { $0 != 0 } }) else { throw AgeError("the recipient is a low-order point") }
        let wrapKey = shared.hkdfDerivedSymmetricKey(
            using: SHA256.self, salt: share + [UInt8](recipient.publicKey.rawRepresentation), sharedInfo: Array("age-encryption.org/v1/X25519".utf8),
            outputByteCount: 32)
        let wrapped = try ChaChaPoly.seal(fileKey.withUnsafeBytes { Array($0) }, using: wrapKey, nonce: ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)))
        var header = "age-encryption.org/v1\n-> X25519 \(Self.base64(share))\n"
        let body = Self.base64(Array(wrapped.ciphertext) + Array(wrapped.tag))
        var lines = stride(from: 0, to: body.count, by: 64).map { i -> String in
            let a = body.index(body.startIndex, offsetBy: i)
            return String(body[a..<body.index(a, offsetBy: min(64, body.count - i))])
        }
        if lines.last.map({ $0.count == 64 }) ?? true { lines.append("") }  // the body ends with a line shorter than 64
        header += lines.joined(separator: "\n") + "\n---"
        let macKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: fileKey, salt: [UInt8](), info: Array("header".utf8), outputByteCount: 32)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(header.utf8), using: macKey)
        header += " " + Self.base64(Array(mac)) + "\n"
        var nonce = [UInt8](repeating: 0, count: 16)
        var g = SystemRandomNumberGenerator()
        for i in 0..<16 { nonce[i] = UInt8.random(in: 0...255, using: &g) }
        payloadKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: fileKey, salt: nonce, info: Array("payload".utf8), outputByteCount: 32)
        try (Array(header.utf8) + nonce).withUnsafeBytes { try sink($0) }
        chunk.reserveCapacity(Self.chunkSize)
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes[...]
        while !rest.isEmpty {
            if chunk.count == Self.chunkSize { try emit(last: false) }  // full, and more follows
            let n = min(rest.count, Self.chunkSize - chunk.count)
            chunk.append(contentsOf: rest.prefix(n))
            rest = rest.dropFirst(n)
        }
    }

    func finish() throws {
        guard !finished else { return }
        try emit(last: true)
        finished = true
    }

    private func emit(last: Bool) throws {
        var nonce = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { nonce[3 + i] = UInt8(truncatingIfNeeded: counter >> (8 * (7 - UInt64(i)))) }
        nonce[11] = last ? 1 : 0
        let box = try ChaChaPoly.seal(chunk, using: payloadKey, nonce: ChaChaPoly.Nonce(data: nonce))
        // Ciphertext, then tag, straight from the box (the sink gathers small pieces).
        try box.ciphertext.withUnsafeBytes { try sink($0) }
        try box.tag.withUnsafeBytes { try sink($0) }
        chunk.removeAll(keepingCapacity: true)
        counter += 1
    }

    /// RFC 4648 base64 without padding.
    static func base64(_ bytes: [UInt8]) -> String {
        var s = Data(bytes).base64EncodedString()
        while s.hasSuffix("=") { s.removeLast() }
        return s
    }
}

/// Bech32 (BIP 173), as age encodes its keys.
enum Bech32 {
    static let charset = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)

    static func polymod(_ values: [UInt8]) -> UInt32 {
        let gen: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var chk: UInt32 = 1
        for v in values {
            let top = chk >> 25
            chk = (chk & 0x1ff_ffff) << 5 ^ UInt32(v)
            for i in 0..<5 where (top >> i) & 1 == 1 { chk ^= gen[i] }
        }
        return chk
    }

    static func expand(_ hrp: [UInt8]) -> [UInt8] { hrp.map { $0 >> 5 } + [0] + hrp.map { $0 & 31 } }

    /// (hrp, data) of a lowercase Bech32 string, nil when malformed or its checksum fails.
    static func decode(_ s: String) -> (String, [UInt8])? {
        let u = Array(s.utf8)
        guard let sep = u.lastIndex(of: 0x31), sep >= 1, u.count - sep >= 7 else { return nil }  // '1'
        let hrp = Array(u[..<sep])
        guard hrp.allSatisfy({ $0 >= 33 && $0 <= 126 }) else { return nil }
        var values: [UInt8] = []
        for c in u[(sep + 1)...] {
            guard let i = charset.firstIndex(of: c) else { return nil }
            values.append(UInt8(i))
        }
        guard polymod(expand(hrp) + values) == 1 else { return nil }
        // 5-bit groups to bytes; leftover bits must be fewer than 5 and zero.
        var acc: UInt32 = 0, bits = 0
        var out: [UInt8] = []
        for v in values.dropLast(6) {
            acc = acc << 5 | UInt32(v)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((acc >> UInt32(bits)) & 0xFF))
            }
        }
        guard bits < 5, acc & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return (String(decoding: hrp, as: UTF8.self), out)
    }
}
