/**
 * Minimal ONNX protobuf writer: just the ModelProto subset needed to emit an
 * inference graph with initializers. Field numbers follow onnx/onnx.proto.
 */
import protobuf from 'protobufjs';

const SCHEMA = `
syntax = "proto2";
package onnx;
message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional bytes raw_data = 9;
}
message AttributeProto {
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  optional int32 type = 20;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string domain = 7;
}
message TensorShapeProto {
  message Dimension { optional int64 dim_value = 1; optional string dim_param = 2; }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; }
  optional Tensor tensor_type = 1;
}
message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; }
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
}
`;

const root = protobuf.parse(SCHEMA, { keepCase: true }).root;
const ModelProto = root.lookupType('onnx.ModelProto');

/** TensorProto.DataType values. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7 } as const;
type DataTypeValue = (typeof DataType)[keyof typeof DataType];

/** AttributeProto.AttributeType values. */
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export interface Tensor {
  name: string;
  dims: number[];
  data_type: DataTypeValue;
  raw_data: Uint8Array;
}

/** A typed attribute value; build with `attr.int(...)`, `attr.ints(...)`, ... */
export type Attr =
  | { type: typeof AttrType.FLOAT; f: number }
  | { type: typeof AttrType.INT; i: number }
  | { type: typeof AttrType.STRING; s: Uint8Array }
  | { type: typeof AttrType.TENSOR; t: Tensor }
  | { type: typeof AttrType.FLOATS; floats: number[] }
  | { type: typeof AttrType.INTS; ints: number[] };

export const attr = {
  float: (f: number): Attr => ({ type: AttrType.FLOAT, f }),
  int: (i: number): Attr => ({ type: AttrType.INT, i }),
  string: (s: string): Attr => ({ type: AttrType.STRING, s: new TextEncoder().encode(s) }),
  tensor: (t: Tensor): Attr => ({ type: AttrType.TENSOR, t }),
  floats: (floats: number[]): Attr => ({ type: AttrType.FLOATS, floats }),
  ints: (ints: number[]): Attr => ({ type: AttrType.INTS, ints }),
};

export interface Node {
  op_type: string;
  input: string[];
  output: string[];
  name: string;
  attribute: (Attr & { name: string })[];
}

export interface ValueInfo {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: ({ dim_value: number } | { dim_param: string })[] } } };
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

export function floatTensor(name: string, dims: number[], data: Float32Array): Tensor {
  return { name, dims, data_type: DataType.FLOAT, raw_data: bytesOf(data) };
}

export function int64Tensor(name: string, dims: number[], data: number[]): Tensor {
  return { name, dims, data_type: DataType.INT64, raw_data: bytesOf(BigInt64Array.from(data.map(BigInt))) };
}

export function node(op_type: string, input: string[], output: string[], attrs: Record<string, Attr> = {}): Node {
  const attribute = Object.entries(attrs).map(([name, a]) => ({ name, ...a }));
  return { op_type, input, output, name: `${op_type}_${output[0]}`, attribute };
}

export function tensorValueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfo {
  const dim = dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d }));
  return { name, type: { tensor_type: { elem_type: elemType, shape: { dim } } } };
}

export interface GraphSpec {
  name: string;
  nodes: Node[];
  initializers: Tensor[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  opset: number;
}

export function encodeModel(g: GraphSpec): Uint8Array {
  const msg = ModelProto.fromObject({
    ir_version: 8,
    producer_name: 'pgml-gateway',
    producer_version: '0.1.0',
    opset_import: [{ domain: '', version: g.opset }],
    graph: { name: g.name, node: g.nodes, initializer: g.initializers, input: g.inputs, output: g.outputs },
  });
  return ModelProto.encode(msg).finish();
}
