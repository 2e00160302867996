package main

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/runtime/server"
)

type serveOptions struct {
	config string
}

func (o *serveOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&o.config, "config", "c", "", "configuration file (YAML, JSON or TOML); see docs/configuration.md")
}

func newServeCmd() *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Long: `Run the gateway: pull and verify signed bundles, accept agent connections,
decide every command, and record every session.

Configuration comes from --config, then GATEHOUSE_* environment variables
(GATEHOUSE_BUNDLE_SOURCE sets bundle.source). Every key is listed in
docs/configuration.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadServerConfig(o.config)
			if err != nil {
				return &usageError{err: err}
			}
			if o.config == "" && cfg.Bundle.Source == "" {
				return &usageError{err: errNoConfig}
			}
			logger, err := server.NewLogger(cfg.Log, os.Stderr)
			if err != nil {
				return &usageError{err: err}
			}
			srv, err := server.New(cmd.Context(), cfg, logger)
			if err != nil {
				return err
			}
			defer srv.Close()
			return srv.Run(cmd.Context())
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
