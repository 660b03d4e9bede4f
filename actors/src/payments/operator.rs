//! What an operator does with Stars, through the Bot API: refund a payment
//! (`aishad admin refund`) and credit paid charges the ledger lacks
//! (`aishad admin reconcile`, from getStarTransactions).

use teloxide::payloads::GetStarTransactionsSetters;
use teloxide::prelude::Requester;
use teloxide::types::{TelegramTransactionId, TransactionPartner, TransactionPartnerUserKind, UserId};
use teloxide::{ApiError, RequestError};

use super::{credit, debit_refund, known_charges, payer, Credited, Debited, StarsPayment};
use crate::clients::{Patiently, TgBot};
use crate::settings::CoinPackage;
use crate::store::users::TelegramProfile;
use crate::store::{Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("no payment with charge id {0} is recorded")]
    UnknownCharge(String),
    #[error("Telegram refused: {0}")]
    Telegram(#[from] RequestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// refundStarPayment, then the coins taken back (never below zero). A charge
/// Telegram already refunded counts as refunded; the debit happens once
/// whether this or Telegram's refunded_payment message comes first.
pub async fn refund(db: &Db, bot: &TgBot, charge_id: &str) -> Result<Debited, OperatorError> {
    let (_, telegram_id) =
        payer(db, charge_id).await?.ok_or_else(|| OperatorError::UnknownCharge(charge_id.to_owned()))?;
    let user = UserId(u64::try_from(telegram_id).unwrap_or_default());
    match bot.refund_star_payment(user, TelegramTransactionId(charge_id.to_owned())).patiently().await {
        Ok(_) => {}
        Err(RequestError::Api(ApiError::Unknown(description))) if description.contains("CHARGE_ALREADY_REFUNDED") => {
            tracing::info!(charge_id, "Telegram had refunded this charge already");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(debit_refund(db, charge_id, "admin").await?)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Incoming invoice payments Telegram listed.
    pub seen: usize,
    /// Of those, credited now (the ledger lacked them).
    pub credited: usize,
    /// Of those, refunded already (a refund transaction with the same id,
    /// made outside `admin refund` or never told us): not credited.
    pub refunded: usize,
}

/// An incoming invoice payment: (charge id, payer, payload, stars).
type Payment = (String, teloxide::types::User, String, i64);

/// Pages through getStarTransactions and credits every incoming invoice
/// payment whose charge id the ledger lacks (a lost successful_payment),
/// unless Telegram lists it refunded: a refund transaction carries the id
/// of the payment it returns, on whatever page it falls.
pub async fn reconcile(db: &Db, bot: &TgBot, packages: &[CoinPackage]) -> Result<Reconciled, OperatorError> {
    let (payments, refunded) = star_transactions(bot).await?;
    let mut result = Reconciled { seen: payments.len(), ..Default::default() };
    let ids: Vec<String> = payments.iter().map(|p| p.0.clone()).collect();
    let known = known_charges(db, &ids).await?;
    for (charge_id, user, payload, stars) in payments.into_iter().filter(|p| !known.contains(&p.0)) {
        if refunded.contains(&charge_id) {
            tracing::info!(charge_id, "a payment the ledger lacks was refunded already; not credited");
            result.refunded += 1;
            continue;
        }
        let user_id = db.upsert_user(&TelegramProfile::of(&user)).await?.id;
        let payment = StarsPayment { charge_id: &charge_id, payload: &payload, stars };
        if let Credited::Credited { coins, .. } = credit(db, user_id, &payment, packages, "reconcile").await? {
            tracing::warn!(charge_id, user_id, coins, "reconcile credited a payment the ledger lacked");
            result.credited += 1;
        }
    }
    Ok(result)
}

/// Every incoming invoice payment, and the ids of every refund to a user.
async fn star_transactions(bot: &TgBot) -> Result<(Vec<Payment>, std::collections::HashSet<String>), OperatorError> {
    const PAGE: u8 = 100;
    let (mut payments, mut refunded) = (Vec::new(), std::collections::HashSet::new());
    let mut offset = 0u32;
    loop {
        let page = bot.get_star_transactions().offset(offset).limit(PAGE).patiently().await?.transactions;
        for t in &page {
            match (&t.source, &t.receiver) {
                (Some(TransactionPartner::User(partner)), _) => {
                    if let TransactionPartnerUserKind::InvoicePayment(invoice) = &partner.kind {
                        let payload = invoice.invoice_payload.clone().unwrap_or_default();
                        payments.push((t.id.0.clone(), partner.user.clone(), payload, i64::from(t.amount)));
                    }
                }
                (None, Some(TransactionPartner::User(_))) => {
                    refunded.insert(t.id.0.clone());
                }
                _ => {}
            }
        }
        if page.len() < usize::from(PAGE) {
            return Ok((payments, refunded));
        }
        offset += u32::from(PAGE);
    }
}
