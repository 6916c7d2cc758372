import Foundation
import OcelliTensor

/// Maps the class names of architecture files to the layers that rebuild themselves from their
/// configuration (`ConfigurableLayer`): OcelliNN's layers (`builtInTypes`) and those registered
/// with `register` (OcelliDarknet's, through `DarknetLayers.register()`; your own).
public enum LayerRegistry {
    /// OcelliNN's layers by the class name their `typeName` writes.
    static let builtInTypes: [String: any ConfigurableLayer.Type] = [
        // Core, merging, reshaping
        "Dense": Dense.self, "Activation": ActivationLayer.self, "Add": Add.self, "Concatenate": Concatenate.self,
        "Multiply": Multiply.self, "Flatten": Flatten.self, "Reshape": Reshape.self, "UpSampling2D": UpSampling2D.self,
        // Activations
        "LeakyReLU": LeakyReLU.self, "PReLU": PReLU.self, "ELU": ELU.self, "ReLU": ReLU.self, "Softmax": Softmax.self,
        // Convolutions
        "Conv2D": Conv2D.self, "DepthwiseConv2D": DepthwiseConv2D.self, "SeparableConv2D": SeparableConv2D.self,
        "ChannelShuffle": ChannelShuffle.self, "Conv2DTranspose": Conv2DTranspose.self,
        "ZeroPadding2D": ZeroPadding2D.self, "Cropping2D": Cropping2D.self,
        // Pooling
        "MaxPooling2D": MaxPooling2D.self, "AveragePooling2D": AveragePooling2D.self,
        "GlobalAveragePooling2D": GlobalAveragePooling2D.self, "GlobalMaxPooling2D": GlobalMaxPooling2D.self,
        "LpPooling2D": LpPooling2D.self, "SpatialPyramidPooling": SpatialPyramidPooling.self,
        // Regularization
        "Dropout": Dropout.self, "SpatialDropout2D": SpatialDropout2D.self, "GaussianNoise": GaussianNoise.self,
        "GaussianDropout": GaussianDropout.self, "AlphaDropout": AlphaDropout.self,
        "ActivityRegularization": ActivityRegularization.self,
        // Normalization
        "BatchNormalization": BatchNormalization.self, "LayerNormalization": LayerNormalization.self,
        "GroupNormalization": GroupNormalization.self, "InstanceNormalization": InstanceNormalization.self,
        "WeightNormalization": WeightNormalization.self, "L2Normalization": L2Normalization.self,
        // Heads
        "MarginSoftmax": MarginSoftmax.self,
    ]

    private final class Table: @unchecked Sendable {
        let lock = NSLock()
        var factories: [String: (LayerConfig) throws -> Layer] = builtInTypes.mapValues { type in { try type.init(config: $0) } }
    }
    private static let table = Table()

    /// Teaches `Model.load` a layer class defined outside OcelliNN: `type.init(config:)`
    /// rebuilds the layer from the `config` it wrote under `className` (its `typeName`).
    /// Registering a name again replaces the earlier entry.
    public static func register(_ className: String, type: any ConfigurableLayer.Type) {
        register(className) { try type.init(config: $0) }
    }

    /// Teaches `Model.load` a layer class through a factory that rebuilds the layer from the
    /// `config` it wrote under `className` (read `config["key"]` or its checked accessors).
    public static func register(_ className: String, factory: @escaping (LayerConfig) throws -> Layer) {
        table.lock.lock(); table.factories[className] = factory; table.lock.unlock()
    }

    static func factory(_ className: String) -> ((LayerConfig) throws -> Layer)? {
        table.lock.lock(); defer { table.lock.unlock() }
        return table.factories[className]
    }

    /// The layer an architecture file describes: its class rebuilt from the configuration, with
    /// the keys every layer has (`name`, `trainable`, `activity_regularizer`).
    public static func layer(from config: LayerConfig) throws -> Layer {
        let cls = config.className
        if cls == "Lambda" {
            throw FileFormatError(config.path, "layer \(config.index) is a Lambda: its closure is code, not data; rebuild this model in Swift and load only its weights")
        }
        guard let factory = factory(cls) else {
            let how = cls.hasPrefix("Darknet")
                ? "Darknet's layers load once `DarknetLayers.register()` (OcelliDarknet) has run: call it before `Model.load`"
                : "a layer of your own loads once registered with `LayerRegistry.register`"
            throw FileFormatError(config.path, "layer \(config.index): unknown layer class '\(cls)' (\(how))")
        }
        let layer: Layer
        do { layer = try factory(config) } catch let e as FileFormatError { throw e } catch { throw config.error("\(error)") }
        layer.name = try config.string("name", default: "")
        layer.trainable = try config.bool("trainable", default: true)
        layer.activityRegularizer = try config.regularizer("activity_regularizer")
        return layer
    }
}
