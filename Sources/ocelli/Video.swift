import ArgumentParser
import Foundation
import Ocelli

/// Frames in, annotated frames out: a folder of images, or a video through ffmpeg processes.
enum VideoPipeline {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static let missingTools = "ffmpeg and ffprobe are needed to read and write video files and were not found on PATH; install them (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg) or pass a folder of frames to --video"

    /// The path of an executable on PATH, or nil.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":") {
            let candidate = (String(dir) as NSString).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func run(input: String, output: String, annotate: (Image) -> Image) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else {
            throw Failure(description: "\(input): no such video file or folder of frames")
        }
        let started = Date()
        var frames = 0
        if isDir.boolValue {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            for file in try expandImages([input]) {
                let frame = try Image(contentsOf: file)
                let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
                try annotate(frame).write(png: (output as NSString).appendingPathComponent(stem + ".png"))
                frames += 1
            }
        } else {
            frames = try ffmpeg(input: input, output: output, annotate: annotate)
        }
        let seconds = Date().timeIntervalSince(started)
        printError("\(input): \(frames) frames in \(String(format: "%.1f", seconds)) s (\(String(format: "%.1f", Double(frames) / max(seconds, 1e-9))) FPS) -> \(output)")
    }

    static func ffmpeg(input: String, output: String, annotate: (Image) -> Image) throws -> Int {
        guard let ffmpeg = which("ffmpeg"), let ffprobe = which("ffprobe") else {
            throw Failure(description: missingTools)
        }
        // Size and frame rate of the first video stream.
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: ffprobe)
        probe.arguments = ["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height,r_frame_rate",
                           "-of", "csv=p=0", input]
        let probeOut = Pipe(), probeErr = Pipe()
        probe.standardOutput = probeOut
        probe.standardError = probeErr
        try probe.run()
        let info = String(decoding: probeOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let probeError = String(decoding: probeErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        probe.waitUntilExit()
        let fields = info.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").first?.split(separator: ",") ?? []
        guard probe.terminationStatus == 0, fields.count >= 3, let width = Int(fields[0]), let height = Int(fields[1]),
              width > 0, height > 0 else {
            throw Failure(description: "\(input): ffprobe found no video stream (\(probeError.trimmingCharacters(in: .whitespacesAndNewlines)))")
        }
        let rate = String(fields[2])

        let decoder = Process()
        decoder.executableURL = URL(fileURLWithPath: ffmpeg)
        decoder.arguments = ["-v", "error", "-i", input, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        let frameIn = Pipe()
        decoder.standardOutput = frameIn
        let encoder = Process()
        encoder.executableURL = URL(fileURLWithPath: ffmpeg)
        encoder.arguments = ["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "\(width)x\(height)",
                             "-r", rate, "-i", "pipe:0", "-pix_fmt", "yuv420p", output]
        let frameOut = Pipe()
        encoder.standardInput = frameOut
        try decoder.run()
        try encoder.run()
        let frameBytes = width * height * 3
        var frames = 0
        let reader = frameIn.fileHandleForReading, writer = frameOut.fileHandleForWriting
        while true {
            var data = Data()
            while data.count < frameBytes {
                let chunk = reader.readData(ofLength: frameBytes - data.count)
                if chunk.isEmpty { break }
                data.append(chunk)
            }
            if data.count < frameBytes { break }
            let frame = Image(width: width, height: height, channels: 3, pixels: [UInt8](data))
            writer.write(Data(annotate(frame).pixels))
            frames += 1
        }
        try writer.close()
        decoder.waitUntilExit()
        encoder.waitUntilExit()
        guard decoder.terminationStatus == 0 else { throw Failure(description: "\(input): ffmpeg could not decode the video (exit \(decoder.terminationStatus))") }
        guard encoder.terminationStatus == 0 else { throw Failure(description: "\(output): ffmpeg could not encode the video (exit \(encoder.terminationStatus))") }
        return frames
    }
}
