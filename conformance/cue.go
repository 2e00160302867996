package conformance

import (
	"fmt"
	"io"
	"os"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
)

// MaxDataFileBytes bounds expected-change and test-case files.
const MaxDataFileBytes = 8 << 20

// loadData evaluates a CUE (or JSON, which is CUE) file, which must be
// concrete, and decodes it into v strictly: unknown fields are errors.
func loadData(path string, v any) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxDataFileBytes+1))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxDataFileBytes {
		return fmt.Errorf("%s: larger than %d bytes", path, MaxDataFileBytes)
	}
	defer func() {
		// The evaluator must not take the process down on a hostile file.
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: evaluation failed: %v", path, r)
		}
	}()
	val := cuecontext.New().CompileBytes(data, cue.Filename(path))
	if err := val.Err(); err != nil {
		return fmt.Errorf("%s", cueDetails(err))
	}
	if err := val.Validate(cue.Concrete(true)); err != nil {
		return fmt.Errorf("%s", cueDetails(err))
	}
	js, err := val.MarshalJSON()
	if err != nil {
		return fmt.Errorf("%s", cueDetails(err))
	}
	if err := decodeStrict(js, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func cueDetails(err error) string {
	s := cueerrors.Details(err, nil)
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}
