import COgg
import COpus
import Crypto
import Foundation
import CallrecSupport

/// What an Ogg Opus file holds, found by decoding every packet of it.
public struct OpusFileInfo: Sendable, Equatable {
    public var bytes: Int
    public var sha256: String
    public var channels: Int
    /// OpusHead's input sample rate: the source's rate.
    public var inputSampleRate: Int
    public var preSkip: Int
    /// Samples after pre-skip and end trimming, at 48 kHz.
    public var samples48k: Int
    public var packets: Int
    /// The OpusTags comments, keys upper-cased.
    public var tags: [String: String]
    /// Every SOURCE_SHA256 comment in order: one per source part the recording was made of.
    public var sourceSHA256s: [String]
    public var vendor: String

    /// The samples at `rate` (exact when `rate` divides 48000).
    public func samples(at rate: Int) -> Int { samples48k * rate / 48000 }
}

/// Reads an Ogg Opus file from disk in one sequential pass: hashes its bytes, checks its pages
/// (CRC, sequence, granule positions), parses OpusHead and OpusTags, and decodes every audio packet
/// with libopus at `decodeRate`. Any damage is a `.verification` error.
public enum OpusVerifier {
    /// Decodes on this thread.
    public static func inspect(path: String, decodeRate: Int = 48000) throws -> OpusFileInfo {
        try inspect(path: path, decodeRate: decodeRate, helper: false, decodingFrom: 0)
    }

    /// As `inspect(path:decodeRate:)`; audio packets before index `firstDecoded` are checked
    /// (framing, TOC, durations, pages' CRCs) but not decoded — for an append, whose packets
    /// before the seam were decoded from the very bytes copied into the file, in the same run
    /// (OggAppend.swift).
    static func inspect(path: String, decodeRate: Int, decodingFrom firstDecoded: Int) throws -> OpusFileInfo {
        try inspect(path: path, decodeRate: decodeRate, helper: false, decodingFrom: firstDecoded)
    }

    /// With `decodeThreads` 2 the audio packets are decoded in batches of `batchPackets`, alternately
    /// here and on a second thread (each with its own decoder: a packet that libopus cannot decode
    /// fails whatever the decoder's state), so checking a long recording keeps two cores busy. Any
    /// failure is then reported by the one-thread pass, so errors read exactly as they always have.
    public static func inspect(path: String, decodeRate: Int, decodeThreads: Int) throws -> OpusFileInfo {
        guard decodeThreads > 1 else { return try inspect(path: path, decodeRate: decodeRate, helper: false, decodingFrom: 0) }
        do {
            return try inspect(path: path, decodeRate: decodeRate, helper: true, decodingFrom: 0)
        } catch {
            return try inspect(path: path, decodeRate: decodeRate, helper: false, decodingFrom: 0)
        }
    }

    static let batchPackets = 512

    /// Packets handed to the helper thread: their bytes end to end, and each one's length.
    private struct Batch: @unchecked Sendable {
        var bytes: [UInt8] = []
        var sizes: [Int] = []
    }

    private static func inspect(path: String, decodeRate: Int, helper: Bool, decodingFrom firstDecoded: Int) throws -> OpusFileInfo {
        let file = try StoredFile(path: path)
        func fail(_ why: String) -> MediaError { MediaError(.verification, "\(path): \(why)") }

        var stream = ogg_stream_state()
        var streamSerial: Int32?
        defer { if streamSerial != nil { ogg_stream_clear(&stream) } }

        var hasher = SHA256()
        let pages = OggPageReader(file: file) { hasher.update(bufferPointer: $0) }
        var head: OpusHead?
        var tags: [String: String] = [:]
        var shas: [String] = []
        var vendor = ""
        var decoder: OpaquePointer?
        defer { if let decoder { opus_decoder_destroy(decoder) } }
        var pcm = [Int16](repeating: 0, count: 5760 * 2)
        // The second decoding lane (helper): every other batch of packets goes to it.
        var lane: (queue: BoundedQueue<Batch>, worker: Worker<Void>)?
        defer {
            if let lane {
                lane.queue.fail(MediaError(.verification, "stopped"))
                _ = try? lane.worker.join()
            }
        }
        var batch = Batch()
        func decodeHere(_ packet: UnsafePointer<UInt8>, _ bytes: Int, _ index: Int) throws {
            let got = pcm.withUnsafeMutableBufferPointer {
                opus_decode(decoder!, packet, Int32(bytes), $0.baseAddress!, 5760, 0)
            }
            guard got > 0 else {
                throw fail("packet \(index) does not decode: \(String(cString: opus_strerror(got)))")
            }
        }
        var packetIndex = 0
        var packetSamples48 = 0  // sum of audio packet durations at 48 kHz
        var lastGranule: Int64 = 0
        var sawEOS = false
        var lastPageSamples = 0

        var page = ogg_page()
        while let (offset, _) = try pages.next(&page) {
            if pages.skipped > 0 { throw fail("damaged Ogg page (lost sync) before byte \(offset)") }
            if sawEOS { throw fail("data after the end of the stream") }
            let serial = ogg_page_serialno(&page)
            if streamSerial == nil {
                guard ogg_page_bos(&page) != 0 else { throw fail("first page is not a beginning of stream") }
                ogg_stream_init(&stream, serial)
                streamSerial = serial
            } else if serial != streamSerial {
                throw fail("more than one logical stream")
            }
            guard ogg_stream_pagein(&stream, &page) == 0 else { throw fail("page rejected by libogg") }
            var pageSamples = 0
            var packet = ogg_packet()
            while true {
                let pr = ogg_stream_packetout(&stream, &packet)
                if pr == 0 { break }
                if pr < 0 { throw fail("missing or damaged page before packet \(packetIndex)") }
                let data = UnsafeBufferPointer(start: packet.packet, count: packet.bytes)
                switch packetIndex {
                case 0:
                    guard let h = OpusHead(data), h.version == 1 else { throw fail("first packet is not an OpusHead") }
                    guard h.isSupported else { throw fail("unsupported channel mapping") }
                    head = h
                    var err: Int32 = 0
                    decoder = opus_decoder_create(Int32(decodeRate), Int32(h.channels), &err)
                    guard err == OPUS_OK, decoder != nil else { throw fail("opus_decoder_create failed") }
                    if helper {
                        let queue = BoundedQueue<Batch>(capacity: 4)
                        let channels = h.channels
                        lane = (queue, Worker(name: "callrec-verify") {
                            var err: Int32 = 0
                            guard let dec = opus_decoder_create(Int32(decodeRate), Int32(channels), &err), err == OPUS_OK else {
                                throw MediaError(.verification, "opus_decoder_create failed")
                            }
                            defer { opus_decoder_destroy(dec) }
                            var out = [Int16](repeating: 0, count: 5760 * 2)
                            while let b = try queue.pop() {
                                try b.bytes.withUnsafeBufferPointer { p in
                                    var at = 0
                                    for n in b.sizes {
                                        let got = out.withUnsafeMutableBufferPointer {
                                            opus_decode(dec, p.baseAddress! + at, Int32(n), $0.baseAddress!, 5760, 0)
                                        }
                                        guard got > 0 else { throw MediaError(.verification, "a packet does not decode") }
                                        at += n
                                    }
                                }
                            }
                        })
                    }
                case 1:
                    (vendor, tags, shas) = try parseTags(data, fail: fail)
                default:
                    let n48 = Int(opus_packet_get_nb_samples(packet.packet, Int32(packet.bytes), 48000))
                    guard n48 > 0 else { throw fail("undecodable packet \(packetIndex)") }
                    if packetIndex - 2 < firstDecoded {
                        // Before an append's seam: framing checked above, not decoded again.
                    } else if let lane, (packetIndex - 2) / batchPackets % 2 == 0 {
                        // Audio packet a (from 0) is in batch a / batchPackets: even ones to the helper.
                        batch.bytes.append(contentsOf: data)
                        batch.sizes.append(data.count)
                        if batch.sizes.count == batchPackets {
                            guard lane.queue.push(batch) else { throw fail("the second decoding thread stopped") }
                            batch = Batch()
                        }
                    } else {
                        try decodeHere(packet.packet, packet.bytes, packetIndex)
                    }
                    packetSamples48 += n48
                    pageSamples += n48
                }
                packetIndex += 1
            }
            let granule = ogg_page_granulepos(&page)
            if packetIndex > 2 && granule >= 0 {
                if granule < lastGranule { throw fail("granule positions go backwards") }
                lastGranule = granule
            }
            if pageSamples > 0 { lastPageSamples = pageSamples }
            if ogg_page_eos(&page) != 0 { sawEOS = true }
        }
        if pages.skipped > 0 { throw fail("damaged Ogg page (lost sync) at the end") }
        if let l = lane {
            if !batch.sizes.isEmpty, !l.queue.push(batch) { throw fail("the second decoding thread stopped") }
            l.queue.finish()
            lane = nil
            try l.worker.join()
        }
        let bytes = pages.bytesRead
        guard let head else { throw fail(bytes == 0 ? "empty file" : "not an Ogg Opus file") }
        guard packetIndex >= 2 else { throw fail("no OpusTags") }
        guard sawEOS else { throw fail("stream does not end (no end-of-stream page)") }
        let samples48 = Int(lastGranule) - head.preSkip
        // RFC 7845 §4.4: end trimming removes at most the last page's samples.
        guard samples48 >= 0, Int(lastGranule) <= packetSamples48,
            packetSamples48 - Int(lastGranule) < max(lastPageSamples, 1)
        else { throw fail("final granule position \(lastGranule) does not match \(packetSamples48) samples of packets") }
        let digest = Array(hasher.finalize()).hexString
        return OpusFileInfo(
            bytes: bytes, sha256: digest, channels: head.channels, inputSampleRate: head.inputSampleRate,
            preSkip: head.preSkip, samples48k: samples48, packets: packetIndex - 2, tags: tags, sourceSHA256s: shas, vendor: vendor)
    }

    static func parseTags(_ d: UnsafeBufferPointer<UInt8>, fail: (String) -> MediaError) throws -> (String, [String: String], [String]) {
        guard d.count >= 16, Array(d[0..<8]) == Array("OpusTags".utf8) else { throw fail("second packet is not OpusTags") }
        var pos = 8
        func u32() throws -> Int {
            guard pos + 4 <= d.count else { throw fail("truncated OpusTags") }
            defer { pos += 4 }
            return Int(d[pos]) | Int(d[pos + 1]) << 8 | Int(d[pos + 2]) << 16 | Int(d[pos + 3]) << 24
        }
        func string(_ n: Int) throws -> String {
            guard n >= 0, pos + n <= d.count else { throw fail("truncated OpusTags") }
            defer { pos += n }
            return String(decoding: d[pos..<pos + n], as: UTF8.self)
        }
        let vendor = try string(try u32())
        var tags: [String: String] = [:]
        var shas: [String] = []
        for _ in 0..<(try u32()) {
            let c = try string(try u32())
            if let eq = c.firstIndex(of: "=") {
                let key = c[..<eq].uppercased()
                let value = String(c[c.index(after: eq)...])
                if tags[key] == nil { tags[key] = value }
                if key == "SOURCE_SHA256" { shas.append(value) }
            }
        }
        return (vendor, tags, shas)
    }
}
