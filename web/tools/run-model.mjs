// Load a TF.js graph model with the same pinned TF.js as the page (CPU backend) and run it.
//
//   node tools/run-model.mjs MODEL_DIR INPUTS.f32 OUTPUTS.f32
//
// INPUTS.f32 holds N*28*28 little-endian float32 pixels in [0, 1]; OUTPUTS.f32 receives
// N*K float32 outputs (K = 10 digit probabilities, or 11 with "not a digit").  Prints a JSON summary.  Exits non-zero (with the reason)
// when TF.js cannot load or run the model: digitglyph.export relies on that.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { loadGraphModel } from '@tensorflow/tfjs-converter';

const [modelDir, inputsPath, outputsPath] = process.argv.slice(2);
if (!outputsPath) {
  console.error('usage: node tools/run-model.mjs MODEL_DIR INPUTS.f32 OUTPUTS.f32');
  process.exit(2);
}

function fileHandler(directory) {
  const modelJson = JSON.parse(readFileSync(join(directory, 'model.json'), 'utf8'));
  return {
    load: () => tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
      const specs = manifest.flatMap((group) => group.weights);
      const buffers = manifest.flatMap((group) => group.paths.map((path) => readFileSync(join(directory, path))));
      const bytes = Buffer.concat(buffers);
      return [specs, bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)];
    }),
  };
}

await tf.setBackend('cpu');
const model = await loadGraphModel(fileHandler(modelDir));
const raw = readFileSync(inputsPath);
const pixels = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
const count = pixels.length / 784;
if (!Number.isInteger(count) || count < 1) throw new Error(`${inputsPath} does not hold whole 28x28 images`);
const output = tf.tidy(() => model.predict(tf.tensor4d(pixels, [count, 28, 28, 1])));
const [rows, width] = output.shape;
if (output.rank !== 2 || rows !== count || (width !== 10 && width !== 11)) {
  throw new Error(`model output has shape [${output.shape}], expected [${count},10] or [${count},11]`);
}
const values = output.dataSync();
writeFileSync(outputsPath, Buffer.from(values.buffer, values.byteOffset, values.byteLength));
console.log(JSON.stringify({ backend: tf.getBackend(), tfjs: tf.version_core, images: count, outputs: width,
  inputs: model.inputs.map((input) => input.name) }));
