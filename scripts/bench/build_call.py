#!/usr/bin/env python3
"""A long synthetic call (8 kHz mono WAV) built from Fixtures/audio/, deterministic for a seed.

Usage: build_call.py FIXTURES PIECES_DIR OUT.wav MINUTES SEED

The same builder as the one inside scripts/bench-media (copied here for scripts/bench-append, so
that the two benchmarks use the same kind of call): sentences cut from the fixtures, each in
several sox variants (level, tempo, pitch), shuffled and joined with line-noise gaps.
"""
import os, subprocess, sys, wave
import numpy as np

fixtures, pieces_dir, out_path, minutes, seed = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
RATE = 8000
os.makedirs(pieces_dir, exist_ok=True)
rng = np.random.default_rng(seed)
f = lambda name: os.path.join(fixtures, name)

# (input spec for sox, effects selecting the piece). speech.wav: sentence 1 = 0.70-2.12 s,
# sentence 2 = 3.42-4.80 s (Fixtures/audio/README.md); cuts keep ~150 ms of line noise around.
S1, S2, BOTH = ["trim", "0.55", "1.72"], ["trim", "3.27", "1.68"], ["trim", "0.55", "4.40"]
bases = [
    ([f("speech.wav")], S1), ([f("speech.wav")], S2), ([f("speech.wav")], BOTH),
    ([f("speech.wav16")], S1), ([f("speech.wav16")], S2),                # 16 kHz -> 8 kHz
    ([f("speech.WAV")], S1), ([f("speech.WAV")], S2),                    # GSM 6.10 (WAV49)
    (["-t", "ul", "-r", "8000", "-c", "1", f("speech.ulaw")], S1),
    (["-t", "al", "-r", "8000", "-c", "1", f("speech.alaw")], S2),
    ([f("stereo16k.wav")], ["remix", "1"]),                               # caller, 16 kHz -> 8 kHz
    ([f("stereo16k.wav")], ["remix", "2"]),                               # callee, -6 dB, 16 kHz -> 8 kHz
    ([f("hd48k-24bit.wav")], []),                                         # 48 kHz 24-bit -> 8 kHz
]
VARIANTS = 4
pool = []
for bi, (inp, sel) in enumerate(bases):
    for v in range(VARIANTS):
        fx = list(sel)
        if v > 0:  # variant 0 is the piece as it is (level aside)
            if rng.random() < 0.7:
                fx += ["tempo", "-s", f"{rng.uniform(0.85, 1.15):.3f}"]
            if rng.random() < 0.6:
                fx += ["pitch", f"{rng.uniform(-150, 150):.0f}"]
        fx += ["norm", f"{rng.uniform(-18, -3):.1f}"]  # peak level: loud and quiet talkers
        path = os.path.join(pieces_dir, f"p{bi:02d}v{v}.raw")
        subprocess.run(["sox", "-V1", "-R"] + inp + ["-t", "raw", "-e", "signed", "-b", "16", "-c", "1",
                        "-r", str(RATE), "-L", path] + fx + ["rate", "-v", str(RATE)], check=True)
        pool.append(np.fromfile(path, dtype="<i2"))

total = int(round(minutes * 60 * RATE))
written = 0
noise_db = -60.0
with wave.open(out_path, "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(RATE)
    def put(x):
        global written
        x = x[: total - written]
        w.writeframes(np.ascontiguousarray(x, dtype="<i2").tobytes())
        written += len(x)
    order = []
    n_pieces = 0
    while written < total:
        if not order:
            order = list(rng.permutation(len(pool)))
        if n_pieces % 100 == 0:  # the line changes now and then: another noise floor
            noise_db = rng.uniform(-66, -54)
        gap_s = rng.choice([rng.uniform(0.15, 0.8), rng.uniform(0.8, 2.5), rng.uniform(2.5, 5.0)], p=[0.55, 0.35, 0.10])
        gap = rng.normal(0.0, 32768 * 10 ** (noise_db / 20), int(gap_s * RATE))
        put(np.clip(np.round(gap), -32768, 32767).astype(np.int16))
        put(pool[order.pop()])
        n_pieces += 1
print(f"{n_pieces} pieces from a pool of {len(pool)} ({len(bases)} cuts x {VARIANTS} variants)")
