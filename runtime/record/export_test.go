package record

// SetTestHook installs f, called under the recorder's lock when a Reserve,
// StartSession or End starts waiting ("wait-global", "wait-session") and
// when a waiter is granted ("grant"). f must not call the recorder.
func (r *Recorder) SetTestHook(f func(event, sessionID string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f == nil {
		r.testHook = nil
		return
	}
	r.testHook = func(event string, sr *SessionRecorder) { f(event, sr.s.ID) }
}

// MaxOutstanding is the highest number of slots the session has held at
// once (reserved plus recorded and not yet written).
func (sr *SessionRecorder) MaxOutstanding() int {
	sr.r.mu.Lock()
	defer sr.r.mu.Unlock()
	return sr.maxOut
}

// Outstanding is the recorder's current slot count: held and reserved.
func (r *Recorder) Outstanding() (used, reserved int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.used, r.reserved
}
