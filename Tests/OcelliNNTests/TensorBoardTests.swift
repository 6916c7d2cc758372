import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor

/// TensorBoard event files, checked against the real `tensorboard` package both ways:
/// Fixtures/tensorboard/events.out.tfevents.fixture is this writer's output for `fixtureScalars`,
/// read back by TensorBoard's own reader into read_back.json; events.out.tfevents.tensorboard-writer
/// is TensorBoard's own writer's output for the same scalars (Scripts/make_tensorboard_fixture.py).
/// Models are built and trained under `RandomSeed.withSeed`, leaving the global sequence alone.
@Suite struct TensorBoardTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("tensorboard")

    /// The file-version event's wall time, then (wall time, step, tag, value): the same list as
    /// SCALARS in Scripts/make_tensorboard_fixture.py.
    static let fixtureWallTime = 1700000000.0
    static let fixtureScalars: [(wallTime: Double, step: Int64, tag: String, value: Float)] = [
        (1700000001.5, 0, "epoch_loss", 0.6931472),
        (1700000001.5, 0, "epoch_accuracy", 0.5),
        (1700000002.25, 1, "epoch_loss", 0.4054651),
        (1700000002.25, 1, "epoch_accuracy", 0.875),
        (1700000003.125, 2, "epoch_loss", 0.1),
        (1700000003.125, 2, "epoch_accuracy", 1.0),
        (1700000003.5, 2, "epoch_learning_rate", 0.001),
        (1700000004.0, 9876543210, "batch_loss", -2.5e-8),
        (1700000004.0, 9876543211, "batch_loss", 0.0),
        (1700000005.0, 3, "épreuve/ü", 3.4028235e38),
    ]

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func onlyFile(in folder: String) throws -> String {
        let files = try FileManager.default.contentsOfDirectory(atPath: folder)
        #expect(files.count == 1, "\(folder): \(files)")
        return folder + "/" + files[0]
    }

    @Test func crc32cKnownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum(Data((0..<32).map { UInt8($0) })) == 0x46DD_794E)
        #expect(CRC32C.masked(0) == 0xA282_EAD8)
        #expect(CRC32C.maskedChecksum(Array("123456789".utf8)) == 0xC78A_B0E5)  // TensorBoard's masked_crc32c
    }

    @Test func protobufEncodingOfAScalarEvent() throws {
        // Event{wall_time: 1.5, step: 300, summary{value{tag: "a", simple_value: 2}}}, by hand.
        let e = TensorBoardEvent(wallTime: 1.5, step: 300, scalars: [TensorBoardScalar(tag: "a", value: 2)])
        #expect(e.serialized() == [0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0x10, 0xAC, 0x02,
                                   0x2A, 0x0A, 0x0A, 0x08, 0x0A, 0x01, 0x61, 0x15, 0, 0, 0, 0x40])
        #expect(try TensorBoardEvent(serialized: e.serialized()) == e)
        // Step 0 and wall time 0 are proto3 defaults: left out; a negative step takes ten bytes.
        #expect(TensorBoardEvent(wallTime: 0, step: 0, scalars: []).serialized() == [0x2A, 0x00])
        let negative = TensorBoardEvent(wallTime: 1, step: -1, scalars: [])
        #expect(negative.serialized().count == 9 + 11 + 2)
        #expect(try TensorBoardEvent(serialized: negative.serialized()).step == -1)
        #expect(TensorBoardEvent(wallTime: 2, fileVersion: "brain.Event:2").serialized()
                == [0x09, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x1A, 0x0D] + Array("brain.Event:2".utf8))
        #expect(throws: FileFormatError.self) { try TensorBoardEvent(serialized: [0x2A, 0x05, 0x0A]) }
    }

    /// Scalars stored as a float `TensorProto`, as TensorFlow 2 and TensorBoard's own writer do:
    /// `float_val` packed or not, `tensor_content`, and `double_val`.
    @Test func readsTensorScalars() throws {
        func event(_ tensor: ProtobufEncoder) -> [UInt8] {
            var value = ProtobufEncoder(); value.string(1, "t"); value.lengthDelimited(8, tensor.bytes)
            var summary = ProtobufEncoder(); summary.lengthDelimited(1, value.bytes)
            var e = ProtobufEncoder(); e.double(1, 5); e.int64(2, 7); e.lengthDelimited(5, summary.bytes)
            return e.bytes
        }
        var packed = ProtobufEncoder(); packed.int64(1, 1); packed.lengthDelimited(2, []); packed.lengthDelimited(5, littleEndianBytes(Float(0.25).bitPattern))
        var unpacked = ProtobufEncoder(); unpacked.int64(1, 1); unpacked.float(5, 0.5)
        var content = ProtobufEncoder(); content.int64(1, 1); content.lengthDelimited(4, littleEndianBytes(Float(-3).bitPattern))
        var double = ProtobufEncoder(); double.int64(1, 2); double.double(6, 1.25)
        var vector = ProtobufEncoder(); vector.int64(1, 1); vector.lengthDelimited(5, littleEndianBytes(UInt64(0x3F80_0000_3F80_0000)))
        var strings = ProtobufEncoder(); strings.int64(1, 7); strings.lengthDelimited(8, Array("x".utf8))
        for (tensor, expected) in [(packed, Float(0.25)), (unpacked, 0.5), (content, -3), (double, 1.25)] {
            let e = try TensorBoardEvent(serialized: event(tensor))
            #expect(e.wallTime == 5 && e.step == 7)
            #expect(e.scalars == [TensorBoardScalar(tag: "t", value: expected, storage: .tensor)])
        }
        #expect(try TensorBoardEvent(serialized: event(vector)).scalars.isEmpty)  // two elements: not a scalar
        #expect(try TensorBoardEvent(serialized: event(strings)).scalars.isEmpty)  // DT_STRING
    }

    /// The writer's file for `fixtureScalars` is byte for byte the committed fixture (which
    /// TensorBoard's reader read back into read_back.json), and its records parse back here:
    /// lengths, both CRCs, and the events.
    @Test func fixtureBytes() throws {
        let dir = temporaryDirectory()
        let writer = try TensorBoardEventWriter(logDirectory: dir + "/run", wallTime: Self.fixtureWallTime)
        for s in Self.fixtureScalars { try writer.scalar(s.tag, s.value, step: s.step, wallTime: s.wallTime) }
        try writer.close()
        let path = try Self.onlyFile(in: dir + "/run")
        #expect(path == writer.path)
        #expect((path as NSString).lastPathComponent == "events.out.tfevents.1700000000." + TensorBoardEventWriter.hostname())
        let bytes = try Self.bytes(path)

        let fixture = Self.fixtures.appendingPathComponent("events.out.tfevents.fixture")
        if !FileManager.default.fileExists(atPath: fixture.path) {
            try FileManager.default.createDirectory(at: Self.fixtures, withIntermediateDirectories: true)
            try Data(bytes).write(to: fixture)
            Issue.record("\(fixture.path) was missing: written now; check it with Scripts/make_tensorboard_fixture.py (TensorBoard's reader) and commit it")
        }
        let expected = try Self.bytes(fixture.path)
        #expect(bytes == expected)

        // The framing, parsed here without TFRecord.records.
        var offset = 0, payloads = [[UInt8]]()
        while offset < bytes.count {
            let header = Array(bytes[offset..<offset + 8])
            let length = Int(readLittleEndian(bytes, offset, as: UInt64.self))
            #expect(readLittleEndian(bytes, offset + 8, as: UInt32.self) == CRC32C.masked(CRC32C.checksum(header)))
            let payload = Array(bytes[offset + 12..<offset + 12 + length])
            #expect(readLittleEndian(bytes, offset + 12 + length, as: UInt32.self) == CRC32C.masked(CRC32C.checksum(payload)))
            payloads.append(payload)
            offset += 12 + length + 4
        }
        #expect(offset == bytes.count && payloads.count == Self.fixtureScalars.count + 1)
        #expect(try TFRecord.records(in: bytes, path: path).records == payloads)

        let events = try payloads.map { try TensorBoardEvent(serialized: $0) }
        #expect(events[0] == TensorBoardEvent(wallTime: Self.fixtureWallTime, fileVersion: "brain.Event:2"))
        for (e, s) in zip(events.dropFirst(), Self.fixtureScalars) {
            #expect(e == TensorBoardEvent(wallTime: s.wallTime, step: s.step, scalars: [TensorBoardScalar(tag: s.tag, value: s.value)]))
        }
        #expect(try TensorBoardEvent.read(path: path) == events)
    }

    /// What TensorBoard's own reader saw in the fixture (Scripts/make_tensorboard_fixture.py):
    /// every scalar, exactly, under the scalars dashboard.
    @Test func tensorBoardReadsTheFixture() throws {
        let url = Self.fixtures.appendingPathComponent("read_back.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        #expect(json["file"] as? String == "events.out.tfevents.fixture")
        #expect(json["file_version"] as? String == "brain.Event:2")
        #expect((json["file_version_wall_time"] as? NSNumber)?.doubleValue == Self.fixtureWallTime)
        #expect(json["records"] as? Int == Self.fixtureScalars.count + 1)
        #expect(json["scalar_values_stored_as"] as? [String: Int] == ["simple_value": Self.fixtureScalars.count, "tensor": 0])
        #expect(json["scalars_plugin_tags"] as? [String] == Set(Self.fixtureScalars.map(\.tag)).sorted())
        let seen = json["scalars"] as! [[String: Any]]
        #expect(seen.count == Self.fixtureScalars.count)
        for (s, e) in zip(seen, Self.fixtureScalars) {
            #expect(s["tag"] as? String == e.tag)
            #expect((s["step"] as? NSNumber)?.int64Value == e.step)
            #expect((s["wall_time"] as? NSNumber)?.doubleValue == e.wallTime)
            #expect((s["value"] as? NSNumber).map { Float($0.doubleValue) } == e.value)
        }
    }

    /// TensorBoard's own writer's file (`tensorboard.summary.Writer`, which stores scalars as
    /// one-element DT_FLOAT tensors) reads back here with the same scalars.
    @Test func readsTensorBoardsOwnWriter() throws {
        let path = Self.fixtures.appendingPathComponent("events.out.tfevents.tensorboard-writer").path
        let (records, truncated) = try TFRecord.records(in: try Self.bytes(path), path: path)
        #expect(truncated == 0 && records.count == Self.fixtureScalars.count + 1)
        let events = try TensorBoardEvent.read(path: path)
        #expect(events[0].fileVersion == "brain.Event:2" && events[0].wallTime == Self.fixtureWallTime)
        #expect(events[0].scalars.isEmpty)
        for (e, s) in zip(events.dropFirst(), Self.fixtureScalars) {
            #expect(e.wallTime == s.wallTime && e.step == s.step && e.fileVersion == nil)
            #expect(e.scalars == [TensorBoardScalar(tag: s.tag, value: s.value, storage: .tensor)])
        }
    }

    /// A last record cut short is skipped (as TensorBoard does); a flipped byte is an error that
    /// names the file.
    @Test func truncatedAndDamagedFiles() throws {
        let dir = temporaryDirectory()
        let fixture = try Self.bytes(Self.fixtures.appendingPathComponent("events.out.tfevents.fixture").path)
        for cut in [1, 5, 13, 20] {
            let (records, truncated) = try TFRecord.records(in: Array(fixture.dropLast(cut)), path: "x")
            #expect(records.count == Self.fixtureScalars.count && truncated > 0)
        }
        var damaged = fixture
        damaged[40] ^= 1
        let path = dir + "/events.out.tfevents.damaged"
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        do { _ = try TensorBoardEvent.read(path: path); Issue.record("expected a CRC error") } catch {
            #expect("\(error)".hasPrefix(path + ": the record at byte "), "\(error)")
            #expect("\(error)".contains("CRC"), "\(error)")
        }
        do { _ = try TensorBoardEvent.read(path: dir + "/missing"); Issue.record("expected an error") } catch {
            #expect("\(error)".hasPrefix(dir + "/missing: cannot read the event file"), "\(error)")
        }
    }

    /// Writers never overwrite each other's files; a closed writer refuses scalars.
    @Test func writerLifecycle() throws {
        let dir = temporaryDirectory()
        let a = try TensorBoardEventWriter(logDirectory: dir, wallTime: 1234)
        let b = try TensorBoardEventWriter(logDirectory: dir, wallTime: 1234)
        #expect(b.path == a.path + ".1")
        try a.scalar("x", 1, step: 1)
        #expect(try TensorBoardEvent.read(path: a.path).count == 1)  // not flushed yet
        try a.flush()
        #expect(try TensorBoardEvent.read(path: a.path).map(\.scalars.count) == [0, 1])
        try a.close()
        try a.close()
        do { try a.scalar("y", 2, step: 2); Issue.record("expected an error") } catch {
            #expect("\(error)".contains(a.path) && "\(error)".contains("closed"), "\(error)")
        }
        try b.close()
        #expect(try TensorBoardEvent.read(path: b.path).count == 1)
    }

    /// A log folder that cannot be made or written is an error at init naming it, not a crash.
    @Test func unwritableLogFolderIsAClearError() throws {
        let dir = temporaryDirectory()
        let file = dir + "/a-file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        do { _ = try TensorBoardEventWriter(logDirectory: file + "/logs"); Issue.record("expected an error") } catch {
            #expect("\(error)" == "\(file)/logs: cannot create the TensorBoard log folder: \(file) is a file, not a folder")
        }
        if geteuid() != 0 {  // root writes anywhere
            let locked = dir + "/locked"
            try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: true)
            chmod(locked, 0o500)
            defer { chmod(locked, 0o700) }
            do { _ = try TensorBoardEventWriter(logDirectory: locked); Issue.record("expected an error") } catch {
                #expect("\(error)".hasPrefix(locked + "/events.out.tfevents.") && "\(error)".hasSuffix("Permission denied"), "\(error)")
            }
        }
        // The callback reports it and training goes on.
        let (x, y) = blobs(64, seed: 3)
        let tb = TensorBoard(logDirectory: file + "/logs")
        let h = try RandomSeed.withSeed(1) { try tinyModel().fit(x: x, y: y, batchSize: 32, epochs: 2, validationSplit: 0.25, callbacks: [tb], verbose: .silent) }
        #expect(h.history["loss"]?.count == 2)
        #expect(!tb.errors.isEmpty && tb.errors.allSatisfy { $0.hasPrefix(file + "/logs/") && $0.contains("is a file, not a folder") }, "\(tb.errors)")
    }

    /// `fit` with validation for 3 epochs: train/ and validation/ each hold one event file with
    /// epoch_loss (and epoch_accuracy) at steps 0, 1, 2, equal to the History's values.
    @Test func callbackWritesTrainAndValidationRuns() throws {
        let dir = temporaryDirectory() + "/logs"
        let (x, y) = blobs(128, seed: 2)
        let tb = TensorBoard(logDirectory: dir)
        let h = try RandomSeed.withSeed(1) { try tinyModel().fit(x: x, y: y, batchSize: 32, epochs: 3, validationSplit: 0.25, callbacks: [tb], verbose: .silent) }
        #expect(tb.errors.isEmpty && tb.trainWriter == nil && tb.validationWriter == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["train", "validation"])
        for (folder, prefix) in [("train", ""), ("validation", "val_")] {
            let events = try TensorBoardEvent.read(path: try Self.onlyFile(in: dir + "/" + folder))
            #expect(events[0].fileVersion == "brain.Event:2")
            for name in ["loss", "accuracy"] {
                let tagged = events.filter { $0.scalars.first?.tag == "epoch_" + name }
                #expect(tagged.map(\.step) == [0, 1, 2], "\(folder) epoch_\(name)")
                #expect(tagged.map { $0.scalars[0].value } == h.history[prefix + name], "\(folder) epoch_\(name)")
            }
            #expect(events.dropFirst().allSatisfy { $0.scalars.count == 1 && $0.scalars[0].tag.hasPrefix("epoch_") })
            #expect(events.count == 1 + 2 * 3)
        }
    }

    /// `.batch(n)`: batch_loss every n batches at the global step (counted from 1 over the whole
    /// run); a learning-rate callback listed before adds epoch_learning_rate; no validation data,
    /// no validation folder.
    @Test func callbackBatchFrequencyAndLearningRate() throws {
        let dir = temporaryDirectory() + "/logs"
        let (x, y) = blobs(96, seed: 4)  // 3 batches of 32 per epoch, 9 in all
        let tb = TensorBoard(logDirectory: dir, updateFrequency: .batch(2))
        var batchLosses = [Float]()
        let spy = LambdaCallback(onBatchEnd: { _, logs in batchLosses.append(logs["loss"]!) })
        let schedule = LearningRateScheduler { epoch, rate in epoch == 0 ? rate : rate / 2 }
        _ = try RandomSeed.withSeed(1) { try tinyModel().fit(x: x, y: y, batchSize: 32, epochs: 3, callbacks: [spy, schedule, tb], verbose: .silent) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["train"])
        let events = try TensorBoardEvent.read(path: try Self.onlyFile(in: dir + "/train")).dropFirst()
        let batch = events.filter { $0.scalars[0].tag == "batch_loss" }
        #expect(batch.map(\.step) == [2, 4, 6, 8])
        #expect(batch.map { $0.scalars[0].value } == [1, 3, 5, 7].map { batchLosses[$0] })
        #expect(Set(events.filter { $0.scalars[0].tag.hasPrefix("batch_") }.map { $0.scalars[0].tag }) == ["batch_loss", "batch_accuracy"])
        let rates = events.filter { $0.scalars[0].tag == "epoch_learning_rate" }
        #expect(rates.map(\.step) == [0, 1, 2])
        #expect(rates.map { $0.scalars[0].value } == [0.05, 0.025, 0.0125])
    }
}
