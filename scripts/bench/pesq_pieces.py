#!/usr/bin/env python3
"""PESQ narrow-band of a decoded recording against its source, on pieces at spread-out offsets.

Used by scripts/bench-media. Usage:

    pesq_pieces.py SOURCE.wav DECODED.s16le [--pieces 6] [--seconds 12]

SOURCE.wav is 8 kHz mono 16-bit PCM; DECODED.s16le is the encoded file decoded back to raw
8 kHz mono s16le (e.g. `ffmpeg -i out.opus -ar 8000 -ac 1 -f s16le DECODED.s16le`).

The call is cut into --pieces equal parts and one piece of --seconds is taken from the middle
of each part, at the same sample indices in both signals (no re-alignment: a decoder that
delays or drops samples shows up as a lag and as a lower score). Each piece is scored with
`pesq(8000, ref, deg, 'nb')` (ITU-T P.862 narrow-band, mapped to MOS-LQO by P.862.1 in the
`pesq` package: 4.55 is the best score, identical signals).

Prints shell assignments (KEY='value' lines) for the caller to eval:
REF_SAMPLES, DEG_SAMPLES, PESQ_MEAN, PESQ_MIN, PESQ_SCORES, PESQ_OFFSETS_S, PESQ_LAGS, PESQ_ERRORS.
PESQ_LAGS is the lag (in samples, positive = decoded is late) of the cross-correlation peak
within ±100 ms for each piece: 0 everywhere means sample-exact alignment.
"""
import argparse
import sys
import wave

import numpy as np
from pesq import pesq

RATE = 8000


def read_source(path):
    with wave.open(path, "rb") as w:
        if w.getframerate() != RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            sys.exit(f"pesq_pieces: {path} must be {RATE} Hz mono 16-bit, is "
                     f"{w.getframerate()} Hz {w.getnchannels()} ch {8 * w.getsampwidth()}-bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def lag_of(ref, deg, max_lag):
    """Lag (samples) of the cross-correlation peak of deg against ref, within ±max_lag."""
    n = 1
    while n < len(ref) + len(deg):
        n *= 2
    r = np.fft.rfft(ref.astype(np.float64), n)
    d = np.fft.rfft(deg.astype(np.float64), n)
    corr = np.fft.irfft(d * np.conj(r), n)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    vals = np.concatenate([corr[: max_lag + 1], corr[n - max_lag:]])
    return int(lags[int(np.argmax(vals))])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source")
    ap.add_argument("decoded")
    ap.add_argument("--pieces", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=12.0)
    a = ap.parse_args()

    ref = read_source(a.source)
    deg = np.fromfile(a.decoded, dtype="<i2")
    n = min(len(ref), len(deg))
    length = int(a.seconds * RATE)
    scores, offsets, lags, errors = [], [], [], []
    if n >= length:
        for i in range(a.pieces):
            start = int((i + 0.5) * n / a.pieces) - length // 2
            start = max(0, min(start, n - length))
            r = ref[start:start + length]
            d = deg[start:start + length]
            offsets.append(start / RATE)
            lags.append(lag_of(r, d, RATE // 10))
            try:
                scores.append(float(pesq(RATE, r.astype(np.float32), d.astype(np.float32), "nb")))
            except Exception as e:  # NoUtterancesError etc.: report, do not abort
                errors.append(f"piece {i} @ {start / RATE:.1f}s: {type(e).__name__}: {e}")
    else:
        errors.append(f"only {n} samples in common, need {length} for one piece")

    def q(v):
        return "'" + str(v).replace("'", "'\\''") + "'"

    print(f"REF_SAMPLES={len(ref)}")
    print(f"DEG_SAMPLES={len(deg)}")
    print(f"PESQ_MEAN={q(f'{np.mean(scores):.3f}' if scores else 'n/a')}")
    print(f"PESQ_MIN={q(f'{np.min(scores):.3f}' if scores else 'n/a')}")
    print(f"PESQ_SCORES={q(' '.join(f'{s:.3f}' for s in scores))}")
    print(f"PESQ_OFFSETS_S={q(' '.join(f'{o:.1f}' for o in offsets))}")
    print(f"PESQ_LAGS={q(' '.join(str(x) for x in lags))}")
    print(f"PESQ_ERRORS={q('; '.join(errors))}")


if __name__ == "__main__":
    main()
