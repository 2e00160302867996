// Package testclock gives tests that run the gateway on the example
// policies a fixed point in time. The policies' grants expire and their
// time windows follow the Berlin working week, so a test on the wall clock
// would pass or fail depending on the day and hour it runs. It is only
// imported by tests.
package testclock

import "time"

// Example is Monday 2026-11-02, 10:00 in Berlin: inside the business hours
// of policies/rules.cue, on the day its grants were last reviewed, and
// months before the first of them expires.
var Example = time.Date(2026, 11, 2, 10, 0, 0, 0, time.FixedZone("CET", 3600))

// Start returns a clock that reads at when Start is called and then
// advances with the wall clock, so timeouts, timers and the order of
// recorded events behave as they do on the real clock.
func Start(at time.Time) func() time.Time {
	start := time.Now()
	return func() time.Time { return at.Add(time.Since(start)) }
}
