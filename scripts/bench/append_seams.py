#!/usr/bin/env python3
"""The seam of an append, measured: PESQ-NB of a window around it, against a serial encode.

Used by scripts/bench-append. Usage:

    append_seams.py CALL.wav CALLREC CALLREC_BENCH WORKDIR [--seams 12] [--before 30] [--after 10] [--window 4]

For each of --seams offsets s spread over the call (the first half of them moved to the loudest
20 ms frame within ±1 s, so that seams fall in speech as well as between sentences):

  part 1 = CALL[s − before, s), part 2 = CALL[s, s + after)   (seconds)
  serial   = `callrec transcode` of CALL[s − before, s + after)   (one encode of the whole)
  copy     = `callrec transcode` of part 1, then `callrec-bench append` of part 2   (packets kept)
  reencode = the same with `append --reencode`   (what callrec did before: part 1 decoded and encoded again)

Each is decoded with opusdec at 8 kHz and scored with pesq(8000, ref, deg, 'nb') on the window
[s − window/2, s + window/2) of the source. Also: whether `copy` decodes identically to `serial`
up to the first re-encoded packet (it should: the same packets), and the exact lengths.

Prints one line per seam and a summary; the last line is shell assignments for the caller
(SEAM_SERIAL, SEAM_COPY, SEAM_REENCODE: means over the seams in speech; SEAM_WORST: the worst
copy − serial among them; SEAM_EXACT: every length exact).
"""
import argparse
import os
import subprocess
import sys
import wave

import numpy as np
from pesq import pesq

RATE = 8000


def read(path):
    with wave.open(path, "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def write(path, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.asarray(x, dtype="<i2").tobytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("call")
    ap.add_argument("callrec")
    ap.add_argument("bench")
    ap.add_argument("work")
    ap.add_argument("--seams", type=int, default=12)
    ap.add_argument("--before", type=float, default=30)
    ap.add_argument("--after", type=float, default=10)
    ap.add_argument("--window", type=float, default=4)
    a = ap.parse_args()
    call = read(a.call)
    os.makedirs(a.work, exist_ok=True)
    w = lambda name: os.path.join(a.work, name)

    def run(*args):
        subprocess.run(list(args), check=True, stdout=subprocess.DEVNULL)

    def decode(path):
        run("opusdec", "--quiet", "--rate", str(RATE), path, w("d.wav"))
        return read(w("d.wav"))

    before, after = int(a.before * RATE), int(a.after * RATE)
    usable = range(before + RATE, len(call) - after - RATE)
    offsets = np.linspace(usable.start, usable.stop, a.seams + 2)[1:-1].astype(int)
    frame = RATE // 50
    rows = []
    for i, s in enumerate(offsets):
        if i < a.seams // 2:  # into speech: the loudest 20 ms frame within ±1 s
            lo = s - RATE
            energy = [np.sum(call[lo + j:lo + j + frame].astype(np.float64) ** 2) for j in range(0, 2 * RATE, frame)]
            s = lo + int(np.argmax(energy)) * frame + frame // 2
        s = int(s)
        seg = call[s - before:s + after]
        write(w("p1.wav"), call[s - before:s])
        write(w("p2.wav"), call[s:s + after])
        write(w("all.wav"), seg)
        run(a.callrec, "transcode", w("p1.wav"), w("p1.opus"), "--uniqueid", "1767225600.1")
        run(a.callrec, "transcode", w("all.wav"), w("serial.opus"), "--uniqueid", "1767225600.1")
        run(a.bench, "append", w("p1.opus"), w("p2.wav"), w("copy.opus"))
        run(a.bench, "append", "--reencode", w("p1.opus"), w("p2.wav"), w("reencode.opus"))
        serial, copy, reencode = decode(w("serial.opus")), decode(w("copy.opus")), decode(w("reencode.opus"))
        exact = len(serial) == len(copy) == len(reencode) == len(seg)
        k = before
        first_diff = np.nonzero(copy[:min(len(copy), len(serial))] != serial[:min(len(copy), len(serial))])[0]
        same_until_ms = (first_diff[0] - k) * 1000 / RATE if len(first_diff) else float("nan")
        h = int(a.window * RATE / 2)
        ref = seg[k - h:k + h]
        scores = [pesq(RATE, ref, x[k - h:k + h], "nb") for x in (serial, copy, reencode)]
        level = 10 * np.log10(max(1e-9, np.mean(seg[k - 160:k + 160].astype(np.float64) ** 2)) / 32768 ** 2)
        rows.append((s / RATE, level, same_until_ms, exact, *scores))
        print("  seam at %8.2f s  level %6.1f dBFS  copy = serial until %+6.1f ms  lengths %s  PESQ-NB serial %.3f  copy %.3f  re-encode %.3f"
              % (s / RATE, level, same_until_ms, "exact" if exact else "WRONG", *scores), flush=True)
    r = np.array([row[4:] for row in rows])
    mean = r.mean(axis=0)
    print("  all %d seams: serial %.3f, copy %.3f (%+.3f), re-encode %.3f (%+.3f)"
          % (len(rows), mean[0], mean[1], mean[1] - mean[0], mean[2], mean[2] - mean[0]))
    # PESQ is unreliable on windows that are mostly line noise (a serial encode can score 3.0
    # there): the figures that count are the seams in speech.
    speech = np.array([row[1] > -40 for row in rows])
    if not speech.any():
        speech[:] = True
    m = r[speech].mean(axis=0)
    worst = (r[speech][:, 1] - r[speech][:, 0]).min()
    print("  seams in speech (level at the seam > −40 dBFS, %d): serial %.3f, copy %.3f (%+.3f), re-encode %.3f (%+.3f); worst copy − serial %+.3f"
          % (speech.sum(), m[0], m[1], m[1] - m[0], m[2], m[2] - m[0], worst))
    print("SEAM_SERIAL=%.3f SEAM_COPY=%.3f SEAM_REENCODE=%.3f SEAM_WORST=%.3f SEAM_EXACT=%s"
          % (m[0], m[1], m[2], worst, "yes" if all(row[3] for row in rows) else "no"))

if __name__ == "__main__":
    sys.exit(main())
