-- Core entities and the two event tables the read path scans per user.
-- Portable across MySQL 8.4 and MariaDB 10.11+ (no CHECK-only tricks, no JSON columns).

CREATE TABLE IF NOT EXISTS categories (
  id          SMALLINT UNSIGNED NOT NULL,
  name        VARCHAR(64)       NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_categories_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS users (
  id          INT UNSIGNED NOT NULL,
  name        VARCHAR(100) NOT NULL,
  created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS items (
  id           INT UNSIGNED      NOT NULL,
  category_id  SMALLINT UNSIGNED NOT NULL,
  name         VARCHAR(200)      NOT NULL,
  created_at   DATETIME(3)       NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY ix_items_category (category_id),
  CONSTRAINT fk_items_category FOREIGN KEY (category_id) REFERENCES categories (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS searches (
  id           BIGINT UNSIGNED   NOT NULL AUTO_INCREMENT,
  user_id      INT UNSIGNED      NOT NULL,
  query        VARCHAR(255)      NOT NULL,
  category_id  SMALLINT UNSIGNED NOT NULL,
  searched_at  DATETIME(3)       NOT NULL,
  PRIMARY KEY (id),
  KEY ix_searches_user_time (user_id, searched_at),
  CONSTRAINT fk_searches_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT fk_searches_category FOREIGN KEY (category_id) REFERENCES categories (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS purchases (
  id            BIGINT UNSIGNED   NOT NULL AUTO_INCREMENT,
  user_id       INT UNSIGNED      NOT NULL,
  item_id       INT UNSIGNED      NOT NULL,
  category_id   SMALLINT UNSIGNED NOT NULL,
  purchased_at  DATETIME(3)       NOT NULL,
  PRIMARY KEY (id),
  KEY ix_purchases_user_time (user_id, purchased_at),
  KEY ix_purchases_item (item_id),
  CONSTRAINT fk_purchases_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT fk_purchases_item FOREIGN KEY (item_id) REFERENCES items (id),
  CONSTRAINT fk_purchases_category FOREIGN KEY (category_id) REFERENCES categories (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
