//! Group chats where an admin turned transcription on, and who pays.

use super::db::Db;
use super::error::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChat {
    pub chat_id: i64,
    pub autotranscribe: bool,
    pub payer_user_id: Option<i64>,
    /// The payer's Telegram id: their private chat.
    pub payer_telegram_id: Option<i64>,
    pub payer_name: Option<String>,
    pub out_of_coins_told: bool,
}

impl Db {
    pub async fn group_chat(&self, chat_id: i64) -> Result<Option<GroupChat>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT g.chat_id, g.autotranscribe, g.payer_user_id, u.telegram_id,
                        COALESCE('@' || u.username, u.first_name), g.out_of_coins_told
                   FROM group_chats g LEFT JOIN users u ON u.id = g.payer_user_id
                  WHERE g.chat_id = $1",
                &[&chat_id],
            )
            .await?;
        Ok(row.map(|r| GroupChat {
            chat_id: r.get(0),
            autotranscribe: r.get(1),
            payer_user_id: r.get(2),
            payer_telegram_id: r.get(3),
            payer_name: r.get(4),
            out_of_coins_told: r.get(5),
        }))
    }

    /// Turns transcription on (with `payer` paying from now on) or off.
    pub async fn set_autotranscribe(&self, chat_id: i64, on: bool, payer: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO group_chats (chat_id, autotranscribe, payer_user_id) VALUES ($1, $2, $3)
                 ON CONFLICT (chat_id) DO UPDATE SET autotranscribe = $2,
                     payer_user_id = CASE WHEN $2 THEN $3 ELSE group_chats.payer_user_id END,
                     out_of_coins_told = false, updated_at = now()",
                &[&chat_id, &on, &payer],
            )
            .await?;
        Ok(())
    }

    /// Turns transcription off where `payer` pays for it (they stepped down
    /// or left); true only the first time, so the group is told once.
    pub async fn stop_group_payer(&self, chat_id: i64, payer: i64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE group_chats SET autotranscribe = false, updated_at = now()
                  WHERE chat_id = $1 AND payer_user_id = $2 AND autotranscribe",
                &[&chat_id, &payer],
            )
            .await?;
        Ok(n == 1)
    }

    /// Records that the group was told its payer ran out of coins; true only
    /// the first time, so the group is told once.
    pub async fn mark_out_of_coins_told(&self, chat_id: i64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE group_chats SET out_of_coins_told = true WHERE chat_id = $1 AND NOT out_of_coins_told",
                &[&chat_id],
            )
            .await?;
        Ok(n == 1)
    }

    /// A paid transcript went through: the next shortage is told again.
    pub async fn clear_out_of_coins_told(&self, chat_id: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE group_chats SET out_of_coins_told = false WHERE chat_id = $1 AND out_of_coins_told",
                &[&chat_id],
            )
            .await?;
        Ok(())
    }
}
