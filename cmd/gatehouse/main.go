// Command gatehouse is the single Gatehouse binary: the policy compiler's
// command line (build, lint, test, diff, sign, verify) and the gateway (serve).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // policies name time zones; never depend on the host's zoneinfo
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCmd().ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
	}
	os.Exit(exitCode(err))
}

// Exit codes, documented in docs/cli.md. Only this package maps errors to
// them.
const (
	exitOK            = 0
	exitError         = 1 // any other failure
	exitUsage         = 2 // bad flags or arguments
	exitInvalidPolicy = 3 // policy does not validate or compile
	exitTestFailure   = 4 // policy tests or conformance changes failed
	exitVerify        = 5 // bundle signature or verification failure
	exitFindings      = 6 // lint errors, or escalation with --fail-on-escalation
)

// exitError carries an explicit exit code through cobra.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// withCode wraps err so that main exits with code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitError
}

// usageError marks errors in flags or arguments.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }
