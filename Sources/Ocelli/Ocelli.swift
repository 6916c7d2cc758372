// The umbrella module: `import Ocelli` brings in every Ocelli module.
@_exported import OcelliTensor
@_exported import OcelliNN
@_exported import OcelliVision
@_exported import OcelliDetection
@_exported import OcelliDarknet
