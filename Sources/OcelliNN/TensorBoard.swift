import Foundation
import OcelliTensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// TensorBoard's event files, written and read without TensorFlow: TFRecord framing around
// serialized `tensorboard.Event` protocol buffers (tensorboard/compat/proto/event.proto and
// summary.proto), the protobuf encoding written by hand for the few fields scalars need.

// MARK: - CRC-32C

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven: the checksum of
/// TFRecord files. `checksum("123456789")` is 0xE3069283.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { (n: UInt32) -> UInt32 in
        var c = n
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: some ContiguousBytes) -> UInt32 {
        bytes.withUnsafeBytes { raw in
            var crc: UInt32 = 0xFFFF_FFFF
            table.withUnsafeBufferPointer { t in
                for b in raw { crc = t[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
            }
            return crc ^ 0xFFFF_FFFF
        }
    }

    /// TFRecord's masked CRC: `((crc >> 15) | (crc << 17)) + 0xa282ead8` (wrapping), so that a
    /// CRC over data that itself holds CRCs does not degenerate.
    public static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// The masked CRC-32C of `bytes`.
    public static func maskedChecksum(_ bytes: some ContiguousBytes) -> UInt32 { masked(checksum(bytes)) }
}

// MARK: - TFRecord framing

/// TensorFlow's record framing: uint64 length (little-endian), masked CRC-32C of those 8 bytes,
/// the data, masked CRC-32C of the data.
public enum TFRecord {
    /// One record around `payload`.
    public static func frame(_ payload: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(payload.count + 16)
        let length = littleEndianBytes(UInt64(payload.count))
        out += length
        out += littleEndianBytes(CRC32C.maskedChecksum(length))
        out += payload
        out += littleEndianBytes(CRC32C.maskedChecksum(payload))
        return out
    }

    /// The records of a TFRecord file's bytes, each checked against both CRCs. A last record cut
    /// short (a writer still writing, or killed mid-write) is not returned: its byte count is
    /// `truncatedBytes`, as TensorBoard also skips it. A CRC mismatch throws, naming `path` and
    /// the record's offset.
    public static func records(in bytes: [UInt8], path: String) throws -> (records: [[UInt8]], truncatedBytes: Int) {
        var records = [[UInt8]](), offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 12 else { return (records, bytes.count - offset) }
            let header = Array(bytes[offset..<offset + 8])
            let lengthCRC = readLittleEndian(bytes, offset + 8, as: UInt32.self)
            guard lengthCRC == CRC32C.maskedChecksum(header) else {
                throw FileFormatError(path, "the record at byte \(offset) has a corrupt length (its CRC does not match): not a TFRecord/event file, or damaged")
            }
            let length = readLittleEndian(bytes, offset, as: UInt64.self)
            guard length <= UInt64(bytes.count - offset - 12),
                  bytes.count - offset - 12 - Int(length) >= 4 else { return (records, bytes.count - offset) }
            let start = offset + 12, end = start + Int(length)
            let payload = Array(bytes[start..<end])
            guard readLittleEndian(bytes, end, as: UInt32.self) == CRC32C.maskedChecksum(payload) else {
                throw FileFormatError(path, "the record at byte \(offset) (\(length) bytes) is damaged: its data CRC does not match")
            }
            records.append(payload)
            offset = end + 4
        }
        return (records, 0)
    }
}

func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}

func readLittleEndian<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, as: T.Type) -> T {
    var v: T = 0
    for i in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: bytes[offset + i]) << (8 * i) }
    return v
}

// MARK: - Protocol buffers (the few wire types events need)

/// Protobuf's binary encoding, field by field, in the order written.
struct ProtobufEncoder {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func key(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }
    /// `double` (wire type 1, fixed64).
    mutating func double(_ field: Int, _ value: Double) { key(field, 1); bytes += littleEndianBytes(value.bitPattern) }
    /// `float` (wire type 5, fixed32).
    mutating func float(_ field: Int, _ value: Float) { key(field, 5); bytes += littleEndianBytes(value.bitPattern) }
    /// `int64` (wire type 0; a negative value takes ten bytes, as protobuf's two's complement).
    mutating func int64(_ field: Int, _ value: Int64) { key(field, 0); varint(UInt64(bitPattern: value)) }
    /// `bytes`, `string` and embedded messages (wire type 2).
    mutating func lengthDelimited(_ field: Int, _ payload: [UInt8]) {
        key(field, 2); varint(UInt64(payload.count)); bytes += payload
    }
    mutating func string(_ field: Int, _ value: String) { lengthDelimited(field, Array(value.utf8)) }
}

/// Reads protobuf fields one after another; unknown fields can be skipped.
struct ProtobufDecoder {
    enum Value {
        case varint(UInt64), fixed64(UInt64), fixed32(UInt32), bytes(ArraySlice<UInt8>)
    }
    struct Malformed: Error { let reason: String }

    let bytes: ArraySlice<UInt8>
    var position: Int

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes; position = bytes.startIndex }

    mutating func readVarint() throws -> UInt64 {
        var value: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard position < bytes.endIndex else { throw Malformed(reason: "a varint runs past the end") }
            guard shift < 64 else { throw Malformed(reason: "a varint is longer than 10 bytes") }
            let b = bytes[position]; position += 1
            value |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return value }
            shift += 7
        }
    }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, bytes.endIndex - position >= n else { throw Malformed(reason: "a field runs past the end") }
        defer { position += n }
        return bytes[position..<position + n]
    }

    /// The next field, or nil at the end.
    mutating func next() throws -> (field: Int, value: Value)? {
        guard position < bytes.endIndex else { return nil }
        let key = try readVarint()
        let field = Int(truncatingIfNeeded: key >> 3)
        switch key & 7 {
        case 0: return (field, .varint(try readVarint()))
        case 1: return (field, .fixed64(littleEndian(try take(8), UInt64.self)))
        case 2:
            let n = try readVarint()
            guard n <= UInt64(Int.max) else { throw Malformed(reason: "a length is out of range") }
            return (field, .bytes(try take(Int(n))))
        case 5: return (field, .fixed32(littleEndian(try take(4), UInt32.self)))
        default: throw Malformed(reason: "field \(field) has the unsupported wire type \(key & 7)")
        }
    }

    func littleEndian<T: FixedWidthInteger>(_ s: ArraySlice<UInt8>, _: T.Type) -> T {
        var v: T = 0
        for (i, b) in s.enumerated() { v |= T(truncatingIfNeeded: b) << (8 * i) }
        return v
    }
}

// MARK: - Events

/// A scalar in an event: its tag and value, and how the file stored it.
public struct TensorBoardScalar: Equatable, Sendable {
    /// How a scalar was stored: `Summary.Value.simple_value` (TensorFlow 1, Keras 2, Ocelli) or a
    /// one-element float `TensorProto` (TensorFlow 2's and TensorBoard's own writers).
    public enum Storage: Equatable, Sendable { case simpleValue, tensor }
    public var tag: String
    public var value: Float
    public var storage: Storage
    public init(tag: String, value: Float, storage: Storage = .simpleValue) {
        self.tag = tag; self.value = value; self.storage = storage
    }
}

/// The parts of a `tensorboard.Event` that scalars use: wall time, step, the file version of a
/// file's first event, and the scalars of its summary (other summaries, e.g. images or
/// histograms, are skipped).
public struct TensorBoardEvent: Equatable, Sendable {
    public var wallTime: Double
    public var step: Int64
    public var fileVersion: String?
    public var scalars: [TensorBoardScalar]

    public init(wallTime: Double, step: Int64 = 0, fileVersion: String? = nil, scalars: [TensorBoardScalar] = []) {
        self.wallTime = wallTime; self.step = step; self.fileVersion = fileVersion; self.scalars = scalars
    }

    /// The serialized `Event` (fields in number order, proto3 defaults left out, as protobuf's
    /// own serializers do): wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
    /// summary = 5 (`Summary`: repeated `Value` value = 1, each tag = 1, simple_value = 2).
    public func serialized() -> [UInt8] {
        var e = ProtobufEncoder()
        if wallTime.bitPattern != 0 { e.double(1, wallTime) }
        if step != 0 { e.int64(2, step) }
        if let fileVersion {
            e.string(3, fileVersion)
        } else {
            var summary = ProtobufEncoder()
            for s in scalars {
                var value = ProtobufEncoder()
                if !s.tag.isEmpty { value.string(1, s.tag) }
                value.float(2, s.value)
                summary.lengthDelimited(1, value.bytes)
            }
            e.lengthDelimited(5, summary.bytes)
        }
        return e.bytes
    }

    /// Decodes a serialized `Event`. Scalars are read from `simple_value` or from a float or
    /// double `TensorProto` of one element (`float_val`, `double_val` or `tensor_content`).
    /// A malformed message throws; the error begins with `source`.
    public init(serialized bytes: [UInt8], source: String = "event") throws {
        self.init(wallTime: 0)
        do {
            var d = ProtobufDecoder(bytes[...])
            while let (field, value) = try d.next() {
                switch (field, value) {
                case (1, .fixed64(let bits)): wallTime = Double(bitPattern: bits)
                case (2, .varint(let v)): step = Int64(bitPattern: v)
                case (3, .bytes(let s)): fileVersion = String(decoding: s, as: UTF8.self)
                case (5, .bytes(let summary)): scalars += try Self.decodeSummary(summary)
                default: break
                }
            }
        } catch let m as ProtobufDecoder.Malformed {
            throw FileFormatError(source, "malformed Event protobuf: \(m.reason)")
        }
    }

    static func decodeSummary(_ bytes: ArraySlice<UInt8>) throws -> [TensorBoardScalar] {
        var d = ProtobufDecoder(bytes), out = [TensorBoardScalar]()
        while let (field, value) = try d.next() {
            guard field == 1, case .bytes(let v) = value else { continue }
            var tag = "", scalar: (Float, TensorBoardScalar.Storage)?
            var vd = ProtobufDecoder(v)
            while let (f, x) = try vd.next() {
                switch (f, x) {
                case (1, .bytes(let s)): tag = String(decoding: s, as: UTF8.self)
                case (2, .fixed32(let bits)): scalar = (Float(bitPattern: bits), .simpleValue)
                case (8, .bytes(let tensor)): if let t = try decodeScalarTensor(tensor) { scalar = (t, .tensor) }
                default: break
                }
            }
            if let (value, storage) = scalar { out.append(TensorBoardScalar(tag: tag, value: value, storage: storage)) }
        }
        return out
    }

    /// The value of a one-element DT_FLOAT (1) or DT_DOUBLE (2) `TensorProto`: dtype = 1,
    /// tensor_content = 4, float_val = 5, double_val = 6 (packed or not); nil for anything else.
    static func decodeScalarTensor(_ bytes: ArraySlice<UInt8>) throws -> Float? {
        var d = ProtobufDecoder(bytes)
        var dtype: UInt64 = 0, floats = [Float](), doubles = [Double](), content: ArraySlice<UInt8>?
        while let (field, value) = try d.next() {
            switch (field, value) {
            case (1, .varint(let v)): dtype = v
            case (4, .bytes(let c)): content = c
            case (5, .fixed32(let bits)): floats.append(Float(bitPattern: bits))
            case (5, .bytes(let packed)):
                guard packed.count % 4 == 0 else { throw ProtobufDecoder.Malformed(reason: "packed float_val is not a multiple of 4 bytes") }
                for i in stride(from: packed.startIndex, to: packed.endIndex, by: 4) {
                    floats.append(Float(bitPattern: d.littleEndian(packed[i..<i + 4], UInt32.self)))
                }
            case (6, .fixed64(let bits)): doubles.append(Double(bitPattern: bits))
            case (6, .bytes(let packed)):
                guard packed.count % 8 == 0 else { throw ProtobufDecoder.Malformed(reason: "packed double_val is not a multiple of 8 bytes") }
                for i in stride(from: packed.startIndex, to: packed.endIndex, by: 8) {
                    doubles.append(Double(bitPattern: d.littleEndian(packed[i..<i + 8], UInt64.self)))
                }
            default: break
            }
        }
        switch dtype {
        case 1:
            if let c = content, c.count == 4 { return Float(bitPattern: d.littleEndian(c, UInt32.self)) }
            return floats.count == 1 ? floats[0] : nil
        case 2:
            if let c = content, c.count == 8 { return Float(Double(bitPattern: d.littleEndian(c, UInt64.self))) }
            return doubles.count == 1 ? Float(doubles[0]) : nil
        default: return nil
        }
    }

    /// The events of an event file (TFRecord framing checked, CRCs verified). A last record cut
    /// short is skipped, as TensorBoard does; errors name the file.
    public static func read(path: String) throws -> [TensorBoardEvent] {
        let data: Data
        do { data = Data(try FileReading.bytes(atPath: path)) } catch {
            throw FileFormatError(path, "cannot read the event file: \(error.reason)")
        }
        return try TFRecord.records(in: [UInt8](data), path: path).records.enumerated().map { i, record in
            try TensorBoardEvent(serialized: record, source: "\(path): record \(i)")
        }
    }
}

// MARK: - Writer

private func closeDescriptor(_ fd: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(fd)
    #else
    _ = Darwin.close(fd)
    #endif
}

/// Writes a TensorBoard event file, `events.out.tfevents.<unix seconds>.<hostname>`, in
/// `logDirectory` (created if missing), in TensorFlow's format: TFRecord framing around
/// `tensorboard.Event` protocol buffers, the first holding the file version "brain.Event:2",
/// then one event per scalar (`Summary.Value.simple_value`). `tensorboard --logdir` reads it.
///
/// Scalars are buffered and written by `flush()` (and `close()`); a file cut short by a crash
/// loses at most the unflushed events, TensorBoard skipping a partial last record. Use one writer
/// from one thread at a time.
public final class TensorBoardEventWriter {
    /// The event file's path.
    public let path: String
    private var descriptor: Int32
    private var pending: [UInt8] = []
    /// Buffered bytes beyond which `scalar` flushes by itself.
    private let autoFlushBytes = 1 << 20

    /// Creates the folder if missing and a new event file in it, and writes the file-version
    /// event. `wallTime` (seconds since 1970) names the file and stamps that first event; it
    /// defaults to now. An existing file of the same name is never overwritten (a ".1", ".2", …
    /// suffix is added). A folder that cannot be created or written throws, naming it.
    public init(logDirectory: String, wallTime: Double? = nil) throws {
        let time = wallTime ?? Date().timeIntervalSince1970
        do {
            try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        } catch {
            throw FileFormatError(logDirectory, "cannot create the TensorBoard log folder: \(folderFailureReason(logDirectory, error))")
        }
        let base = (logDirectory as NSString).appendingPathComponent(
            String(format: "events.out.tfevents.%010lld.", Int64(time.rounded(.down))) + Self.hostname())
        var candidate = base, fd: Int32 = -1
        for n in 0..<1000 {
            candidate = n == 0 ? base : base + ".\(n)"
            fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else {
            throw FileFormatError(candidate, "cannot create the TensorBoard event file: \(String(cString: strerror(errno)))")
        }
        path = candidate
        descriptor = fd
        pending = TFRecord.frame(TensorBoardEvent(wallTime: time, fileVersion: "brain.Event:2").serialized())
        do { try flush() } catch {
            closeDescriptor(descriptor); descriptor = -1
            try? FileManager.default.removeItem(atPath: candidate)
            throw error
        }
    }

    deinit { try? close() }

    /// Queues one scalar event: `tag` = `value` at `step`, stamped `wallTime` (default now).
    /// Throws if the writer is closed, or if an automatic flush (past 1 MiB queued) fails.
    public func scalar(_ tag: String, _ value: Float, step: Int64, wallTime: Double? = nil) throws {
        guard descriptor >= 0 else { throw FileFormatError(path, "the TensorBoard event writer is closed: cannot add '\(tag)'") }
        let event = TensorBoardEvent(wallTime: wallTime ?? Date().timeIntervalSince1970, step: step,
                                     scalars: [TensorBoardScalar(tag: tag, value: value)])
        pending += TFRecord.frame(event.serialized())
        if pending.count >= autoFlushBytes { try flush() }
    }

    /// Writes the queued events to the file. On failure the error names the file; the events not
    /// yet written stay queued for the next flush.
    public func flush() throws {
        guard !pending.isEmpty else { return }
        guard descriptor >= 0 else { throw FileFormatError(path, "the TensorBoard event writer is closed: \(pending.count) bytes not written") }
        var written = 0
        defer { pending.removeFirst(written) }
        while written < pending.count {
            let n = pending.withUnsafeBytes { raw in
                write(descriptor, raw.baseAddress! + written, raw.count - written)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileFormatError(path, "cannot write the TensorBoard event file: \(String(cString: strerror(errno)))")
            }
            written += n
        }
    }

    /// Flushes and closes the file; later calls do nothing. Throws (naming the file) if the last
    /// events could not be written; the file is closed either way.
    public func close() throws {
        guard descriptor >= 0 else { return }
        defer { closeDescriptor(descriptor); descriptor = -1 }
        try flush()
    }

    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(cString: buffer).replacingOccurrences(of: "/", with: "_")
        return name.isEmpty ? "localhost" : name
    }
}

// MARK: - Callback

/// Keras' `TensorBoard(log_dir)` callback, for scalars: each epoch's logs go to
/// `<logDirectory>/train` as `epoch_<name>` (loss, metrics, and `epoch_learning_rate` when the
/// logs carry "learning_rate": list a learning-rate callback before this one) and the `val_`
/// entries to `<logDirectory>/validation` with the prefix removed (`val_loss` → `epoch_loss`),
/// at step = epoch, as Keras 3 does; `tensorboard --logdir <logDirectory>` then shows train and
/// validation as two runs on the same charts. With `.batch(n)`, every n-th batch (counted over
/// the whole run, from 1) also writes the running `batch_loss` and `batch_<metric>` at that
/// global step.
///
/// Each `fit` starts new event files; the files are flushed after each epoch (and after each
/// batch write). A folder that cannot be written is reported on standard error (and in
/// `errors`) when training starts; training goes on.
public final class TensorBoard: Callback {
    /// When to write: after each epoch only, or also every n batches.
    public enum UpdateFrequency: Equatable, Sendable {
        case epoch
        case batch(Int)
    }

    public let logDirectory: String
    public let updateFrequency: UpdateFrequency
    /// The writers of the current run (`<logDirectory>/train`, `<logDirectory>/validation`);
    /// nil before `fit`, after it, and for a folder not yet needed or not writable.
    public private(set) var trainWriter: TensorBoardEventWriter?
    public private(set) var validationWriter: TensorBoardEventWriter?
    /// The errors reported so far (each also printed on standard error), each naming its file.
    public private(set) var errors: [String] = []
    var globalStep: Int64 = 0
    var failedFolders: Set<String> = []

    /// `logDirectory` is created if missing; `.batch(n)` needs n > 0.
    public init(logDirectory: String = "logs", updateFrequency: UpdateFrequency = .epoch) {
        if case .batch(let n) = updateFrequency { precondition(n > 0, "TensorBoard: updateFrequency .batch(n) needs n > 0, got \(n)") }
        self.logDirectory = logDirectory; self.updateFrequency = updateFrequency
    }

    public override func onTrainBegin() {
        closeWriters()
        globalStep = 0
        failedFolders = []
        trainWriter = openWriter("train")
    }

    public override func onBatchEnd(_ batch: Int, logs: [String: Float]) {
        globalStep += 1
        guard case .batch(let n) = updateFrequency, globalStep % Int64(n) == 0 else { return }
        if trainWriter == nil { trainWriter = openWriter("train") }
        guard let w = trainWriter else { return }
        report {
            for k in logs.keys.sorted() { try w.scalar("batch_" + k, logs[k]!, step: globalStep) }
            try w.flush()
        }
    }

    public override func onEpochEnd(_ epoch: Int, logs: inout [String: Float]) {
        let train = logs.filter { !$0.key.hasPrefix("val_") }
        let validation = logs.filter { $0.key.hasPrefix("val_") }
        if !train.isEmpty {
            if trainWriter == nil { trainWriter = openWriter("train") }
            if let w = trainWriter {
                report {
                    for k in train.keys.sorted() { try w.scalar("epoch_" + k, train[k]!, step: Int64(epoch)) }
                    try w.flush()
                }
            }
        }
        if !validation.isEmpty {
            if validationWriter == nil { validationWriter = openWriter("validation") }
            if let w = validationWriter {
                report {
                    for k in validation.keys.sorted() {
                        try w.scalar("epoch_" + k.dropFirst("val_".count), validation[k]!, step: Int64(epoch))
                    }
                    try w.flush()
                }
            }
        }
    }

    public override func onTrainEnd() { closeWriters() }

    func openWriter(_ name: String) -> TensorBoardEventWriter? {
        guard !failedFolders.contains(name) else { return nil }
        do { return try TensorBoardEventWriter(logDirectory: (logDirectory as NSString).appendingPathComponent(name)) } catch {
            failedFolders.insert(name)
            record(error)
            return nil
        }
    }

    func closeWriters() {
        for w in [trainWriter, validationWriter].compactMap({ $0 }) { report { try w.close() } }
        trainWriter = nil; validationWriter = nil
    }

    func report(_ body: () throws -> Void) {
        do { try body() } catch { record(error) }
    }

    func record(_ error: Error) {
        let message = "\(error)"
        if errors.last != message {
            StandardError.write("error: TensorBoard: \(message)\n")
        }
        errors.append(message)
    }
}
