//go:build !race

package recordtest

const raceEnabled = false
