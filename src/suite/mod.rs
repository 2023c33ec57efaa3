//! The suite language: model, loading with positions, composition, validation, diagnostics,
//! `${{ }}` expressions and planning.

pub mod compose;
pub mod dag;
pub mod diagnostics;
pub mod expr;
pub mod gpus;
pub mod load;
pub mod matrix;
pub mod model;
pub mod model_format;
pub mod params;
pub mod plan;
pub mod pointer;
pub mod render;
pub mod report_output;
pub mod schema;
pub mod schema_check;
pub mod source;
pub mod validate;
pub mod workspace;
