package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// keyPasswordEnv names the environment variable that holds the password of
// a signing key.
const keyPasswordEnv = "GATEHOUSE_KEY_PASSWORD"

type keygenOptions struct {
	Type            string
	OutputKeyPrefix string
	Force           bool
}

func (o *keygenOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Type, "type", bundle.KeyTypeECDSAP256, "key type: ecdsa-p256 or ed25519")
	fs.StringVar(&o.OutputKeyPrefix, "output-key-prefix", "gatehouse", "write the key pair to PREFIX.key and PREFIX.pub")
	fs.BoolVar(&o.Force, "force", false, "overwrite existing key files")
}

func newKeygenCmd() *cobra.Command {
	o := &keygenOptions{}
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Generate a bundle signing key pair (encrypted, cosign-compatible PEM)",
		Long: `Generate a key pair for signing bundles. The private key is encrypted with a
password taken from ` + keyPasswordEnv + ` or, on a terminal, prompted for.
An empty password is allowed but leaves the key effectively unprotected.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKeygen(cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runKeygen(stdout, stderr io.Writer, o *keygenOptions) error {
	if o.Type != bundle.KeyTypeECDSAP256 && o.Type != bundle.KeyTypeEd25519 {
		return &usageError{err: fmt.Errorf("--type %q: want %s or %s", o.Type, bundle.KeyTypeECDSAP256, bundle.KeyTypeEd25519)}
	}
	if o.OutputKeyPrefix == "" {
		return &usageError{err: errors.New("--output-key-prefix must not be empty")}
	}
	password, err := readKeyPassword(stderr, true)
	if err != nil {
		return err
	}
	if len(password) == 0 {
		fmt.Fprintln(stderr, "warning: the private key is encrypted with an empty password")
	}
	privPEM, pubPEM, err := bundle.GenerateKey(o.Type, password)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	pub, err := bundle.LoadPublicKey(pubPEM)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	id, err := bundle.KeyID(pub)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	keyPath, pubPath := o.OutputKeyPrefix+".key", o.OutputKeyPrefix+".pub"
	if err := writeNewFile(keyPath, privPEM, 0o600, o.Force); err != nil {
		return err
	}
	if err := writeNewFile(pubPath, pubPEM, 0o644, o.Force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Private key written to %s\nPublic key written to %s\nKey id: %s\n", keyPath, pubPath, id)
	return nil
}

// writeNewFile writes data to path, refusing to replace an existing file
// unless force is set.
func writeNewFile(path string, data []byte, perm os.FileMode, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, perm)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists (use --force to overwrite)", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// readKeyPassword returns the signing key password from keyPasswordEnv, or
// prompts for it on the terminal (twice when confirm is set).
func readKeyPassword(stderr io.Writer, confirm bool) ([]byte, error) {
	if pw, ok := os.LookupEnv(keyPasswordEnv); ok {
		return []byte(pw), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("no key password: set %s or run on a terminal", keyPasswordEnv)
	}
	fmt.Fprint(stderr, "Password for the private key: ")
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	if !confirm {
		return pw, nil
	}
	fmt.Fprint(stderr, "Repeat the password: ")
	again, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	if !bytes.Equal(pw, again) {
		return nil, errors.New("the passwords do not match")
	}
	return pw, nil
}

// noArgs rejects positional arguments as a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) != 0 {
		return &usageError{err: fmt.Errorf("unexpected arguments: %q", args)}
	}
	return nil
}

// oneArg requires exactly one positional argument, as a usage error.
func oneArg(name string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return &usageError{err: fmt.Errorf("want exactly one argument (%s), got %d", name, len(args))}
		}
		return nil
	}
}

// readBundleFile reads a bundle file with the size bound of the bundle
// package.
func readBundleFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := bundle.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// readSmallFile reads a key file, at most 64 KiB.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const limit = 64 << 10
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a key file", path, limit)
	}
	return data, nil
}
