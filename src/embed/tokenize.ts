/** Tokenisation with sentence-transformers truncation, on top of a transformers.js tokenizer. */

/** The part of a transformers.js PreTrainedTokenizer used here. */
export interface TokenizerLike {
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
  (text: string, options: { truncation: boolean; max_length: number; return_tensor: false }): { input_ids: number[] };
}

export interface Tokenized {
  ids: number[];
  truncated: boolean;
}

/**
 * Long texts are tokenised from a prefix of about this many characters per allowed token;
 * if that prefix already has more tokens than fit, the rest of the text cannot matter.
 */
const CHARS_PER_TOKEN = 8;
/** extra tokens required before trusting a cut text, so boundary effects at the cut never reach the kept tokens */
const CUT_MARGIN = 16;

/**
 * Tokenises with sentence-transformers truncation: at most `maxLength` tokens, the text
 * cut so that the template's trailing special tokens ([SEP]) are kept. transformers.js's
 * own `truncation: true` instead cuts the finished sequence, dropping [SEP].
 * Long texts are first cut at a whitespace (see CHARS_PER_TOKEN), so a 100k-character
 * input costs about as much as a 2k-character one.
 */
export class TruncatingTokenizer {
  /** special tokens the post-processor puts after the text, when its template is `[prefix] text [suffix]` */
  private readonly suffix: number | undefined;

  constructor(
    private readonly tok: TokenizerLike,
    readonly maxLength: number,
  ) {
    this.suffix = templateSuffix(tok);
  }

  tokenize(text: string): Tokenized {
    let source = text;
    let ids: number[] | undefined;
    const limit = this.maxLength * CHARS_PER_TOKEN;
    if (text.length > limit) {
      const cut = lastWhitespace(text, limit);
      if (cut > limit / 2) {
        const prefixIds = this.tok.encode(text.slice(0, cut));
        if (prefixIds.length >= this.maxLength + CUT_MARGIN) {
          source = text.slice(0, cut);
          ids = prefixIds;
        }
      }
    }
    ids ??= this.tok.encode(source);
    if (ids.length <= this.maxLength) return { ids, truncated: false };
    if (this.suffix !== undefined) {
      const keep = this.maxLength - this.suffix;
      return { ids: [...ids.slice(0, keep), ...ids.slice(ids.length - this.suffix)], truncated: true };
    }
    // Unknown template: the library's truncation, which (unlike sentence-transformers) cuts the final sequence as is.
    return { ids: this.tok(source, { truncation: true, max_length: this.maxLength, return_tensor: false }).input_ids, truncated: true };
  }
}

/** How many special tokens follow the text, or undefined when the template is not `[prefix] text [suffix]`. */
function templateSuffix(tok: TokenizerLike): number | undefined {
  const probe = 'hello world, this is a probe';
  const plain = tok.encode(probe, { add_special_tokens: false });
  const full = tok.encode(probe);
  for (let start = 0; start + plain.length <= full.length; start++) {
    if (plain.every((id, i) => full[start + i] === id)) return full.length - start - plain.length;
  }
  return undefined;
}

function lastWhitespace(text: string, before: number): number {
  for (let i = before; i > 0; i--) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 10 || c === 9 || c === 13) return i;
  }
  return -1;
}

export interface PaddedBatch {
  batch: number;
  seq: number;
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  tokenTypeIds: BigInt64Array;
  /** attention mask as numbers, row-major, for pooling */
  mask: Uint8Array;
}

/** Right-pads token rows to the longest one (pad id 0, mask 0). */
export function padBatch(rows: number[][], padId = 0): PaddedBatch {
  const batch = rows.length;
  const seq = Math.max(1, ...rows.map((r) => r.length));
  const inputIds = new BigInt64Array(batch * seq).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(batch * seq);
  const mask = new Uint8Array(batch * seq);
  for (let b = 0; b < batch; b++) {
    const row = rows[b];
    for (let t = 0; t < row.length; t++) {
      inputIds[b * seq + t] = BigInt(row[t]);
      attentionMask[b * seq + t] = 1n;
      mask[b * seq + t] = 1;
    }
  }
  return { batch, seq, inputIds, attentionMask, tokenTypeIds: new BigInt64Array(batch * seq), mask };
}
