// DigitGlyph's page: wires the drawing state (sketch.js), the shared preprocessing spec
// (preprocess.js) and answer rules (answers.js) to the page and to the exported model in TF.js
// (CPU backend).  Everything is loaded from this site with relative URLs; see digitglyph/export.py.
import { answerRule, decide, digitProbabilities } from './answers.js';
import { canvasToMnist, networkInput } from './preprocess.js';
import { Sketch, display, waiting } from './sketch.js';

const BATCH = 128;
const PIXELS = 784;

const page = {
  canvas: document.getElementById('canvas'),
  undo: document.getElementById('undo'),
  clear: document.getElementById('clear'),
  prediction: document.getElementById('prediction'),
  announcer: document.getElementById('announcer'),
  bars: document.getElementById('bars'),
  modelInput: document.getElementById('model-input'),
  status: document.getElementById('status'),
};
const pen = page.canvas.getContext('2d', { willReadFrequently: true });
const sketch = new Sketch();
const state = { pointer: null, renderPending: false, recognitions: 0, model: null, rule: null, queue: null };
const hook = { latencies: [], timings: {}, last: { input: null, outputs: null, probabilities: null, answer: null } };
const ready = loadModel();
state.queue = ready;
setUp();

function setUp() {
  page.bars.replaceChildren(...Array.from({ length: 10 }, (_, digit) => barRow(digit)));
  new ResizeObserver(fitCanvas).observe(page.canvas);
  page.canvas.addEventListener('pointerdown', startStroke);
  page.canvas.addEventListener('pointermove', extendStroke);
  page.canvas.addEventListener('pointerup', endStroke);
  page.canvas.addEventListener('pointercancel', endStroke);
  page.undo.addEventListener('click', () => sketch.undo() && afterEdit());
  page.clear.addEventListener('click', () => sketch.clear() && afterEdit());
  document.addEventListener('keydown', onKey);
  // The page's test hook: its own model, preprocessing and rule, and what it showed last.
  window.digitglyph = {
    ready, predictMnist, predictOutputs, canvasToMnist, ...hook,
    idle: () => state.queue,
    get rule() { return state.rule; },
    get recognitions() { return state.recognitions; },
  };
  updateButtons();
  showWords(waiting());
  ready.then(() => show(null, null, false), showFailure);
}

async function loadModel() {
  const tf = globalThis.tf;
  if (!tf?.loadGraphModel) throw new Error('TF.js did not load (vendor/*.js)');
  const started = performance.now();
  const response = await fetch('build.json');
  if (!response.ok) throw new Error(`build.json: HTTP ${response.status}`);
  const settings = await response.json();
  state.rule = answerRule(settings.answer_rule ?? {});
  await tf.setBackend('cpu');
  state.model = await tf.loadGraphModel('model/model.json');
  await predictOutputs(new Uint8Array(PIXELS)); // warm-up: the first run allocates
  hook.timings.modelLoadMs = performance.now() - started;
  hook.timings.modelReadyMs = performance.now(); // since navigation start
  page.status.textContent = `Model ${settings.model_version} (${settings.weights} weights), ` +
    `TF.js ${tf.version_core} ${tf.getBackend()}, ready in ${Math.round(hook.timings.modelLoadMs)} ms. ` +
    'Nothing you draw leaves this page.';
  return { modelVersion: settings.model_version, weights: settings.weights, backend: tf.getBackend(),
    tfjsVersion: tf.version_core, rule: state.rule };
}

// ---- recognition ----

/** MNIST-style images (N*784 values, 0 background .. 255 ink) -> N rows of the model's 10 or 11 outputs. */
async function predictOutputs(images) {
  if (images.length === 0 || images.length % PIXELS !== 0) {
    throw new RangeError(`predictMnist needs N*784 pixel values, got ${images.length}`);
  }
  if (!Array.prototype.every.call(images, (value) => Number.isInteger(value) && value >= 0 && value <= 255)) {
    throw new RangeError('predictMnist needs integer pixel values 0-255, like MNIST');
  }
  const tf = globalThis.tf;
  const pixels = networkInput(images);
  const rows = [];
  for (let start = 0; start < pixels.length / PIXELS; start += BATCH) {
    const count = Math.min(BATCH, pixels.length / PIXELS - start);
    const batch = pixels.subarray(start * PIXELS, (start + count) * PIXELS);
    const output = tf.tidy(() => state.model.predict(tf.tensor4d(batch, [count, 28, 28, 1])));
    const width = output.shape[1];
    const values = await output.data();
    output.dispose();
    for (let i = 0; i < count; i++) rows.push(Array.from(values.subarray(i * width, (i + 1) * width)));
  }
  return rows;
}

/** Like Python's Recognizer.predict_mnist: N rows of 10 digit probabilities (renormalised for 11 outputs). */
async function predictMnist(images) {
  return digitProbabilities(await predictOutputs(images));
}

/** Read the canvas now; predict and show once the model and earlier requests are done. */
function requestRecognition(requestedAt) {
  const input = canvasToMnist(pen.getImageData(0, 0, page.canvas.width, page.canvas.height));
  state.queue = state.queue
    .then(async () => show(input, input === null ? null : (await predictOutputs(input))[0]))
    .then(() => requestAnimationFrame(() => hook.latencies.push(performance.now() - requestedAt)))
    .catch(showFailure);
}

/** Show what the model made of `input` (null: an empty pad); `counted` recognitions advance the #N counter. */
function show(input, outputs, counted = true) {
  const answer = decide(outputs, state.rule);
  if (counted) state.recognitions += 1;
  Object.assign(hook.last, { input: input && Array.from(input), outputs, answer,
    probabilities: outputs && answer.probabilities });
  drawModelInput(input);
  const shown = display(answer, state.recognitions);
  shown.bars.forEach(({ width, text }, digit) => {
    const row = page.bars.children[digit];
    row.querySelector('.fill').style.width = width;
    row.querySelector('.value').textContent = text;
    row.classList.toggle('best', digit === shown.best);
  });
  showWords(shown);
}

function showWords({ head, detail, announcement }) {
  page.prediction.querySelector('.digit').textContent = head;
  page.prediction.querySelector('.detail').textContent = detail;
  page.announcer.textContent = announcement;
}

function showFailure(error) {
  showWords(waiting(error));
  page.status.textContent = `Error: ${error.message}`;
  console.error(error);
}

function barRow(digit) {
  const row = document.createElement('li');
  row.innerHTML = `<span class="label">${digit}</span><span class="bar"><span class="fill"></span></span>` +
    '<span class="value">0%</span>';
  return row;
}

function drawModelInput(input) {
  const image = new ImageData(28, 28);
  for (let i = 0; i < PIXELS; i++) {
    const value = input ? input[i] : 0;
    image.data.set([value, value, value, 255], 4 * i);
  }
  page.modelInput.getContext('2d').putImageData(image, 0, 0);
}

// ---- drawing ----

function startStroke(event) {
  if (state.pointer !== null || (event.pointerType === 'mouse' && event.button !== 0)) return;
  event.preventDefault();
  fitCanvas(); // the page may have been zoomed or moved to a screen with another pixel ratio
  state.pointer = event.pointerId;
  page.canvas.setPointerCapture(event.pointerId);
  sketch.begin(padPoint(event));
  scheduleRender();
}

function extendStroke(event) {
  if (event.pointerId !== state.pointer) return;
  const events = event.getCoalescedEvents?.() ?? [];
  sketch.extend((events.length ? events : [event]).map(padPoint));
  scheduleRender();
}

function endStroke(event) {
  if (event.pointerId !== state.pointer) return;
  sketch.end(event.type === 'pointerup' ? padPoint(event) : null);
  state.pointer = null;
  render();
  updateButtons();
  requestRecognition(event.timeStamp);
}

function afterEdit() {
  state.pointer = null;
  render();
  updateButtons();
  requestRecognition(performance.now());
}

function onKey(event) {
  if ((event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey && event.key.toLowerCase() === 'z') {
    event.preventDefault();
    if (sketch.undo()) afterEdit();
  } else if (event.key === 'Escape' || event.key === 'Delete') {
    event.preventDefault();
    if (sketch.clear()) afterEdit();
  }
}

function updateButtons() {
  page.undo.disabled = sketch.isEmpty;
  page.clear.disabled = sketch.isEmpty;
}

/** Where the pointer is, as fractions of the canvas (the canvas has no border or padding). */
function padPoint(event) {
  const box = page.canvas.getBoundingClientRect();
  return [(event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height];
}

/** Size the backing store to the canvas's CSS size times devicePixelRatio; redraw the strokes. */
function fitCanvas() {
  const box = page.canvas.getBoundingClientRect();
  const width = Math.max(1, Math.round(box.width * devicePixelRatio));
  const height = Math.max(1, Math.round(box.height * devicePixelRatio));
  if (width === page.canvas.width && height === page.canvas.height) return;
  page.canvas.width = width;
  page.canvas.height = height;
  render();
}

function scheduleRender() {
  if (state.renderPending) return;
  state.renderPending = true;
  requestAnimationFrame(() => {
    state.renderPending = false;
    render();
  });
}

function render() {
  sketch.render(pen, page.canvas.width, page.canvas.height);
}
