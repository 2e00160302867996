// Command pgserve runs the gateway for bench/pgbench.sh: it compiles a
// policy directory into an unsigned bundle, serves the PostgreSQL listener
// with the SQLite recorder and the development issuer (as `gatehouse serve`
// with the demo defaults would), writes a token for one identity to a
// file, and optionally serves net/http/pprof for profiling.
package main
