package sqlite

// migrations are applied in order; the index+1 is the schema version
// recorded in schema_version. Never edit a released migration: append.
var migrations = []string{
	`CREATE TABLE sessions (
		id              TEXT PRIMARY KEY,
		identity        TEXT NOT NULL,
		identity_kind   TEXT NOT NULL,
		groups_json     TEXT NOT NULL,
		claims          TEXT NOT NULL,
		resource        TEXT NOT NULL,
		resource_type   TEXT NOT NULL,
		client_addr     TEXT NOT NULL,
		gateway_id      TEXT NOT NULL,
		bundle_revision TEXT NOT NULL,
		started_at      INTEGER NOT NULL,
		ended_at        INTEGER,
		end_reason      TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX sessions_started ON sessions (started_at);
	CREATE INDEX sessions_identity ON sessions (identity, started_at);
	CREATE INDEX sessions_resource ON sessions (resource, started_at);
	CREATE INDEX sessions_ended ON sessions (ended_at);
	CREATE TABLE events (
		session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
		seq             INTEGER NOT NULL,
		ts              INTEGER NOT NULL,
		kind            TEXT NOT NULL,
		protocol        TEXT NOT NULL,
		command         TEXT NOT NULL,
		facts           TEXT NOT NULL,
		effect          TEXT NOT NULL,
		rule_ids        TEXT NOT NULL,
		bundle_revision TEXT NOT NULL,
		reason          TEXT NOT NULL,
		approval_id     TEXT NOT NULL,
		masked          INTEGER NOT NULL,
		duration_us     INTEGER NOT NULL,
		row_count       INTEGER NOT NULL,
		error_msg       TEXT NOT NULL,
		results         TEXT NOT NULL,
		prev_hash       TEXT NOT NULL,
		hash            TEXT NOT NULL,
		PRIMARY KEY (session_id, seq)
	) WITHOUT ROWID;
	CREATE INDEX events_ts ON events (ts);
	CREATE TABLE approvals (
		id          TEXT PRIMARY KEY,
		session_id  TEXT NOT NULL,
		identity    TEXT NOT NULL,
		resource    TEXT NOT NULL,
		command     TEXT NOT NULL,
		rule_id     TEXT NOT NULL,
		group_name  TEXT NOT NULL,
		count       INTEGER NOT NULL,
		status      TEXT NOT NULL,
		created_at  INTEGER NOT NULL,
		expires_at  INTEGER NOT NULL,
		resolved_at INTEGER
	);
	CREATE INDEX approvals_status ON approvals (status, created_at);
	CREATE TABLE approval_votes (
		approval_id TEXT NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
		ord         INTEGER NOT NULL,
		approver    TEXT NOT NULL,
		decision    TEXT NOT NULL,
		reason      TEXT NOT NULL,
		ts          INTEGER NOT NULL,
		PRIMARY KEY (approval_id, approver)
	);`,
	// Version 2: events move from a WITHOUT ROWID table keyed by
	// (session_id, seq) to an ordinary table with a unique index on that
	// pair. Concurrent sessions append to the same table, so with the old
	// layout every batch inserted ~600-byte rows into the middle of the
	// tree at one place per live session, splitting pages there; now the
	// rows are appended at the end of the table and only the small index
	// entries land in the middle. It costs about 30% less CPU per recorded
	// event (BenchmarkStoreAppendGateway).
	`CREATE TABLE events_v2 (
		session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
		seq             INTEGER NOT NULL,
		ts              INTEGER NOT NULL,
		kind            TEXT NOT NULL,
		protocol        TEXT NOT NULL,
		command         TEXT NOT NULL,
		facts           TEXT NOT NULL,
		effect          TEXT NOT NULL,
		rule_ids        TEXT NOT NULL,
		bundle_revision TEXT NOT NULL,
		reason          TEXT NOT NULL,
		approval_id     TEXT NOT NULL,
		masked          INTEGER NOT NULL,
		duration_us     INTEGER NOT NULL,
		row_count       INTEGER NOT NULL,
		error_msg       TEXT NOT NULL,
		results         TEXT NOT NULL,
		prev_hash       TEXT NOT NULL,
		hash            TEXT NOT NULL
	);
	INSERT INTO events_v2 SELECT session_id, seq, ts, kind, protocol, command, facts, effect, rule_ids,
		bundle_revision, reason, approval_id, masked, duration_us, row_count, error_msg, results,
		prev_hash, hash FROM events ORDER BY ts, session_id, seq;
	DROP TABLE events;
	ALTER TABLE events_v2 RENAME TO events;
	CREATE UNIQUE INDEX events_session_seq ON events (session_id, seq);
	CREATE INDEX events_ts ON events (ts);`,
	// Version 3: signed evidence (record.Seal, record.Checkpoint). Seals go
	// with their session (retention deletes both); checkpoints and their
	// entries outlive the sessions they name, which is how a deleted
	// session shows.
	`CREATE TABLE seals (
		session_id  TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
		header_hash TEXT NOT NULL,
		last_seq    INTEGER NOT NULL,
		last_hash   TEXT NOT NULL,
		ended_at    INTEGER NOT NULL,
		end_reason  TEXT NOT NULL,
		key_id      TEXT NOT NULL,
		signature   BLOB NOT NULL
	);
	CREATE TABLE checkpoints (
		gateway_id       TEXT NOT NULL,
		seq              INTEGER NOT NULL,
		ts               INTEGER NOT NULL,
		prev_hash        TEXT NOT NULL,
		retention_before INTEGER,
		hash             TEXT NOT NULL,
		key_id           TEXT NOT NULL,
		signature        BLOB NOT NULL,
		PRIMARY KEY (gateway_id, seq)
	);
	CREATE INDEX checkpoints_ts ON checkpoints (gateway_id, ts);
	CREATE TABLE checkpoint_entries (
		gateway_id     TEXT NOT NULL,
		checkpoint_seq INTEGER NOT NULL,
		session_id     TEXT NOT NULL,
		last_seq       INTEGER NOT NULL,
		last_hash      TEXT NOT NULL,
		ended_at       INTEGER,
		PRIMARY KEY (gateway_id, checkpoint_seq, session_id),
		FOREIGN KEY (gateway_id, checkpoint_seq) REFERENCES checkpoints (gateway_id, seq) ON DELETE CASCADE
	);
	CREATE INDEX checkpoint_entries_session ON checkpoint_entries (session_id);`,
}
