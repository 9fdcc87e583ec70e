// The answer rules (JavaScript side): what the model's outputs mean to a person.
//
// The spec is the docstring of digitglyph/answers.py; this module implements the same rules and
// wording, and is held equal to the Python side by tests/vectors/answers.json (checked in Node).
// Dependency-free ES module.

export const DIGITS = 10;
export const STATUSES = ['ok', 'unsure', 'not_a_digit', 'empty'];
export const UNSURE_BELOW = 0.6; // top digit probability under this: "not sure"
export const NEVER = 1.01; // a not-a-digit threshold that no probability reaches (10-output models)
export const DEFAULT_RULE = Object.freeze({ unsure_below: UNSURE_BELOW, not_a_digit_at: NEVER });

/** {unsure_below, not_a_digit_at} (either may be missing: the default) -> a checked, frozen rule. */
export function answerRule(values = {}) {
  const unknown = Object.keys(values ?? {}).filter((name) => !(name in DEFAULT_RULE));
  if (unknown.length) throw new RangeError(`unknown answer rule field(s) ${unknown.sort().join(', ')}`);
  const rule = { ...DEFAULT_RULE, ...values };
  for (const name of Object.keys(DEFAULT_RULE)) {
    const value = rule[name];
    if (typeof value !== 'number' || !(value > 0 && value <= NEVER)) {
      throw new RangeError(`${name}=${JSON.stringify(value)} must be a number in (0, ${NEVER}]`);
    }
  }
  return Object.freeze(rule);
}

/** The outputs as numbers, or a RangeError saying why they are not 10 or 11 probabilities. */
export function checkOutputs(outputs) {
  const values = Array.from(outputs, Number);
  if (values.length !== DIGITS && values.length !== DIGITS + 1) {
    throw new RangeError(`a model gives 10 or 11 outputs, got ${values.length}`);
  }
  const sum = values.reduce((total, value) => total + value, 0);
  if (!values.every((v) => Number.isFinite(v) && v >= -1e-6 && v <= 1 + 1e-6) || Math.abs(sum - 1) > 1e-3) {
    throw new RangeError('model outputs are not probabilities (each in [0, 1], summing to 1)');
  }
  return values;
}

/** Outputs of one image (or null for an empty canvas) -> {status, digit, bestGuess, probabilities, notADigit}. */
export function decide(outputs, rule = DEFAULT_RULE) {
  if (outputs === null || outputs === undefined) {
    return { status: 'empty', digit: null, bestGuess: null, probabilities: new Array(DIGITS).fill(0), notADigit: 0 };
  }
  const values = checkOutputs(outputs);
  const probabilities = values.slice(0, DIGITS);
  const notADigit = values.length > DIGITS ? values[DIGITS] : 0;
  let best = 0;
  for (let digit = 1; digit < DIGITS; digit++) if (probabilities[digit] > probabilities[best]) best = digit;
  let status = 'ok';
  if (notADigit >= rule.not_a_digit_at) status = 'not_a_digit';
  else if (probabilities[best] < rule.unsure_below) status = 'unsure';
  return { status, digit: status === 'ok' ? best : null, bestGuess: best, probabilities, notADigit };
}

/** [head, detail]: the large sign and the line under it, the same in both apps. */
export function wording(answer) {
  if (answer.status === 'empty') return ['?', 'draw a digit'];
  if (answer.status === 'not_a_digit') return ['\u2717', 'not a digit'];
  const percent = Math.floor(100 * Math.max(...answer.probabilities) + 0.5);
  if (answer.status === 'unsure') return ['?', `not sure (maybe ${answer.bestGuess}, ${percent}%)`];
  return [String(answer.digit), `${percent}% sure`];
}

/** A batch of outputs (rows of 10 or 11) -> rows of 10 digit probabilities summing to 1 (Python's
 * digit_probabilities: what a 10-way digit classifier answers). */
export function digitProbabilities(rows) {
  return rows.map((row) => {
    const digits = Array.from(row).slice(0, DIGITS);
    const total = Math.max(digits.reduce((sum, value) => sum + value, 0), 1e-12);
    return digits.map((value) => value / total);
  });
}
