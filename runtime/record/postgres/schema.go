package postgres

// migrations are applied in order inside the target schema (search_path);
// index+1 is the version recorded in schema_version. Never edit a released
// migration: append.
var migrations = []string{
	`CREATE TABLE sessions (
		id              text PRIMARY KEY,
		identity        text NOT NULL,
		identity_kind   text NOT NULL,
		groups_json     text NOT NULL,
		claims          text NOT NULL,
		resource        text NOT NULL,
		resource_type   text NOT NULL,
		client_addr     text NOT NULL,
		gateway_id      text NOT NULL,
		bundle_revision text NOT NULL,
		started_at      timestamptz NOT NULL,
		ended_at        timestamptz,
		end_reason      text NOT NULL DEFAULT ''
	);
	CREATE INDEX sessions_started ON sessions (started_at);
	CREATE INDEX sessions_identity ON sessions (identity, started_at);
	CREATE INDEX sessions_resource ON sessions (resource, started_at);
	CREATE INDEX sessions_ended ON sessions (ended_at);
	CREATE TABLE events (
		session_id      text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
		seq             bigint NOT NULL,
		ts              timestamptz NOT NULL,
		kind            text NOT NULL,
		protocol        text NOT NULL,
		command         text NOT NULL,
		facts           text NOT NULL,
		effect          text NOT NULL,
		rule_ids        text NOT NULL,
		bundle_revision text NOT NULL,
		reason          text NOT NULL,
		approval_id     text NOT NULL,
		masked          boolean NOT NULL,
		duration_us     bigint NOT NULL,
		row_count       bigint NOT NULL,
		error_msg       text NOT NULL,
		results         text NOT NULL,
		prev_hash       text NOT NULL,
		hash            text NOT NULL,
		PRIMARY KEY (session_id, seq)
	);
	CREATE INDEX events_ts ON events (ts);
	CREATE TABLE approvals (
		id          text PRIMARY KEY,
		session_id  text NOT NULL,
		identity    text NOT NULL,
		resource    text NOT NULL,
		command     text NOT NULL,
		rule_id     text NOT NULL,
		group_name  text NOT NULL,
		count       integer NOT NULL,
		status      text NOT NULL,
		created_at  timestamptz NOT NULL,
		expires_at  timestamptz NOT NULL,
		resolved_at timestamptz
	);
	CREATE INDEX approvals_status ON approvals (status, created_at);
	CREATE TABLE approval_votes (
		approval_id text NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
		ord         integer NOT NULL,
		approver    text NOT NULL,
		decision    text NOT NULL,
		reason      text NOT NULL,
		ts          timestamptz NOT NULL,
		PRIMARY KEY (approval_id, approver)
	);`,
	// Version 2: signed evidence (record.Seal, record.Checkpoint). Seals go
	// with their session (retention deletes both); checkpoints and their
	// entries outlive the sessions they name, which is how a deleted
	// session shows.
	`CREATE TABLE seals (
		session_id  text PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
		header_hash text NOT NULL,
		last_seq    bigint NOT NULL,
		last_hash   text NOT NULL,
		ended_at    timestamptz NOT NULL,
		end_reason  text NOT NULL,
		key_id      text NOT NULL,
		signature   bytea NOT NULL
	);
	CREATE TABLE checkpoints (
		gateway_id       text NOT NULL,
		seq              bigint NOT NULL,
		ts               timestamptz NOT NULL,
		prev_hash        text NOT NULL,
		retention_before timestamptz,
		hash             text NOT NULL,
		key_id           text NOT NULL,
		signature        bytea NOT NULL,
		PRIMARY KEY (gateway_id, seq)
	);
	CREATE INDEX checkpoints_ts ON checkpoints (gateway_id, ts);
	CREATE TABLE checkpoint_entries (
		gateway_id     text NOT NULL,
		checkpoint_seq bigint NOT NULL,
		session_id     text NOT NULL,
		last_seq       bigint NOT NULL,
		last_hash      text NOT NULL,
		ended_at       timestamptz,
		PRIMARY KEY (gateway_id, checkpoint_seq, session_id),
		FOREIGN KEY (gateway_id, checkpoint_seq) REFERENCES checkpoints (gateway_id, seq) ON DELETE CASCADE
	);
	CREATE INDEX checkpoint_entries_session ON checkpoint_entries (session_id);`,
}
