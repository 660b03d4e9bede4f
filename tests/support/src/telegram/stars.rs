//! Telegram Stars in the Bot API fake: invoices, pre-checkout queries (with
//! Telegram's 10 s answer deadline), successful and refunded payments,
//! refundStarPayment (`CHARGE_ALREADY_REFUNDED`) and getStarTransactions.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{json, Value};

use super::{as_i64, error, now, ok, user, FakeTelegram, Reply};

/// Telegram drops a pre-checkout answer that comes later than this.
pub const PRE_CHECKOUT_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct StarsCharge {
    pub charge_id: String,
    pub user_id: i64,
    pub stars: i64,
    pub payload: String,
    pub refunded: bool,
}

#[derive(Debug, Clone)]
pub struct PreCheckout {
    pub asked: Instant,
    /// `(ok, error_message, how long after the query)`.
    pub answer: Option<(bool, Option<String>, Duration)>,
}

impl FakeTelegram {
    /// A user pressed "Pay": Telegram asks the bot to confirm. Returns the query id.
    pub fn push_pre_checkout(&self, user_id: i64, language: &str, payload: &str, stars: i64) -> String {
        let id = format!("pcq-{}", uuid::Uuid::new_v4().simple());
        self.state
            .lock()
            .unwrap()
            .pre_checkouts
            .insert(id.clone(), PreCheckout { asked: Instant::now(), answer: None });
        self.push_update(json!({ "pre_checkout_query": {
            "id": id, "from": user(user_id, language), "currency": "XTR", "total_amount": stars, "invoice_payload": payload,
        }}));
        id
    }

    /// The Stars were taken: the charge is recorded (for refunds and
    /// getStarTransactions) and, unless `lost`, the payment message is sent.
    pub fn pay(&self, user_id: i64, language: &str, payload: &str, stars: i64, charge_id: &str, lost: bool) {
        let charge =
            StarsCharge { charge_id: charge_id.into(), user_id, stars, payload: payload.into(), refunded: false };
        self.state.lock().unwrap().stars_charges.push(charge);
        if !lost {
            let paid = json!({ "successful_payment": {
                "currency": "XTR", "total_amount": stars, "invoice_payload": payload,
                "telegram_payment_charge_id": charge_id, "provider_payment_charge_id": "",
            }});
            let message = self.user_message(user_id, language, paid);
            self.push_update(json!({ "message": message }));
        }
    }

    pub fn pre_checkout(&self, id: &str) -> Option<PreCheckout> {
        self.state.lock().unwrap().pre_checkouts.get(id).cloned()
    }

    /// Telegram refunded the charge by other means (its support, another
    /// bot of the owner's): nothing tells the bot; getStarTransactions lists it.
    pub fn refund_elsewhere(&self, charge_id: &str) {
        let mut state = self.state.lock().unwrap();
        state.stars_charges.iter_mut().filter(|c| c.charge_id == charge_id).for_each(|c| c.refunded = true);
    }

    /// A payment made from an invoice in the group `chat_id`: the
    /// successful_payment service message arrives in that group.
    pub fn pay_in_group(&self, chat_id: i64, user_id: i64, payload: &str, stars: i64, charge_id: &str) {
        let charge =
            StarsCharge { charge_id: charge_id.into(), user_id, stars, payload: payload.into(), refunded: false };
        self.state.lock().unwrap().stars_charges.push(charge);
        let paid = json!({ "successful_payment": {
            "currency": "XTR", "total_amount": stars, "invoice_payload": payload,
            "telegram_payment_charge_id": charge_id, "provider_payment_charge_id": "",
        }});
        let message = self.group_message(chat_id, user_id, "en", paid);
        self.push_update(json!({ "message": message }));
    }

    /// The refunded_payment service message of `charge_id`, in the group `chat_id`.
    pub fn refunded_in_group(&self, chat_id: i64, user_id: i64, charge_id: &str) {
        let charge = {
            let mut state = self.state.lock().unwrap();
            let Some(charge) = state.stars_charges.iter_mut().find(|c| c.charge_id == charge_id) else { return };
            charge.refunded = true;
            charge.clone()
        };
        let message = self.group_message(
            chat_id,
            user_id,
            "en",
            json!({ "refunded_payment": {
                "currency": "XTR", "total_amount": charge.stars, "invoice_payload": charge.payload,
                "telegram_payment_charge_id": charge.charge_id,
            }}),
        );
        self.push_update(json!({ "message": message }));
    }

    pub fn stars_charges(&self) -> Vec<StarsCharge> {
        self.state.lock().unwrap().stars_charges.clone()
    }

    pub(super) fn stars_method(&self, method: &str, params: &Value) -> Option<Reply> {
        Some(match method {
            "sendInvoice" => {
                if params["currency"] != "XTR"
                    || params["prices"].as_array().map(Vec::len) != Some(1)
                    || !params["provider_token"].is_null()
                {
                    return Some(error(
                        StatusCode::BAD_REQUEST,
                        "Bad Request: Stars invoices take currency XTR, one price and no provider_token",
                        None,
                    ));
                }
                let invoice = json!({ "invoice": {
                    "title": params["title"], "description": params["description"], "start_parameter": "",
                    "currency": "XTR", "total_amount": params["prices"][0]["amount"],
                }});
                ok(self.bot_message(params, invoice))
            }
            "answerPreCheckoutQuery" => self.answer_pre_checkout(params),
            "refundStarPayment" => self.refund(params),
            "getStarTransactions" => self.transactions(params),
            _ => return None,
        })
    }

    fn answer_pre_checkout(&self, params: &Value) -> Reply {
        let id = params["pre_checkout_query_id"].as_str().unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        let Some(query) = state.pre_checkouts.get_mut(id) else {
            return error(
                StatusCode::BAD_REQUEST,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
                None,
            );
        };
        let after = query.asked.elapsed();
        if after > PRE_CHECKOUT_DEADLINE {
            return error(
                StatusCode::BAD_REQUEST,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
                None,
            );
        }
        let accepted = params["ok"].as_bool().or_else(|| params["ok"].as_str().map(|s| s == "true")).unwrap_or(false);
        query.answer = Some((accepted, params["error_message"].as_str().map(str::to_owned), after));
        ok(json!(true))
    }

    fn refund(&self, params: &Value) -> Reply {
        let charge_id = params["telegram_payment_charge_id"].as_str().unwrap_or_default().to_owned();
        let user_id = as_i64(&params["user_id"]).unwrap_or_default();
        let refunded = {
            let mut state = self.state.lock().unwrap();
            let Some(charge) =
                state.stars_charges.iter_mut().find(|c| c.charge_id == charge_id && c.user_id == user_id)
            else {
                return error(StatusCode::BAD_REQUEST, "Bad Request: CHARGE_NOT_FOUND", None);
            };
            if charge.refunded {
                return error(StatusCode::BAD_REQUEST, "Bad Request: CHARGE_ALREADY_REFUNDED", None);
            }
            charge.refunded = true;
            charge.clone()
        };
        // As Telegram does: the user's chat gets the refunded_payment service
        // message, after the call is answered (here half a second after, so
        // the caller's own bookkeeping of the answer comes first).
        let message = self.user_message(
            user_id,
            "en",
            json!({ "refunded_payment": {
                "currency": "XTR", "total_amount": refunded.stars, "invoice_payload": refunded.payload,
                "telegram_payment_charge_id": refunded.charge_id,
            }}),
        );
        let fake = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            fake.push_update(json!({ "message": message }));
        });
        ok(json!(true))
    }

    fn transactions(&self, params: &Value) -> Reply {
        let offset = as_i64(&params["offset"]).unwrap_or(0).max(0) as usize;
        let limit = as_i64(&params["limit"]).unwrap_or(100).clamp(1, 100) as usize;
        let state = self.state.lock().unwrap();
        // As Telegram lists them: each payment, and each refund as an
        // outgoing transaction to the user with the payment's own id.
        let all = state.stars_charges.iter().flat_map(|c| {
            let paid = json!({
                "id": c.charge_id, "amount": c.stars, "date": now(),
                "source": { "type": "user", "transaction_type": "invoice_payment", "user": user(c.user_id, "en"), "invoice_payload": c.payload },
            });
            let refund = c.refunded.then(|| json!({
                "id": c.charge_id, "amount": c.stars, "date": now(),
                "receiver": { "type": "user", "transaction_type": "invoice_payment", "user": user(c.user_id, "en"), "invoice_payload": c.payload },
            }));
            std::iter::once(paid).chain(refund)
        });
        let page: Vec<Value> = all.skip(offset).take(limit).collect();
        ok(json!({ "transactions": page }))
    }
}
