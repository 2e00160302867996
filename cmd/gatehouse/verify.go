package main

import (
	"crypto"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

type verifyOptions struct {
	Keys      []string
	Threshold int
	At        string
}

func (o *verifyOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.Keys, "key", nil, "public key file; repeat for several keys")
	fs.IntVar(&o.Threshold, "threshold", 1, "number of distinct keys that must have signed")
	fs.StringVar(&o.At, "at", "", "check the validity window at this RFC 3339 time instead of now")
}

func newVerifyCmd() *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify --key KEY.pub [--key KEY2.pub --threshold 2] BUNDLE",
		Short: "Verify a signed bundle's signatures, digest and validity window",
		Long: `Verify a signed bundle as the gateway would accept it: signatures by at
least --threshold of the given keys, strict decoding, policy digest, canonical
encoding, and the not-before/expiry window. Exits with code 5 on rejection.`,
		Args: oneArg("bundle file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.OutOrStdout(), o, args[0], time.Now())
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runVerify(stdout io.Writer, o *verifyOptions, path string, now time.Time) error {
	if len(o.Keys) == 0 {
		return &usageError{err: fmt.Errorf("at least one --key is required")}
	}
	if o.At != "" {
		at, err := time.Parse(time.RFC3339, o.At)
		if err != nil {
			return &usageError{err: fmt.Errorf("--at: %w", err)}
		}
		now = at
	}
	keys := make([]crypto.PublicKey, 0, len(o.Keys))
	for _, p := range o.Keys {
		data, err := readSmallFile(p)
		if err != nil {
			return err
		}
		k, err := bundle.LoadPublicKey(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		keys = append(keys, k)
	}
	v, err := bundle.NewVerifier(keys, o.Threshold)
	if err != nil {
		return &usageError{err: err}
	}
	data, err := readBundleFile(path)
	if err != nil {
		if bundle.IsVerificationError(err) {
			return withCode(exitVerify, err)
		}
		return err
	}
	res, err := v.VerifyDetailed(data)
	if err != nil {
		return withCode(exitVerify, fmt.Errorf("%s: %w", path, err))
	}
	if err := bundle.Check(res.Bundle, nil, now); err != nil {
		return withCode(exitVerify, fmt.Errorf("%s: %w", path, err))
	}
	fmt.Fprintf(stdout, "Verified %s\n", path)
	fmt.Fprintf(stdout, "  signatures:   %d (threshold %d): %s\n", len(res.KeyIDs), v.Threshold(), strings.Join(res.KeyIDs, ", "))
	fmt.Fprintf(stdout, "  bundle:       %s\n", res.Digest)
	printManifest(stdout, &res.Bundle.Manifest)
	fmt.Fprintf(stdout, "  rules:        %d\n", len(res.Bundle.Policy.Rules))
	return nil
}
