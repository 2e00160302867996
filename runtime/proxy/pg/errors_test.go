package pg_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/runtime/proxy/pg"
)

func TestRenderError(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, code, msg string
		err             error
	}{
		{"denied", "42501", pg.ErrDenied.Error(), pg.ErrDenied},
		{"denied_wrapped", "42501", "rule r1: permission denied by gatehouse policy", fmt.Errorf("rule r1: %w", pg.ErrDenied)},
		{"custom", "42501", "needs approval", &pg.Error{Code: "42501", Message: "needs approval", Hint: "ask"}},
		{"custom_default_code", "XX000", "x", &pg.Error{Message: "x"}},
		{"function_call", "42501", pg.ErrFunctionCall.Error(), pg.ErrFunctionCall},
		{"auth", "28P01", pg.ErrAuthFailed.Error(), pg.ErrAuthFailed},
		{"tls", "28000", pg.ErrTLSRequired.Error(), pg.ErrTLSRequired},
		{"protocol", "08P01", pg.ErrProtocolViolation.Error(), pg.ErrProtocolViolation},
		{"too_large", "08P01", pg.ErrMessageTooLarge.Error(), pg.ErrMessageTooLarge},
		{"unsupported", "0A000", pg.ErrUnsupportedProtocol.Error(), pg.ErrUnsupportedProtocol},
		{"copy_both", "0A000", pg.ErrCopyBoth.Error(), pg.ErrCopyBoth},
		{"backend", "08001", pg.ErrBackendUnavailable.Error(), fmt.Errorf("x: %w", pg.ErrBackendUnavailable)},
		{"pending", "54000", pg.ErrTooManyPending.Error(), pg.ErrTooManyPending},
		{"rewrite", "42501", pg.ErrRewrite.Error(), pg.ErrRewrite},
		{"timeout", "57014", "canceling statement due to timeout", context.DeadlineExceeded},
		{"canceled", "57014", "canceling statement due to gateway shutdown", context.Canceled},
		{"pg_error", "23505", "dup", &pgconn.PgError{Severity: "ERROR", Code: "23505", Message: "dup"}},
		{"unknown_hides_text", "XX000", "internal error in gatehouse", errors.New("password=hunter2")},
		{"nil", "XX000", "internal error", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := pg.RenderError(tc.err)
			if r.Code != tc.code || r.Message != tc.msg || r.Severity != "ERROR" || r.SeverityUnlocalized != "ERROR" {
				t.Fatalf("got %s %q %s, want %s %q ERROR", r.Code, r.Message, r.Severity, tc.code, tc.msg)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	backend := func(context.Context, string) (pg.BackendConfig, error) { return pg.BackendConfig{}, nil }
	hooks := newHooks()
	cases := []struct {
		name string
		cfg  pg.Config
		ok   bool
	}{
		{"ok", pg.Config{Hooks: hooks, Backend: backend}, true},
		{"no_hooks", pg.Config{Backend: backend}, false},
		{"no_backend", pg.Config{Hooks: hooks}, false},
		{"require_tls_without_cert", pg.Config{Hooks: hooks, Backend: backend, RequireTLS: true}, false},
		{"negative_idle", pg.Config{Hooks: hooks, Backend: backend, IdleTimeout: -1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			err := cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (cfg.MaxMessageSize != pg.DefaultMaxMessageSize || cfg.Logger == nil || cfg.Now == nil || cfg.ForwardParams == nil) {
				t.Fatalf("defaults not filled: %+v", cfg)
			}
		})
	}
}
