// CallrecMedia — the media pipeline of callrec.
// Owns: decoding every MixMonitor format (recovering unclosed WAV headers), measuring samples,
// levels, silence and waveform peaks in one pass, encoding sample-exact Ogg Opus, and verifying it.
// Knows nothing of the catalog or HTTP: it takes paths and options and returns plain values.
