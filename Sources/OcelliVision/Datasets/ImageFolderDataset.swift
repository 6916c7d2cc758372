import Foundation
import OcelliTensor

/// An image classification data set stored as one sub-folder per class
/// (`root/cat/1.jpg`, `root/dog/7.png`, ...). Class indices follow the sorted folder names.
public struct ImageFolderDataset: Equatable, Sendable {
    /// One image file and its class.
    public struct Sample: Equatable, Sendable {
        public var file: URL
        public var classIndex: Int
    }

    /// The sub-folder names, sorted: class index order.
    public var classNames: [String]
    /// The images, class by class, each class's files sorted by name.
    public var samples: [Sample]

    /// Lists the JPEG and PNG files (by extension) of each sub-folder of `directory`. Hidden
    /// files and folders are skipped; files directly in `directory` are ignored.
    /// - Throws: `DatasetError` when `directory` cannot be listed or holds no class folder.
    public init(directory: URL) throws {
        let root = directory.standardizedFileURL
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: root.path)
        } catch {
            throw DatasetError(file: root.path, "cannot list the folder: \(systemReason(error))")
        }
        classNames = names.filter { !$0.hasPrefix(".") && DatasetFiles.isDirectory(root.appendingPathComponent($0)) }.sorted()
        guard !classNames.isEmpty else {
            throw DatasetError(file: root.path, "no class folders: an image-folder data set has one sub-folder of images per class")
        }
        samples = []
        for (index, name) in classNames.enumerated() {
            for file in try DatasetFiles.files(in: root.appendingPathComponent(name), extensions: DatasetFiles.imageExtensions) {
                samples.append(Sample(file: file, classIndex: index))
            }
        }
    }

    public var count: Int { samples.count }

    /// The samples at `indices` decoded, converted to `channels` (1 or 3) and resized
    /// (bilinear) to `width` x `height`: images [N, height, width, channels] in [0, 1] and
    /// labels [N] (class indices as Floats).
    public func batch(_ indices: [Int], width: Int, height: Int, channels: Int = 3) throws -> (images: Tensor, labels: Tensor) {
        precondition(channels == 1 || channels == 3, "ImageFolderDataset.batch: channels must be 1 or 3, got \(channels)")
        let images = try indices.map { i -> Image in
            var image = try Image(contentsOf: samples[i].file.path)
            if image.channels != channels { image = channels == 1 ? image.grayscale() : image.rgb() }
            return image.width == width && image.height == height ? image : image.resized(width: width, height: height)
        }
        return (Image.batchTensor(images), Tensor(shape: [indices.count], scalars: indices.map { Float(samples[$0].classIndex) }))
    }
}
