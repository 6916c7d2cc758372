import Foundation
import OcelliTensor
#if canImport(Glibc)
import Glibc
#endif

/// Hooks into `fit` (Keras' Callback). Subclasses override what they need.
open class Callback {
    public weak var model: Model?
    public init() {}
    open func onTrainBegin() {}
    open func onTrainEnd() {}
    open func onEpochBegin(_ epoch: Int) {}
    /// `logs` holds loss, metrics and val_ values; a callback may add entries (e.g. "learning_rate").
    open func onEpochEnd(_ epoch: Int, logs: inout [String: Float]) {}
    open func onBatchEnd(_ batch: Int, logs: [String: Float]) {}
}

/// Keras 3's progress line: `469/469 ━━━━━━━━━━━━━━━━━━━━ 7s 15ms/step - accuracy: 0.8814 - loss: 0.3294`.
public enum ProgressLine {
    /// "7s", "1:05", "1:01:05" (Keras' ETA/elapsed format).
    public static func formatDuration(_ s: Double) -> String {
        let t = Int(s.rounded(.down))
        if t >= 3600 { return String(format: "%d:%02d:%02d", t / 3600, (t % 3600) / 60, t % 60) }
        if t >= 60 { return String(format: "%d:%02d", t / 60, t % 60) }
        return "\(t)s"
    }

    /// "15ms/step", "2s/step", "830us/step".
    public static func formatPerStep(_ s: Double) -> String {
        if s >= 1 { return String(format: "%.0fs/step", s) }
        if s >= 1e-3 { return String(format: "%.0fms/step", s * 1e3) }
        return String(format: "%.0fus/step", s * 1e6)
    }

    /// " - name: value" for each metric in alphabetical order (4 decimals, scientific below 1e-3).
    public static func formatLogs(_ logs: [String: Float]) -> String {
        logs.keys.sorted().map { k in
            let v = logs[k]!
            return " - \(k): " + (Swift.abs(v) > 1e-3 || v == 0 ? String(format: "%.4f", v) : String(format: "%.4e", v))
        }.joined()
    }

    /// The whole line. `final` shows the elapsed time and time per step; otherwise the ETA.
    /// `color` adds Keras' ANSI styling for terminals.
    public static func format(current: Int, target: Int, elapsed: Double, logs: [String: Float],
                              final: Bool, color: Bool = false, width: Int = 20) -> String {
        let digits = String(target).count
        let counter = String(repeating: " ", count: Swift.max(0, digits - String(current).count)) + "\(current)/\(target)"
        let filled = target > 0 ? Swift.min(width, Int(Double(width) * Double(current) / Double(target))) : width
        let bar = color
            ? "\u{1b}[1m\(counter)\u{1b}[0m " + (filled > 0 ? "\u{1b}[32m" + String(repeating: "━", count: filled) + "\u{1b}[0m" : "")
              + "\u{1b}[37m" + String(repeating: "━", count: width - filled) + "\u{1b}[0m"
            : counter + " " + String(repeating: "━", count: width)
        let perStep = current > 0 ? elapsed / Double(current) : 0
        let time: String
        if final {
            time = " " + formatDuration(elapsed) + " " + formatPerStep(perStep)
        } else {
            time = " " + formatDuration(perStep * Double(target - current))
        }
        return bar + time + formatLogs(logs)
    }
}

/// Prints Keras' per-epoch output during `fit` and `evaluate`.
final class ProgressLogger: Callback {
    let verbose: Verbosity
    let steps: Int, epochs: Int
    let isTerminal: Bool
    var epochStart: UInt64 = 0
    var lastDraw: UInt64 = 0
    var lastLogs: [String: Float] = [:]

    init(verbose: Verbosity, steps: Int, epochs: Int) {
        self.isTerminal = isatty(STDOUT_FILENO) != 0
        self.verbose = verbose == .auto ? (isatty(STDOUT_FILENO) != 0 ? .progressBar : .oneLinePerEpoch) : verbose
        self.steps = steps; self.epochs = epochs
    }

    override func onEpochBegin(_ epoch: Int) {
        epochStart = DispatchTime.now().uptimeNanoseconds
        if verbose != .silent { print("Epoch \(epoch + 1)/\(epochs)"); fflush(stdout) }
    }

    override func onBatchEnd(_ batch: Int, logs: [String: Float]) {
        lastLogs = logs
        guard verbose == .progressBar && isTerminal else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        // Redraw at most every 50 ms (and on the last step).
        if batch + 1 < steps && now - lastDraw < 50_000_000 { return }
        lastDraw = now
        let elapsed = Double(now - epochStart) / 1e9
        if batch + 1 < steps {
            print("\r" + ProgressLine.format(current: batch + 1, target: steps, elapsed: elapsed, logs: logs, final: false, color: true),
                  terminator: "\u{1b}[K")
            fflush(stdout)
        }
    }

    override func onEpochEnd(_ epoch: Int, logs: inout [String: Float]) {
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - epochStart) / 1e9
        show(steps, logs: logs, elapsed: elapsed, final: true)
    }

    /// Used by evaluate too.
    func show(_ current: Int, logs: [String: Float], elapsed: Double, final: Bool) {
        switch verbose {
        case .silent, .auto: return
        case .progressBar:
            if !final && !isTerminal { return }
            let line = ProgressLine.format(current: current, target: steps, elapsed: elapsed, logs: logs, final: final, color: isTerminal)
            print((isTerminal ? "\r" : "") + line, terminator: final ? (isTerminal ? "\u{1b}[K\n" : "\n") : "\u{1b}[K")
        case .oneLinePerEpoch:
            guard final else { return }
            print("\(current)/\(steps) - " + ProgressLine.formatDuration(elapsed) + " - "
                  + ProgressLine.formatPerStep(elapsed / Double(Swift.max(current, 1))) + ProgressLine.formatLogs(logs))
        }
        fflush(stdout)
    }
}

/// How a monitored quantity improves.
public enum MonitorMode: Sendable { case auto, min, max }

func improves(_ mode: MonitorMode, monitor: String) -> (Float, Float, Float) -> Bool {
    // Keras' auto mode maximises accuracies and AUCs; detection's mAP ("val_map50", "map") too.
    let name = monitor.lowercased()
    let isMax = mode == .max || (mode == .auto && (name.hasSuffix("accuracy") || name.hasSuffix("auc") || name.contains("map")))
    return isMax ? { current, best, delta in current - delta > best } : { current, best, delta in current + delta < best }
}

/// Stops training when `monitor` stops improving by at least `minDelta` for `patience` epochs.
public final class EarlyStopping: Callback {
    public let monitor: String, minDelta: Float, patience: Int, restoreBestWeights: Bool, baseline: Float?
    let better: (Float, Float, Float) -> Bool
    public private(set) var stoppedEpoch = 0
    var best: Float?
    var wait = 0
    var bestWeights: [Tensor]?

    public init(monitor: String = "val_loss", minDelta: Float = 0, patience: Int = 0, mode: MonitorMode = .auto,
                baseline: Float? = nil, restoreBestWeights: Bool = false) {
        self.monitor = monitor; self.minDelta = Swift.abs(minDelta); self.patience = patience
        self.restoreBestWeights = restoreBestWeights; self.baseline = baseline
        self.better = improves(mode, monitor: monitor)
    }

    public override func onTrainBegin() { best = baseline; wait = 0; bestWeights = nil; stoppedEpoch = 0 }

    public override func onEpochEnd(_ epoch: Int, logs: inout [String: Float]) {
        guard let current = logs[monitor] else {
            StandardError.write("warning: EarlyStopping monitors '\(monitor)', which is not in the logs (\(logs.keys.sorted().joined(separator: ", ")))\n")
            return
        }
        if restoreBestWeights && bestWeights == nil { bestWeights = model?.getWeights() }
        if best == nil || better(current, best!, minDelta) {
            best = current; wait = 0
            if restoreBestWeights { bestWeights = model?.getWeights() }
            return
        }
        wait += 1
        if wait >= patience && epoch > 0 {
            stoppedEpoch = epoch
            model?.stopTraining = true
            if restoreBestWeights, let w = bestWeights { try? model?.setWeights(w) }
        }
    }
}

/// Saves the model's weights (safetensors) after each epoch, or only when `monitor` improves.
/// `path` may contain "{epoch}" (1-based). The file is written atomically.
public final class ModelCheckpoint: Callback {
    public let path: String, monitor: String, saveBestOnly: Bool
    let better: (Float, Float, Float) -> Bool
    var best: Float?
    public private(set) var savedPaths: [String] = []

    public init(path: String, monitor: String = "val_loss", saveBestOnly: Bool = false, mode: MonitorMode = .auto) {
        self.path = path; self.monitor = monitor; self.saveBestOnly = saveBestOnly
        self.better = improves(mode, monitor: monitor)
    }

    /// A checkpoint folder that cannot be written is reported when training starts, not after
    /// the first epoch (unless the folder itself is named by epoch).
    public override func onTrainBegin() {
        let dir = folder(of: path)
        guard !dir.contains("{epoch}") else { return }
        do { try ensureWritableDirectory(dir) } catch {
            StandardError.write("error: ModelCheckpoint: \(error)\n")
        }
    }

    public override func onEpochEnd(_ epoch: Int, logs: inout [String: Float]) {
        guard let model else { return }
        if saveBestOnly {
            guard let current = logs[monitor] else { return }
            if let b = best, !better(current, b, 0) { return }
            best = current
        }
        let file = path.replacingOccurrences(of: "{epoch}", with: String(format: "%02d", epoch + 1))
        do {
            try model.saveWeights(to: file)
            savedPaths.append(file)
        } catch {
            StandardError.write("error: ModelCheckpoint could not save \(file): \(error)\n")
        }
    }
}

/// Appends one CSV row per epoch: epoch, then the logs in alphabetical order.
public final class CSVLogger: Callback {
    public let path: String, separator: String, append: Bool
    var keys: [String]?
    public init(path: String, separator: String = ",", append: Bool = false) {
        self.path = path; self.separator = separator; self.append = append
    }
    public override func onTrainBegin() {
        keys = nil
        if !append && !FileManager.default.createFile(atPath: path, contents: nil) {
            StandardError.write("error: CSVLogger could not create \(path)\n")
        }
    }
    public override func onEpochEnd(_ epoch: Int, logs: inout [String: Float]) {
        var text = ""
        if keys == nil {
            keys = logs.keys.sorted()
            let exists = (try? Data(contentsOf: URL(fileURLWithPath: path)))?.isEmpty == false
            if !exists { text += (["epoch"] + keys!).joined(separator: separator) + "\n" }
        }
        text += ([String(epoch)] + keys!.map { logs[$0].map { String($0) } ?? "" }).joined(separator: separator) + "\n"
        if let h = FileHandle(forWritingAtPath: path) ?? { _ = FileManager.default.createFile(atPath: path, contents: nil); return FileHandle(forWritingAtPath: path) }() {
            h.seekToEndOfFile(); h.write(text.data(using: .utf8)!); h.closeFile()
        } else {
            StandardError.write("error: CSVLogger could not write epoch \(epoch) to \(path)\n")
        }
    }
}

/// Sets the learning rate at the start of each epoch from `schedule(epoch, currentRate)`.
public final class LearningRateScheduler: Callback {
    let schedule: (Int, Float) -> Float
    public init(_ schedule: @escaping (Int, Float) -> Float) { self.schedule = schedule }
    public override func onEpochBegin(_ epoch: Int) {
        guard let opt = model?.optimizer else { return }
        opt.learningRate = schedule(epoch, opt.learningRate)
    }
    public override func onEpochEnd(_ epoch: Int, logs: inout [String: Float]) {
        if let lr = model?.optimizer?.learningRate { logs["learning_rate"] = lr }
    }
}

/// Multiplies the learning rate by `factor` when `monitor` has not improved for `patience` epochs.
public final class ReduceLROnPlateau: Callback {
    public let monitor: String, factor: Float, patience: Int, minDelta: Float, cooldown: Int, minLearningRate: Float
    let better: (Float, Float, Float) -> Bool
    var best: Float?
    var wait = 0, cooldownCounter = 0

    public init(monitor: String = "val_loss", factor: Float = 0.1, patience: Int = 10, mode: MonitorMode = .auto,
                minDelta: Float = 1e-4, cooldown: Int = 0, minLearningRate: Float = 0) {
        precondition(factor < 1, "ReduceLROnPlateau: factor must be < 1")
        self.monitor = monitor; self.factor = factor; self.patience = patience; self.minDelta = minDelta
        self.cooldown = cooldown; self.minLearningRate = minLearningRate
        self.better = improves(mode, monitor: monitor)
    }

    public override func onEpochEnd(_ epoch: Int, logs: inout [String: Float]) {
        guard let opt = model?.optimizer else { return }
        logs["learning_rate"] = opt.learningRate
        guard let current = logs[monitor] else { return }
        if cooldownCounter > 0 { cooldownCounter -= 1; wait = 0 }
        if best == nil || better(current, best!, minDelta) { best = current; wait = 0; return }
        if cooldownCounter > 0 { return }
        wait += 1
        if wait >= patience {
            let old = opt.learningRate
            if old > minLearningRate {
                opt.learningRate = Swift.max(old * factor, minLearningRate)
                cooldownCounter = cooldown
                wait = 0
            }
        }
    }
}

/// Stops training as soon as a batch loss is NaN or infinite.
public final class TerminateOnNaN: Callback {
    public override func onBatchEnd(_ batch: Int, logs: [String: Float]) {
        if let l = logs["loss"], !l.isFinite {
            print("Batch \(batch): Invalid loss, terminating training")
            model?.stopTraining = true
        }
    }
}

/// Closures as a callback.
public final class LambdaCallback: Callback {
    let epochBegin: ((Int) -> Void)?
    let epochEnd: ((Int, [String: Float]) -> Void)?
    let batchEnd: ((Int, [String: Float]) -> Void)?
    let trainBegin: (() -> Void)?, trainEnd: (() -> Void)?
    public init(onEpochBegin: ((Int) -> Void)? = nil, onEpochEnd: ((Int, [String: Float]) -> Void)? = nil,
                onBatchEnd: ((Int, [String: Float]) -> Void)? = nil, onTrainBegin: (() -> Void)? = nil,
                onTrainEnd: (() -> Void)? = nil) {
        epochBegin = onEpochBegin; epochEnd = onEpochEnd; batchEnd = onBatchEnd; trainBegin = onTrainBegin; trainEnd = onTrainEnd
    }
    public override func onTrainBegin() { trainBegin?() }
    public override func onTrainEnd() { trainEnd?() }
    public override func onEpochBegin(_ epoch: Int) { epochBegin?(epoch) }
    public override func onEpochEnd(_ epoch: Int, logs: inout [String: Float]) { epochEnd?(epoch, logs) }
    public override func onBatchEnd(_ batch: Int, logs: [String: Float]) { batchEnd?(batch, logs) }
}
