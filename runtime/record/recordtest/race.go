//go:build race

package recordtest

// raceEnabled: the race detector slows the stores about tenfold, so the
// load tests run fewer events under it (the same interleavings).
const raceEnabled = true
