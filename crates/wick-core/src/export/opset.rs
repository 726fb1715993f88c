//! The ONNX versions Wick writes; a leaf, so the model card (`package`) can name them without
//! depending on the exporter.

/// The ONNX operator set the exported graphs use: 19 is the first with `Equal` on strings (for
/// one-hot encoding), supported by onnxruntime since 1.16.
pub const ONNX_OPSET: i64 = 19;
/// The ONNX IR version that goes with [`ONNX_OPSET`].
pub const ONNX_IR_VERSION: i64 = 9;
