pub mod events;
pub mod rules;
