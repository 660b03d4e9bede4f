//! Top-ups with Telegram Stars: the packages, the invoice, the
//! pre-checkout answered from the database, the payment credited once, a
//! refund taken back once.

use teloxide::payloads::{AnswerPreCheckoutQuerySetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{
    CallbackQuery, ChatId, InlineKeyboardMarkup, LabeledPrice, Message, MessageKind, PreCheckoutQuery, RefundedPayment,
    SuccessfulPayment, User,
};

use super::{BotHandler, HandleError, Turn};
use crate::chat::callback::{button, Callback};
use crate::chat::{texts, Lang};
use crate::clients::Patiently;
use crate::payments::{self, Credited, Debited, StarsPayment};
use crate::store::users::TelegramProfile;

fn payments_metric(result: &'static str) {
    metrics::counter!("aishad_payments_total", "result" => result).increment(1);
}

impl BotHandler {
    /// A successful_payment or refunded_payment service message, in
    /// whatever chat it arrived: the coins move for its sender, who is told
    /// in their private chat (in a group, the balance is theirs alone).
    pub(super) async fn on_payment_message(&self, message: &Message, from: &User) -> Result<(), HandleError> {
        let lang = Lang::from_code(from.language_code.as_deref());
        let user = self.shared.user(TelegramProfile::of(from)).await?;
        let private = ChatId(from.id.0 as i64);
        if message.chat.id != private {
            tracing::info!(
                chat_id = message.chat.id.0,
                user_id = user.id,
                "a payment message outside the payer's private chat"
            );
        }
        let told = match &message.kind {
            MessageKind::RefundedPayment(refund) => self.on_refunded(private, lang, &refund.refunded_payment).await,
            _ => match message.successful_payment() {
                Some(paid) => self.on_paid(Turn { chat: private, user_id: user.id, lang }, paid).await,
                None => Ok(()),
            },
        };
        match told {
            // The coins moved; only the private word could not be said.
            Err(HandleError::Telegram(e))
                if message.chat.id != private && crate::clients::bot_api::is_undeliverable(&e) =>
            {
                self.say(message.chat.id, texts::open_private_chat(lang)).await
            }
            other => other,
        }
    }

    /// Runs `send` for the private chat of whoever pressed the button; when
    /// the button was in a group, the group hears where it went (or, when
    /// the bot cannot write to them first, how to open that chat).
    pub(super) async fn in_private<F, Fut>(
        &self,
        chat: ChatId,
        query: &CallbackQuery,
        lang: Lang,
        send: F,
    ) -> Result<(), HandleError>
    where
        F: FnOnce(ChatId) -> Fut,
        Fut: std::future::Future<Output = Result<(), HandleError>>,
    {
        let private = ChatId(query.from.id.0 as i64);
        if chat == private {
            return send(private).await;
        }
        match send(private).await {
            Ok(()) => self.say(chat, texts::sent_privately(lang)).await,
            Err(HandleError::Telegram(e)) if crate::clients::bot_api::is_undeliverable(&e) => {
                self.say(chat, texts::open_private_chat(lang)).await
            }
            Err(e) => Err(e),
        }
    }

    /// The coin packages, one button each.
    pub(super) async fn top_up(&self, turn: Turn) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let balance = crate::ledger::balance(&self.services.db, user_id).await?;
        let packages = &self.services.settings.payments.packages;
        let rows = packages
            .iter()
            .enumerate()
            .map(|(i, p)| [button(texts::package_button(&p.label, p.stars), Callback::TopUp(i))]);
        self.bot
            .send_message(chat, texts::packages_intro(lang, balance))
            .reply_markup(InlineKeyboardMarkup::new(rows))
            .patiently()
            .await?;
        Ok(())
    }

    /// An order for package `index`, and its invoice (payload: the order).
    pub(super) async fn invoice(&self, turn: Turn, index: usize) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let Some(package) = self.services.settings.payments.packages.get(index) else {
            return self.top_up(turn).await;
        };
        let order = payments::create_order(&self.services.db, user_id, package).await?;
        let stars = u32::try_from(package.stars).unwrap_or(u32::MAX);
        tracing::info!(order_id = order.id, user_id, package = %package.id, stars, "invoice sent");
        self.bot
            .send_invoice(
                chat,
                texts::invoice_title(lang, &package.label),
                texts::invoice_description(lang, package.coins),
                payments::payload(&order),
                payments::CURRENCY,
                [LabeledPrice::new(package.label.clone(), stars)],
            )
            .patiently()
            .await?;
        Ok(())
    }

    /// Answered within Telegram's 10 s from the database alone; the
    /// dispatcher runs it ahead of any chat's queue.
    pub(super) async fn on_pre_checkout(&self, query: &PreCheckoutQuery) -> Result<(), HandleError> {
        let lang = Lang::from_code(query.from.language_code.as_deref());
        let user = self.shared.user(TelegramProfile::of(&query.from)).await?;
        let verdict = payments::pre_checkout(
            &self.services.db,
            user.id,
            &query.invoice_payload,
            &query.currency,
            query.total_amount.into(),
        )
        .await?;
        let answer = self.bot.answer_pre_checkout_query(query.id.clone(), verdict.is_ok());
        let answer = match verdict {
            Ok(()) => {
                payments_metric("checkout_ok");
                answer
            }
            Err(why) => {
                tracing::warn!(user_id = user.id, payload = %query.invoice_payload, ?why, "pre-checkout refused");
                payments_metric("checkout_refused");
                answer.error_message(texts::checkout_refused(lang, why))
            }
        };
        answer.patiently().await?;
        Ok(())
    }

    pub(super) async fn on_paid(&self, turn: Turn, paid: &SuccessfulPayment) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        if paid.currency != payments::CURRENCY {
            tracing::error!(user_id, currency = %paid.currency, "a payment in another currency than Stars; not credited");
            return Ok(());
        }
        let payment = StarsPayment {
            charge_id: &paid.telegram_payment_charge_id.0,
            payload: &paid.invoice_payload,
            stars: paid.total_amount.into(),
        };
        let packages = &self.services.settings.payments.packages;
        match payments::credit(&self.services.db, user_id, &payment, packages, "chat").await? {
            Credited::Credited { coins: 0, .. } => {
                payments_metric("unmatched");
                self.say(chat, texts::paid_unmatched(lang)).await
            }
            Credited::Credited { coins, balance } => {
                tracing::info!(
                    user_id,
                    charge_id = payment.charge_id,
                    coins,
                    stars = payment.stars,
                    "Stars payment credited"
                );
                payments_metric("credited");
                metrics::counter!("aishad_stars_received_total").increment(payment.stars.max(0) as u64);
                self.say(chat, texts::paid(lang, coins, balance)).await
            }
            Credited::Duplicate { .. } => {
                tracing::info!(user_id, charge_id = payment.charge_id, "Stars payment seen before; not credited again");
                payments_metric("duplicate");
                Ok(())
            }
        }
    }

    pub(super) async fn on_refunded(
        &self,
        chat: ChatId,
        lang: Lang,
        refunded: &RefundedPayment,
    ) -> Result<(), HandleError> {
        let charge_id = &refunded.telegram_payment_charge_id.0;
        match payments::debit_refund(&self.services.db, charge_id, "telegram").await? {
            Debited::Debited { user_id, coins, balance } => {
                tracing::info!(user_id, charge_id, coins, "Stars payment refunded; coins taken back");
                payments_metric("refunded");
                metrics::counter!("aishad_stars_refunded_total").increment(u64::from(refunded.total_amount));
                self.say(chat, texts::stars_refunded(lang, coins, balance)).await
            }
            Debited::AlreadyRefunded => Ok(()),
            Debited::Unknown => {
                tracing::error!(charge_id, "a refund of a payment we never recorded");
                Ok(())
            }
        }
    }
}
