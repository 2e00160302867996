// Package fetch retrieves candidate bundles from where they are published.
//
// A Source performs one request: Fetch(ctx, etag) returns the bytes and a new
// ETag, or ErrNotModified when the bundle has not changed since etag. Sources
// know nothing about signatures: every candidate they return is verified by
// runtime/bundle before it can become active.
//
// The Poller owns the schedule for every source: a regular interval with
// jitter (so a fleet of gateways does not poll in lock step), and exponential
// backoff after transport errors or rejected candidates. Sources are chosen
// by URL scheme in NewSource: "file://" or a plain path (watched with
// fsnotify so a new file is picked up at once) and "http://", "https://"
// (conditional GET with If-None-Match).
package fetch
