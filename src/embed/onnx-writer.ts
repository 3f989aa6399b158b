/**
 * The BERT builder's view of ONNX: attributes given by name in a record, a graph spec encoded
 * to bytes. A thin layer over src/ml/onnx/proto.ts, the project's one ONNX schema.
 */
import {
  AttrType,
  DataType as ProtoDataType,
  encodeModel as encodeProto,
  floatTensor as protoFloatTensor,
  node as protoNode,
  valueInfo,
  type AttributeProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from '../ml/onnx/proto.ts';

export const DataType = { FLOAT: ProtoDataType.FLOAT, INT32: ProtoDataType.INT32, INT64: ProtoDataType.INT64 } as const;

export type Tensor = TensorProto;
export type Node = NodeProto;
export type ValueInfo = ValueInfoProto;
/** An attribute value without its name; build with `attr.int(...)`, `attr.ints(...)`, ... */
export type Attr = Omit<AttributeProto, 'name'>;

export const attr = {
  float: (f: number): Attr => ({ type: AttrType.FLOAT, f }),
  int: (i: number): Attr => ({ type: AttrType.INT, i }),
  string: (s: string): Attr => ({ type: AttrType.STRING, s: new TextEncoder().encode(s) }),
  tensor: (t: Tensor): Attr => ({ type: AttrType.TENSOR, t }),
  floats: (floats: number[]): Attr => ({ type: AttrType.FLOATS, floats }),
  ints: (ints: number[]): Attr => ({ type: AttrType.INTS, ints }),
};

export function floatTensor(name: string, dims: number[], data: Float32Array): Tensor {
  return protoFloatTensor(name, dims, data);
}

export function int64Tensor(name: string, dims: number[], data: number[]): Tensor {
  const raw = BigInt64Array.from(data.map(BigInt));
  return { name, dims, data_type: DataType.INT64, raw_data: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) };
}

export function node(op_type: string, input: string[], output: string[], attrs: Record<string, Attr> = {}): Node {
  return protoNode(op_type, input, output, Object.entries(attrs).map(([name, a]) => ({ name, ...a })));
}

export const tensorValueInfo = valueInfo;

export interface GraphSpec {
  name: string;
  nodes: Node[];
  initializers: Tensor[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  opset: number;
}

export function encodeModel(g: GraphSpec): Uint8Array {
  return encodeProto({
    ir_version: 8,
    producer_name: 'pgml-gateway',
    producer_version: '0.1.0',
    opset_import: [{ domain: '', version: g.opset }],
    graph: { name: g.name, node: g.nodes, initializer: g.initializers, input: g.inputs, output: g.outputs },
  });
}
