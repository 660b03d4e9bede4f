//! What the bot says and shows, below every worker and the bot itself: the
//! texts in both languages, long replies split or sent as a file, inline
//! keyboards, the notice a user gets when a job of theirs failed, and what
//! users send back: commands and button presses, typed.

pub mod callback;
pub mod command;
pub mod keyboards;
pub mod lang;
pub mod notices;
pub mod reply;
pub mod texts;

pub use lang::Lang;
