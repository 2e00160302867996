package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

type signOptions struct {
	Key    string
	Output string
}

func (o *signOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Key, "key", "", "private key file (from gatehouse keygen); password from "+keyPasswordEnv+" or the terminal")
	fs.StringVarP(&o.Output, "output", "o", "", `output file ("-" for stdout); default: BUNDLE.signed.json, or the input itself if it already is a .signed.json file`)
}

func newSignCmd() *cobra.Command {
	o := &signOptions{}
	cmd := &cobra.Command{
		Use:   "sign --key KEY [-o OUT] BUNDLE",
		Short: "Sign a bundle (adds one signature; run once per key for k-of-n)",
		Args:  oneArg("bundle file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSign(cmd.OutOrStdout(), cmd.ErrOrStderr(), o, args[0])
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runSign(stdout, stderr io.Writer, o *signOptions, in string) error {
	if o.Key == "" {
		return &usageError{err: fmt.Errorf("--key is required")}
	}
	keyPEM, err := readSmallFile(o.Key)
	if err != nil {
		return err
	}
	password, err := readKeyPassword(stderr, false)
	if err != nil {
		return err
	}
	key, err := bundle.LoadPrivateKey(keyPEM, password)
	if err != nil {
		return fmt.Errorf("%s: %w", o.Key, err)
	}
	data, err := readBundleFile(in)
	if err != nil {
		return err
	}
	signed, err := bundle.Sign(data, key)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	out := o.Output
	if out == "" {
		out = defaultSignedPath(in)
	}
	if out == "-" {
		_, err := stdout.Write(signed)
		return err
	}
	if err := writeFileAtomic(out, signed); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "Signed %s with key %s: %s\n", in, key.KeyID(), out)
	return nil
}

// defaultSignedPath maps bundle.json to bundle.signed.json; a .signed.json
// file is signed in place.
func defaultSignedPath(in string) string {
	if strings.HasSuffix(in, ".signed.json") {
		return in
	}
	return strings.TrimSuffix(in, ".json") + ".signed.json"
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
