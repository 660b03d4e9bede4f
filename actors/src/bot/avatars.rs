//! Avatars: the creation dialogue (name → gender → 10–20 photos → Train),
//! each photo validated and stored in S3, and the avatar's status with
//! Refresh, Cancel and Make-main buttons.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::InlineKeyboardMarkup;

use super::{BotHandler, HandleError, Turn};
use crate::chat::callback::{button, Callback};
use crate::chat::keyboards;
use crate::chat::texts::{self};
use crate::clients::Patiently;
use crate::clients::{download_telegram_file, DownloadError, MAX_DOWNLOAD};
use crate::dialogue::{self, Dialogue};
use crate::fal_job::kinds::{Train, FAL_TRAIN};
use crate::fal_job::requests;
use crate::jobs::queue;
use crate::ledger;
use crate::store::fal::{FalRequest, FalState};
use crate::store::images::AvatarState;

/// Short side at least, long side at most, in pixels.
const MIN_SIDE: usize = 512;
const MAX_SIDE: usize = 4096;

/// Checks format and size; returns (extension, width, height) or the problem's name.
fn validate(bytes: &[u8]) -> Result<(&'static str, usize, usize), &'static str> {
    let ext = match imagesize::image_type(bytes) {
        Ok(imagesize::ImageType::Jpeg) => "jpg",
        Ok(imagesize::ImageType::Png) => "png",
        Ok(imagesize::ImageType::Webp) => "webp",
        _ => return Err("format"),
    };
    let size = imagesize::blob_size(bytes).map_err(|_| "format")?;
    let (short, long) = (size.width.min(size.height), size.width.max(size.height));
    if short < MIN_SIDE {
        return Err("small");
    }
    if long > MAX_SIDE {
        return Err("large");
    }
    Ok((ext, size.width, size.height))
}

impl BotHandler {
    pub(super) async fn avatars(&self, turn: Turn) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let avatars = self.services.db.avatars(user_id).await?;
        let mut text = texts::avatars_title(lang).to_owned();
        let mut rows = Vec::new();
        for a in &avatars {
            let main = if a.is_main { " ⭐" } else { "" };
            text.push_str(&format!("\n• {}{main} — {} ({} 📸)", a.name, texts::avatar_state(lang, a.state), a.photos));
            rows.push(vec![button(format!("👤 {}", a.name), Callback::AvatarStatus(a.id))]);
        }
        if avatars.is_empty() {
            // The button below is the way on: no pointing back at /avatars.
            text = texts::no_avatar_yet(lang).to_owned();
        }
        rows.push(vec![button(texts::new_avatar_button(lang), Callback::AvatarNew)]);
        self.bot.send_message(chat, text).reply_markup(InlineKeyboardMarkup::new(rows)).patiently().await?;
        Ok(())
    }

    /// Says up front what training costs: a user who cannot pay is sent to
    /// top up before, not after, choosing and uploading ten photos.
    pub(super) async fn avatar_new(&self, turn: Turn) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let price = self.services.settings.pricing.avatar_training;
        let balance = crate::ledger::balance(&self.services.db, user_id).await?;
        if balance < price {
            let refusal = self.bot.send_message(chat, texts::avatar_costs_more(lang, price, balance));
            refusal.reply_markup(keyboards::top_up(lang)).patiently().await?;
            return Ok(());
        }
        dialogue::set(&self.services.redis, user_id, &Dialogue::AvatarName).await?;
        self.say(chat, format!("{}\n{}", texts::avatar_price(lang, price), texts::ask_avatar_name(lang))).await
    }

    /// Text while the dialogue waits for a name.
    pub(super) async fn avatar_named(&self, turn: Turn, name: &str) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let name: String = name.trim().chars().take(40).collect();
        let step = Dialogue::AvatarGender { name };
        dialogue::set(&self.services.redis, user_id, &step).await?;
        let buttons = texts::gender_buttons(lang).map(|(key, label)| button(label, Callback::Gender(key)));
        self.bot
            .send_message(chat, texts::ask_gender(lang))
            .reply_markup(InlineKeyboardMarkup::new([buttons]))
            .patiently()
            .await?;
        Ok(())
    }

    pub(super) async fn avatar_gender(&self, turn: Turn, gender: &str) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let Some(Dialogue::AvatarGender { name }) = dialogue::get(&self.services.redis, user_id).await? else {
            return self.avatar_new(turn).await;
        };
        let trigger = format!(
            "{} {gender}",
            self.services.settings.fal.trigger_phrase.split_whitespace().next().unwrap_or("ohwx")
        );
        let avatar_id = self.services.db.create_avatar(user_id, &name, gender, &trigger).await?;
        dialogue::set(&self.services.redis, user_id, &Dialogue::AvatarPhotos { avatar_id }).await?;
        let fal = &self.services.settings.fal;
        self.say(chat, texts::ask_photos(lang, fal.min_photos, fal.max_photos)).await
    }

    /// A photo while the dialogue collects them: validated, deduplicated, stored.
    pub(super) async fn avatar_photo(
        &self,
        turn: Turn,
        avatar_id: i64,
        file: (String, Option<u64>),
    ) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let fal = &self.services.settings.fal;
        let reject = |problem| self.say(chat, texts::photo_rejected(lang, texts::photo_problem(lang, problem)));
        let Some(avatar) =
            self.services.db.avatar_of(user_id, avatar_id).await?.filter(|a| a.state == AvatarState::Collecting)
        else {
            dialogue::clear(&self.services.redis, user_id).await?;
            return self.say(chat, texts::unsupported(lang)).await;
        };
        if avatar.photos as usize >= fal.max_photos {
            return reject("enough").await;
        }
        if file.1.is_some_and(|size| size > MAX_DOWNLOAD) {
            return reject("size").await;
        }
        // Held until the photo is stored: the bytes are in memory till then.
        let _in_memory = self.photos_in_memory.acquire().await;
        let bytes: Bytes =
            match download_telegram_file(&self.bot, &self.services.settings.telegram, &file.0, MAX_DOWNLOAD).await {
                Ok(bytes) => bytes,
                Err(DownloadError::TooBig(_)) => return reject("size").await,
                Err(e) => return Err(e.into()),
            };
        let (ext, width, height) = match validate(&bytes) {
            Ok(valid) => valid,
            Err(problem) => return reject(problem).await,
        };
        let hash = hex::encode(Sha256::digest(&bytes));
        let prefix = format!("avatars/{user_id}/{avatar_id}/photo_");
        let suffix = format!(".{ext}");
        let Some((n, key)) = self
            .services
            .db
            .add_avatar_photo(avatar_id, (&prefix, &suffix), &hash, width as i32, height as i32)
            .await?
        else {
            return reject("duplicate").await;
        };
        if let Err(e) =
            self.services.blob.put(&key, bytes, &format!("image/{}", if ext == "jpg" { "jpeg" } else { ext })).await
        {
            tracing::warn!(avatar_id, error = %e, "could not store an avatar photo");
            self.services.db.remove_avatar_photo(avatar_id, n).await?;
            return self.say(chat, texts::something_went_wrong(lang)).await;
        }
        let count = avatar.photos as usize + 1;
        let text = texts::photo_accepted(lang, count, fal.min_photos, fal.max_photos);
        if count >= fal.min_photos {
            let train = button(texts::train_button(lang), Callback::AvatarTrain(avatar_id));
            self.bot.send_message(chat, text).reply_markup(InlineKeyboardMarkup::new([[train]])).patiently().await?;
            Ok(())
        } else {
            self.say(chat, text).await
        }
    }

    pub(super) async fn avatar_train(&self, turn: Turn, avatar_id: i64) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let db = &self.services.db;
        let Some(avatar) = db.avatar_of(user_id, avatar_id).await? else {
            return self.say(chat, texts::no_avatar(lang)).await;
        };
        let min = self.services.settings.fal.min_photos;
        if (avatar.photos as usize) < min {
            return self.say(chat, texts::not_enough_photos(lang, avatar.photos as usize, min)).await;
        }
        if !db.set_avatar_state(avatar_id, &[AvatarState::Collecting], AvatarState::Queued, None).await? {
            return self.avatar_status(turn, avatar_id).await;
        }
        let payload = Train { avatar_id, chat_id: chat.0, language: lang.code().to_owned() };
        let job = FAL_TRAIN.job(format!("avatar:train:{avatar_id}"), &payload);
        let queued = self.charge_for(turn, job, self.services.settings.pricing.avatar_training).await;
        if matches!(queued, Ok(true)) {
            dialogue::clear(&self.services.redis, user_id).await?;
        } else {
            // Not charged (no coins, or the charge failed): the photos stay, training can be started again.
            db.set_avatar_state(avatar_id, &[AvatarState::Queued], AvatarState::Collecting, None).await?;
        }
        queued.map(drop)
    }

    pub(super) async fn avatar_status(&self, turn: Turn, avatar_id: i64) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let Some(a) = self.services.db.avatar_of(user_id, avatar_id).await? else {
            return self.say(chat, texts::no_avatar(lang)).await;
        };
        let [refresh, cancel, main] = texts::avatar_buttons(lang);
        let mut row = vec![button(refresh, Callback::AvatarStatus(avatar_id))];
        if matches!(a.state, AvatarState::Collecting | AvatarState::Queued | AvatarState::Training) {
            row.push(button(cancel, Callback::AvatarCancel(avatar_id)));
        }
        if a.state == AvatarState::Ready && !a.is_main {
            row.push(button(main, Callback::AvatarMain(avatar_id)));
        }
        let star = if a.is_main { " ⭐" } else { "" };
        let text = format!("👤 {}{star}\n{} · {} 📸", a.name, texts::avatar_state(lang, a.state), a.photos);
        self.bot.send_message(chat, text).reply_markup(InlineKeyboardMarkup::new([row])).patiently().await?;
        Ok(())
    }

    /// Cancels an avatar at any stage: FAL is told to stop a running
    /// training; what was paid is refunded (for a training, per config).
    pub(super) async fn avatar_cancel(&self, turn: Turn, avatar_id: i64) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let db = &self.services.db;
        let Some(avatar) = db.avatar_of(user_id, avatar_id).await? else {
            return self.say(chat, texts::no_avatar(lang)).await;
        };
        let mut refunded = 0;
        match avatar.state {
            AvatarState::Queued => {
                let training_this =
                    |job: &crate::jobs::Job| job.payload_as::<Train>().is_ok_and(|t| t.avatar_id == avatar_id);
                for job in queue::active_for_user(db, user_id).await?.into_iter().filter(training_this) {
                    if let Some(cancelled) = ledger::cancel_job(db, job.id, "avatar cancelled").await? {
                        refunded += cancelled.cost;
                    }
                }
            }
            AvatarState::Training => {
                let Some(request) = db.fal_request_for_avatar(avatar_id).await? else {
                    // Being submitted this moment: under way, and not ours to stop (nor refund) yet.
                    return self.say(chat, texts::still_running(lang, 1)).await;
                };
                refunded = self.cancel_training(&request).await?;
            }
            AvatarState::Collecting => {}
            AvatarState::Ready | AvatarState::Failed | AvatarState::Cancelled => {
                return self.avatar_status(turn, avatar_id).await
            }
        }
        db.set_avatar_state(avatar_id, &AvatarState::UNDER_WAY, AvatarState::Cancelled, None).await?;
        let step = dialogue::get(&self.services.redis, user_id).await?;
        if matches!(step, Some(Dialogue::AvatarPhotos { avatar_id: id }) if id == avatar_id) {
            dialogue::clear(&self.services.redis, user_id).await?;
        }
        self.say(chat, texts::training_cancelled(lang, refunded)).await
    }

    /// Asks FAL to stop a training and ends its request cancelled, refunded
    /// as `fal.refund_cancelled_training` says; what was refunded.
    pub(super) async fn cancel_training(&self, request: &FalRequest) -> Result<i64, HandleError> {
        if let Err(e) = self.fal.cancel(&request.cancel_url).await {
            tracing::warn!(request_id = %request.request_id, error = %e, "FAL cancel failed; the result will be discarded");
        }
        let refund = self.services.settings.fal.refund_cancelled_training;
        let ended = requests::end_unpaid(&self.services.db, &request.request_id, FalState::Cancelled, refund).await?;
        Ok(ended.map_or(0, |e| e.refunded))
    }

    pub(super) async fn avatar_main(&self, turn: Turn, avatar_id: i64) -> Result<(), HandleError> {
        self.services.db.set_main_avatar(turn.user_id, avatar_id).await?;
        self.avatar_status(turn, avatar_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R'];
        bytes.extend(width.to_be_bytes());
        bytes.extend(height.to_be_bytes());
        bytes.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
        bytes
    }

    #[test]
    fn photos_are_checked_for_format_and_size() {
        assert_eq!(validate(&png(1024, 768)), Ok(("png", 1024, 768)));
        assert_eq!(validate(&png(400, 1024)), Err("small"));
        assert_eq!(validate(&png(5000, 1024)), Err("large"));
        assert_eq!(validate(b"GIF89a...."), Err("format"));
    }
}
