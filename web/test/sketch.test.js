// The page's drawing state and display rules, without a browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answerRule, decide } from '../src/answers.js';
import { BRUSH_FRACTION, Sketch, display, waiting } from '../src/sketch.js';

/** A 2D context that records what is drawn on it. */
function recordingContext() {
  const calls = [];
  const context = { calls };
  for (const name of ['clearRect', 'beginPath', 'moveTo', 'lineTo', 'quadraticCurveTo', 'arc', 'fill', 'stroke']) {
    context[name] = (...args) => calls.push([name, ...args]);
  }
  return context;
}

test('strokes are kept as drawn, one per begin/end, in pad fractions', () => {
  const sketch = new Sketch();
  assert.ok(sketch.isEmpty && !sketch.drawing);
  sketch.begin([0.1, 0.2]);
  assert.ok(sketch.drawing);
  sketch.extend([[0.2, 0.3], [0.3, 0.4]]);
  assert.equal(sketch.end([0.4, 0.5]), true);
  assert.equal(sketch.end(), false, 'no stroke under way');
  sketch.extend([[0.9, 0.9]]); // after the stroke ended: ignored
  assert.deepEqual(sketch.strokes, [[[0.1, 0.2], [0.2, 0.3], [0.3, 0.4], [0.4, 0.5]]]);
  assert.throws(() => sketch.begin([Number.NaN, 0]), /finite numbers/);
  assert.throws(() => sketch.begin('0.5,0.5'), /\[x, y\]/);
});

test('undo removes the last stroke, clear removes all, and both say whether anything changed', () => {
  const sketch = new Sketch();
  assert.equal(sketch.undo(), false);
  assert.equal(sketch.clear(), false);
  for (const x of [0.1, 0.5, 0.9]) {
    sketch.begin([x, 0.1]);
    sketch.end([x, 0.9]);
  }
  assert.equal(sketch.undo(), true);
  assert.deepEqual(sketch.strokes.map((stroke) => stroke[0][0]), [0.1, 0.5]);
  sketch.begin([0.3, 0.3]); // a stroke under way is dropped by clear
  assert.equal(sketch.clear(), true);
  assert.ok(sketch.isEmpty && !sketch.drawing);
});

test('render clears the context and draws each stroke in canvas pixels with the spec brush', () => {
  const sketch = new Sketch();
  sketch.begin([0.5, 0.5]);
  sketch.end(); // a dot
  sketch.begin([0.0, 0.0]);
  sketch.extend([[0.5, 0.25]]);
  sketch.end([1.0, 0.5]);
  const context = recordingContext();
  sketch.render(context, 280, 140);
  assert.deepEqual(context.calls[0], ['clearRect', 0, 0, 280, 140]);
  assert.equal(context.lineWidth, 140 * BRUSH_FRACTION);
  assert.equal(context.lineCap, 'round');
  assert.equal(context.lineJoin, 'round');
  const names = context.calls.map(([name]) => name);
  assert.deepEqual(names, ['clearRect', 'beginPath', 'arc', 'fill', 'beginPath', 'moveTo', 'quadraticCurveTo',
    'lineTo', 'stroke']);
  assert.deepEqual(context.calls[2].slice(1, 4), [140, 70, 5]);
  assert.deepEqual(context.calls[5], ['moveTo', 0, 0]);
  assert.deepEqual(context.calls[6], ['quadraticCurveTo', 140, 35, 210, 52.5]);
  assert.deepEqual(context.calls[7], ['lineTo', 280, 70]);
});

test('render of an empty sketch only clears', () => {
  const context = recordingContext();
  new Sketch().render(context, 10, 10);
  assert.deepEqual(context.calls, [['clearRect', 0, 0, 10, 10]]);
});

const SEVEN = [0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.91, 0.01, 0.01];

test('display: a digit with its confidence, the counter, the bars and the best bar', () => {
  const shown = display(decide(SEVEN), 3);
  assert.equal(shown.head, '7');
  assert.equal(shown.detail, '91% sure · #3');
  assert.equal(shown.best, 7);
  assert.equal(shown.bars.length, 10);
  assert.deepEqual(shown.bars[7], { digit: 7, width: '91.00%', text: '91%' });
  assert.deepEqual(shown.bars[0], { digit: 0, width: '1.00%', text: '1%' });
  assert.equal(shown.announcement, '7, 91 percent sure.');
});

test('display: not sure, not a digit and empty are worded as in the Voila app', () => {
  const unsure = display(decide([0.1, 0.1, 0.1, 0.55, 0.05, 0.02, 0.02, 0.02, 0.02, 0.02]), 1);
  assert.deepEqual([unsure.head, unsure.detail, unsure.best], ['?', 'not sure (maybe 3, 55%) · #1', 3]);
  const eleven = [0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.8];
  const rejected = display(decide(eleven, answerRule({ not_a_digit_at: 0.5 })), 2);
  assert.deepEqual([rejected.head, rejected.detail], ['\u2717', 'not a digit · #2']);
  assert.equal(rejected.bars.length, 10, 'bars show the ten digit outputs only');
  assert.equal(rejected.bars[0].text, '2%');
  const empty = display(decide(null), 4);
  assert.deepEqual([empty.head, empty.detail, empty.best], ['?', 'draw a digit · #4', null]);
  assert.ok(empty.bars.every((bar) => bar.text === '0%'));
  assert.equal(display(decide(null), 0).detail, 'draw a digit', 'no counter before the first recognition');
});

test('waiting: loading, then a failure', () => {
  assert.equal(waiting().detail, 'loading the model…');
  const failed = waiting(new Error('HTTP 404'));
  assert.equal(failed.detail, 'the recogniser failed to load');
  assert.match(failed.announcement, /HTTP 404/);
});
