-- Telegram Stars top-ups. An order is what the user chose (its id is the
-- invoice payload); a payment is one Stars charge Telegram made for it. A
-- payment's coins are credited in the transaction that records it, so its
-- charge id, unique here, is credited exactly once; a refund is recorded on
-- the payment row and debited in the same transaction, exactly once too.
CREATE TABLE star_orders (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT      NOT NULL REFERENCES users (id),
    package     TEXT        NOT NULL,
    coins       BIGINT      NOT NULL CHECK (coins > 0),
    stars       BIGINT      NOT NULL CHECK (stars > 0),
    state       TEXT        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'paid')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    paid_at     TIMESTAMPTZ
);
CREATE INDEX star_orders_user ON star_orders (user_id, id DESC);

CREATE TABLE star_payments (
    charge_id         TEXT        PRIMARY KEY,
    order_id          BIGINT      REFERENCES star_orders (id),
    user_id           BIGINT      NOT NULL REFERENCES users (id),
    stars             BIGINT      NOT NULL,
    coins             BIGINT      NOT NULL,
    source            TEXT        NOT NULL CHECK (source IN ('chat', 'reconcile')),
    paid_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    refunded_at       TIMESTAMPTZ,
    refund_source     TEXT,
    coins_taken_back  BIGINT
);

ALTER TABLE ledger_entries ADD COLUMN charge_id TEXT REFERENCES star_payments (charge_id);
CREATE UNIQUE INDEX ledger_once_per_charge ON ledger_entries (charge_id, reason) WHERE charge_id IS NOT NULL;
