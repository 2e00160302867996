package bundle_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	cand := testBundle(t, 2, 10)
	inside := testNotBefore.Add(24 * time.Hour)
	active := func(serial uint64, digest string) *bundle.Manifest {
		m := testBundle(t, 1, serial).Manifest
		if digest != "" {
			m.PolicyDigest = digest
		}
		return &m
	}
	v2 := *cand
	v2.Manifest.FormatVersion = 2

	tests := []struct {
		name   string
		b      *bundle.Bundle
		active *bundle.Manifest
		now    time.Time
		opts   []bundle.CheckOption
		want   []error
		not    []error
	}{
		{name: "first bundle", b: cand, now: inside},
		{name: "newer serial", b: cand, active: active(9, ""), now: inside},
		{name: "rollback to lower serial", b: cand, active: active(11, ""), now: inside, want: []error{bundle.ErrRollback}, not: []error{bundle.ErrNotNewer}},
		{name: "equal serial, other content", b: cand, active: active(10, ""), now: inside, want: []error{bundle.ErrRollback}, not: []error{bundle.ErrNotNewer}},
		{name: "equal serial, same content", b: cand, active: active(10, cand.Manifest.PolicyDigest), now: inside, want: []error{bundle.ErrNotNewer, bundle.ErrRollback}},
		{name: "expired", b: cand, now: testExpires.Add(time.Hour), want: []error{bundle.ErrExpired}},
		{name: "expires exactly now, no skew", b: cand, now: testExpires, opts: []bundle.CheckOption{bundle.WithClockSkew(0)}, want: []error{bundle.ErrExpired}},
		{name: "just expired, within default skew", b: cand, now: testExpires.Add(30 * time.Second)},
		{name: "just expired, beyond default skew", b: cand, now: testExpires.Add(bundle.DefaultClockSkew), want: []error{bundle.ErrExpired}},
		{name: "not yet valid", b: cand, now: testNotBefore.Add(-time.Hour), want: []error{bundle.ErrNotYetValid}},
		{name: "not yet valid, within default skew", b: cand, now: testNotBefore.Add(-30 * time.Second)},
		{name: "not yet valid, skew widened", b: cand, now: testNotBefore.Add(-time.Hour), opts: []bundle.CheckOption{bundle.WithClockSkew(2 * time.Hour)}},
		{name: "negative skew is zero", b: cand, now: testNotBefore.Add(-time.Second), opts: []bundle.CheckOption{bundle.WithClockSkew(-time.Hour)}, want: []error{bundle.ErrNotYetValid}},
		{name: "now in another zone", b: cand, now: inside.In(time.FixedZone("X", -8*3600))},
		{name: "format version", b: &v2, now: inside, want: []error{bundle.ErrFormatVersion}},
		{name: "nil candidate", b: nil, now: inside, want: []error{bundle.ErrMalformed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := bundle.Check(tc.b, tc.active, tc.now, tc.opts...)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check accepted, want %v", tc.want)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q is not %v", err, w)
				}
			}
			for _, n := range tc.not {
				if errors.Is(err, n) {
					t.Errorf("error %q is %v", err, n)
				}
			}
			if !bundle.IsVerificationError(err) {
				t.Errorf("error %q is not a *VerificationError", err)
			}
		})
	}
}
