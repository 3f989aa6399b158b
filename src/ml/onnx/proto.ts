/**
 * ONNX protobuf encode/decode (protobufjs over the schema subset in onnx-schema.ts) plus
 * small builders and readers for nodes, attributes and tensors.
 */
import protobuf from 'protobufjs';
import { ONNX_SCHEMA } from './onnx-schema.ts';

const root = protobuf.parse(ONNX_SCHEMA, { keepCase: true }).root;
const ModelType = root.lookupType('onnx.ModelProto');

export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, DOUBLE: 11 } as const;

export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

export interface TensorProto {
  dims?: number[];
  data_type?: number;
  float_data?: number[];
  int32_data?: number[];
  string_data?: Uint8Array[];
  int64_data?: number[];
  name?: string;
  raw_data?: Uint8Array;
  double_data?: number[];
  uint64_data?: number[];
  data_location?: number;
}

export interface AttributeProto {
  name: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
}

export interface NodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  domain?: string;
  attribute?: AttributeProto[];
  doc_string?: string;
}

export interface DimProto {
  dim_value?: number;
  dim_param?: string;
}

export interface TypeProto {
  tensor_type?: { elem_type?: number; shape?: { dim?: DimProto[] } };
  sequence_type?: { elem_type?: TypeProto };
  map_type?: { key_type?: number; value_type?: TypeProto };
  optional_type?: { elem_type?: TypeProto };
}

export interface ValueInfoProto {
  name?: string;
  type?: TypeProto;
  doc_string?: string;
}

export interface GraphProto {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  doc_string?: string;
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  value_info?: ValueInfoProto[];
}

export interface OpsetId {
  domain?: string;
  version?: number;
}

export interface ModelProto {
  ir_version?: number;
  opset_import?: OpsetId[];
  producer_name?: string;
  producer_version?: string;
  domain?: string;
  model_version?: number;
  doc_string?: string;
  graph?: GraphProto;
  metadata_props?: { key?: string; value?: string }[];
}

export function encodeModel(model: ModelProto): Uint8Array {
  const msg = ModelType.fromObject(model);
  return ModelType.encode(msg).finish();
}

/** Throws whatever protobufjs throws on malformed input; callers wrap it. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  const msg = ModelType.decode(bytes);
  return ModelType.toObject(msg, { longs: Number, arrays: true, oneofs: false }) as ModelProto;
}

// ---------- builders ----------

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

export const attr = {
  float: (name: string, f: number): AttributeProto => ({ name, type: AttrType.FLOAT, f }),
  int: (name: string, i: number): AttributeProto => ({ name, type: AttrType.INT, i }),
  string: (name: string, s: string): AttributeProto => ({ name, type: AttrType.STRING, s: utf8.encode(s) }),
  floats: (name: string, v: ArrayLike<number>): AttributeProto => ({ name, type: AttrType.FLOATS, floats: Array.from(v) }),
  ints: (name: string, v: ArrayLike<number>): AttributeProto => ({ name, type: AttrType.INTS, ints: Array.from(v) }),
  strings: (name: string, v: string[]): AttributeProto => ({ name, type: AttrType.STRINGS, strings: v.map((s) => utf8.encode(s)) }),
  tensor: (name: string, t: TensorProto): AttributeProto => ({ name, type: AttrType.TENSOR, t }),
};

export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): TensorProto {
  return { name, dims, data_type: DataType.FLOAT, raw_data: new Uint8Array(Float32Array.from(values).buffer) };
}

export function doubleTensor(name: string, dims: number[], values: ArrayLike<number>): TensorProto {
  return { name, dims, data_type: DataType.DOUBLE, raw_data: new Uint8Array(Float64Array.from(values).buffer) };
}

export function int64Tensor(name: string, dims: number[], values: ArrayLike<number>): TensorProto {
  return { name, dims, data_type: DataType.INT64, int64_data: Array.from(values) };
}

export function node(
  op_type: string,
  input: string[],
  output: string[],
  attribute: AttributeProto[] = [],
  domain = '',
  name = '',
): NodeProto {
  return { op_type, input, output, attribute, domain, name: name || `${op_type}_${output[0]}` };
}

/** dims: number = fixed, string = symbolic (e.g. 'N'). */
export function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

// ---------- readers ----------

export function findAttr(n: NodeProto, name: string): AttributeProto | undefined {
  return n.attribute?.find((a) => a.name === name);
}

export function attrInt(n: NodeProto, name: string, dflt: number): number {
  const a = findAttr(n, name);
  return a?.i ?? dflt;
}

export function attrString(n: NodeProto, name: string, dflt: string): string {
  const a = findAttr(n, name);
  return a?.s ? utf8d.decode(a.s) : dflt;
}

export function attrFloat(n: NodeProto, name: string, dflt: number): number {
  return findAttr(n, name)?.f ?? dflt;
}

/** A float list, or the `<name>_as_tensor` double variant (opset 3 trees) when present. */
export function attrFloats(n: NodeProto, name: string): number[] | undefined {
  const t = findAttr(n, `${name}_as_tensor`)?.t;
  if (t) return tensorValues(t);
  const a = findAttr(n, name);
  return a && a.floats && a.floats.length > 0 ? a.floats : a?.type === AttrType.FLOATS ? [] : undefined;
}

export function attrInts(n: NodeProto, name: string): number[] | undefined {
  const a = findAttr(n, name);
  return a && a.ints && a.ints.length > 0 ? a.ints : a?.type === AttrType.INTS ? [] : undefined;
}

export function attrStrings(n: NodeProto, name: string): string[] | undefined {
  const a = findAttr(n, name);
  if (!a || !a.strings || (a.strings.length === 0 && a.type !== AttrType.STRINGS)) return undefined;
  return a.strings.map((s) => utf8d.decode(s));
}

export function decodeUtf8(b: Uint8Array): string {
  return utf8d.decode(b);
}

/** Numeric tensor contents as plain numbers (float, double, int32, int64 and friends). */
export function tensorValues(t: TensorProto): number[] {
  const type = t.data_type ?? 0;
  const raw = t.raw_data && t.raw_data.length > 0 ? t.raw_data : undefined;
  if (raw) {
    const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
    switch (type) {
      case DataType.FLOAT: return Array.from(new Float32Array(buf));
      case DataType.DOUBLE: return Array.from(new Float64Array(buf));
      case DataType.INT32: return Array.from(new Int32Array(buf));
      case DataType.INT64: return Array.from(new BigInt64Array(buf), (v) => Number(v));
      case DataType.UINT8: case DataType.BOOL: return Array.from(new Uint8Array(buf));
      case DataType.INT8: return Array.from(new Int8Array(buf));
      default: throw new Error(`unsupported tensor data_type ${type} in raw_data`);
    }
  }
  switch (type) {
    case DataType.FLOAT: return t.float_data ?? [];
    case DataType.DOUBLE: return t.double_data ?? [];
    case DataType.INT64: return t.int64_data ?? [];
    case DataType.INT32: case DataType.UINT8: case DataType.INT8: case DataType.BOOL: return t.int32_data ?? [];
    default: throw new Error(`unsupported tensor data_type ${type}`);
  }
}

export function tensorDims(v: ValueInfoProto | undefined): (number | string | undefined)[] | undefined {
  const dims = v?.type?.tensor_type?.shape?.dim;
  if (!dims) return undefined;
  return dims.map((d) => (d.dim_value !== undefined && d.dim_value !== null ? d.dim_value : d.dim_param || undefined));
}
