//go:build race

package record_test

// raceEnabled: the race detector slows the pure-Go SQLite store about
// tenfold, so the load tests run fewer events under it.
const raceEnabled = true
