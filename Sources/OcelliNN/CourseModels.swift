/// The models of the course, ready to train.
public enum CourseModels {
    /// "Your 1st DNN": Conv2D 32 3x3 relu → Dropout 0.5 → Conv2D 10 1x1 relu → Dropout 0.5 →
    /// Conv2D 10 26x26 → Flatten → softmax, on 28x28x1 MNIST digits (68,260 parameters).
    public static func mnistSeed() -> Sequential {
        Sequential(inputShape: [28, 28, 1], name: "sequential") {
            Conv2D(filters: 32, kernelSize: 3, activation: .relu)
            Dropout(0.5)
            Conv2D(filters: 10, kernelSize: 1, activation: .relu)
            Dropout(0.5)
            Conv2D(filters: 10, kernelSize: 26)
            Flatten()
            ActivationLayer(.softmax)
        }
    }

    /// Keras' MNIST convnet: Conv2D 32 3x3 relu → MaxPool 2 → Conv2D 64 3x3 relu → MaxPool 2 →
    /// Flatten → Dropout 0.5 → Dense 10 softmax (34,826 parameters).
    public static func mnistConvnet() -> Sequential {
        Sequential(inputShape: [28, 28, 1], name: "sequential") {
            Conv2D(filters: 32, kernelSize: 3, activation: .relu)
            MaxPooling2D(2)
            Conv2D(filters: 64, kernelSize: 3, activation: .relu)
            MaxPooling2D(2)
            Flatten()
            Dropout(0.5)
            Dense(units: 10, activation: .softmax)
        }
    }
}
