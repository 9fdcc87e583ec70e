// The canvas-to-MNIST specification (JavaScript side).
//
// The spec is the docstring of digitglyph/preprocess.py; this module implements the
// same steps on ImageData, with the same constants, and is held equal to the Python
// side by tests/vectors/preprocess.json (checked in Node and in the browser).
// Dependency-free ES module.

export const BOX = 20;
export const FIELD = 28;
export const CENTRE = 14.0;
export const INK_THRESHOLD = 8;
export const STRONG_INK = 64;
export const SPECK_FRACTION = 0.04;
export const MIN_SPECK = 3;
export const OPAQUE = 128; // a frame (or a pixel of it) with alpha from here up counts as an opaque background

// Step 1: ink map (Float64Array, row-major) in [0, 255]; the background (the frame) decides how.
export function inkMap(imageData) {
  const { width, height, data } = imageData;
  if (!(width >= 1 && height >= 1) || data.length !== width * height * 4) {
    throw new TypeError(`inkMap needs RGBA ImageData with width*height*4 bytes, got ${width}x${height}, ${data.length}`);
  }
  const n = width * height;
  const ink = new Float64Array(n);
  const frame = frameIndices(width, height);
  const backgroundAlpha = median(frame.map((i) => data[4 * i + 3]));
  if (backgroundAlpha < OPAQUE) {
    for (let i = 0; i < n; i++) ink[i] = Math.max(0, data[4 * i + 3] - backgroundAlpha) * 255 / (255 - backgroundAlpha);
    return ink;
  }
  const luminance = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    luminance[i] = 0.299 * data[4 * i] + 0.587 * data[4 * i + 1] + 0.114 * data[4 * i + 2];
  }
  const background = median(frame.filter((i) => data[4 * i + 3] >= OPAQUE).map((i) => luminance[i]));
  for (let i = 0; i < n; i++) {
    const L = luminance[i];
    let contrast;
    if (background >= 128) contrast = Math.max(0, background - L) * 255 / background;
    else if (background === 0) contrast = L;
    else contrast = Math.max(0, L - background) * 255 / (255 - background);
    ink[i] = contrast * (data[4 * i + 3] / 255);
  }
  return ink;
}

// The pixel indices of the one-pixel frame (every pixel when the image has at most 2 rows or columns).
function frameIndices(width, height) {
  const indices = [];
  if (height <= 2 || width <= 2) {
    for (let i = 0; i < width * height; i++) indices.push(i);
    return indices;
  }
  for (let x = 0; x < width; x++) indices.push(x, (height - 1) * width + x);
  for (let y = 1; y < height - 1; y++) indices.push(y * width, y * width + width - 1);
  return indices;
}

// The spec's median: element floor((n - 1) / 2) of the values sorted ascending.
function median(values) {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

// Step 2: [y0, y1, x0, x1] inclusive, or null for an empty or speck-only canvas.
export function inkBox(ink, width, height) {
  let strongest = 0;
  let y0 = height, y1 = -1, x0 = width, x1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = ink[y * width + x];
      if (v > strongest) strongest = v;
      if (v >= INK_THRESHOLD) {
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
      }
    }
  }
  if (strongest < STRONG_INK) return null;
  const longer = Math.max(y1 - y0 + 1, x1 - x0 + 1);
  if (longer < Math.max(MIN_SPECK, SPECK_FRACTION * Math.max(width, height))) return null;
  return [y0, y1, x0, x1];
}

// (nOut x nIn) area-averaging weights, row i = footprint of output cell i.
export function areaWeights(nIn, nOut) {
  const scale = nIn / nOut;
  const weights = [];
  for (let i = 0; i < nOut; i++) {
    const start = i * scale, end = (i + 1) * scale;
    const row = [];
    for (let j = Math.floor(start); j < Math.min(Math.ceil(end), nIn); j++) {
      row.push([j, (Math.min(end, j + 1) - Math.max(start, j)) / scale]);
    }
    weights.push(row);
  }
  return weights;
}

export function scaledSize(height, width) {
  const longer = Math.max(height, width);
  const short = (side) => Math.max(1, Math.floor(side * BOX / longer + 0.5));
  return height >= width ? [BOX, short(width)] : [short(height), BOX];
}

// Steps 3-7 on an ink map: Uint8ClampedArray(784) or null.
export function inkToMnist(ink, width, height) {
  const box = inkBox(ink, width, height);
  if (box === null) return null;
  const [y0, y1, x0, x1] = box;
  const cropH = y1 - y0 + 1, cropW = x1 - x0 + 1;
  const [outH, outW] = scaledSize(cropH, cropW);
  const rowWeights = areaWeights(cropH, outH);
  const colWeights = areaWeights(cropW, outW);
  // columns first: (cropH x outW), then rows: (outH x outW), as crop @ Wx.T then Wy @ .
  const partial = new Float64Array(cropH * outW);
  for (let y = 0; y < cropH; y++) {
    const base = (y0 + y) * width + x0;
    for (let i = 0; i < outW; i++) {
      let sum = 0;
      for (const [j, w] of colWeights[i]) sum += ink[base + j] * w;
      partial[y * outW + i] = sum;
    }
  }
  const scaled = new Float64Array(outH * outW);
  let peak = 0;
  for (let i = 0; i < outH; i++) {
    for (let x = 0; x < outW; x++) {
      let sum = 0;
      for (const [j, w] of rowWeights[i]) sum += partial[j * outW + x] * w;
      scaled[i * outW + x] = sum;
      if (sum > peak) peak = sum;
    }
  }
  let mass = 0, my = 0, mx = 0;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const v = scaled[y * outW + x] * (255 / peak);
      scaled[y * outW + x] = v;
      mass += v; my += v * y; mx += v * x;
    }
  }
  const top = Math.floor((FIELD - outH) / 2), left = Math.floor((FIELD - outW) / 2);
  const cy = my / mass + top, cx = mx / mass + left;
  let dy = Math.floor(CENTRE - cy + 0.5), dx = Math.floor(CENTRE - cx + 0.5);
  dy = Math.min(Math.max(dy, -top), FIELD - outH - top);
  dx = Math.min(Math.max(dx, -left), FIELD - outW - left);
  const out = new Uint8ClampedArray(FIELD * FIELD);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const v = Math.floor(scaled[y * outW + x] + 0.5);
      out[(top + dy + y) * FIELD + left + dx + x] = Math.min(255, Math.max(0, v));
    }
  }
  return out;
}

// The whole spec: ImageData (or {width, height, data} RGBA) -> Uint8ClampedArray(784) or null.
export function canvasToMnist(imageData) {
  return inkToMnist(inkMap(imageData), imageData.width, imageData.height);
}

// The one conversion of MNIST-style images (N*784 values, 0 background .. 255 ink) to what the
// network takes: float32 in [0, 1] (Python: network_input in digitglyph/preprocess.py).
export function networkInput(images) {
  return Float32Array.from(images, (value) => value / 255);
}
