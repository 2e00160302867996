package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Policy-as-code gateway between AI agents and production resources",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{err: err}
	})
	// Subcommands, one file each. Keep this list sorted.
	root.AddCommand(
		// subcommands are registered here
		newApprovalsCmd(),
		newBuildCmd(),
		newCheckCmd(),
		newDemoCmd(),
		newDiffCmd(),
		newInspectCmd(),
		newKeygenCmd(),
		newLintCmd(),
		newReplayCmd(),
		newReviewCmd(),
		newServeCmd(),
		newSessionsCmd(),
		newSignCmd(),
		newTestCmd(),
		newTokenCmd(),
		newVerifyCmd(),
	)
	return root
}

// newViper returns a viper instance that reads GATEHOUSE_* environment
// variables (dots and dashes in keys become underscores).
func newViper() *viper.Viper {
	v := viper.New()
	v.SetEnvPrefix("GATEHOUSE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	return v
}
