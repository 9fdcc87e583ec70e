// The JavaScript side of the canvas-to-MNIST spec must reproduce every shared test vector.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { canvasToMnist, inkMap, scaledSize, areaWeights } from '../src/preprocess.js';

const vectors = JSON.parse(readFileSync(new URL('../../tests/vectors/preprocess.json', import.meta.url)));

function imageData(testCase) {
  const data = new Uint8ClampedArray(inflateSync(Buffer.from(testCase.rgba, 'base64')));
  return { width: testCase.width, height: testCase.height, data };
}

test('the vector file holds empty and non-empty cases', () => {
  assert.ok(vectors.cases.length >= 25);
  assert.ok(vectors.cases.some((c) => c.expected === null));
  assert.ok(vectors.cases.filter((c) => c.expected !== null).length >= 20);
});

for (const testCase of vectors.cases) {
  test(`vector ${testCase.name}`, () => {
    const output = canvasToMnist(imageData(testCase));
    if (testCase.expected === null) {
      assert.equal(output, null, 'an empty canvas must give null');
      return;
    }
    assert.notEqual(output, null, 'a canvas with a digit must not be empty');
    assert.equal(output.length, 784);
    let worst = 0;
    for (let i = 0; i < 784; i++) worst = Math.max(worst, Math.abs(output[i] - testCase.expected[i]));
    assert.ok(worst <= vectors.tolerance, `max grey-level difference ${worst} > ${vectors.tolerance}`);
  });
}

test('area weights of a row sum to one', () => {
  for (const [nIn, nOut] of [[280, 20], [7, 20], [33, 13]]) {
    for (const row of areaWeights(nIn, nOut)) {
      const sum = row.reduce((s, [, w]) => s + w, 0);
      assert.ok(Math.abs(sum - 1) < 1e-9);
    }
  }
});

test('the longer side becomes 20 pixels, keeping the aspect ratio', () => {
  assert.deepEqual(scaledSize(200, 100), [20, 10]);
  assert.deepEqual(scaledSize(50, 400), [3, 20]);
  assert.deepEqual(scaledSize(300, 1), [20, 1]);
});

test('bad input is refused with a clear error', () => {
  assert.throws(() => inkMap({ width: 10, height: 10, data: new Uint8ClampedArray(10) }), /RGBA ImageData/);
});

test('networkInput is the one /255 conversion to float32 in [0, 1]', async () => {
  const { networkInput } = await import('../src/preprocess.js');
  const input = networkInput(new Uint8ClampedArray([0, 51, 255]));
  assert.ok(input instanceof Float32Array);
  assert.deepEqual(Array.from(input), [0, Math.fround(0.2), 1]);
});
