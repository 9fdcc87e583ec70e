"""The shared answer vectors (tests/vectors/answers.json): up to date, and reproduced by Python.

Node reproduces them too (web/test/answers.test.js, run by tests/test_web_preprocess.py).
"""

import json
import re

import pytest

from digitglyph.answers import AnswerRule, decide, wording
from digitglyph.vectors import ANSWER_VECTORS, build_answer_vectors

CASES = json.loads(ANSWER_VECTORS.read_text())["cases"]


def test_the_vector_file_is_what_the_generator_makes():
    assert build_answer_vectors() == CASES


def test_the_vectors_cover_every_status_eleven_outputs_and_bad_outputs():
    statuses = {case["expected"]["status"] for case in CASES if "expected" in case}
    assert statuses == {"ok", "unsure", "not_a_digit", "empty"}
    eleven = [case for case in CASES if case["outputs"] and len(case["outputs"]) == 11 and "expected" in case]
    assert {case["expected"]["status"] for case in eleven} == {"ok", "unsure", "not_a_digit"}
    assert sum("error" in case for case in CASES) >= 3


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_python_reproduces_every_answer_vector(case):
    rule = AnswerRule.from_dict(case["rule"])
    if "error" in case:
        with pytest.raises(ValueError, match="^" + re.escape(case["error"]) + "$"):
            decide(case["outputs"], rule)
        return
    answer = decide(case["outputs"], rule)
    head, detail = wording(answer)
    expected = case["expected"]
    assert (answer.status, answer.digit, answer.best_guess, head, detail) == (
        expected["status"],
        expected["digit"],
        expected["best_guess"],
        expected["head"],
        expected["detail"],
    )
    assert list(answer.probabilities) == expected["probabilities"]
