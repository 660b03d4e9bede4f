//! FAL's FLUX LoRA trainer for portraits: a person from a zip of photos.
//! It calls the trigger a phrase.

use serde_json::{json, Value};

use super::model::{Ask, FalModel, Product};

pub struct PortraitTrainer;

impl FalModel for PortraitTrainer {
    fn id(&self) -> &'static str {
        "fal-ai/flux-lora-portrait-trainer"
    }

    fn product(&self) -> Product {
        Product::Training
    }

    fn input(&self, ask: &Ask<'_>) -> Option<Value> {
        let Ask::Training { images_url, trigger, steps } = ask else { return None };
        Some(json!({ "images_data_url": images_url, "trigger_phrase": trigger, "steps": steps }))
    }
}
