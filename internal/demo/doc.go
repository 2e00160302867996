// Package demo runs Gatehouse end to end on embedded defaults: a throwaway
// PostgreSQL cluster with sample data, the example policies compiled and
// signed with a throwaway key, the gateway on the embedded SQLite store, and
// a scripted agent session that shows allow, mask, deny and approve. It
// backs `gatehouse demo` (and `make demo`) and the end-to-end tests.
package demo
