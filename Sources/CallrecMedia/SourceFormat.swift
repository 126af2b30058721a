/// The ways a recording can be stored on disk, chosen from the file name as Asterisk does.
///
/// MixMonitor picks its writer from the extension: RIFF/WAV containers (`wav`, `wav16`, `WAV`) carry
/// their own header; the raw writers (`gsm`, `ulaw`, `alaw`, `sln*`) do not, so the extension is all
/// there is to know their encoding and rate.
public enum SourceFormat: Sendable, Equatable {
    /// A file with a header (RIFF/WAV, RF64, or anything else libsndfile recognises by content).
    case container
    /// Raw GSM 6.10, 33-byte frames of 160 samples at 8 kHz (Asterisk `gsm`).
    case rawGSM
    /// Raw G.711 µ-law at 8 kHz (Asterisk `ulaw`, `pcm`, `ul`, `mu`, `ulw`).
    case rawULaw
    /// Raw G.711 A-law at 8 kHz (Asterisk `alaw`, `al`, `alw`).
    case rawALaw
    /// Raw signed 16-bit little-endian PCM (Asterisk `sln`, `raw`, `sln16`, … at their rates).
    case rawLinear(sampleRate: Int)

    /// The format for a file name, from its extension. Unknown extensions are tried as containers.
    public init(fileName: String) {
        let ext = fileName.split(separator: "/").last.flatMap { name -> Substring? in
            guard let dot = name.lastIndex(of: ".") else { return nil }
            return name[name.index(after: dot)...]
        }.map(String.init) ?? ""
        switch ext.lowercased() {
        case "gsm": self = .rawGSM
        case "ulaw", "pcm", "ul", "mu", "ulw": self = .rawULaw
        case "alaw", "al", "alw": self = .rawALaw
        case "sln", "raw": self = .rawLinear(sampleRate: 8000)
        case let e where e.hasPrefix("sln"):
            if let khz = Int(e.dropFirst(3)), let rate = Self.slinRates[khz] {
                self = .rawLinear(sampleRate: rate)
            } else {
                self = .container
            }
        default: self = .container
        }
    }

    /// Asterisk's signed-linear formats: `sln12` … `sln192`.
    static let slinRates: [Int: Int] = [
        8: 8000, 12: 12000, 16: 16000, 24: 24000, 32: 32000, 44: 44100, 48: 48000, 96: 96000,
        192: 192000,
    ]

    /// The short name used in JSON (`source.format`).
    public var name: String {
        switch self {
        case .container: return "wav"
        case .rawGSM: return "gsm"
        case .rawULaw: return "ulaw"
        case .rawALaw: return "alaw"
        case .rawLinear(let rate): return rate == 8000 ? "sln" : "sln\(rate / 1000)"
        }
    }
}
