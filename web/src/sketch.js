// The page's drawing state and display rules, without the DOM (the counterpart of Python's Sketch).
//
// A Sketch holds the strokes (points as fractions of the pad's width and height, so they survive a
// resize), undo and clear, and redraws itself on any 2D context it is given.  display() turns an
// answer (answers.js) and the recognition counter into what the page shows.  app.js wires both to
// the page; web/test/sketch.test.js tests them under Node.
import { DIGITS, wording } from './answers.js';

export const BRUSH_FRACTION = 1 / 14; // brush width = canvas side / 14: the spec's default (preprocess.py)
export const INK = '#000';

export class Sketch {
  constructor() {
    this.strokes = []; // each stroke: [[x, y], ...] as fractions of the canvas's width and height
    this.active = null; // the stroke under way, if any
  }

  get isEmpty() {
    return this.strokes.length === 0;
  }

  get drawing() {
    return this.active !== null;
  }

  /** Start a stroke at a point (fractions of the pad). */
  begin(point) {
    this.active = [checkedPoint(point)];
    this.strokes.push(this.active);
  }

  /** Add points to the stroke under way (none under way: nothing happens). */
  extend(points) {
    if (this.active === null) return;
    for (const point of points) this.active.push(checkedPoint(point));
  }

  /** End the stroke under way, optionally at a last point.  True when a stroke was under way. */
  end(point = null) {
    if (this.active === null) return false;
    if (point !== null) this.active.push(checkedPoint(point));
    this.active = null;
    return true;
  }

  /** Remove the last stroke.  True when there was one. */
  undo() {
    this.active = null;
    return this.strokes.pop() !== undefined;
  }

  /** Remove every stroke.  True when there was any. */
  clear() {
    this.active = null;
    const had = this.strokes.length > 0;
    this.strokes.length = 0;
    return had;
  }

  /** Redraw every stroke on a width x height 2D context: round caps and joins, black ink on a transparent
   * canvas, smoothed through the midpoints between samples; a one-point stroke is a dot. */
  render(context, width, height) {
    context.clearRect(0, 0, width, height);
    context.lineWidth = Math.min(width, height) * BRUSH_FRACTION;
    context.lineCap = 'round';
    context.lineJoin = 'round';
    context.strokeStyle = INK;
    context.fillStyle = INK;
    for (const stroke of this.strokes) {
      const points = stroke.map(([x, y]) => [x * width, y * height]);
      context.beginPath();
      if (points.length === 1) {
        context.arc(points[0][0], points[0][1], context.lineWidth / 2, 0, 2 * Math.PI);
        context.fill();
        continue;
      }
      context.moveTo(...points[0]);
      for (let i = 1; i < points.length - 1; i++) {
        const [x, y] = points[i];
        context.quadraticCurveTo(x, y, (x + points[i + 1][0]) / 2, (y + points[i + 1][1]) / 2);
      }
      context.lineTo(...points[points.length - 1]);
      context.stroke();
    }
  }
}

function checkedPoint(point) {
  if (!Array.isArray(point) || point.length !== 2 || !point.every(Number.isFinite)) {
    throw new TypeError(`a point is [x, y] with finite numbers, got ${JSON.stringify(point)}`);
  }
  return [point[0], point[1]];
}

/**
 * What the page shows for an answer after `recognitions` recognitions (0: none yet):
 * {head, detail, announcement, best, bars: [{digit, width, text}] x 10}.
 * The detail ends with ` · #N` once something was recognised, as in the Voila app.
 */
export function display(answer, recognitions) {
  const [head, words] = wording(answer);
  const detail = recognitions > 0 ? `${words} · #${recognitions}` : words;
  const best = answer.status === 'empty' ? null : answer.bestGuess;
  const bars = [];
  for (let digit = 0; digit < DIGITS; digit++) {
    const probability = answer.probabilities[digit];
    bars.push({ digit, width: `${(100 * probability).toFixed(2)}%`, text: `${Math.round(100 * probability)}%` });
  }
  return { head, detail, announcement: announcement(answer, head, words), best, bars };
}

function announcement(answer, head, words) {
  switch (answer.status) {
    case 'empty': return 'The pad is empty: draw a digit.';
    case 'not_a_digit': return 'That does not look like a digit.';
    case 'unsure': return `Not sure. Maybe ${answer.bestGuess}.`;
    default: return `${head}, ${words.replace('%', ' percent')}.`;
  }
}

/** What the page shows while the model loads or after it failed to. */
export function waiting(failure = null) {
  const detail = failure ? 'the recogniser failed to load' : 'loading the model…';
  return { head: '?', detail, announcement: failure ? `Error: ${failure.message}` : '' };
}
