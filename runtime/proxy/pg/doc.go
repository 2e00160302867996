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
//   - Hooks.Authenticate returns a Session. The proxy asks it to Classify
//     every Query and Parse text, to Judge every statement once the proxy
//     has resolved what it refers to (an EXECUTE to its prepared statement,
//     a FETCH to its cursor), to Approve what needs a human, and to Reserve
//     recording slots before anything runs; Slots.Record receives each
//     outcome and Deny each refusal.
//   - RenderError maps any error to the ErrorResponse the client sees.
//
// # Session state: the backend's truth
//
// PostgreSQL keeps prepared statements and portals per session, and SQL
// PREPARE/DECLARE share one namespace each with the protocol's Parse/Bind.
// The proxy keeps a model of them (state.go) that changes only when the
// backend confirms a change, in order: ParseComplete, BindComplete,
// CloseComplete, the CommandComplete of PREPARE, DECLARE, DEALLOCATE,
// CLOSE, DISCARD ALL and transaction control, and ReadyForQuery for the
// end of a transaction (non-holdable portals die at commit; portals created
// in an aborted transaction or a rolled-back savepoint die with it; WITH
// HOLD cursors survive a commit). A simple Query drops the unnamed
// statement and portal; a failing portal is dropped. Names are compared as
// the backend compares them: exactly, in the server encoding, on their
// first 63 bytes.
//
// The client reader judges messages before the backend answered the
// earlier ones. Within an epoch (the messages between two Syncs or simple
// Queries) a failure makes the backend skip everything up to Sync, so
// judging on the assumption that earlier messages of the epoch succeeded is
// sound; a reference to a name changed by an unanswered message of an
// earlier epoch waits for the backend's answer. A reference to a statement
// or portal the proxy does not know is refused (26000 or 34000), never
// forwarded with a guess.
//
// # Invariants
//
//   - A denied statement's text never reaches the backend. A denied simple
//     Query is replaced by a fixed syntax error the backend rejects at parse
//     time; a denied extended-protocol message by a Describe of a statement
//     that cannot exist (the gateway reserves its name prefix), which fails
//     without side effects. Either way the backend behaves as after any
//     failure (an open transaction block becomes aborted, the extended
//     protocol skips to Sync, responses keep their order) and the proxy
//     replaces the backend's error with the refusal. The proxy also
//     discards the client's messages up to Sync after a refused
//     extended-protocol message, as the backend would.
//   - Every execution is judged with the active policy: each statement of
//     a simple Query, each Bind (with its parameters shown to approvers:
//     one approval covers one execution), each Execute of a cursor or of a
//     statement that refers to session state. EXECUTE arguments are judged
//     with the prepared statement, and their columns flow into its outputs.
//   - Masking follows the statement that produced the rows: each statement
//     of a Query and each executed portal has its own RowRewriter. A portal
//     executed without a RowDescription of its own is described by the
//     proxy first (the answer is consumed), so the rewriter knows the real
//     result formats. A rewriter that refuses a RowDescription or CopyData
//     withholds the result: the client gets ErrRewrite and no rows.
//   - A backend answer that does not fit the message the proxy expects ends
//     the connection: a response is never attributed to the wrong
//     statement.
//   - Text is read as the backend reads it: converted from the session's
//     client encoding to UTF-8 and checked against standard_conforming_strings,
//     both taken from the backend's ParameterStatus reports; after a
//     statement that may change them the proxy classifies nothing more until
//     the backend has answered.
//   - Nothing runs unrecorded: the proxy reserves the recording slots of a
//     message before it forwards it and stops reading the client while the
//     recorder is behind.
//   - The backend credential never reaches the client, a log or an error;
//     the token never appears in an error or a log.
//   - CancelRequest: clients get a random gateway key per connection; only an
//     exact (pid, secret) match is forwarded, with the backend's own key.
//   - FunctionCall messages are denied: they bypass SQL parsing. CopyBoth and
//     replication connections are refused. Only an allow-list of startup
//     parameters (DefaultForwardParams) is passed on to the backend.
//   - Every read is bounded (MaxMessageSize, MaxBackendMessageSize,
//     MaxTokenSize, 10000-byte startup packets), and so is the state one
//     session can make the proxy keep (MaxStatements, MaxPortals,
//     MaxSessionText); input never panics.
//
// # Concurrency and buffering
//
// Each connection has two goroutines: the client reader (judges and
// forwards, owns the backend writer) and the backend reader (relays,
// rewrites and confirms). A queue of forwarded messages awaiting responses
// tells the backend reader which statement a response belongs to; it and
// the session state share one mutex, and the client reader waits on its
// condition when it needs the backend's answer first (or when MaxPending
// messages are unanswered). Output is buffered and flushed only when no
// complete message is waiting on the other side, so pipelined traffic is
// batched and nothing waits on an unflushed buffer. An approval wait blocks
// only its own connection's client reader. Cancelling ctx sets past
// deadlines on both connections (context.AfterFunc), which unblocks both
// readers; ServeConn returns after both have stopped.
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
//	  |-- Query(sql) ------------->| Judge each statement: allow      |
//	  |                            |-- Query(sql) ------------------->|
//	  |<-- T, D (rewritten), C, Z -|<-------------- T, D..., C, Z ----|
//	  |                            |                                  |
//	  |  simple query (denied)     |                                  |
//	  |-- Query(sql) ------------->| Judge: deny                      |
//	  |                            |-- Query(substitute) ------------>|
//	  |<-- ErrorResponse(42501), Z-|<---- ErrorResponse(42601), Z ----|
//	  |                            |                                  |
//	  |  extended query            |                                  |
//	  |-- Parse(s, sql) ---------->| Judge: allow; on ParseComplete   |
//	  |-- Describe(S s), Sync ---->|   s exists                       |
//	  |                            |-- Parse, Describe, Sync -------->|
//	  |<-- 1, t, T, Z -------------|<-------------------- 1, t, T, Z -|
//	  |-- Bind(p, s), Execute(p),  | Judge s again (policy now); on   |
//	  |   Sync ------------------->|   BindComplete p exists          |
//	  |                            |-- Bind, Execute, Sync ---------->|
//	  |<-- 2, D (rewritten), C, Z -|<----------------- 2, D..., C, Z -|
//	  |                            |                                  |
//	  |  denied Parse in a pipeline|                                  |
//	  |-- Parse(sql), Bind,        | Judge: deny; discard             |
//	  |   Execute, Sync ---------->|   Bind, Execute until Sync       |
//	  |                            |-- Describe(S reserved), Sync --->|
//	  |<-- ErrorResponse(42501), Z-|<---- ErrorResponse(26000), Z ----|
//	  |                            |                                  |
//	  |  COPY FROM STDIN / TO STDOUT                                  |
//	  |-- Query(COPY ... FROM) --->| Judge: allow ------------------->|
//	  |<-- CopyInResponse ---------|<------------ CopyInResponse -----|
//	  |-- CopyData..., CopyDone -->|--------------------------------->|
//	  |<-- C, Z -------------------|<----------------------- C, Z ----|
//	  |-- Query(COPY ... TO) ----->| Judge: allow ------------------->|
//	  |<-- H, d (RowRewriter.CopyData), c, C, Z <--- H, d..., c, C, Z-|
//	  |                            |                                  |
//	  |  cancel (new connection)   |                                  |
//	  |-- CancelRequest(gw key) -->| exact match in registry?         |
//	  |                            |-- CancelRequest(backend key) --->|
//	  |<-------------- close ------|  (no match: close, send nothing) |
package pg
