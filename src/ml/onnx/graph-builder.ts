import {
  type AttributeProto,
  type NodeProto,
  type TensorProto,
  floatTensor,
  int64Tensor,
  node,
} from './proto.ts';

export const ML_DOMAIN = 'ai.onnx.ml';

/** Accumulates nodes and initializers with unique intermediate names. */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private counter = 0;

  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  floatConst(prefix: string, dims: number[], values: ArrayLike<number>): string {
    const name = this.fresh(prefix);
    this.initializers.push(floatTensor(name, dims, values));
    return name;
  }

  int64Const(prefix: string, dims: number[], values: ArrayLike<number>): string {
    const name = this.fresh(prefix);
    this.initializers.push(int64Tensor(name, dims, values));
    return name;
  }

  /** Adds one node; `outputs` are explicit names or a count of fresh names. Returns output names. */
  op(opType: string, inputs: string[], attrs: AttributeProto[] = [], outputs: string[] | number = 1, domain = ''): string[] {
    const outs = typeof outputs === 'number'
      ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()))
      : outputs;
    this.nodes.push(node(opType, inputs, outs, attrs, domain, this.fresh(opType)));
    return outs;
  }

  op1(opType: string, inputs: string[], attrs: AttributeProto[] = [], domain = '', output?: string): string {
    return this.op(opType, inputs, attrs, output ? [output] : 1, domain)[0];
  }
}
