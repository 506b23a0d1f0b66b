"""The bundled patient generator: planted segments, outskirt noise, drift at the known batch."""

from __future__ import annotations

import numpy as np
import pytest

from opslens.errors import DataError
from opslens.synthetic import generate
from opslens.synthetic.patients import make_patient_batches, make_patients


def test_planted_truth_and_determinism() -> None:
    a, b = make_patients(1000, seed=4), make_patients(1000, seed=4)
    assert a.frame.equals(b.frame) and np.array_equal(a.truth, b.truth)
    assert set(np.unique(a.truth)) == {0, 1, 2, 3}
    assert 0.03 < a.outskirt.mean() < 0.09 and not a.drifted.any()
    assert generate("patients", seed=4, options={"n_rows": 1000}).equals(a.frame)


def test_drift_starts_at_the_given_batch() -> None:
    batches = make_patient_batches(6, 300, drift_batch=4, drift_share=0.4, seed=1)
    shares = [b.drifted.mean() for b in batches]
    assert shares[:4] == [0.0] * 4 and all(0.3 < s < 0.5 for s in shares[4:])
    assert (batches[4].truth[batches[4].drifted] == -1).all()


def test_bad_options_are_one_line() -> None:
    with pytest.raises(DataError, match=r"n_segments must be 2\.\.5"):
        make_patients(100, n_segments=9)
