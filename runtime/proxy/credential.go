package proxy

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrCredential reports a credential reference that cannot be resolved. Its
// message names the reference, never a secret.
var ErrCredential = errors.New("cannot resolve backend credential")

// maxCredentialFile bounds a credential file.
const maxCredentialFile = 64 << 10

// ResolveCredential turns a reference into the secret: "env:NAME" reads an
// environment variable, "file:PATH" a file (trailing newlines trimmed), ""
// means no password (trust or certificate authentication). Anything else is
// refused, so a literal secret in a policy can never be used by accident.
func ResolveCredential(ref string) (string, error) {
	switch {
	case ref == "":
		return "", nil
	case strings.HasPrefix(ref, "env:"):
		name := strings.TrimPrefix(ref, "env:")
		v, ok := os.LookupEnv(name)
		if !ok || name == "" {
			return "", fmt.Errorf("%w: environment variable %q is not set", ErrCredential, name)
		}
		return v, nil
	case strings.HasPrefix(ref, "file:"):
		path := strings.TrimPrefix(ref, "file:")
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrCredential, ref, errors.Unwrap(err))
		}
		defer f.Close()
		buf := make([]byte, maxCredentialFile+1)
		n, _ := f.Read(buf)
		if n > maxCredentialFile {
			return "", fmt.Errorf("%w: %s: larger than %d bytes", ErrCredential, ref, maxCredentialFile)
		}
		return strings.TrimRight(string(buf[:n]), "\r\n"), nil
	default:
		return "", fmt.Errorf("%w: reference must start with \"env:\" or \"file:\"", ErrCredential)
	}
}
