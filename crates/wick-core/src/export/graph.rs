//! A small builder for ONNX graphs: named values, constant initialisers and nodes, each produced
//! value given a unique name, so the lowering code reads like the computation it writes.

use super::onnx_proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// One dimension of a graph input or output: fixed, or the batch size chosen by the caller.
#[derive(Debug, Clone, Copy)]
pub enum Dim {
    Fixed(usize),
    Batch,
}

pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    next_id: usize,
    /// The graph's input and output names (column and target names), which no inner value may take.
    reserved: std::collections::HashSet<String>,
}

impl GraphBuilder {
    pub fn new(reserved: impl IntoIterator<Item = String>) -> Self {
        Self {
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            next_id: 0,
            reserved: reserved.into_iter().collect(),
        }
    }

    fn fresh(&mut self, hint: &str) -> String {
        loop {
            self.next_id += 1;
            let name = format!("{hint}_{}", self.next_id);
            if !self.reserved.contains(&name) {
                return name;
            }
        }
    }

    /// Declares a graph input; its name is the value's name.
    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Dim]) -> String {
        self.inputs.push(value_info(name, elem, dims));
        name.to_string()
    }

    /// Exposes `value` as the graph output `name`.
    pub fn output(&mut self, value: &str, name: &str, elem: DataType, dims: &[Dim]) {
        self.nodes
            .push(node("Identity", &[value], &[name], Vec::new()));
        self.outputs.push(value_info(name, elem, dims));
    }

    fn initializer(
        &mut self,
        hint: &str,
        dims: &[usize],
        elem: DataType,
        fill: impl FnOnce(&mut TensorProto),
    ) -> String {
        let name = self.fresh(hint);
        let mut t = TensorProto {
            name: Some(name.clone()),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(elem as i32),
            ..Default::default()
        };
        fill(&mut t);
        self.initializers.push(t);
        name
    }

    pub fn f32s(&mut self, hint: &str, dims: &[usize], values: &[f32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(hint, dims, DataType::Float, |t| t.raw_data = Some(raw))
    }

    pub fn f64s(&mut self, hint: &str, dims: &[usize], values: &[f64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(hint, dims, DataType::Double, |t| t.raw_data = Some(raw))
    }

    pub fn i64s(&mut self, hint: &str, dims: &[usize], values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(hint, dims, DataType::Int64, |t| t.raw_data = Some(raw))
    }

    pub fn strings(&mut self, hint: &str, dims: &[usize], values: &[String]) -> String {
        let data = values.iter().map(|s| s.as_bytes().to_vec()).collect();
        self.initializer(hint, dims, DataType::String, |t| t.string_data = data)
    }

    /// A node with one output; returns the output's name.
    pub fn op(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> String {
        let out = self.fresh(&op_type.to_ascii_lowercase());
        self.nodes.push(node(op_type, inputs, &[&out], attributes));
        out
    }

    /// As [`Self::op`], for an operator of another domain than the standard one (`ai.onnx.ml`).
    pub fn op_in(
        &mut self,
        domain: &str,
        op_type: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> String {
        let out = self.fresh(&op_type.to_ascii_lowercase());
        let mut n = node(op_type, inputs, &[&out], attributes);
        n.domain = Some(domain.to_string());
        self.nodes.push(n);
        out
    }

    pub fn finish(self, name: &str) -> GraphProto {
        GraphProto {
            name: Some(name.to_string()),
            node: self.nodes,
            initializer: self.initializers,
            input: self.inputs,
            output: self.outputs,
            ..Default::default()
        }
    }
}

fn node(
    op_type: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: Some(op_type.to_string()),
        name: outputs.first().map(|o| format!("{op_type}:{o}")),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Fixed(n) => tensor_shape_proto::dimension::Value::DimValue(*n as i64),
                Dim::Batch => tensor_shape_proto::dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: Some(elem as i32),
        shape: Some(TensorShapeProto { dim }),
    };
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.to_vec(),
        ..Default::default()
    }
}

pub fn attr_float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..Default::default()
    }
}

pub fn attr_string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(value.as_bytes().to_vec()),
        ..Default::default()
    }
}

pub fn attr_strings(name: &str, values: &[String]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Strings as i32),
        strings: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

/// A one-dimensional `double` tensor as an attribute value (the `*_as_tensor` attributes).
pub fn attr_tensor_f64(name: &str, values: &[f64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(TensorProto {
            dims: vec![values.len() as i64],
            data_type: Some(DataType::Double as i32),
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..Default::default()
        }),
        ..Default::default()
    }
}
