"""The documentation as users meet it: docstring examples run, every public function is documented
in numpydoc form, the Sphinx reference in docs/ builds without a warning, and fastnet/ passes
mypy --strict."""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The modules whose public names are fastnet's API (also what docs/api.rst documents).
PUBLIC_MODULES = (
    "fastnet",
    "fastnet.network",
    "fastnet.gradient",
    "fastnet.derivative",
    "fastnet.jacobian",
    "fastnet.hessian",
    "fastnet.checks",
    "fastnet.differences",
    "fastnet.steps",
    "fastnet.perturb",
    "fastnet.gradcheck",
    "fastnet.training",
    "fastnet.descent",
    "fastnet.functions",
    "fastnet.sweeps",
    "fastnet.history",
    "fastnet.io",
    "fastnet.datasets",
    "fastnet.idx",
    "fastnet.download",
    "fastnet.plots",
    "fastnet.reference",
    "fastnet.threads",
    "fastnet.cli",
    "fastnet.validation",
    "fastnet.methods",
    "fastnet.bench",
    "fastnet.twins",
    "fastnet.precompile",
    "fastnet.commands.argtypes",
    "fastnet.commands.data",
    "fastnet.commands.batch",
    "fastnet.commands.gradcheck",
    "fastnet.commands.steps",
    "fastnet.commands.train",
    "fastnet.commands.bench",
    "fastnet.commands.compile",
    "fastnet.commands.descent",
    "fastnet.commands.sweep",
)
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    tests = [t for t in finder.find(module, module_name) if t.examples]
    assert tests, f"{module_name} has no examples"
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {module_name}"


def _public_callables():
    """(qualified name, object) for each public function, class and public method of the API."""
    seen = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None)
        if names is None:
            names = [n for n, v in vars(module).items()
                     if not n.startswith("_") and getattr(v, "__module__", None) == module_name]
        for name in names:
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f"{obj.__module__}.{obj.__qualname__}", obj
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if isinstance(member, (classmethod, staticmethod)):
                        member = member.__func__
                    if inspect.isfunction(member):
                        yield f"{obj.__module__}.{obj.__qualname__}.{attr}", member


PUBLIC = dict(_public_callables())


def _section(doc, title):
    return re.search(rf"^\s*{title}\n\s*-{{{len(title)}}}\s*$", doc, re.MULTILINE) is not None


@pytest.mark.parametrize("qualname", sorted(PUBLIC))
def test_public_callable_has_a_numpydoc_docstring_with_an_example(qualname):
    obj = PUBLIC[qualname]
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{qualname} has no docstring"
    assert _section(doc, "Examples") and ">>>" in doc, f"{qualname}: no Examples section with >>>"
    if inspect.isclass(obj):
        init_params = [p for p in inspect.signature(obj).parameters if p not in ("self",)]
        if init_params and "__init__" in vars(obj) and not hasattr(obj, "__dataclass_fields__"):
            assert _section(doc, "Parameters"), f"{qualname}: constructor parameters not documented"
        return
    params = [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]
    if params:
        assert _section(doc, "Parameters"), f"{qualname}: no Parameters section"
        for p in params:
            assert re.search(rf"^\s*(\w+, )*{p}\b", doc, re.MULTILINE), f"{qualname}: parameter {p} not described"
    returns = inspect.signature(obj).return_annotation
    if returns not in (None, "None", inspect.Signature.empty):
        assert _section(doc, "Returns") or _section(doc, "Yields"), f"{qualname}: no Returns section"


def test_every_module_of_the_package_is_checked():
    import pkgutil

    import fastnet

    modules = {m.name for m in pkgutil.walk_packages(fastnet.__path__, "fastnet.")
               if not m.ispkg and m.name.rsplit(".", 1)[-1] not in ("__main__", "_version", "_typing")}
    assert modules <= set(PUBLIC_MODULES), sorted(modules - set(PUBLIC_MODULES))


def test_the_api_list_covers_the_package_exports():
    import fastnet

    exported = {name for name in fastnet.__all__ if callable(getattr(fastnet, name))}
    documented = {qualname.rsplit(".", 1)[-1] for qualname in PUBLIC}
    assert exported <= documented


def test_strict_type_check_of_fastnet_passes(tmp_path):
    pytest.importorskip("mypy")
    # The configuration ([tool.mypy] in pyproject.toml) says what is checked and how strictly.
    proc = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout


def test_py_typed_marker_ships_with_the_package():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["fastnet"]
    assert (ROOT / "fastnet" / "py.typed").is_file()
    assert config["project"]["license"] == "MIT" and config["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_sphinx_reference_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
         str(ROOT / "docs"), str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api = (out / "api.html").read_text(encoding="utf-8")
    for name in ("TwoLayerNet", "numerical_gradient", "gradient_check", "train", "History", "load_mnist",
                 "save", "load"):
        assert name in api
    shutil.rmtree(out)


def test_readme_opens_with_the_main_job_and_the_test_command():
    """The README's first two commands are the ones a newcomer runs: training on the bundled data,
    and the tests, the same command CI runs (.ci/run)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w*)\n(.*?)```", readme, flags=re.S)
    first, second = blocks[0], blocks[1]
    assert first[0] == "sh" and second[0] == "sh"
    train, tests = first[1].strip(), second[1].strip()
    assert "\n" not in train and "\n" not in tests  # one-liners
    assert train.startswith("python3 -m venv .venv && ") and train.endswith("fastnet train")
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci == [tests]
