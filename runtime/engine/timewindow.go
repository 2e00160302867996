package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// window is a compiled bundle.TimeWindow.
type window struct {
	days  uint8 // bit per time.Weekday
	start int   // seconds since midnight, inclusive
	end   int   // seconds since midnight, exclusive; 86400 for "24:00"
	loc   *time.Location
}

const allDays = 0x7f

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func compileWindow(w bundle.TimeWindow) (window, error) {
	cw := window{loc: time.UTC}
	if len(w.Days) == 0 {
		cw.days = allDays
	}
	for _, d := range w.Days {
		wd, ok := dayNames[strings.ToLower(d)]
		if !ok {
			return window{}, fmt.Errorf("time window: unknown day %q (want mon..sun)", d)
		}
		cw.days |= 1 << wd
	}
	var err error
	if cw.start, err = clock(w.Start, false); err != nil {
		return window{}, fmt.Errorf("time window start: %w", err)
	}
	if cw.end, err = clock(w.End, true); err != nil {
		return window{}, fmt.Errorf("time window end: %w", err)
	}
	if w.Timezone != "" {
		if cw.loc, err = time.LoadLocation(w.Timezone); err != nil {
			return window{}, fmt.Errorf("time window timezone %q: %w", w.Timezone, err)
		}
	}
	return cw, nil
}

// clock parses "HH:MM" (or "HH:MM:SS") into seconds since midnight; "24:00"
// is accepted as an end.
func clock(s string, end bool) (int, error) {
	if end && (s == "24:00" || s == "24:00:00") {
		return 86400, nil
	}
	layout := "15:04"
	if len(s) == len("15:04:05") {
		layout = "15:04:05"
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return t.Hour()*3600 + t.Minute()*60 + t.Second(), nil
}

// contains reports whether t lies inside the window. An overnight window
// (end before start) belongs to the day it starts on: "mon 22:00-02:00"
// contains Tuesday 01:00. A window whose start equals its end spans the
// whole day.
func (w *window) contains(t time.Time) bool {
	lt := t.In(w.loc)
	sec := lt.Hour()*3600 + lt.Minute()*60 + lt.Second()
	wd := lt.Weekday()
	on := func(d time.Weekday) bool { return w.days&(1<<d) != 0 }
	switch {
	case w.start < w.end:
		return on(wd) && sec >= w.start && sec < w.end
	case w.start > w.end:
		if on(wd) && sec >= w.start {
			return true
		}
		return on((wd+6)%7) && sec < w.end
	default:
		return on(wd)
	}
}
