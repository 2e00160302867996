// Package e2e tests the PostgreSQL data path end to end: the real gateway
// (runtime/server) with a bundle compiled from the example policies, real
// clients (pgx in simple and extended protocol, the psql binary) and a real
// PostgreSQL backend with the demo's sample data.
//
// The tests need a PostgreSQL server (127.0.0.1:5432, trust authentication
// for user postgres, or GATEHOUSE_TEST_PG_DSN) and the psql binary. Each
// test gets its own database and its own backend role with a password.
//
// The bypass table (bypass_test.go) runs attack queries as an agent and
// checks that no sensitive sample value (e-mail, SSN, card number, or a
// derived form such as its hash or base64 encoding) reaches the client in
// any row, error or notice, and that no table changed afterwards.
package e2e
