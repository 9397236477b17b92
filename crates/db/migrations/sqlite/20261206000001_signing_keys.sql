-- The auth service's token-signing keys, shared by every auth replica. A row per key: its id
-- (`kid`, from the public key's hash), algorithm, private key sealed with the instance secret
-- (NULL for a key imported as already retired), public JWK, and its life: published from
-- `created_at`, signing from `activated_at` (a future time while it is the next key), stopped
-- signing at `retired_at`, deleted once every token it signed expired. `generation` orders the
-- keys of one algorithm; unique, so of two replicas creating or importing the first key (or two
-- rotations at once) one wins and the other's INSERT … ON CONFLICT DO NOTHING does nothing.
CREATE TABLE IF NOT EXISTS signing_keys (
    kid          TEXT PRIMARY KEY NOT NULL,
    alg          TEXT NOT NULL,
    generation   INTEGER,
    private_key  BLOB,
    public_jwk   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    activated_at TEXT NOT NULL,
    retired_at   TEXT
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_generation ON signing_keys (alg, generation);
