/**
 * npm run make-model -- --arch tiny|minilm-l6 --name NAME --out DIR [--seed N] [--tokenizer-dir DIR]
 * Writes a random-weight BERT model to DIR/NAME (transformers.js layout).
 */
import { parseArgs } from 'node:util';
import { ARCHS, makeModel, type ArchName } from '../src/embed/make-model.ts';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'tiny' },
    name: { type: 'string' },
    out: { type: 'string', default: 'models' },
    seed: { type: 'string', default: '42' },
    'tokenizer-dir': { type: 'string' },
  },
});

if (!values.name || !(values.arch! in ARCHS)) {
  console.error(`usage: make-model --arch ${Object.keys(ARCHS).join('|')} --name NAME --out DIR [--seed N] [--tokenizer-dir DIR]`);
  process.exit(2);
}

const started = performance.now();
const made = makeModel({
  arch: values.arch as ArchName,
  name: values.name,
  out: values.out!,
  seed: Number(values.seed),
  tokenizerDir: values['tokenizer-dir'],
});
console.log(
  `wrote ${made.dir} (arch ${values.arch}, vocab ${made.vocabSize} ${made.tokenizer}, ` +
    `model.onnx ${(made.onnxBytes / 1e6).toFixed(1)} MB) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
);
