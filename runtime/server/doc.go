// Package server wires the gateway: configuration, the bundle poller and
// activator, the identity verifier, the recorder, approvals, the protocol
// listeners and the admin HTTP server. It is the only package that knows
// every runtime component; each component gets its dependencies through its
// own Config.
//
// Lifecycle: New validates and allocates (it opens the record store and
// restores the last good bundle, nothing is served yet); Run starts every
// component in one errgroup rooted in the caller's context, and the first
// error cancels the rest; on cancellation listeners stop accepting, open
// connections get Config.ShutdownGrace to finish, the recorder flushes, and
// stores close.
package server
