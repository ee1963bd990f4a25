-- API keys: a client that sends X-API-Key gets its key's rate-limit tier (src/plugins/rate-limit.ts).
-- Only the SHA-256 of a key is stored (hex), so a copy of this table does not let anyone call as a
-- client; `npm run keys` creates, lists and revokes them. A revoked key is kept (revoked_at set) so
-- its id stays meaningful in logs and `keys list`.

CREATE TABLE IF NOT EXISTS api_keys (
  id          INT UNSIGNED  NOT NULL AUTO_INCREMENT,
  key_hash    CHAR(64)      CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tier        ENUM('free','premium','enterprise') NOT NULL,
  created_at  DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  revoked_at  DATETIME(3)   NULL,
  PRIMARY KEY (id),
  UNIQUE KEY ux_api_keys_key_hash (key_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
