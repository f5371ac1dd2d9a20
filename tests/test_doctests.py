"""The examples in the docstrings of lensbox's main public functions run, as doctests.

Each module below is searched for its docstring examples (``>>>``), which are run with
:mod:`doctest`; a failing example fails its module's test, showing doctest's report. Every function
listed must keep at least one example, so deleting them fails too.
"""

from __future__ import annotations

import doctest
import importlib
import io

import pytest

import lensbox

# module -> the public functions (exported at the top of lensbox) whose examples must run
DOCUMENTED = {
    "lensbox.engine.models": ["mlp", "count_parameters"],
    "lensbox.engine.optim": ["sgd", "adam", "adamw"],
    "lensbox.engine.training": ["train", "recording_steps"],
    "lensbox.engine.telescoping": ["telescope"],
    "lensbox.engine.smoother": ["smooth", "effective_parameters"],
    "lensbox.engine.kernels": ["tangent_kernel"],
    "lensbox.engine.statistics": ["mean_and_se"],
    "lensbox.runtime.scale": ["budget"],
    "lensbox.runtime.claims": ["claim"],
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_docstring_examples_run(name, monkeypatch):
    # lensbox.claim appends to $LENSBOX_CLAIMS_DIR when a chapter is set: not from a test
    monkeypatch.delenv("LENSBOX_CLAIMS_DIR", raising=False)
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder().find(module)
    runner = doctest.DocTestRunner()  # the examples' own directives only
    report = io.StringIO()
    for test in tests:
        runner.run(test, out=report.write)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, report.getvalue()
    examples = {test.name.rpartition(".")[2]: len(test.examples) for test in tests}
    missing = [f for f in DOCUMENTED[name] if examples.get(f, 0) == 0]
    assert missing == [], f"{name}: no docstring examples in {missing}"


def test_every_documented_function_is_a_top_level_name():
    """The functions listed are the ones ``lensbox.<name>`` gives, defined in those modules."""
    for name, functions in DOCUMENTED.items():
        for function in functions:
            assert getattr(lensbox, function).__module__ == name, function
