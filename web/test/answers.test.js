// The JavaScript side of the answer rules must reproduce every shared vector: status, digit,
// best guess, the bars' probabilities and the wording, exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { answerRule, decide, digitProbabilities, wording } from '../src/answers.js';

const vectors = JSON.parse(readFileSync(new URL('../../tests/vectors/answers.json', import.meta.url)));

test('the vector file holds every status, 11-output cases and bad outputs', () => {
  const statuses = new Set(vectors.cases.filter((c) => c.expected).map((c) => c.expected.status));
  assert.deepEqual([...statuses].sort(), ['empty', 'not_a_digit', 'ok', 'unsure']);
  assert.ok(vectors.cases.some((c) => c.outputs?.length === 11 && c.expected?.status === 'ok'));
  assert.ok(vectors.cases.filter((c) => c.error).length >= 3);
});

for (const testCase of vectors.cases) {
  test(`vector ${testCase.name}`, () => {
    const rule = answerRule(testCase.rule);
    if (testCase.error) {
      assert.throws(() => decide(testCase.outputs, rule), { message: testCase.error });
      return;
    }
    const answer = decide(testCase.outputs, rule);
    const [head, detail] = wording(answer);
    const expected = testCase.expected;
    assert.deepEqual(
      { status: answer.status, digit: answer.digit, bestGuess: answer.bestGuess, head, detail },
      { status: expected.status, digit: expected.digit, bestGuess: expected.best_guess, head: expected.head,
        detail: expected.detail });
    assert.deepEqual(answer.probabilities, expected.probabilities);
    assert.equal(answer.notADigit, expected.not_a_digit);
  });
}

test('a missing rule field takes its default; a bad one is refused', () => {
  assert.deepEqual(answerRule({}), { unsure_below: 0.6, not_a_digit_at: 1.01 });
  assert.deepEqual(answerRule({ not_a_digit_at: 0.5 }), { unsure_below: 0.6, not_a_digit_at: 0.5 });
  assert.throws(() => answerRule({ unsure_below: 0 }), /unsure_below=0 must be a number/);
  assert.throws(() => answerRule({ unsure_below: '0.6' }), /must be a number/);
  assert.throws(() => answerRule({ unsure: 0.6 }), /unknown answer rule field/);
});

test('digit probabilities of an 11-output row are the digits renormalised', () => {
  const [row] = digitProbabilities([[0.3, 0.2, 0, 0, 0, 0, 0, 0, 0, 0, 0.5]]);
  assert.equal(row.length, 10);
  assert.ok(Math.abs(row[0] - 0.6) < 1e-12 && Math.abs(row[1] - 0.4) < 1e-12);
});
