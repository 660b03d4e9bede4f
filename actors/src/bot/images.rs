//! Images in the chat: `/imagine`, `/generate`, Regenerate and Favourite
//! buttons, and the gallery.

use teloxide::payloads::{SendMessageSetters, SendPhotoSetters};
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, InlineKeyboardMarkup, InputFile};

use super::{BotHandler, HandleError, Turn};
use crate::chat::callback::{button, Callback};
use crate::chat::texts;
use crate::clients::Patiently;
use crate::fal_job::kinds::{ImageRequest, FAL_GENERATE, FAL_IMAGINE};
use crate::fal_job::models::{self, Product};

impl BotHandler {
    /// `/imagine` (text to image) or `/generate` (from the main avatar): charged and queued.
    pub(super) async fn image_request(
        &self,
        turn: Turn,
        key: String,
        product: Product,
        prompt: &str,
    ) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let pricing = &self.services.settings.pricing;
        let (kind, price) = if product == Product::AvatarImage {
            if self.services.db.main_avatar(user_id).await?.is_none() {
                let new = button(texts::new_avatar_button(lang), Callback::AvatarNew);
                self.bot
                    .send_message(chat, texts::no_avatar(lang))
                    .reply_markup(InlineKeyboardMarkup::new([[new]]))
                    .patiently()
                    .await?;
                return Ok(());
            }
            (&FAL_GENERATE, pricing.avatar_image)
        } else {
            (&FAL_IMAGINE, pricing.text_to_image)
        };
        let payload = ImageRequest { prompt: prompt.to_owned(), chat_id: chat.0, language: lang.code().to_owned() };
        self.charge(turn, kind.job(key, &payload), price).await
    }

    /// Regenerate: the same prompt, the same way, charged again.
    pub(super) async fn regenerate(&self, turn: Turn, query: &CallbackQuery, image_id: i64) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let Some(image) = self.services.db.image_of(user_id, image_id).await? else {
            return self.say(chat, texts::no_images(lang)).await;
        };
        // As the model that made it did: its product says which.
        let product = match models::model(&image.model).map(|m| m.product()) {
            Some(Product::TextToImage) => Product::TextToImage,
            _ => Product::AvatarImage,
        };
        self.image_request(turn, format!("tg:cb:{}", query.id.0), product, &image.prompt).await
    }

    pub(super) async fn favourite(&self, turn: Turn, image_id: i64) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        match self.services.db.toggle_favourite(user_id, image_id).await? {
            Some(on) => self.say(chat, texts::favourite_set(lang, on)).await,
            None => self.say(chat, texts::no_images(lang)).await,
        }
    }

    pub(super) async fn delete_image(&self, turn: Turn, image_id: i64) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        match self.services.db.delete_image(user_id, image_id).await? {
            Some(key) => {
                if let Err(e) = self.services.blob.delete(&key).await {
                    tracing::warn!(key, error = %e, "could not delete an image from S3");
                }
                self.say(chat, texts::image_deleted(lang)).await
            }
            None => self.say(chat, texts::no_images(lang)).await,
        }
    }

    /// One image per page, newest first, with ‹ › and its actions. Sent by
    /// Telegram file id when it has one, else uploaded from S3.
    pub(super) async fn gallery(&self, turn: Turn, index: i64) -> Result<(), HandleError> {
        let Turn { chat, user_id, lang } = turn;
        let (image, total) = self.services.db.gallery_page(user_id, index).await?;
        let Some(image) = image else { return self.say(chat, texts::no_images(lang)).await };
        let index = index.max(0);
        let [favourite, delete, regenerate] = texts::gallery_buttons(lang);
        let mut nav = Vec::new();
        if index > 0 {
            nav.push(button("‹", Callback::Gallery(index - 1)));
        }
        if index + 1 < total {
            nav.push(button("›", Callback::Gallery(index + 1)));
        }
        let actions = vec![
            button(favourite, Callback::Favourite(image.id)),
            button(delete, Callback::Delete(image.id)),
            button(regenerate, Callback::Regenerate(image.id)),
        ];
        let keyboard = InlineKeyboardMarkup::new([nav, actions].into_iter().filter(|row| !row.is_empty()));
        let caption = texts::gallery_caption(index, total, &image.prompt, image.favourite);
        let file = match &image.telegram_file_id {
            Some(id) => InputFile::file_id(teloxide::types::FileId(id.clone())),
            None => {
                let bytes = self.services.blob.get(&image.key).await?;
                let name = format!("image.{}", crate::blob::image_kind(&bytes).0);
                InputFile::memory(bytes).file_name(name)
            }
        };
        let sent = self.bot.send_photo(chat, file).caption(caption).reply_markup(keyboard).patiently().await?;
        if image.telegram_file_id.is_none() {
            if let Some(photo) = sent.photo().and_then(|sizes| sizes.last()) {
                let _ = self.services.db.set_image_file_id(image.id, &photo.file.id.0).await;
            }
        }
        Ok(())
    }
}
