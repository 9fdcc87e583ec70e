// DigitGlyph's page: draw a digit on a canvas, turn it into an MNIST image with the shared
// spec (preprocess.js) and recognise it with the exported model in TF.js (CPU backend).
// Everything is loaded from this site with relative URLs; see digitglyph/export.py.
import { canvasToMnist } from './preprocess.js';

const BRUSH_FRACTION = 1 / 14; // brush width = canvas side / 14: the spec's default
const BATCH = 128;
const DIGITS = [...Array(10).keys()];

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
const strokes = []; // each stroke: [[x, y], ...] as fractions of the canvas's width and height
let activeStroke = null;
let activePointer = null;
let renderPending = false;
let recognitions = 0;
let model = null;
let settings = null;
const latencies = [];
const timings = {};
const last = { input: null, probabilities: null };
const ready = loadModel();
let queue = ready;

setUp();

function setUp() {
  page.bars.replaceChildren(...DIGITS.map(barRow));
  new ResizeObserver(fitCanvas).observe(page.canvas);
  page.canvas.addEventListener('pointerdown', startStroke);
  page.canvas.addEventListener('pointermove', extendStroke);
  page.canvas.addEventListener('pointerup', endStroke);
  page.canvas.addEventListener('pointercancel', endStroke);
  page.undo.addEventListener('click', undo);
  page.clear.addEventListener('click', clear);
  document.addEventListener('keydown', onKey);
  // The page's test hook: its own model and preprocessing, and what it showed last.
  window.digitglyph = {
    ready, predictMnist, canvasToMnist, latencies, timings, last,
    idle: () => queue,
    get recognitions() { return recognitions; },
  };
  updateButtons();
  ready.then(() => show(null), showFailure);
}

async function loadModel() {
  const tf = globalThis.tf;
  if (!tf?.loadGraphModel) throw new Error('TF.js did not load (vendor/*.js)');
  const started = performance.now();
  const response = await fetch('build.json');
  if (!response.ok) throw new Error(`build.json: HTTP ${response.status}`);
  settings = await response.json();
  await tf.setBackend('cpu');
  model = await tf.loadGraphModel('model/model.json');
  await predictMnist(new Uint8Array(784)); // warm-up: the first run allocates
  timings.modelLoadMs = performance.now() - started;
  timings.modelReadyMs = performance.now(); // since navigation start
  page.status.textContent = `Model ${settings.model_version} (${settings.weights} weights), ` +
    `TF.js ${tf.version_core} ${tf.getBackend()}, ready in ${Math.round(timings.modelLoadMs)} ms. Nothing you draw leaves this page.`;
  return { modelVersion: settings.model_version, weights: settings.weights, backend: tf.getBackend(), tfjsVersion: tf.version_core };
}

// ---- recognition ----

/** MNIST-style images (N*784 values, 0 background .. 255 ink) -> N rows of 10 probabilities. */
async function predictMnist(images) {
  if (images.length === 0 || images.length % 784 !== 0) {
    throw new RangeError(`predictMnist needs N*784 pixel values, got ${images.length}`);
  }
  if (!Array.prototype.every.call(images, (value) => Number.isInteger(value) && value >= 0 && value <= 255)) {
    throw new RangeError('predictMnist needs integer pixel values 0-255, like MNIST');
  }
  const tf = globalThis.tf;
  const pixels = Float32Array.from(images, (value) => value / 255);
  const rows = [];
  for (let start = 0; start < pixels.length / 784; start += BATCH) {
    const count = Math.min(BATCH, pixels.length / 784 - start);
    const batch = pixels.subarray(start * 784, (start + count) * 784);
    const output = tf.tidy(() => model.predict(tf.tensor4d(batch, [count, 28, 28, 1])));
    const values = await output.data();
    output.dispose();
    for (let i = 0; i < count; i++) rows.push(Array.from(values.subarray(i * 10, i * 10 + 10)));
  }
  return rows;
}

/** Read the canvas now; predict and show once the model and earlier requests are done. */
function requestRecognition(requestedAt) {
  const input = canvasToMnist(pen.getImageData(0, 0, page.canvas.width, page.canvas.height));
  queue = queue
    .then(async () => show(input, input === null ? null : (await predictMnist(input))[0]))
    .then(() => requestAnimationFrame(() => latencies.push(performance.now() - requestedAt)))
    .catch(showFailure);
}

function show(input, probabilities = null) {
  last.input = input && Array.from(input);
  last.probabilities = probabilities;
  drawModelInput(input);
  DIGITS.forEach((digit) => setBar(digit, probabilities ? probabilities[digit] : 0));
  if (probabilities === null) {
    setPrediction('?', model ? 'draw a digit' : 'loading the model…', 'The pad is empty: draw a digit.');
    return;
  }
  recognitions += 1;
  const best = probabilities.indexOf(Math.max(...probabilities));
  const percent = (100 * probabilities[best]).toFixed(1);
  page.bars.querySelectorAll('li').forEach((row, digit) => row.classList.toggle('best', digit === best));
  if (probabilities[best] >= settings.confidence_threshold) {
    setPrediction(String(best), `${percent}% sure · #${recognitions}`, `${best}, ${Math.round(percent)} percent sure.`);
  } else {
    setPrediction('?', `not sure: maybe ${best} (${percent}%) · #${recognitions}`, `Not sure. Maybe ${best}.`);
  }
}

function setPrediction(digit, detail, announcement) {
  page.prediction.querySelector('.digit').textContent = digit;
  page.prediction.querySelector('.detail').textContent = detail;
  page.announcer.textContent = announcement;
}

function showFailure(error) {
  setPrediction('?', 'the recogniser failed to load', `Error: ${error.message}`);
  page.status.textContent = `Error: ${error.message}`;
  console.error(error);
}

function barRow(digit) {
  const row = document.createElement('li');
  row.innerHTML = `<span class="label">${digit}</span><span class="bar"><span class="fill"></span></span><span class="value">0%</span>`;
  return row;
}

function setBar(digit, probability) {
  const row = page.bars.children[digit];
  row.querySelector('.fill').style.width = `${(100 * probability).toFixed(2)}%`;
  row.querySelector('.value').textContent = `${Math.round(100 * probability)}%`;
  if (probability === 0) row.classList.remove('best');
}

function drawModelInput(input) {
  const image = new ImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const value = input ? input[i] : 0;
    image.data.set([value, value, value, 255], 4 * i);
  }
  page.modelInput.getContext('2d').putImageData(image, 0, 0);
}

// ---- drawing ----

function startStroke(event) {
  if (activePointer !== null || (event.pointerType === 'mouse' && event.button !== 0)) return;
  event.preventDefault();
  fitCanvas(); // the page may have been zoomed or moved to a screen with another pixel ratio
  activePointer = event.pointerId;
  page.canvas.setPointerCapture(event.pointerId);
  activeStroke = [canvasPoint(event)];
  strokes.push(activeStroke);
  scheduleRender();
}

function extendStroke(event) {
  if (event.pointerId !== activePointer) return;
  const events = event.getCoalescedEvents?.() ?? [];
  for (const each of events.length ? events : [event]) activeStroke.push(canvasPoint(each));
  scheduleRender();
}

function endStroke(event) {
  if (event.pointerId !== activePointer) return;
  if (event.type === 'pointerup') activeStroke.push(canvasPoint(event));
  activePointer = null;
  activeStroke = null;
  render();
  updateButtons();
  requestRecognition(event.timeStamp);
}

function undo() {
  if (strokes.length === 0) return;
  strokes.pop();
  afterEdit();
}

function clear() {
  if (strokes.length === 0) return;
  strokes.length = 0;
  afterEdit();
}

function afterEdit() {
  activePointer = null;
  activeStroke = null;
  render();
  updateButtons();
  requestRecognition(performance.now());
}

function onKey(event) {
  if ((event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey && event.key.toLowerCase() === 'z') {
    event.preventDefault();
    undo();
  } else if (event.key === 'Escape' || event.key === 'Delete') {
    event.preventDefault();
    clear();
  }
}

function updateButtons() {
  page.undo.disabled = strokes.length === 0;
  page.clear.disabled = strokes.length === 0;
}

/** Where the pointer is, as fractions of the canvas (the canvas has no border or padding). */
function canvasPoint(event) {
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
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => {
    renderPending = false;
    render();
  });
}

/** Redraw every stroke: round caps and joins, smoothed through the midpoints between samples. */
function render() {
  const { width, height } = page.canvas;
  pen.clearRect(0, 0, width, height);
  pen.lineWidth = Math.min(width, height) * BRUSH_FRACTION;
  pen.lineCap = 'round';
  pen.lineJoin = 'round';
  pen.strokeStyle = pen.fillStyle = '#000';
  for (const stroke of strokes) {
    const points = stroke.map(([x, y]) => [x * width, y * height]);
    pen.beginPath();
    if (points.length === 1) {
      pen.arc(points[0][0], points[0][1], pen.lineWidth / 2, 0, 2 * Math.PI);
      pen.fill();
      continue;
    }
    pen.moveTo(...points[0]);
    for (let i = 1; i < points.length - 1; i++) {
      pen.quadraticCurveTo(...points[i], (points[i][0] + points[i + 1][0]) / 2, (points[i][1] + points[i + 1][1]) / 2);
    }
    pen.lineTo(...points[points.length - 1]);
    pen.stroke();
  }
}
