"""A range encoder that writes exactly the words ``constriction``'s does, without ``constriction``.

``constriction`` (the edge's decoder) publishes no wheel for aarch64 Linux, where camera boards run. This
module reproduces, for the one configuration the bottleneck uses, what its
``stream.queue.RangeEncoder().encode(symbols, stream.model.Categorical(pmf, perfect=False))`` writes:

* the model: ``Categorical(pmf, perfect=False)`` quantizes a pmf to integer frequencies of ``PRECISION`` = 24
  bits the "fast" way — every symbol gets weight one, and the remaining ``2**24 - n`` is spread along the
  floating-point CDF: ``left[i] = floor(cdf[i] · (2**24 - n) / sum(pmf)) + i`` (the CDF summed left to right
  in float64, as Rust iterates);
* the coder: a range coder over 32-bit words with a 64-bit state (``lower``, ``range``), which renormalizes by
  emitting the top word of ``lower`` when ``range`` drops below ``2**32``, holds back words while a carry may
  still propagate into them (its "inverted" situation), and seals the stream with one or two words that name
  a point inside the final range (none for an empty stream).

The loop runs compiled by numba (which has aarch64 wheels) when it is installed, else as plain Python
(identical output, about 20× slower). Tests check every byte against ``constriction`` on x86.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PRECISION = 24
WORD_BITS = 32


def quantized_cdf(pmf: np.ndarray) -> np.ndarray:
    """The left cumulative frequencies of each symbol and the total (``2**PRECISION``), as uint64."""
    pmf = np.asarray(pmf, dtype=np.float64)
    n = len(pmf)
    if n < 2 or n >= (1 << PRECISION) - 1:
        raise ValueError(f"a categorical model needs 2 .. 2**{PRECISION} - 2 symbols, got {n}")
    if not np.all(pmf >= 0):
        raise ValueError("probabilities must not be negative")
    running = np.cumsum(pmf)  # sequential, left to right, like Rust's iterator
    normalization = running[-1]
    if not np.isfinite(normalization) or normalization <= np.finfo(np.float64).tiny:
        raise ValueError(f"probabilities must sum to a positive normal number, got {normalization}")
    scale = float((1 << PRECISION) - n) / normalization
    exclusive = np.concatenate(([0.0], running[:-1]))
    left = np.floor(exclusive * scale).astype(np.uint64) + np.arange(n, dtype=np.uint64)
    return np.append(left, np.uint64(1 << PRECISION))


def _release_inverted(words: np.ndarray, n: int, first_inverted: np.uint64, inverted: int, carried: bool) -> int:
    """Write the ``inverted`` words held back, now that it is known whether a carry reached them: the first one
    (plus one if it carried) and ``inverted - 1`` fillers (0 after a carry, else all ones). Returns the new
    length of ``words``."""
    word_max = np.uint64(0xFFFFFFFF)
    if carried:
        words[n] = np.uint32((first_inverted + np.uint64(1)) & word_max)
        filler = np.uint32(0)
    else:
        words[n] = np.uint32(first_inverted)
        filler = np.uint32(word_max)
    n += 1
    for _ in range(1, inverted):
        words[n] = filler
        n += 1
    return n


def _encode(symbols: np.ndarray, models: np.ndarray, cdfs: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The range coder itself: symbol ``i`` (an index into its model) coded with model ``models[i]``, whose
    CDF is ``cdfs[starts[m] : ...]``. Returns the sealed stream of 32-bit words. All arithmetic is on
    uint64, wrapping as the Rust original does."""
    mask = np.uint64(0xFFFFFFFFFFFFFFFF)
    lower = np.uint64(0)
    range_ = mask
    inverted = 0  # words held back while a carry may still reach them (0: the normal situation)
    first_inverted = np.uint64(0)
    words = np.empty(len(symbols) + 4, dtype=np.uint32)
    n = 0
    shift_state = np.uint64(WORD_BITS)
    precision = np.uint64(PRECISION)
    threshold = np.uint64(1 << WORD_BITS)
    for i in range(len(symbols)):
        base = starts[models[i]] + symbols[i]
        left = cdfs[base]
        probability = cdfs[base + 1] - left
        scale = range_ >> precision
        range_ = scale * probability
        new_lower = lower + scale * left  # wraps
        if inverted and new_lower + range_ > new_lower:  # the carry question is settled
            n = _release_inverted(words, n, first_inverted, inverted, new_lower < lower)
            inverted = 0
        lower = new_lower
        if range_ < threshold:
            range_ = range_ << shift_state
            lower_word = lower >> shift_state
            lower = lower << shift_state
            if inverted:
                inverted += 1
            elif lower + range_ > lower:
                words[n] = np.uint32(lower_word)
                n += 1
            else:
                inverted = 1
                first_inverted = lower_word
    if range_ == mask:  # nothing was encoded: nothing to seal
        return words[:n]
    point = lower + (threshold - np.uint64(1))
    if inverted:
        n = _release_inverted(words, n, first_inverted, inverted, point < lower)
    point_word = point >> shift_state
    words[n] = np.uint32(point_word)
    n += 1
    if ((lower + range_) >> shift_state) == point_word:
        words[n] = np.uint32(0)
        n += 1
    return words[:n]


try:  # compiled where numba exists (x86 and aarch64 wheels); the same function as plain Python otherwise
    import numba

    _release_inverted = numba.njit(cache=True, nogil=True)(_release_inverted)  # compiled first: _encode calls it
    _encode_compiled = numba.njit(cache=True, nogil=True)(_encode)
except ImportError:  # pragma: no cover - the plain loop is the fallback
    _encode_compiled = None


_warm = False


def _warm_up() -> None:
    """Load (or compile) the compiled coder now, so that the first frame does not pay for it."""
    global _warm
    if _encode_compiled is not None and not _warm:
        one = np.zeros(1, np.int64)
        _encode_compiled(one, one, np.array([0, 1 << PRECISION], np.uint64), one)
        _warm = True


class RangeEncoder:
    """Per-channel models built once; :meth:`encode` codes channel after channel, as the codec does."""

    def __init__(self, pmfs: Sequence[np.ndarray]) -> None:
        cdfs = [quantized_cdf(pmf) for pmf in pmfs]
        self.sizes = np.array([len(c) - 1 for c in cdfs], dtype=np.int64)
        self.starts = np.concatenate(([0], np.cumsum([len(c) for c in cdfs])[:-1])).astype(np.int64)
        self.cdfs = np.concatenate(cdfs).astype(np.uint64)
        _warm_up()

    def encode(self, planes: Sequence[np.ndarray], compiled: bool = True) -> np.ndarray:
        """Symbols per channel (indices into that channel's model: 0 … size - 1) → the 32-bit words."""
        if len(planes) != len(self.sizes):
            raise ValueError(f"{len(planes)} channels of symbols, {len(self.sizes)} models")
        symbols = np.concatenate([np.asarray(p, dtype=np.int64).ravel() for p in planes]) if planes else \
            np.zeros(0, np.int64)
        models = np.repeat(np.arange(len(planes), dtype=np.int64), [np.asarray(p).size for p in planes])
        if len(symbols) and (symbols.min() < 0 or np.any(symbols >= self.sizes[models])):
            raise ValueError("a symbol outside its model's alphabet cannot be encoded")
        if compiled and _encode_compiled is not None:
            return _encode_compiled(symbols, models, self.cdfs, self.starts)
        with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as it does in the original
            return _encode(symbols, models, self.cdfs, self.starts)
