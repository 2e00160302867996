// Package ui is the admin dashboard: server-rendered pages under /ui/ over
// the same data and the same authentication as the JSON admin API (access
// review, sessions and their replay, the approvals queue, bundle status).
// Templates and assets are embedded; pages read without JavaScript.
//
// A Handler gets everything through its Config: a function that turns a
// token into a principal of the active policy, the active bundle, the
// recordings, the approval service and the gateway's status. It starts no
// goroutines and holds no state beyond its Config, so gateways behind one
// load balancer serve the same logins as long as they share Config.Key.
//
// # Logins
//
// A browser logs in by pasting a token of a policy identity. The handler
// then draws a random 256-bit session id and keeps "HEXID.TOKEN" in one
// HttpOnly, SameSite=Strict cookie scoped to /ui/; the token is verified
// and resolved against the active policy on every request. A request may
// instead send "Authorization: Bearer TOKEN" (for proxies that inject it);
// its session id is then the SHA-256 of the token.
//
// # Forgery protection
//
// Two independent checks guard every request that changes something (log
// in, log out, vote):
//
//  1. Origin: net/http's CrossOriginProtection refuses unsafe requests that
//     the browser marks as coming from another origin (Sec-Fetch-Site other
//     than same-origin or none; without it, an Origin whose host:port differs
//     from Host). "Another origin" includes another port of the same host,
//     which SameSite cookies do not separate.
//  2. Session binding: the form's CSRF token must equal
//     HMAC-SHA256(Config.Key, purpose, session id), compared in constant
//     time. Only a page the dashboard rendered for this login knows it: a
//     value planted in a cookie proves nothing, and a token taken from one
//     login does not work for another. The log-in form, before any login,
//     is bound to a random nonce cookie instead, which the origin check
//     backs.
//
// Either check alone stops the cross-port attack in current browsers; both
// together keep the protection when one of them is unavailable (a browser
// that sends neither Sec-Fetch-Site nor Origin, or a leaked page).
package ui
