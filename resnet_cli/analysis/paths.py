"""The 2ⁿ paths of a residual network and the distribution of their lengths, exactly.

Veit, Wilber & Belongie 2016 ("Residual networks behave like ensembles of relatively shallow networks"):
unravelling ``x_{l+1} = x_l + F_l(x_l)`` over n blocks gives one path per subset of the blocks, 2ⁿ paths in
all; a path that passes through k residual branches has length k, so C(n, k) paths have length k and the
lengths follow Binomial(n, ½): mean n/2, standard deviation √n/2. For ResNet-110 (54 blocks) most paths are
19–35 blocks long (the paper's Figure 6a).

Stochastic depth (Huang et al. 2016) drops block l in a training step with probability 1 − p_l. Two
distributions follow, both Poisson-binomial:

* the **depth** of the network in a step, the number of blocks that run: P(depth = k) with the p_l as
  success probabilities; its mean is the expected depth Σ p_l ((3L − 1)/4 for the linear schedule to ½);
* the **alive paths**: a path is alive when all of its blocks run, so the expected number of alive paths of
  length k is the elementary symmetric polynomial e_k(p_1, …, p_n), Σ_k e_k = Π(1 + p_l), and the share of
  alive paths of length k is the Poisson-binomial with probabilities p_l / (1 + p_l). With every p_l = 1 this
  is C(n, k) and Binomial(n, ½) again.

Counts are exact Python integers: the row C(n, 0..n) is built with one multiply and one exact division per
entry (C(n, k+1) = C(n, k)·(n−k)/(k+1)), half of it, mirrored. Shares are correctly rounded ``int / int``
divisions (Python divides big integers without overflowing a float), and log10 shares come from
``math.log10`` of the integer, so nothing overflows at n = 20,000 (C(20000, 10000) has 6,019 digits).

Torch-free: ``resnet-cli paths`` must not pay for importing torch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..errors import ResnetCliError
from ..limits import MAX_BLOCKS

# Enumerations larger than this are refused unless the caller asks for them (``force=True`` / ``--force``).
MAX_ENUMERATION = 100_000
# A --limit past this is refused even with --force: at a million paths a second (this streams about 400,000 a
# second on one CPU core) it takes 32 years, so such a number is a typo or a test of the tool, never a listing
# anyone waits for. Without --limit, --force still streams until its reader goes away.
MAX_LISTING_LIMIT = 10 ** 15
# Lengths whose share of all paths is below this are summarised, not listed one by one (``min_share=0`` lists
# every length). 1e-30 keeps every length of any net up to 99 blocks (2⁻⁹⁹ ≈ 1.6e-30), ResNet-110 included.
DEFAULT_MIN_SHARE = 1e-30

UNITS = {
    "length": "residual blocks a path passes through (its residual branches; the shortcut adds none)",
    "paths": "number of paths (exact integer)",
    "share": "fraction of all 2^n paths",
    "depth": "residual blocks that run in one training step (stochastic depth)",
    "expected_paths": "expected number of alive paths in one training step",
}


class PathsError(ResnetCliError, ValueError):
    """A block count, mass, range or schedule that cannot be analysed."""


# --------------------------------------------------------------------------- validation
def check_blocks(n: Any) -> int:
    """n as an int in 1..MAX_BLOCKS, or PathsError with the reason."""
    if isinstance(n, bool) or not isinstance(n, int):
        if (isinstance(n, float) and n.is_integer()) or (isinstance(n, str) and n.strip().lstrip("+").isdigit()):
            n = int(n)
        else:
            raise PathsError(f"the number of blocks must be a whole number, not {n!r}")
    if n < 1:
        raise PathsError(f"the number of blocks must be at least 1 (got {n})")
    if n > MAX_BLOCKS:
        raise PathsError(f"at most {MAX_BLOCKS:,} blocks are supported (got {n:,}; ResNet-1202 has 600)")
    return n


def check_mass(mass: Any) -> float:
    try:
        value = float(mass)
    except (TypeError, ValueError):
        raise PathsError(f"the mass must be a number in (0, 1], not {mass!r}") from None
    if not 0.0 < value <= 1.0:  # also rejects NaN
        raise PathsError(f"the mass must be in (0, 1] (a share of all paths, e.g. 0.95), not {mass}")
    return value


def parse_range(text: str, n: int) -> tuple[int, int]:
    """'19:35' -> (19, 35), inclusive; '19:' and ':35' run to n and from 0; one number K is K:K."""
    raw = text.strip()
    first_s, sep, last_s = raw.partition(":")
    if not sep:
        first_s = last_s = raw
    try:
        first = int(first_s) if first_s.strip() else 0
        last = int(last_s) if last_s.strip() else n
    except ValueError:
        raise PathsError(f"a range of lengths is FIRST:LAST in blocks, e.g. 19:35, not {text!r}") from None
    if first > last:
        raise PathsError(f"the range {text!r} is empty: its first length {first} is after its last {last}")
    if first < 0 or last > n:
        raise PathsError(f"the range {text!r} is outside the path lengths 0..{n} of a {n}-block network")
    return first, last


# --------------------------------------------------------------------------- exact binomial
def binomial_row(n: int) -> list[int]:
    """[C(n, 0), ..., C(n, n)] as exact integers, one multiply and one exact divide per entry."""
    row = [1] * (n + 1)
    c = 1
    for k in range(n // 2):
        c = c * (n - k) // (k + 1)  # exact: C(n, k)(n - k) is divisible by k + 1
        row[k + 1] = c
        row[n - k - 1] = c
    return row


def share(count: int, total: int) -> float:
    """count / total as a correctly rounded float (0.0 where it underflows), for integers of any size."""
    return count / total


def log10_share(count: int, total: int) -> float:
    """log10(count / total), finite for any count > 0 however small the share (-inf for 0)."""
    if count == 0:
        return -math.inf
    return math.log10(count) - math.log10(total)


def shortest_range(weights: Sequence[Any], mass: Any, total: Any = None) -> tuple[int, int]:
    """The shortest range [first, last] of indices whose weights sum to at least ``mass`` of ``total``.

    ``weights`` must be unimodal (binomial and Poisson-binomial distributions are log-concave, hence
    unimodal): then growing the range from the mode toward the heavier neighbour is optimal. On a tie the
    range grows toward the shorter lengths. Exact when weights are ints and ``mass`` a Fraction.
    """
    if total is None:
        total = sum(weights)
    target = total * (Fraction(mass) if isinstance(total, int) else mass)
    mode = max(range(len(weights)), key=lambda i: (weights[i], -i))
    first = last = mode
    held = weights[mode]
    while held < target and (first > 0 or last < len(weights) - 1):
        left = weights[first - 1] if first > 0 else None
        right = weights[last + 1] if last < len(weights) - 1 else None
        if right is None or (left is not None and left >= right):
            first -= 1
            held += left
        else:
            last += 1
            held += right
    return first, last


def central_range(row: Sequence[int], mass: float) -> tuple[int, int]:
    """The smallest range of lengths holding at least ``mass`` of the paths (exact integer arithmetic).

    The binomial row is symmetric, so among ranges of the shortest length the ones that hold the most paths
    are centred at n/2; with ``mass`` as an exact fraction of its decimal the comparison has no rounding.
    """
    return shortest_range(row, Fraction(str(mass)) if isinstance(mass, float) else mass, sum(row))


# --------------------------------------------------------------------------- stochastic depth
def parse_survival(text: str, n: int) -> tuple[str, tuple[float, ...]]:
    """'linear:0.5' -> p_l = 1 - (l/n)(1 - 0.5) (Huang et al. 2016, eq. 4); 'constant:0.8' -> every p_l = 0.8;
    'none' -> every p_l = 1. Returns the normalised schedule name and the probabilities in forward order."""
    raw = text.strip().lower()
    if raw in ("none", "off", "1"):
        return "none", (1.0,) * n
    kind, sep, value = raw.partition(":")
    if not sep or kind not in ("linear", "constant"):
        raise PathsError(f"--survival takes linear:P_LAST or constant:P (e.g. linear:0.5), not {text!r}")
    try:
        p = float(value)
    except ValueError:
        raise PathsError(f"the survival probability in {text!r} must be a number in (0, 1]") from None
    if not 0.0 < p <= 1.0:
        raise PathsError(f"the survival probability in {text!r} must be in (0, 1], not {p}")
    if kind == "constant":
        return f"constant:{p:g}", (p,) * n
    return f"linear:{p:g}", linear_survival(n, p)


def linear_survival(n: int, p_last: float) -> tuple[float, ...]:
    """p_l = 1 - (l/n)(1 - p_last) for l = 1..n, as ``ArchSpec.survival_probabilities`` computes it."""
    return tuple(1.0 - (l / n) * (1.0 - p_last) for l in range(1, n + 1))


def poisson_binomial(probs: Sequence[float]) -> list[float]:
    """P(exactly k successes), k = 0..n, of independent trials with success probabilities ``probs``.

    The coefficients of Π(1 − p_l + p_l·x): products of halves, recursively, with ``numpy.convolve`` (direct,
    not FFT). Every term is a sum of non-negative products, so nothing is lost to cancellation and tails stay
    accurate to relative precision until they underflow (below ~1e-308, to 0). O(n²) multiply-adds, all in C:
    a fraction of a second at n = 20,000.
    """
    import numpy as np

    def product(lo: int, hi: int) -> Any:
        if hi - lo <= 32:  # small products one factor at a time: less call overhead than convolving
            dist = np.zeros(hi - lo + 1)
            dist[0] = 1.0
            for i in range(lo, hi):
                p = probs[i]
                head = dist[: i - lo + 2]
                shifted = head[:-1] * p
                head *= 1.0 - p
                head[1:] += shifted
            return dist
        mid = (lo + hi) // 2
        return np.convolve(product(lo, mid), product(mid, hi))

    if not probs:
        return [1.0]
    return product(0, len(probs)).tolist()


# --------------------------------------------------------------------------- results
@dataclass
class RangeShare:
    """Paths whose length is in first..last (inclusive), exactly."""

    first: int
    last: int
    paths: int
    total: int
    label: str = ""

    @property
    def share(self) -> float:
        return share(self.paths, self.total)

    def to_dict(self) -> dict[str, Any]:
        frac = Fraction(self.paths, self.total)
        return {"first": self.first, "last": self.last, "paths": self.paths, "share": self.share,
                "share_exact": f"{frac.numerator}/{frac.denominator}"}


@dataclass
class FloatRange:
    """A range of a floating-point distribution (stochastic depth)."""

    first: int
    last: int
    probability: float

    def to_dict(self) -> dict[str, Any]:
        return {"first": self.first, "last": self.last, "probability": self.probability}


@dataclass
class StochasticDepth:
    """Distributions of one training step under stochastic depth (see the module docstring)."""

    schedule: str
    survival: tuple[float, ...]
    depth: list[float]  # P(depth = k), k = 0..n
    alive_share: list[float]  # share of the alive paths that have length k
    mass: float
    depth_range: FloatRange
    alive_range: FloatRange

    @property
    def expected_depth(self) -> float:
        return math.fsum(self.survival)

    @property
    def depth_std(self) -> float:
        return math.sqrt(math.fsum(p * (1.0 - p) for p in self.survival))

    @property
    def log10_expected_alive_paths(self) -> float:
        return math.fsum(math.log10(1.0 + p) for p in self.survival)

    @property
    def expected_alive_paths(self) -> float:
        """Π(1 + p_l); inf where it overflows a float (see ``log10_expected_alive_paths``)."""
        log = self.log10_expected_alive_paths
        return 10.0 ** log if log < 308 else math.inf

    @property
    def alive_mean_length(self) -> float:
        return math.fsum(p / (1.0 + p) for p in self.survival)

    def expected_alive(self, k: int) -> float:
        """Expected number of alive paths of length k, e_k(p) = share_k · Π(1 + p_l)."""
        s = self.alive_share[k]
        if s == 0.0:
            return 0.0
        log = math.log10(s) + self.log10_expected_alive_paths
        return 10.0 ** log if log < 308 else math.inf

    def to_dict(self, lengths: Sequence[int]) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "survival": list(self.survival),
            "expected_depth": self.expected_depth,
            "depth_std": self.depth_std,
            "depth_range": {**self.depth_range.to_dict(), "mass": self.mass},
            "expected_alive_paths": self.expected_alive_paths,
            "log10_expected_alive_paths": self.log10_expected_alive_paths,
            "alive_mean_length": self.alive_mean_length,
            "alive_range": {**self.alive_range.to_dict(), "mass": self.mass},
            "lengths": [{"length": k, "depth_probability": self.depth[k], "alive_share": self.alive_share[k],
                         "expected_alive_paths": self.expected_alive(k)} for k in lengths],
        }


@dataclass
class PathsReport:
    """Every path length of an n-block network: exact counts, shares, the central range and user ranges."""

    blocks: int
    residual: bool
    counts: list[int]  # paths of length k, k = 0..n
    mass: float
    central: RangeShare
    ranges: list[RangeShare]
    first_shown: int
    last_shown: int
    arch: str | None = None
    family: str | None = None
    stochastic: StochasticDepth | None = None
    notes: list[str] = field(default_factory=list)

    # ----------------------------------------------------------------- facts
    @property
    def total(self) -> int:
        return 2 ** self.blocks if self.residual else 1

    @property
    def mean(self) -> float:
        return self.blocks / 2 if self.residual else float(self.blocks)

    @property
    def std(self) -> float:
        return math.sqrt(self.blocks) / 2 if self.residual else 0.0

    @property
    def modes(self) -> list[int]:
        if not self.residual:
            return [self.blocks]
        n = self.blocks
        return [n // 2] if n % 2 == 0 else [n // 2, n // 2 + 1]

    def share(self, k: int) -> float:
        return share(self.counts[k], self.total)

    def log10_share(self, k: int) -> float:
        return log10_share(self.counts[k], self.total)

    def range_share(self, first: int, last: int, label: str = "") -> RangeShare:
        return RangeShare(first, last, sum(self.counts[first:last + 1]), self.total, label)

    @property
    def shown(self) -> range:
        return range(self.first_shown, self.last_shown + 1)

    @property
    def omitted(self) -> list[RangeShare]:
        out = []
        if self.first_shown > 0:
            out.append(self.range_share(0, self.first_shown - 1, "below"))
        if self.last_shown < self.blocks:
            out.append(self.range_share(self.last_shown + 1, self.blocks, "above"))
        return out

    def to_dict(self) -> dict[str, Any]:
        lengths = list(self.shown)
        return {
            "arch": self.arch,
            "family": self.family,
            "blocks": self.blocks,
            "residual": self.residual,
            "total_paths": self.total,
            "total_paths_expr": f"2^{self.blocks}" if self.residual else "1",
            "mean_length": self.mean,
            "std_length": self.std,
            "mode_lengths": self.modes,
            "central_range": {**self.central.to_dict(), "mass": self.mass},
            "ranges": [r.to_dict() for r in self.ranges],
            "lengths": [{"length": k, "paths": self.counts[k], "share": self.share(k),
                         "log10_share": self.log10_share(k) if self.counts[k] else None} for k in lengths],
            "omitted_lengths": {r.label: r.to_dict() for r in self.omitted},
            "stochastic_depth": self.stochastic.to_dict(lengths) if self.stochastic else None,
            "notes": self.notes,
            "units": UNITS,
        }


# --------------------------------------------------------------------------- the analysis
def path_lengths(
    blocks: int,
    *,
    residual: bool = True,
    mass: float = 0.95,
    ranges: Sequence[str | tuple[int, int]] = (),
    survival: Sequence[float] | None = None,
    schedule: str = "",
    min_share: float = DEFAULT_MIN_SHARE,
    arch: str | None = None,
    family: str | None = None,
) -> PathsReport:
    """The length distribution of the paths of ``blocks`` residual blocks (a plain net, ``residual=False``,
    has one path through all of them).

    ``ranges``: 'FIRST:LAST' strings or (first, last) pairs, inclusive. ``survival``: per-block survival
    probabilities (stochastic depth), in forward order. Lengths whose share is below ``min_share`` at either
    end are summarised in ``omitted`` instead of listed (0 lists every length).
    """
    n = check_blocks(blocks)
    mass = check_mass(mass)
    if not 0.0 <= min_share < 1.0:
        raise PathsError(f"min_share must be in [0, 1), not {min_share}")
    notes: list[str] = []
    if residual:
        counts = binomial_row(n)
    else:
        counts = [0] * n + [1]
        notes.append("a plain network (no shortcuts) has exactly one path, through every block")
    total = sum(counts)
    first, last = central_range(counts, mass)
    central = RangeShare(first, last, sum(counts[first:last + 1]), total, "central")
    user = []
    for r in ranges:
        a, b = parse_range(r, n) if isinstance(r, str) else r
        if not 0 <= a <= b <= n:
            raise PathsError(f"the range {a}:{b} is empty or outside the path lengths 0..{n}")
        user.append(RangeShare(a, b, sum(counts[a:b + 1]), total, f"{a}:{b}"))

    stochastic = None
    if survival is not None:
        survival = tuple(float(p) for p in survival)
        if len(survival) != n:
            raise PathsError(f"{len(survival)} survival probabilities for {n} blocks")
        if any(not 0.0 < p <= 1.0 for p in survival):
            raise PathsError("survival probabilities must be in (0, 1]")
        if not residual:
            raise PathsError("stochastic depth drops residual branches; a plain network has none to drop")
        depth = poisson_binomial(survival)
        alive = poisson_binomial([p / (1.0 + p) for p in survival])
        d_first, d_last = shortest_range(depth, mass, 1.0)
        a_first, a_last = shortest_range(alive, mass, 1.0)
        stochastic = StochasticDepth(
            schedule or "custom", survival, depth, alive, mass,
            FloatRange(d_first, d_last, math.fsum(depth[d_first:d_last + 1])),
            FloatRange(a_first, a_last, math.fsum(alive[a_first:a_last + 1])),
        )

    shown_first, shown_last = _shown_lengths(counts, total, min_share, stochastic)
    return PathsReport(n, residual, counts, mass, central, user, shown_first, shown_last, arch, family,
                       stochastic, notes)


def _shown_lengths(counts: list[int], total: int, min_share: float,
                   stochastic: StochasticDepth | None) -> tuple[int, int]:
    """The lengths worth listing: every length whose share (of paths, or of a stochastic-depth distribution)
    is at least ``min_share``; a contiguous window because each distribution is unimodal."""
    if min_share <= 0.0:
        return 0, len(counts) - 1
    threshold = math.ceil(Fraction(min_share) * total)  # an int: comparisons stay integer

    def keep(k: int) -> bool:
        if counts[k] >= threshold:
            return True
        return stochastic is not None and (stochastic.depth[k] >= min_share or
                                           stochastic.alive_share[k] >= min_share)

    kept = [k for k in range(len(counts)) if keep(k)] if stochastic else None
    if kept is None:
        mode = max(range(len(counts)), key=counts.__getitem__)
        first = mode
        while first > 0 and counts[first - 1] >= threshold:
            first -= 1
        last = mode
        while last < len(counts) - 1 and counts[last + 1] >= threshold:
            last += 1
        return first, last
    return (min(kept), max(kept)) if kept else (0, len(counts) - 1)


def path_lengths_for_spec(spec: Any, *, survival_text: str | None = None, **kwargs: Any) -> PathsReport:
    """``path_lengths`` for an architecture: its residual blocks, shortcuts and stochastic-depth schedule
    (``spec.survival_probabilities()``), unless ``survival_text`` names another schedule."""
    n = spec.num_blocks
    survival: Sequence[float] | None = None
    schedule = ""
    if survival_text is not None:
        schedule, survival = parse_survival(survival_text, check_blocks(n))
    elif getattr(spec, "stochastic_depth", None) is not None:
        survival = spec.survival_probabilities()
        schedule = f"linear:{spec.stochastic_depth:g} (from the spec)"
    survival, schedule = _survival_or_none(survival, schedule)
    return path_lengths(n, residual=bool(spec.residual), survival=survival, schedule=schedule,
                        arch=spec.name, family=spec.family, **kwargs)


def path_lengths_for_blocks(n: int, *, survival_text: str | None = None, **kwargs: Any) -> PathsReport:
    """``path_lengths`` for ``n`` residual blocks, under the stochastic-depth schedule ``survival_text`` names
    (``parse_survival``; None: every block always survives)."""
    survival: Sequence[float] | None = None
    schedule = ""
    if survival_text is not None:
        schedule, survival = parse_survival(survival_text, n)
    survival, schedule = _survival_or_none(survival, schedule)
    return path_lengths(n, survival=survival, schedule=schedule, **kwargs)


def _survival_or_none(survival: Sequence[float] | None, schedule: str) -> tuple[Sequence[float] | None, str]:
    """A schedule where every block survives is no stochastic depth: reported as none."""
    if survival is not None and all(p == 1.0 for p in survival):
        return None, ""
    return survival, schedule


# --------------------------------------------------------------------------- enumeration
def block_names(spec: Any = None, n: int | None = None) -> list[str]:
    """Names of the residual blocks in forward order, as the built module names them (``layer2.0``,
    ``features.denseblock2.denselayer1``): the analytic plan's blocks, no model built. Plain indices without
    a spec."""
    if spec is None:
        return [str(i) for i in range(check_blocks(n))]
    from ..plan import plan_model

    return plan_model(spec).block_names()


def count_paths(n: int, length: int | None = None, residual: bool = True) -> int:
    """How many paths ``iter_paths`` yields."""
    if not residual:
        return 1 if length in (None, n) else 0
    return 2 ** n if length is None else math.comb(n, length)


def iter_paths(n: int, length: int | None = None, residual: bool = True) -> Iterator[tuple[int, ...]]:
    """The paths as tuples of block indices (each the blocks whose residual branch the path takes), shortest
    first, lexicographic within a length; only those of ``length`` when given. Lazy: 2ⁿ never materialises."""
    n = check_blocks(n)
    if length is not None and not 0 <= length <= n:
        raise PathsError(f"a path of a {n}-block network has length 0..{n}, not {length}")
    if not residual:
        if length in (None, n):
            yield tuple(range(n))
        return
    lengths = range(n + 1) if length is None else (length,)
    for k in lengths:
        yield from itertools.combinations(range(n), k)


def _digits(number: int) -> str:
    """A huge integer as a user can read it in one line: all its digits up to 30 of them, else 10^k."""
    return f"{number:,}" if number < 10 ** 30 else f"about 10^{math.log10(number):.0f}"


def check_enumeration(n: int, length: int | None, limit: int | None, residual: bool = True,
                      force: bool = False, cap: int = MAX_ENUMERATION) -> int:
    """How many paths an enumeration will produce; PathsError when that exceeds ``cap`` and not ``force``."""
    if limit is not None and limit < 1:
        raise PathsError(f"a listing limit must be at least 1 path (got {limit})")
    if limit is not None and limit > MAX_LISTING_LIMIT:
        raise PathsError(f"a listing limit of {_digits(limit)} paths would not end in a lifetime (at a million "
                         f"paths a second, {MAX_LISTING_LIMIT:,} take 32 years): give at most {MAX_LISTING_LIMIT:,}")
    available = count_paths(n, length, residual)
    wanted = available if limit is None else min(limit, available)
    if wanted > cap and not force:
        if length is None and residual:
            what = f"2^{n} = {available:,} paths" if n <= 64 else f"2^{n} paths"
        else:
            what = f"{available:,} paths" if available < 10 ** 30 else f"about 10^{math.log10(available):.0f} paths"
        of_len = f" of length {length}" if length is not None else ""
        raise PathsError(f"a {n}-block network has {what}{of_len}; listing more than {cap:,} is refused: pass "
                         f"--limit N for the first N, --length K for one length, or --force to list them")
    return wanted
