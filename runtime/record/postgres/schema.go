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
}
