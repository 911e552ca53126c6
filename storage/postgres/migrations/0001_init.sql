-- mqim schema, version 1. Identifiers and conversation names sort
-- bytewise (COLLATE "C"), as the Badger store's keys do. Objects the store
-- only reads and writes whole are kept as json (not jsonb): json keeps the
-- text exactly as written, so attributes come back in the order a client
-- set them, and \u0000 inside a string is accepted.

CREATE TABLE users (
	id   text COLLATE "C" PRIMARY KEY,
	data json NOT NULL
);

-- Each friendship is stored under both users, like the Badger store.
CREATE TABLE friendships (
	uid   text COLLATE "C" NOT NULL,
	other text COLLATE "C" NOT NULL,
	data  json NOT NULL,
	PRIMARY KEY (uid, other)
);

-- Groups (kind 1) and rooms (kind 2), and the index of their owner and
-- members.
CREATE TABLE member_lists (
	kind smallint NOT NULL,
	id   text COLLATE "C" NOT NULL,
	data json NOT NULL,
	PRIMARY KEY (kind, id)
);

CREATE TABLE list_members (
	kind    smallint NOT NULL,
	uid     text COLLATE "C" NOT NULL,
	list_id text COLLATE "C" NOT NULL,
	PRIMARY KEY (kind, uid, list_id)
);

CREATE TABLE passengers (
	id   text COLLATE "C" PRIMARY KEY,
	data json NOT NULL
);

CREATE TABLE strangers (
	uid   text COLLATE "C" NOT NULL,
	other text COLLATE "C" NOT NULL,
	data  json NOT NULL,
	PRIMARY KEY (uid, other)
);

-- Token revocation and bans, keyed by Identity.String().
CREATE TABLE accounts (
	id   text COLLATE "C" PRIMARY KEY,
	data json NOT NULL
);

-- One row per conversation: the counter of its history. seq and ts are
-- the latest handed out (the append's upsert locks the row, so seq is
-- assigned in the inserting transaction and has no gaps); own_a and own_b
-- the last Seq each party of a two-party conversation said; party_a and
-- party_b the users whose conversation list shows it (NULL for a
-- passenger, or after ForgetReader).
CREATE TABLE conversations (
	conv    text COLLATE "C" PRIMARY KEY,
	seq     bigint NOT NULL,
	ts      bigint NOT NULL,
	own_a   bigint NOT NULL DEFAULT 0,
	own_b   bigint NOT NULL DEFAULT 0,
	party_a text COLLATE "C",
	party_b text COLLATE "C"
);
CREATE INDEX conversations_party_a ON conversations (party_a, ts) WHERE party_a IS NOT NULL;
CREATE INDEX conversations_party_b ON conversations (party_b, ts) WHERE party_b IS NOT NULL;

-- The history. expires_at is in ms (NULL: never); reads hide expired rows
-- at once, the retention loop deletes them in bounded batches.
CREATE TABLE records (
	conv       text COLLATE "C" NOT NULL,
	seq        bigint NOT NULL,
	ts         bigint NOT NULL,
	expires_at bigint,
	data       json NOT NULL,
	PRIMARY KEY (conv, seq)
);
CREATE INDEX records_conv_ts ON records (conv, ts, seq);
CREATE INDEX records_expires_at ON records (expires_at) WHERE expires_at IS NOT NULL;

-- Earlier versions of edited records; they go with their record.
CREATE TABLE record_edits (
	conv    text COLLATE "C" NOT NULL,
	seq     bigint NOT NULL,
	ts      bigint NOT NULL,
	content json NOT NULL,
	PRIMARY KEY (conv, seq, ts),
	FOREIGN KEY (conv, seq) REFERENCES records (conv, seq) ON DELETE CASCADE
);

CREATE TABLE read_cursors (
	reader text COLLATE "C" NOT NULL,
	conv   text COLLATE "C" NOT NULL,
	seq    bigint NOT NULL,
	PRIMARY KEY (reader, conv)
);

-- Persistent MQTT sessions. Event keys are uint64 stored with the sign bit
-- flipped, so that bigint order is unsigned order.
CREATE TABLE mqtt_sessions (
	client_id text COLLATE "C" PRIMARY KEY,
	state     bytea NOT NULL
);

CREATE TABLE mqtt_session_events (
	client_id text COLLATE "C" NOT NULL,
	key       bigint NOT NULL,
	data      bytea NOT NULL,
	PRIMARY KEY (client_id, key)
);
