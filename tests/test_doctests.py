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
    "lensbox.runtime.claims": ["claim", "check"],
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


def _public_docstrings():
    """(name, docstring) of every public module of lensbox, its public functions and classes,
    and their public methods and properties."""
    import inspect
    import pkgutil

    for info in pkgutil.walk_packages(lensbox.__path__, prefix="lensbox."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        yield info.name, module.__doc__
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != info.name:
                continue
            yield f"{info.name}.{name}", getattr(obj, "__doc__", None)
            if inspect.isclass(obj):
                for member, value in vars(obj).items():
                    if not member.startswith("_"):
                        value = getattr(
                            value, "fget", getattr(value, "__func__", value)
                        )
                        yield (
                            f"{info.name}.{name}.{member}",
                            getattr(value, "__doc__", None),
                        )


def test_no_public_docstring_holds_a_control_character():
    """A backslash sequence in a docstring that is not raw (``\\theta`` written as ``\theta``)
    becomes a control character (here a tab), which help() and the API page show as is."""
    found = [
        (name, sorted({hex(ord(ch)) for ch in doc if ord(ch) < 32 and ch != "\n"}))
        for name, doc in _public_docstrings()
        if isinstance(doc, str)
        and any(ord(ch) < 32 and ch != "\n" or ord(ch) == 127 for ch in doc)
    ]
    assert not found, found
