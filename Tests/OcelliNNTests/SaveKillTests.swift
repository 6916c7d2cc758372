import Foundation
import Testing
import OcelliTestSupport
@testable import OcelliNN
import OcelliTensor
#if canImport(Glibc)
import Glibc
#endif

/// A model is two files written as one unit: killed at any moment of a save, the folder holds
/// the old model or the new one, whole, and `Model.load` reads it.
@Suite struct SaveKillTests {
    @Test func killedSavesLeaveAWholeModel() throws {
        let executable: String
        switch OcelliExecutable.path {
        case .success(let p): executable = p
        case .failure(let missing): Issue.record("\(missing)"); return
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-kill-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeAll(folder) }
        var generator = SplitMix(seed: 2026)
        var midSave = 0, lastLoaded = 0
        for attempt in 0..<50 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["debug", "save-loop", folder, "--units", "512"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Wait for one finished save of this process, then kill it a random time later.
            var printed = ""
            while !printed.contains("saved") {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                printed += String(decoding: chunk, as: UTF8.self)
            }
            #expect(printed.contains("saved"), "the child ended before its first save")
            usleep(UInt32(generator.next() % 60_000))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            printed += String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let finished = printed.split(separator: "\n").compactMap { $0.hasPrefix("saved ") ? Int($0.dropFirst(6)) : nil }.max() ?? 0

            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            if names.contains(where: { $0.hasSuffix(".pending") || $0.contains(".tmp-") }) { midSave += 1 }
            let model: Model
            do { model = try Model.load(from: folder) } catch {
                Issue.record("kill \(attempt): the folder does not load (\(names.sorted())): \(error)"); return
            }
            // Save k: named round-k, every weight and optimizer value k; the last reported save or the one after it.
            guard let round = Int(model.name.dropFirst("round-".count)), model.name.hasPrefix("round-") else {
                Issue.record("kill \(attempt): model named \(model.name)"); return
            }
            #expect(round == finished || round == finished + 1, "kill \(attempt): loaded save \(round), the process had finished \(finished)")
            let values = model.layers.flatMap { $0.parameters.flatMap { $0.value.scalars } } + model.optimizerState().flatMap { $0.1.scalars }
            #expect(values.allSatisfy { $0 == Float(round) }, "kill \(attempt): model.json of save \(round) with weights of another save")
            #expect(model.optimizerState().count == 6)
            lastLoaded = round
        }
        // The kills must really land inside saves (temporary or pending files left behind), or the
        // test proves nothing.
        #expect(midSave >= 10, "only \(midSave) of 50 kills interrupted a save")
        #expect(lastLoaded > 0)
        print("kill test: 50 kills, \(midSave) in the middle of a save, every time a whole model loaded")
    }
}

private extension FileManager {
    func removeAll(_ path: String) throws { try removeItem(atPath: path) }
}

/// A small deterministic generator (the kill times differ run to run anyway: they race the child).
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt32 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return UInt32(truncatingIfNeeded: z ^ (z >> 31))
    }
}
