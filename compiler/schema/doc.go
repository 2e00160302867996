// Package schema embeds the CUE schema of the Gatehouse policy language
// (schema.cue in this directory), the single source of truth for what a
// policy may contain. The compiler checks every policy against this copy, so
// a policy repository is validated against the schema version of the
// compiler that builds it, whether or not the repository vendors or imports
// the schema.
package schema
