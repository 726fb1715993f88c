//! The Open Inference Protocol's binary tensor data extension, as Triton defines it and tritonclient
//! uses by default (`set_data_from_numpy(..., binary_data=True)`, and binary outputs when a request
//! names none).
//!
//! A request body is a JSON header of `Inference-Header-Content-Length` bytes followed by the raw
//! bytes of every input whose `parameters.binary_data_size` says how many it has, in input order:
//! little-endian numbers, one byte per BOOL, and each BYTES element as a 4-byte little-endian length
//! and its bytes. An answer's outputs are binary when the request asks (`binary_data_output` for all,
//! or an output's own `binary_data`), laid out the same way after the JSON header.

use crate::error::ApiError;
use crate::tensor_data::TensorData;
use crate::tensors::{InferOutput, InferRequest};

/// The header giving the JSON part's length, in requests and answers.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

/// The JSON part of a body and the binary part after it.
pub fn split<'a>(
    body: &'a [u8],
    header_length: Option<&str>,
) -> Result<(&'a [u8], &'a [u8]), ApiError> {
    let Some(text) = header_length else {
        return Ok((body, &[]));
    };
    let n: usize = text.trim().parse().map_err(|_| {
        bad(format!(
            "the Inference-Header-Content-Length header is {text:?}, not a byte count"
        ))
    })?;
    if n > body.len() {
        return Err(bad(format!("the Inference-Header-Content-Length header says {n} bytes of JSON, but the body has {}", body.len())));
    }
    Ok(body.split_at(n))
}

/// Fills each input that has `parameters.binary_data_size` from `blobs`, in order; counts the
/// elements against `max_elements` as JSON data is.
pub fn fill_inputs(
    request: &mut InferRequest,
    mut blobs: &[u8],
    max_elements: usize,
) -> Result<(), ApiError> {
    let mut remaining = max_elements;
    for input in &mut request.inputs {
        let Some(size) = input
            .parameters
            .as_ref()
            .and_then(|p| p.get("binary_data_size"))
        else {
            continue;
        };
        let size = size.as_u64().ok_or_else(|| {
            bad(format!(
                "input `{}`: binary_data_size is {size}, not a byte count",
                input.name
            ))
        })? as usize;
        if size > blobs.len() {
            return Err(bad(format!("input `{}` says it has {size} bytes of binary data, but only {} are left in the body", input.name, blobs.len())));
        }
        if !input.data.is_empty() {
            return Err(bad(format!(
                "input `{}` has both JSON data and binary_data_size; send one of them",
                input.name
            )));
        }
        let (bytes, rest) = blobs.split_at(size);
        blobs = rest;
        input.data = decode(&input.name, &input.datatype, bytes, &mut remaining)?;
    }
    if !blobs.is_empty() {
        return Err(bad(format!(
            "the body has {} bytes of binary data that no input's binary_data_size accounts for",
            blobs.len()
        )));
    }
    Ok(())
}

fn decode(
    name: &str,
    datatype: &str,
    bytes: &[u8],
    remaining: &mut usize,
) -> Result<TensorData, ApiError> {
    let width = match datatype {
        "BOOL" | "UINT8" | "INT8" => 1,
        "UINT16" | "INT16" | "FP16" => 2,
        "UINT32" | "INT32" | "FP32" => 4,
        "UINT64" | "INT64" | "FP64" => 8,
        "BYTES" => return decode_bytes(name, bytes, remaining),
        other => {
            return Err(bad(format!(
                "input `{name}` has datatype {other}, which binary data can't carry"
            )))
        }
    };
    if !bytes.len().is_multiple_of(width) {
        return Err(bad(format!("input `{name}`: {} bytes of binary data is not a whole number of {datatype} values ({width} bytes each)", bytes.len())));
    }
    let count = bytes.len() / width;
    take(remaining, count)?;
    let values = bytes.chunks_exact(width).map(|b| {
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(b);
        let u = u64::from_le_bytes(le);
        match datatype {
            "BOOL" => f64::from(u8::from(u != 0)),
            "UINT8" | "UINT16" | "UINT32" | "UINT64" => u as f64,
            "INT8" => f64::from(b[0] as i8),
            "INT16" => f64::from(i16::from_le_bytes([b[0], b[1]])),
            "INT32" => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            "INT64" => u as i64 as f64,
            "FP16" => f64::from(f16_to_f32(u as u16)),
            "FP32" => f64::from(f32::from_bits(u as u32)),
            _ => f64::from_bits(u),
        }
    });
    Ok(TensorData::Numbers(values.collect()))
}

fn decode_bytes(
    name: &str,
    mut bytes: &[u8],
    remaining: &mut usize,
) -> Result<TensorData, ApiError> {
    let mut values = Vec::new();
    while !bytes.is_empty() {
        let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(bad(format!(
                "input `{name}`: element {} of its BYTES data is cut short in its 4-byte length",
                values.len()
            )));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(bad(format!(
                "input `{name}`: element {} of its BYTES data says {len} bytes, but {} are left",
                values.len(),
                rest.len()
            )));
        }
        take(remaining, 1)?;
        let (text, rest) = rest.split_at(len);
        values.push(serde_json::Value::String(
            String::from_utf8_lossy(text).into_owned(),
        ));
        bytes = rest;
    }
    Ok(TensorData::Values(values))
}

fn take(remaining: &mut usize, count: usize) -> Result<(), ApiError> {
    *remaining = remaining.checked_sub(count).ok_or_else(|| {
        ApiError::TooLarge("the request holds more tensor elements than the server's limit. Send fewer rows per request".into())
    })?;
    Ok(())
}

/// IEEE half precision to single (exact: every half is a float).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exponent = (h >> 10) & 0x1f;
    let mantissa = u32::from(h & 0x3ff);
    let bits = match exponent {
        0 if mantissa == 0 => sign,
        // Subnormal: normalise the mantissa.
        0 => {
            let shift = mantissa.leading_zeros() - 21;
            sign | ((127 - 15 + 1 - shift) << 23) | ((mantissa << shift) & 0x3ff) << 13
        }
        0x1f => sign | 0x7f80_0000 | (mantissa << 13),
        e => sign | ((u32::from(e) + 127 - 15) << 23) | (mantissa << 13),
    };
    f32::from_bits(bits)
}

/// Which outputs the request wants as binary data.
pub fn wants_binary(request: &InferRequest, output: &str) -> bool {
    let flag = |p: &Option<serde_json::Value>, key: &str| {
        p.as_ref()
            .and_then(|p| p.get(key))
            .and_then(serde_json::Value::as_bool)
    };
    let own = request
        .outputs
        .iter()
        .flatten()
        .find(|o| o.name == output)
        .and_then(|o| flag(&o.parameters, "binary_data"));
    own.or_else(|| flag(&request.parameters, "binary_data_output"))
        .unwrap_or(false)
}

/// Moves an output's data into binary form: its bytes are returned, its JSON keeps the shape and
/// says their size.
pub fn encode_output(output: &mut InferOutput) -> Vec<u8> {
    let data = std::mem::take(&mut output.data);
    let mut bytes = Vec::new();
    if let serde_json::Value::Array(values) = data {
        for v in values {
            match output.datatype.as_str() {
                "BYTES" => {
                    let text = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
                    bytes.extend_from_slice(text.as_bytes());
                }
                "FP32" => {
                    bytes.extend_from_slice(&(v.as_f64().unwrap_or(f64::NAN) as f32).to_le_bytes())
                }
                _ => bytes.extend_from_slice(&v.as_f64().unwrap_or(f64::NAN).to_le_bytes()),
            }
        }
    }
    output.parameters = Some(serde_json::json!({ "binary_data_size": bytes.len() }));
    bytes
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn half_floats_convert_exactly() {
        // Values from numpy: np.array([1, -2.5, 65504, 6.1035156e-05, 5.9604645e-08, 0], np.float16).view(np.uint16)
        let cases = [
            (0x3c00, 1.0),
            (0xc100, -2.5),
            (0x7bff, 65504.0),
            (0x0400, 6.103_515_6e-5),
            (0x0001, 5.960_464_5e-8),
            (0x0000, 0.0),
        ];
        for (bits, want) in cases {
            assert_eq!(f16_to_f32(bits), want, "{bits:#06x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
    }

    #[test]
    fn bad_binary_data_is_named() {
        let mut remaining = 10;
        let err = decode("x", "FP32", &[0; 6], &mut remaining).err().unwrap();
        assert!(
            format!("{err:?}").contains("not a whole number of FP32"),
            "{err:?}"
        );
        let err = decode_bytes("s", &[5, 0, 0, 0, b'a'], &mut remaining)
            .err()
            .unwrap();
        assert!(format!("{err:?}").contains("says 5 bytes"), "{err:?}");
        let mut few = 1;
        assert!(matches!(
            decode("x", "UINT8", &[1, 2], &mut few),
            Err(ApiError::TooLarge(_))
        ));
    }
}
