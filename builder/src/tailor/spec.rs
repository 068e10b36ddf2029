//! The `[tailor]` part of a recipe. (being written)

use serde::Deserialize;

/// What tailoring a recipe asks for. (being written)
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TailorSpec {}
