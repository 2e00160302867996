package main

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/runtime/server"
)

type demoOptions struct {
	policyDir string
	stateDir  string
	pgListen  string
	admin     string
	once      bool
	verbose   bool
}

func (o *demoOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.policyDir, "dir", "policies", "policy directory")
	fs.StringVar(&o.stateDir, "state-dir", ".gatehouse/demo", "state directory (keys, bundle, SQLite recordings)")
	fs.StringVar(&o.pgListen, "postgres-listen", "127.0.0.1:6543", "gateway PostgreSQL listener")
	fs.StringVar(&o.admin, "admin-listen", "127.0.0.1:8081", "gateway admin API listener")
	fs.BoolVar(&o.once, "once", false, "exit after the scripted session instead of serving until Ctrl-C")
	fs.BoolVar(&o.verbose, "verbose", false, "print the gateway's logs")
}

func newDemoCmd() *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the gateway end to end on embedded defaults",
		Long: `Start a throwaway PostgreSQL cluster with sample data, compile and sign the
example policies with a throwaway key, start the gateway on the embedded
SQLite store, run a scripted agent session showing allow, mask, deny and
approve, print what was recorded, then keep serving and print a psql command
line to try, until Ctrl-C.

Needs the PostgreSQL server binaries (Debian: apt-get install postgresql).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := demo.Options{
				PolicyDir: o.policyDir, StateDir: o.stateDir,
				PostgresListen: o.pgListen, AdminListen: o.admin,
				Interactive: !o.once, Out: cmd.OutOrStdout(),
			}
			if o.verbose {
				logger, err := server.NewLogger(server.LogConfig{Level: "info"}, os.Stderr)
				if err != nil {
					return err
				}
				opts.Logger = logger
			}
			_, err := demo.Run(cmd.Context(), opts)
			return err
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
