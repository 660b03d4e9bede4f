//! FAL's fast FLUX LoRA training: any subject from a zip of photos. It
//! calls the trigger a word.

use serde_json::{json, Value};

use super::model::{Ask, FalModel, Product};

pub struct FastTraining;

impl FalModel for FastTraining {
    fn id(&self) -> &'static str {
        "fal-ai/flux-lora-fast-training"
    }

    fn product(&self) -> Product {
        Product::Training
    }

    fn input(&self, ask: &Ask<'_>) -> Option<Value> {
        let Ask::Training { images_url, trigger, steps } = ask else { return None };
        Some(json!({ "images_data_url": images_url, "trigger_word": trigger, "steps": steps }))
    }
}
