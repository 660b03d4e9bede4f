//! Telegram Stars top-ups: an order per invoice, the pre-checkout verdict
//! from the database alone, a payment credited once per Telegram charge id
//! and a refund debited once, each in one transaction with its ledger entry.

pub mod operator;

use tokio_postgres::Row;

use crate::ledger::balance_in;
use crate::settings::CoinPackage;
use crate::store::{Db, StoreError};

pub const CURRENCY: &str = "XTR";
pub const REASON_TOPUP: &str = "topup";
pub const REASON_STARS_REFUND: &str = "stars_refund";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: i64,
    pub user_id: i64,
    pub package: String,
    pub coins: i64,
    pub stars: i64,
    pub state: String,
}

fn order(row: &Row) -> Order {
    Order {
        id: row.get("id"),
        user_id: row.get("user_id"),
        package: row.get("package"),
        coins: row.get("coins"),
        stars: row.get("stars"),
        state: row.get("state"),
    }
}

/// The invoice payload of an order: its id.
pub fn payload(order: &Order) -> String {
    format!("order:{}", order.id)
}

fn order_id(payload: &str) -> Option<i64> {
    payload.strip_prefix("order:")?.parse().ok().filter(|id| *id > 0)
}

pub async fn create_order(db: &Db, user_id: i64, package: &CoinPackage) -> Result<Order, StoreError> {
    let client = db.client().await?;
    let row = client
        .query_one(
            "INSERT INTO star_orders (user_id, package, coins, stars) VALUES ($1, $2, $3, $4) RETURNING *",
            &[&user_id, &package.id, &package.coins, &package.stars],
        )
        .await?;
    Ok(order(&row))
}

/// Why a pre-checkout is refused; Telegram shows the text to the payer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownOrder,
    AlreadyPaid,
    AmountChanged,
}

/// Ok only for a pending order of this user in Stars for its exact amount.
/// Asked again for a still pending order, the answer is the same.
pub async fn pre_checkout(
    db: &Db,
    user_id: i64,
    payload: &str,
    currency: &str,
    stars: i64,
) -> Result<Result<(), Refusal>, StoreError> {
    let Some(id) = order_id(payload) else { return Ok(Err(Refusal::UnknownOrder)) };
    let client = db.client().await?;
    let Some(row) =
        client.query_opt("SELECT * FROM star_orders WHERE id = $1 AND user_id = $2", &[&id, &user_id]).await?
    else {
        return Ok(Err(Refusal::UnknownOrder));
    };
    let order = order(&row);
    Ok(match () {
        _ if order.state != "pending" => Err(Refusal::AlreadyPaid),
        _ if currency != CURRENCY || order.stars != stars => Err(Refusal::AmountChanged),
        _ => Ok(()),
    })
}

/// One Stars charge as Telegram reports it.
#[derive(Debug, Clone)]
pub struct StarsPayment<'a> {
    pub charge_id: &'a str,
    pub payload: &'a str,
    pub stars: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credited {
    /// New: `coins` added; the balance after.
    Credited { coins: i64, balance: i64 },
    /// This charge id was credited before; nothing moved.
    Duplicate { balance: i64 },
}

/// Credits a payment once per charge id. A payment for an order already paid
/// (a second invoice of it paid too) is credited as well: real Stars came
/// in. `source`: `chat` (successful_payment) or `reconcile`.
pub async fn credit(
    db: &Db,
    user_id: i64,
    payment: &StarsPayment<'_>,
    packages: &[CoinPackage],
    source: &str,
) -> Result<Credited, StoreError> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let ordered = match order_id(payment.payload) {
        Some(id) => tx
            .query_opt("SELECT * FROM star_orders WHERE id = $1 AND user_id = $2 FOR UPDATE", &[&id, &user_id])
            .await?
            .map(|r| order(&r)),
        None => None,
    };
    let coins = coins_for(ordered.as_ref(), payment.stars, packages);
    let recorded = tx
        .execute(
            "INSERT INTO star_payments (charge_id, order_id, user_id, stars, coins, source) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (charge_id) DO NOTHING",
            &[&payment.charge_id, &ordered.as_ref().map(|o| o.id), &user_id, &payment.stars, &coins, &source],
        )
        .await?;
    if recorded == 0 {
        let balance = balance_in(&tx, user_id).await?;
        return Ok(Credited::Duplicate { balance });
    }
    if coins == 0 {
        tracing::error!(
            alert = "unmatched_stars_payment",
            user_id,
            charge_id = payment.charge_id,
            stars = payment.stars,
            "a Stars payment matches no order or package: recorded, not credited; credit it by hand"
        );
    }
    let balance = if coins > 0 {
        tx.execute(
            "INSERT INTO ledger_entries (user_id, delta, reason, charge_id) VALUES ($1, $2, $3, $4)",
            &[&user_id, &coins, &REASON_TOPUP, &payment.charge_id],
        )
        .await?;
        tx.query_one(
            "UPDATE users SET balance = balance + $2, updated_at = now() WHERE id = $1 RETURNING balance",
            &[&user_id, &coins],
        )
        .await?
        .get(0)
    } else {
        balance_in(&tx, user_id).await?
    };
    if let Some(order) = &ordered {
        tx.execute(
            "UPDATE star_orders SET state = 'paid', paid_at = COALESCE(paid_at, now()) WHERE id = $1",
            &[&order.id],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Credited::Credited { coins, balance })
}

/// The coins a payment buys: its order's when the amount is the order's,
/// else the package sold at that many Stars, else none (an operator looks).
fn coins_for(order: Option<&Order>, stars: i64, packages: &[CoinPackage]) -> i64 {
    match order {
        Some(order) if order.stars == stars => order.coins,
        _ => packages.iter().find(|p| p.stars == stars).map(|p| p.coins).unwrap_or(0),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Debited {
    /// The payment's coins taken back (no more than the balance held); the balance after.
    Debited {
        user_id: i64,
        coins: i64,
        balance: i64,
    },
    AlreadyRefunded,
    /// No payment with this charge id was recorded.
    Unknown,
}

/// Takes a refunded payment's coins back, once, never below zero (coins
/// already spent stay spent). `source`: `telegram` (refunded_payment) or `admin`.
pub async fn debit_refund(db: &Db, charge_id: &str, source: &str) -> Result<Debited, StoreError> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let Some(row) = tx
        .query_opt(
            "SELECT user_id, coins, refunded_at IS NOT NULL FROM star_payments WHERE charge_id = $1 FOR UPDATE",
            &[&charge_id],
        )
        .await?
    else {
        return Ok(Debited::Unknown);
    };
    let (user_id, coins, refunded): (i64, i64, bool) = (row.get(0), row.get(1), row.get(2));
    if refunded {
        return Ok(Debited::AlreadyRefunded);
    }
    let held: i64 = tx.query_one("SELECT balance FROM users WHERE id = $1 FOR UPDATE", &[&user_id]).await?.get(0);
    let take = coins.min(held).max(0);
    if take > 0 {
        tx.execute(
            "INSERT INTO ledger_entries (user_id, delta, reason, charge_id) VALUES ($1, $2, $3, $4)",
            &[&user_id, &-take, &REASON_STARS_REFUND, &charge_id],
        )
        .await?;
        tx.execute("UPDATE users SET balance = balance - $2, updated_at = now() WHERE id = $1", &[&user_id, &take])
            .await?;
    }
    tx.execute(
        "UPDATE star_payments SET refunded_at = now(), refund_source = $2, coins_taken_back = $3 WHERE charge_id = $1",
        &[&charge_id, &source, &take],
    )
    .await?;
    tx.commit().await?;
    Ok(Debited::Debited { user_id, coins: take, balance: held - take })
}

/// Who paid a charge: `(user_id, telegram_id)`, for refunds.
pub async fn payer(db: &Db, charge_id: &str) -> Result<Option<(i64, i64)>, StoreError> {
    let client = db.client().await?;
    let row = client
        .query_opt("SELECT p.user_id, u.telegram_id FROM star_payments p JOIN users u ON u.id = p.user_id WHERE p.charge_id = $1", &[&charge_id])
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Which of these charge ids are recorded.
pub async fn known_charges(db: &Db, charge_ids: &[String]) -> Result<Vec<String>, StoreError> {
    let client = db.client().await?;
    let rows = client.query("SELECT charge_id FROM star_payments WHERE charge_id = ANY($1)", &[&charge_ids]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_an_order_or_nothing() {
        assert_eq!(order_id("order:42"), Some(42));
        for junk in ["order:-1", "order:0", "order:x", "42", "", "order:99999999999999999999"] {
            assert_eq!(order_id(junk), None, "{junk}");
        }
    }

    #[test]
    fn a_payment_buys_its_orders_coins_or_the_package_at_that_price() {
        let packages = crate::settings::PaymentsSettings::default().packages;
        let order =
            Order { id: 1, user_id: 1, package: "coins-500".into(), coins: 500, stars: 190, state: "pending".into() };
        assert_eq!(coins_for(Some(&order), 190, &packages), 500);
        assert_eq!(coins_for(None, 100, &packages), 250);
        assert_eq!(coins_for(None, 7, &packages), 0);
    }
}
