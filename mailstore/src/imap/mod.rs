pub mod mime;
pub mod search;
