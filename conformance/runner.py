"""Run the checks against one backend and collect a verdict per invariant.

``run(backend="numpy", dtypes=("float32",), profile="dev")`` returns a
:class:`Report`; :func:`render_table` prints it, :meth:`Report.to_json` writes
it. ``run_tokenizer(tokenizer, "PATH")`` does the same for the tokenizer checks,
against any object that follows the interface of ``spec/tokenizer.py``. The CLI
(``tspec conformance``, ``python -m transformer_spec.conformance``) and the pytest
plugin are thin layers over this module.

Each check runs its covering set first (rows of option values that together meet
every pair of options, on seeds that depend on the row only: the same on every
run), then lets Hypothesis explore with the run's seed. The report counts the
distinct call signatures (method, shapes, dtypes, static arguments): what a
compiling backend must compile.

A backend that compiles keeps its compiled programs between runs: the runner
turns on JAX's persistent compilation cache in ``$TSPEC_JAX_CACHE_DIR``, default
``~/.cache/transformer-spec/jax`` (``$XDG_CACHE_HOME`` respected). Set
``TSPEC_JAX_CACHE_DIR=`` (empty), or pass ``--no-compile-cache``, to turn it off.
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import re
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from transformer_spec import spec
from transformer_spec.backends import Backend, load_backend, missing_kernels
from transformer_spec.spec.dtypes import FLOAT_DTYPES

from .case import Case, Comparison, InvariantViolation
from .profiles import PROFILE_ENV, PROFILES, default_profile  # noqa: F401  (re-exported)
from .registry import ANY, BACKEND, TOKENIZER, Check, load_all_checks
from .strategies import programs

# Examples per check. dev: a quick look (the whole suite well under two minutes on
# two cores); ci: what CI runs; thorough: before a release.


class SkipCheck(Exception):
    """Raised by a check that does not apply to this backend (e.g. no autodiff)."""


@dataclass
class Result:
    id: str
    component: str
    dtype: str
    status: str  # passed | failed | error | skipped | xfailed | xpassed
    seconds: float
    statement: str
    message: str = ""
    inputs: dict[str, str] = field(default_factory=dict)
    comparison: dict[str, Any] | None = None
    repro: str = ""
    examples: int = 0  # examples run: the covering rows, then Hypothesis's
    covering_rows: int = 0  # rows of the covering set run before Hypothesis
    explored_signatures: int = 0  # call signatures Hypothesis met that the covering set did not (0 outside thorough)

    @property
    def bad(self) -> bool:
        return self.status in ("failed", "error")


@dataclass
class Report:
    backend: str
    backend_class: str
    dtypes: tuple[str, ...]
    profile: str
    seed: int
    results: list[Result] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    subject: str = BACKEND  # BACKEND, or TOKENIZER: then ``backend`` names the tokenizer and ``dtypes`` is empty
    signatures: int = 0  # distinct (method, shapes, dtypes, static arguments) called: what a compiled backend compiles
    aborted: str = ""  # why the run stopped before every check ran (a check that never returned)
    capabilities: dict[str, str] = field(default_factory=dict)  # the backend's hooks (Backend.capabilities())

    @property
    def ok(self) -> bool:
        return not self.aborted and not any(r.bad for r in self.results)

    def failed_ids(self) -> set[str]:
        return {r.id for r in self.results if r.bad}

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def parse_xfails(path: str | os.PathLike[str]) -> set[str]:
    """Invariant ids, one per line; ``#`` starts a comment. A file that is not UTF-8 text is a ValueError."""
    ids = set()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(
            f"--xfails file {str(path)!r} is not UTF-8 text; expected invariant ids, one per line ('#' starts a comment)"
        ) from None
    if "\x00" in text:
        raise ValueError(f"--xfails file {str(path)!r} is binary; expected invariant ids, one per line ('#' starts a comment)")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.add(line)
    return ids


def keyword_matcher(expression: str | None):
    """A predicate over invariant ids for a ``-k`` expression: words match substrings, with and/or/not/parentheses.

    A malformed expression (two words in a row, an unbalanced parenthesis, a dangling operator) is a
    ValueError that says where it went wrong."""
    if not expression or not expression.strip():
        return lambda _id: True
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    problem = _keyword_problem(tokens)
    if problem:
        raise ValueError(
            f"-k {expression!r} is not a valid expression ({problem}); expected words joined by and/or/not and parentheses, "
            "e.g. 'softmax and not log'"
        )
    python = []
    for token in tokens:
        if token in ("and", "or", "not", "(", ")"):
            python.append(token)
        else:
            python.append(f"({token!r} in id_)")
    code = " ".join(python)
    try:
        compiled = compile(code, "<-k>", "eval")
    except SyntaxError:
        raise ValueError(
            f"-k {expression!r} is not a valid expression; expected words joined by and/or/not and parentheses"
        ) from None
    return lambda id_: bool(eval(compiled, {"__builtins__": {}}, {"id_": id_}))


def _keyword_problem(tokens: list[str]) -> str:
    """Why ``tokens`` do not form ``expr := term (('and'|'or') term)*; term := 'not' term | '(' expr ')' | word``; "" if they do."""
    depth, expect_operand = 0, True
    previous = "the start"
    for token in tokens:
        if expect_operand:
            if token in ("and", "or", ")"):
                return f"{token!r} after {previous}"
            if token == "(":
                depth += 1
            elif token != "not":
                expect_operand = False
        else:
            if token == ")":
                depth -= 1
                if depth < 0:
                    return "a ')' without its '('"
            elif token in ("and", "or"):
                expect_operand = True
            else:
                return f"{token!r} after {previous}: missing 'and' or 'or'"
        previous = repr(token)
    if depth:
        return "a '(' without its ')'"
    if expect_operand:
        return f"nothing after {previous}"
    return ""


def check_signature(backend: Backend) -> list[str]:
    """Kernels the backend lacks; the suite refuses to start while any are missing."""
    return missing_kernels(backend)


def _checked_profile(profile: str | None) -> str:
    profile = profile or default_profile()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    return profile


def _seed_or_random(seed: int | None) -> int:
    """The given seed, or a fresh one (printed in the report, so any failure can be rerun)."""
    return int.from_bytes(os.urandom(4), "little") if seed is None else seed


DEFAULT_TIMEOUT = 600.0  # seconds one invariant (all its examples, one dtype) may take before it counts as hung
JAX_CACHE_ENV = "TSPEC_JAX_CACHE_DIR"  # where compiled JAX programs are kept between runs; set it empty to turn that off


def checked_dtypes(dtypes: tuple[str, ...] | list[str], backend: Backend) -> tuple[str, ...]:
    """``dtypes`` if every one is a float dtype ``backend`` computes in; else a ValueError that lists what exists."""
    dtypes = tuple(dtypes)
    supported = tuple(getattr(backend, "dtypes", ()))
    if not dtypes:
        raise ValueError(f"no dtype given; backend {backend.name!r} supports {', '.join(supported)} (or pass 'all')")
    unknown = [d for d in dtypes if d not in FLOAT_DTYPES]
    if unknown:
        raise ValueError(
            f"unknown dtype {', '.join(map(repr, unknown))}; expected float dtypes among {', '.join(FLOAT_DTYPES)} "
            f"(backend {backend.name!r} supports {', '.join(supported)}), or 'all'"
        )
    unsupported = [d for d in dtypes if d not in supported]
    if unsupported:
        raise ValueError(
            f"backend {backend.name!r} does not support {', '.join(unsupported)}; it supports {', '.join(supported)}"
        )
    return tuple(dict.fromkeys(dtypes))


def selected_checks(
    checks: dict[str, Check], keyword: str | None, components: tuple[str, ...] | None = None, subject: str = BACKEND
) -> list[Check]:
    """The checks of ``subject`` that ``keyword`` (a -k expression) and ``components`` select; a ValueError
    listing the components when none is selected, so an empty run is never reported as a pass."""
    matches = keyword_matcher(keyword)
    chosen = [
        c for c in checks.values() if c.subject == subject and (not components or c.component in components) and matches(c.id)
    ]
    if not chosen:
        names = sorted({c.component for c in checks.values() if c.subject == subject})
        what = f"-k {keyword!r}" if keyword else "the selection"
        if components:
            what += f" in component(s) {', '.join(components)}"
        others = [c for c in checks.values() if c.subject != subject and matches(c.id)]
        if others:
            where = "--tokenizer PATH" if others[0].subject == TOKENIZER else "--backend NAME"
            raise ValueError(f"{what} selects only {others[0].subject} checks ({others[0].id}, ...); run them with {where}")
        raise ValueError(
            f"{what} selects no invariant; ids are component.name (e.g. softmax.sums_to_one), components: {', '.join(names)}"
        )
    return chosen


def persistent_cache_hook(backend: Any) -> Callable[[str], Any] | None:
    """The backend's ``enable_persistent_cache(directory)``: a method, or a function of its module or of a
    package above it (``transformer_spec.backends.jax`` for ``transformer_spec.backends.jax.backend``); None if it has none."""
    hook = getattr(backend, "enable_persistent_cache", None)
    parts = type(backend).__module__.split(".")
    while hook is None and parts:
        hook = getattr(sys.modules.get(".".join(parts)), "enable_persistent_cache", None)
        parts.pop()
    return hook if callable(hook) else None


def enable_jax_cache(backend: Any) -> str | None:
    """Turn on JAX's persistent compilation cache when the backend under test offers it (or JAX is loaded).

    The folder is ``$TSPEC_JAX_CACHE_DIR``, default ``~/.cache/transformer-spec/jax``; an empty
    ``TSPEC_JAX_CACHE_DIR=`` turns it off. Asked by capability, never by backend name."""
    directory = os.environ.get(JAX_CACHE_ENV)
    if directory is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        directory = os.path.join(base, "transformer-spec", "jax")
    if not directory:
        return None
    enable = persistent_cache_hook(backend)
    try:
        if callable(enable):
            return enable(directory)
        if "jax" in sys.modules:
            jax = sys.modules["jax"]
            os.makedirs(directory, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", directory)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
            return directory
    except (OSError, AttributeError, ValueError) as error:  # an unwritable cache folder only costs time
        warnings.warn(f"JAX compilation cache not enabled in {directory!r}: {error}", stacklevel=2)
    return None


def run(
    backend: str | Backend | type[Backend] = "numpy",
    dtypes: tuple[str, ...] = ("float32",),
    profile: str | None = None,
    keyword: str | None = None,
    xfails: set[str] | None = None,
    seed: int | None = None,
    components: tuple[str, ...] | None = None,
    progress: Any = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Report:
    """Run every selected check against ``backend`` and return the report.

    An unknown or unsupported dtype, no dtype, or a selection of no check is a ValueError (never a pass).
    A check that runs longer than ``timeout`` seconds fails as timed out, and the run stops there
    (``report.aborted`` says why): a kernel that never returns cannot be interrupted, only reported."""
    profile = _checked_profile(profile)
    backend_spec = backend if isinstance(backend, str) else _spec_of(backend)
    instance = load_backend(backend)
    missing = check_signature(instance)
    if missing:
        raise NotImplementedError(
            f"backend {instance.name!r} ({type(instance).__name__}) is missing kernels: {', '.join(missing)}; "
            "implement them (see transformer_spec.backends.base.KERNELS) before running the suite"
        )
    dtypes = checked_dtypes(dtypes, instance)
    checks = load_all_checks()
    chosen = selected_checks(checks, keyword, components)
    seed = _seed_or_random(seed)
    enable_jax_cache(instance)
    report = Report(
        backend=backend_spec,
        backend_class=f"{type(instance).__module__}.{type(instance).__qualname__}",
        dtypes=tuple(dtypes),
        profile=profile,
        seed=seed,
        capabilities=instance.capabilities(),
    )
    xfails = set(xfails or ())
    unknown_xfails = sorted(xfails - set(checks))
    if unknown_xfails:
        message = f"xfails name ids that match no invariant: {', '.join(unknown_xfails)}"
        report.warnings.append(message)
        warnings.warn(message, stacklevel=2)
    signatures: set[tuple] = set()
    for check in chosen:
        for dtype in dtypes[:1] if check.dtypes == ANY else dtypes:
            result = run_check(check, instance, dtype, profile, seed, backend_spec, signatures=signatures, timeout=timeout)
            if check.id in xfails:
                result.status = {"failed": "xfailed", "error": "xfailed", "passed": "xpassed"}.get(result.status, result.status)
            report.results.append(result)
            if progress:
                progress(result)
            if result.status == TIMED_OUT_STATUS:
                result.status = "failed"
                report.aborted = f"{check.id} [{dtype}] did not return within {timeout:g} s; the remaining checks did not run"
                break
        if report.aborted:
            break
    report.signatures = len(signatures)
    return report


def _spec_of(backend: Any) -> str:
    cls = backend if isinstance(backend, type) else type(backend)
    return f"{cls.__module__}:{cls.__qualname__}"


TIMED_OUT_STATUS = "timed out"  # internal: run() turns it into "failed" and stops


class _Worker:
    """One long-lived thread that runs the checks, so that a check which never returns can be reported.

    Always the same thread: libraries with per-thread state (autograd modes, default devices) see one thread."""

    busy_forever = False  # set when a task never returned: the thread is lost, the next run starts another

    def __init__(self) -> None:
        self._tasks: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="conformance-check", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            fn, done, box = self._tasks.get()
            try:
                box["value"] = fn()
            except BaseException as error:  # handed back to the caller, who re-raises it
                box["error"] = error
            done.set()

    def call(self, fn: Callable[[], Any], timeout: float | None) -> tuple[bool, Any]:
        """(finished, value): run ``fn`` on the worker; False when it has not returned after ``timeout`` seconds."""
        done, box = threading.Event(), {}
        self._tasks.put((fn, done, box))
        if not done.wait(timeout):
            return False, None
        if "error" in box:
            raise box["error"]
        return True, box.get("value")


_WORKER: _Worker | None = None


def _worker() -> _Worker:
    """The shared worker; a new one if the last one is stuck in a check that never returned."""
    global _WORKER
    if _WORKER is None or _WORKER.busy_forever:
        _WORKER = _Worker()
    return _WORKER


def run_check(
    check: Check,
    backend: Backend,
    dtype: str,
    profile: str,
    seed: int,
    backend_spec: str,
    repro_header: str | None = None,
    signatures: set[tuple] | None = None,
    timeout: float | None = None,
) -> Result:
    """Run one check for one dtype: its covering set first (fixed seeds), then Hypothesis; shrink any
    failure and describe it.

    ``backend`` is the object the check talks to (a tokenizer for tokenizer checks,
    whose ``dtype`` is ``""``); ``repro_header`` is the repro's code that binds it to ``be``;
    ``signatures`` collects the distinct calls made. With ``timeout``, a check still running after that
    many seconds gets the status ``TIMED_OUT_STATUS`` (its thread is abandoned)."""
    start = time.perf_counter()
    base = Result(id=check.id, component=check.component, dtype=dtype, status="passed", seconds=0.0, statement=check.statement)
    if check.subject == BACKEND and dtype not in backend.dtypes:
        base.status, base.message = "skipped", f"backend {backend.name!r} does not support {dtype}"
        return base
    last: dict[str, Case] = {}
    collected: set[tuple] = set() if signatures is None else signatures
    phases: dict[str, set[tuple]] = {"covering": set(), "explored": set()}
    counter = {"examples": 0}

    def make_test(forced: dict[str, Any], examples: int, test_seed: int, phase: str, pins: list[dict[str, Any]] = ()):
        def body(data: Any) -> None:
            row = {**forced, **(data.draw(st.sampled_from(pins), label="program") if pins else {})}
            case = Case(backend, dtype, data.draw, forced=row, free_configs=profile == "thorough")
            last["case"] = case
            counter["examples"] += 1
            try:
                check.fn(case)
            finally:
                collected.update(case.signatures)
                phases[phase].update(case.signatures)

        test = given(st.data())(body)
        # Without a database, Hypothesis needs no key; giving none spares it reading this function's source
        # for one on every covering row (a private attribute: if it goes away, only time is lost).
        test._hypothesis_internal_database_key = None
        test = settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=False,
            report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            phases=(Phase.explicit, Phase.generate, Phase.shrink),
            print_blob=False,
        )(test)
        return hypothesis.seed(test_seed)(test)

    rows = check.cover() if check.cover is not None else []
    base.covering_rows = len(rows)

    def run_all() -> None:
        # The covering set: one example per row, on a seed that depends on the row only, so the guaranteed
        # part of every profile is the same on every run; the row's values stay fixed while Hypothesis shrinks.
        for index, row in enumerate(rows):
            make_test(row, 1, index, "covering")()
        # Then Hypothesis: on the programs of the covering set (new values, nothing new to compile), or,
        # in the thorough profile, anywhere.
        pins = [] if profile == "thorough" or check.cover is None else programs(check.cover)
        make_test({}, max(1, int(PROFILES[profile] * check.examples_factor)), seed, "explored", pins)()

    try:
        if timeout is None:
            run_all()
        else:
            worker = _worker()
            finished, _ = worker.call(run_all, timeout)
            if not finished:
                worker.busy_forever = True
                base.status = TIMED_OUT_STATUS
                base.message = (
                    f"timed out: still running after {timeout:g} s (--timeout); a kernel did not return "
                    f"(last call: {last['case'].calls[-1] if last.get('case') and last['case'].calls else 'none yet'})"
                )
                base.seconds = time.perf_counter() - start
                return base
    except SkipCheck as skip:
        base.status, base.message = "skipped", str(skip)
    except InvariantViolation as violation:
        _describe_failure(base, "failed", violation.message, violation.details, last.get("case"), backend_spec, repro_header)
    except Flaky as flaky:
        _describe_failure(
            base,
            "failed",
            f"flaky: the failure did not reproduce when replayed ({flaky})",
            {},
            last.get("case"),
            backend_spec,
            repro_header,
        )
    except Exception as error:  # the backend crashed: that fails the invariant too
        tail = "".join(traceback.format_exception_only(type(error), error)).strip()
        _describe_failure(base, "error", f"raised {tail}", {}, last.get("case"), backend_spec, repro_header)
    base.examples = counter["examples"]
    base.explored_signatures = len(phases["explored"] - phases["covering"])
    base.seconds = time.perf_counter() - start
    return base


def _describe_failure(
    result: Result,
    status: str,
    message: str,
    details: dict[str, Any],
    case: Case | None,
    backend_spec: str,
    repro_header: str | None = None,
) -> None:
    result.status = status
    result.message = message
    comparison = details.get("comparison")
    if isinstance(comparison, Comparison):
        result.comparison = asdict(comparison)
    if case is not None:
        result.inputs = {name: _short(value) for name, value in case.inputs.items()}
        result.repro = case.repro(backend_spec, result.id, message, repro_header)


def _short(value: Any) -> str:
    import numpy as np

    if isinstance(value, np.ndarray):
        text = " ".join(np.array2string(value, threshold=40, precision=8).split())  # one line, whatever the rank
        return f"array shape={value.shape} dtype={value.dtype}: {text}"
    return repr(value)


def render_header(report: Report) -> str:
    """The lines that say what is being checked: printed before the first check runs."""
    if report.subject == TOKENIZER:
        return "\n".join(
            [
                f"transformer-spec conformance: tokenizer {report.backend} ({report.backend_class})",
                f"profile {report.profile} · seed {report.seed}",
            ]
        )
    return "\n".join(
        [
            f"transformer-spec conformance: backend {report.backend} ({report.backend_class})",
            f"dtypes {', '.join(report.dtypes)} · profile {report.profile} · seed {report.seed}",
        ]
        + ([f"hooks: {' · '.join(f'{k}: {v}' for k, v in report.capabilities.items())}"] if report.capabilities else [])
    )


def render_table(report: Report, show_failures: bool = True, header: bool = True) -> str:
    """The per-component verdict table, then each failure with its counterexample and repro
    (``header=False``: without the header lines, when they were printed before the run)."""
    lines = [render_header(report), ""] if header else []
    header = f"{'component':<22}{'passed':>8}{'failed':>8}{'skipped':>9}{'xfailed':>9}{'time':>9}"
    lines += [header, "-" * len(header)]
    order = [c.name for c in spec.COMPONENTS]
    components = sorted({r.component for r in report.results}, key=lambda c: order.index(c) if c in order else len(order))
    totals = [0, 0, 0, 0, 0.0]
    for component in components:
        rows = [r for r in report.results if r.component == component]
        counts = [
            sum(r.status in ("passed", "xpassed") for r in rows),
            sum(r.bad for r in rows),
            sum(r.status == "skipped" for r in rows),
            sum(r.status == "xfailed" for r in rows),
            sum(r.seconds for r in rows),
        ]
        totals = [a + b for a, b in zip(totals, counts)]
        mark = "FAIL" if counts[1] else "ok"
        lines.append(f"{component:<22}{counts[0]:>8}{counts[1]:>8}{counts[2]:>9}{counts[3]:>9}{counts[4]:>8.1f}s  {mark}")
    lines.append("-" * len(header))
    lines.append(f"{'total':<22}{totals[0]:>8}{totals[1]:>8}{totals[2]:>9}{totals[3]:>9}{totals[4]:>8.1f}s")
    if report.subject == BACKEND:
        examples = sum(r.examples for r in report.results)
        rows = sum(r.covering_rows for r in report.results)
        explored = sum(r.explored_signatures for r in report.results)
        lines.append(
            f"{examples} examples ({rows} from covering sets) over {report.signatures} distinct call signatures "
            "(method, shapes, dtypes, static arguments)" + (f", {explored} of them met only while exploring" if explored else "")
        )
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    xpassed = [r for r in report.results if r.status == "xpassed"]
    for r in xpassed:
        lines.append(f"warning: {r.id}{_dtype_tag(r)} is listed in xfails but passed; remove it from the xfails file")
    if show_failures:
        for r in report.results:
            if r.bad:
                lines += ["", render_failure(r, report)]
    lines.append("")
    if report.aborted:
        lines.append(f"ABORTED: {report.aborted}")
    lines.append("PASSED: every invariant holds" if report.ok else f"FAILED: {len(report.failed_ids())} invariant(s) violated")
    return "\n".join(lines)


def render_failure(r: Result, report: Report | None = None) -> str:
    lines = [f"FAILED {r.id}{_dtype_tag(r)}", f"  invariant: {r.statement}", f"  {r.message}"]
    if r.inputs:
        lines.append("  shrunk input:")
        lines += [f"    {name} = {value}" for name, value in r.inputs.items()]
    if report is not None and report.subject == TOKENIZER:
        lines.append(f"  rerun: tspec conformance --tokenizer {report.backend} -k {r.id} --seed {report.seed}")
    elif report is not None:
        lines.append(f"  rerun: tspec conformance --backend {report.backend} --dtype {r.dtype} -k {r.id} --seed {report.seed}")
    if r.repro:
        lines.append("  repro:")
        repro = r.repro if len(r.repro) < 6000 else r.repro[:6000] + "\n... (full repro in the --report JSON)"
        lines += ["    " + line for line in repro.splitlines()]
    return "\n".join(lines)


def _dtype_tag(r: Result) -> str:
    return f" [{r.dtype}]" if r.dtype else ""  # tokenizer results have no dtype


# ------------------------------------------------------------------ tokenizers

# What a tokenizer must have before the tokenizer checks start (spec/tokenizer.py, "Interface").
TOKENIZER_MEMBERS = ("encode", "decode", "stream_decoder", "vocab_size", "special_tokens", "bos_id", "eos_id", "unk_id", "pad_id")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def missing_tokenizer_members(tokenizer: Any) -> list[str]:
    """The members of the tokenizer interface that ``tokenizer`` lacks."""
    return [name for name in TOKENIZER_MEMBERS if not hasattr(tokenizer, name)]


def is_tokenizer_target(text: str) -> bool:
    """Whether ``text`` has the form ``module:attribute`` (rather than a folder)."""
    return bool(_TARGET.match(text)) and not Path(text).exists()


def load_tokenizer_target(target: str) -> Any:
    """The tokenizer named by ``module:attribute``: a tokenizer object, or a class or
    function that builds one when called with no arguments."""
    if not is_tokenizer_target(target):
        raise ValueError(f"tokenizer {target!r} is not of the form module:attribute")
    module_name, _, attribute = target.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"tokenizer {target!r}: cannot import module {module_name!r} ({error})") from None
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ValueError(f"tokenizer {target!r}: module {module_name!r} has no attribute {attribute!r}")
        found = getattr(found, part)
    if isinstance(found, type) or (callable(found) and not hasattr(found, "encode")):
        found = found()
    return found


def tokenizer_repro_header(tokenizer_spec: str) -> str:
    """Repro lines that bind the tokenizer ``tokenizer_spec`` names to ``be``."""
    if is_tokenizer_target(tokenizer_spec):
        return f"from transformer_spec.conformance.runner import load_tokenizer_target\nbe = load_tokenizer_target({tokenizer_spec!r})"
    # A folder: the application's loader reads it. The repro is text, so naming tspec here keeps the layering.
    return f"from transformer_spec.tokenizers import load_tokenizer\nbe = load_tokenizer({tokenizer_spec!r})"


def run_tokenizer(
    tokenizer: Any,
    tokenizer_spec: str,
    profile: str | None = None,
    keyword: str | None = None,
    xfails: set[str] | None = None,
    seed: int | None = None,
    progress: Any = None,
    repro_header: str | None = None,
) -> Report:
    """Run every selected tokenizer check against ``tokenizer`` and return the report.

    ``tokenizer`` is any object with the interface of ``spec/tokenizer.py``;
    ``tokenizer_spec`` says where it came from (a folder, or ``module:attribute``):
    the report names it and each repro loads it from there (``repro_header``
    overrides those lines). Which checks apply depends on what the tokenizer
    declares (``byte_level``, ``normalize``, ``save``/``load``); the others are skipped
    with the reason.
    """
    profile = _checked_profile(profile)
    missing = missing_tokenizer_members(tokenizer)
    if missing:
        raise NotImplementedError(
            f"tokenizer {tokenizer_spec!r} ({type(tokenizer).__name__}) lacks {', '.join(missing)}; "
            "implement the interface of spec/tokenizer.py before running the suite"
        )
    seed = _seed_or_random(seed)
    checks = load_all_checks(TOKENIZER)
    report = Report(
        backend=tokenizer_spec,
        backend_class=f"{type(tokenizer).__module__}.{type(tokenizer).__qualname__}",
        dtypes=(),
        profile=profile,
        seed=seed,
        subject=TOKENIZER,
    )
    xfails = set(xfails or ())
    unknown_xfails = sorted(xfails - set(load_all_checks()))
    if unknown_xfails:
        message = f"xfails name ids that match no invariant: {', '.join(unknown_xfails)}"
        report.warnings.append(message)
        warnings.warn(message, stacklevel=2)
    header = repro_header if repro_header is not None else tokenizer_repro_header(tokenizer_spec)
    for check in selected_checks(checks, keyword, subject=TOKENIZER):
        result = run_check(check, tokenizer, "", profile, seed, tokenizer_spec, header)
        if check.id in xfails:
            result.status = {"failed": "xfailed", "error": "xfailed", "passed": "xpassed"}.get(result.status, result.status)
        report.results.append(result)
        if progress:
            progress(result)
    return report
