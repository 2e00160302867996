// Package pg is the PostgreSQL wire-protocol proxy of Gatehouse. It
// terminates the client's protocol (version 3.0), authenticates the agent by
// the token it sends as its password, logs in to the backend with the
// resource's own credential, and relays every message, asking the policy
// hooks about each statement before it reaches the backend.
//
// # Main types
//
//   - Handler: New(Config) then ServeConn(ctx, net.Conn) per accepted
//     connection. Safe for concurrent use; it owns the cancel-key registry
//     shared by its connections.
//   - Config: Hooks, Backend resolver, client TLS, limits, logger, clock.
//     Validate fills defaults.
//   - Hooks.Authenticate returns a Session; Session.CheckQuery returns a
//     Verdict (allow or deny with an error, notices, an approval Wait, a
//     RowRewriter for masking); Session.Done receives a CommandResult per
//     command; Session.Close ends it.
//   - RenderError maps any error to the ErrorResponse the client sees.
//
// # Invariants
//
//   - A denied statement's text never reaches the backend. The proxy sends a
//     fixed substitute in its place, a syntax error the backend rejects at
//     parse time without executing anything, and replaces the backend's
//     error with the deny (SQLSTATE 42501 by default). So a denial behaves
//     exactly like any failed statement: inside a transaction block the
//     transaction becomes aborted (status 'E'), later statements fail with
//     25P02 until the client sends ROLLBACK (a COMMIT rolls back), and the
//     session stays usable afterwards. Responses stay in wire order even
//     when the client pipelines.
//   - A denied Parse answers ErrorResponse; the proxy then discards the
//     client's messages until Sync (as the backend does after an error) and
//     the backend's ReadyForQuery answers the Sync.
//   - Row rewriting: the proxy keeps per-connection maps of prepared
//     statements and portals to their RowRewriter, because clients such as
//     pgx cache statements and do not ask for the RowDescription again. A
//     rewriter that refuses a RowDescription or a CopyData withholds the
//     result: the client gets ErrRewrite and nothing else until
//     ReadyForQuery.
//   - The backend credential never reaches the client, a log or an error;
//     the token never appears in an error or a log.
//   - CancelRequest: clients get a random gateway key per connection; only an
//     exact (pid, secret) match is forwarded, with the backend's own key.
//   - FunctionCall messages are denied: they bypass SQL parsing. CopyBoth and
//     replication connections are refused. Only an allow-list of startup
//     parameters (DefaultForwardParams) is passed on to the backend.
//   - Every read is bounded (MaxMessageSize, MaxBackendMessageSize,
//     MaxTokenSize, 10000-byte startup packets); input never panics.
//
// # Concurrency and buffering
//
// Each connection has two goroutines: the client reader (judges and
// forwards, owns the backend writer) and the backend reader (relays and
// rewrites). A queue of forwarded messages awaiting responses tells the
// backend reader which statement a response belongs to. Output is buffered
// and flushed only when no complete message is waiting on the other side,
// so pipelined traffic is batched and nothing waits on an unflushed buffer.
// An approval Wait blocks only its own connection's client reader. Messages
// that fit the read buffer are relayed without copying. Cancelling ctx sets
// past deadlines on both connections (context.AfterFunc), which unblocks
// both readers; ServeConn returns after both have stopped.
//
// # Message flow
//
// Protocol reference: https://www.postgresql.org/docs/current/protocol-flow.html
// (startup 55.2.1, simple query 55.2.2, extended query 55.2.3, COPY 55.2.6,
// asynchronous operations 55.2.7, cancel 55.2.8, SSL 55.2.10) and
// https://www.postgresql.org/docs/current/protocol-message-formats.html.
//
//	client                      gatehouse                          backend
//	  |-- SSLRequest ------------->|                                  |
//	  |<-------------- 'S' / 'N' --|  (TLS handshake when 'S')        |
//	  |-- StartupMessage --------->|                                  |
//	  |<-- AuthCleartextPassword --|                                  |
//	  |-- PasswordMessage(token) ->| Hooks.Authenticate               |
//	  |                            | Config.Backend(database)         |
//	  |                            |-- Startup, SCRAM/MD5/trust, TLS->|
//	  |                            |<--- ParameterStatus, KeyData, Z -|
//	  |<-- AuthOk, ParameterStatus, gateway BackendKeyData, Z --------|
//	  |                            |                                  |
//	  |  simple query (allowed)    |                                  |
//	  |-- Query(sql) ------------->| CheckQuery(sql): allow           |
//	  |                            |-- Query(sql) ------------------->|
//	  |<-- T, D (rewritten), C, Z -|<-------------- T, D..., C, Z ----|
//	  |                            |                                  |
//	  |  simple query (denied)     |                                  |
//	  |-- Query(sql) ------------->| CheckQuery(sql): deny            |
//	  |                            |-- Query(substitute) ------------>|
//	  |<-- ErrorResponse(42501), Z-|<---- ErrorResponse(42601), Z ----|
//	  |                            |                                  |
//	  |  extended query            |                                  |
//	  |-- Parse(s, sql) ---------->| CheckQuery(sql): allow, remember |
//	  |-- Describe(S s), Sync ---->|   s -> RowRewriter               |
//	  |                            |-- Parse, Describe, Sync -------->|
//	  |<-- 1, t, T, Z -------------|<-------------------- 1, t, T, Z -|
//	  |-- Bind(p, s), Execute(p),  |   p -> rewriter of s             |
//	  |   Sync ------------------->|-- Bind, Execute, Sync ---------->|
//	  |<-- 2, D (rewritten), C, Z -|<----------------- 2, D..., C, Z -|
//	  |                            |                                  |
//	  |  denied Parse in a pipeline|                                  |
//	  |-- Parse(sql), Bind,        | CheckQuery(sql): deny; discard   |
//	  |   Execute, Sync ---------->|   Bind, Execute until Sync       |
//	  |                            |-- Parse(substitute), Sync ------>|
//	  |<-- ErrorResponse(42501), Z-|<---- ErrorResponse(42601), Z ----|
//	  |                            |                                  |
//	  |  COPY FROM STDIN / TO STDOUT                                  |
//	  |-- Query(COPY ... FROM) --->| CheckQuery: allow -------------->|
//	  |<-- CopyInResponse ---------|<------------ CopyInResponse -----|
//	  |-- CopyData..., CopyDone -->|--------------------------------->|
//	  |<-- C, Z -------------------|<----------------------- C, Z ----|
//	  |-- Query(COPY ... TO) ----->| CheckQuery: allow -------------->|
//	  |<-- H, d (RowRewriter.CopyData), c, C, Z <--- H, d..., c, C, Z-|
//	  |                            |                                  |
//	  |  cancel (new connection)   |                                  |
//	  |-- CancelRequest(gw key) -->| exact match in registry?         |
//	  |                            |-- CancelRequest(backend key) --->|
//	  |<-------------- close ------|  (no match: close, send nothing) |
package pg
