// Package browsertest drives the admin dashboard in headless Chromium
// against a real gateway: a bundle compiled from policies/, the PostgreSQL
// proxy in front of a fresh database on the local server, a SQLite
// recording store and the development token issuer.
//
// The scenario logs in as an admin and reads a recorded session, logs in
// as a DBA, has a page on another loopback port plant a CSRF cookie and
// submit the approval form (the vote must be refused), approves the
// statement that a waiting pgx client sent (the client then proceeds), and
// opens the access review of the agent to find its unused grants.
// Screenshots go to testout/screenshots/; with
// GATEHOUSE_UPDATE_SCREENSHOTS=1 the review page's screenshot also
// replaces docs/img/review.png.
//
// Chromium comes from Debian's "chromium" package, installed by
// scripts/deps.sh (which make test runs as root). The test installs
// nothing: a missing browser is a failure naming the package, unless
// GATEHOUSE_SKIP_INTEGRATION=1.
package browsertest
