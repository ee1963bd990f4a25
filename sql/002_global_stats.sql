-- Global statistics the scorer needs (item popularity, category popularity, category co-occurrence).
-- They are recomputed in the background by src/lib/stats-refresh.ts, never per request;
-- readers load them whole into memory.

CREATE TABLE IF NOT EXISTS item_popularity (
  item_id           INT UNSIGNED      NOT NULL,
  category_id       SMALLINT UNSIGNED NOT NULL,
  score             DOUBLE            NOT NULL,
  purchase_count    INT UNSIGNED      NOT NULL,
  last_purchased_at DATETIME(3)       NULL,
  PRIMARY KEY (item_id),
  KEY ix_item_popularity_category_score (category_id, score)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS category_popularity (
  category_id  SMALLINT UNSIGNED NOT NULL,
  score        DOUBLE            NOT NULL,
  PRIMARY KEY (category_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS category_cooccurrence (
  category_a  SMALLINT UNSIGNED NOT NULL,
  category_b  SMALLINT UNSIGNED NOT NULL,
  users       INT UNSIGNED      NOT NULL,
  PRIMARY KEY (category_a, category_b)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS stats_meta (
  name          VARCHAR(32) NOT NULL,
  refreshed_at  DATETIME(3) NOT NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
